-- Changes of the daily progress series per grid, village and town, kept up to date by the projection so that
-- the series reads a few rows per day instead of scanning places and visits (see server/src/area_progress.rs).
-- A row holds how much the eligible and reached counts of an indicator change from the quarter hour `bucket`
-- (milliseconds / 900000) on; bucket -1 holds the eligible places themselves. Filled here from the existing
-- projection with the same rules.
CREATE TABLE area_progress (
    level TEXT NOT NULL,
    area_code TEXT NOT NULL,
    indicator TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    eligible BIGINT NOT NULL,
    reached BIGINT NOT NULL,
    PRIMARY KEY (level, area_code, indicator, bucket)
) WITHOUT ROWID;

CREATE TEMP TABLE progress_fill AS
WITH gone_places AS (SELECT DISTINCT place_id FROM visits WHERE outcome = 'gone'),
-- For a place some visit found gone: whether it is gone after all visits at each visit time (of visits at the
-- same time the greatest visit id is the last).
gone_status AS (
    SELECT place_id, at, gone FROM (
        SELECT v.place_id, v.at, CASE WHEN v.outcome = 'gone' THEN 1 ELSE 0 END AS gone,
               ROW_NUMBER() OVER (PARTITION BY v.place_id, v.at ORDER BY v.visit_id DESC) AS n
        FROM visits v JOIN gone_places g ON g.place_id = v.place_id
    ) s WHERE n = 1
),
-- The times at which such a place's contribution to an indicator can change: its visits and its first reach.
steps AS (
    SELECT pi.place_id, pi.indicator, pi.reached_at, s.at AS t
    FROM place_indicators pi JOIN gone_status s ON s.place_id = pi.place_id
    UNION
    SELECT pi.place_id, pi.indicator, pi.reached_at, pi.reached_at
    FROM place_indicators pi JOIN gone_places g ON g.place_id = pi.place_id WHERE pi.reached_at IS NOT NULL
),
-- What it contributes after each step: counted unless gone, reached if counted and reached by then.
step_values AS (
    SELECT place_id, indicator, t, counted,
           counted * CASE WHEN reached_at IS NOT NULL AND reached_at <= t THEN 1 ELSE 0 END AS reached
    FROM (
        SELECT st.place_id, st.indicator, st.reached_at, st.t,
               1 - COALESCE((SELECT s.gone FROM gone_status s WHERE s.place_id = st.place_id AND s.at <= st.t
                             ORDER BY s.at DESC LIMIT 1), 0) AS counted
        FROM steps st
    ) c
),
changes AS (
    SELECT place_id, indicator, CASE WHEN t < 0 THEN 0 ELSE t / 900000 END AS bucket,
           counted - LAG(counted, 1, 1) OVER (PARTITION BY place_id, indicator ORDER BY t) AS eligible,
           reached - LAG(reached, 1, 0) OVER (PARTITION BY place_id, indicator ORDER BY t) AS reached
    FROM step_values
    UNION ALL
    SELECT place_id, indicator, -1, 1, 0 FROM place_indicators
    UNION ALL
    SELECT pi.place_id, pi.indicator, CASE WHEN pi.reached_at < 0 THEN 0 ELSE pi.reached_at / 900000 END, 0, 1
    FROM place_indicators pi
    WHERE pi.reached_at IS NOT NULL AND pi.place_id NOT IN (SELECT place_id FROM gone_places)
)
SELECT p.grid_code, p.village_code, p.town_code, c.indicator, c.bucket,
       CAST(SUM(c.eligible) AS BIGINT) AS eligible, CAST(SUM(c.reached) AS BIGINT) AS reached
FROM changes c JOIN places p ON p.place_id = c.place_id
GROUP BY p.grid_code, p.village_code, p.town_code, c.indicator, c.bucket;

INSERT INTO area_progress (level, area_code, indicator, bucket, eligible, reached)
SELECT 'grid', grid_code, indicator, bucket, CAST(SUM(eligible) AS BIGINT), CAST(SUM(reached) AS BIGINT)
FROM progress_fill GROUP BY grid_code, indicator, bucket HAVING SUM(eligible) <> 0 OR SUM(reached) <> 0;

INSERT INTO area_progress (level, area_code, indicator, bucket, eligible, reached)
SELECT 'village', village_code, indicator, bucket, CAST(SUM(eligible) AS BIGINT), CAST(SUM(reached) AS BIGINT)
FROM progress_fill GROUP BY village_code, indicator, bucket HAVING SUM(eligible) <> 0 OR SUM(reached) <> 0;

INSERT INTO area_progress (level, area_code, indicator, bucket, eligible, reached)
SELECT 'town', town_code, indicator, bucket, CAST(SUM(eligible) AS BIGINT), CAST(SUM(reached) AS BIGINT)
FROM progress_fill GROUP BY town_code, indicator, bucket HAVING SUM(eligible) <> 0 OR SUM(reached) <> 0;

DROP TABLE progress_fill;
