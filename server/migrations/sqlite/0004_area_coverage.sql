-- Coverage counts per grid, village and town, kept up to date by the projection so that the coverage report
-- reads a few rows instead of scanning every place. Filled here from the existing projection.
CREATE TABLE area_coverage (
    level TEXT NOT NULL,
    area_code TEXT NOT NULL,
    village_code TEXT NOT NULL,
    town_code TEXT NOT NULL,
    indicator TEXT NOT NULL,
    eligible BIGINT NOT NULL,
    reached BIGINT NOT NULL,
    excluded BIGINT NOT NULL,
    PRIMARY KEY (level, area_code, indicator)
);
CREATE INDEX area_coverage_town ON area_coverage (town_code, level);

INSERT INTO area_coverage (level, area_code, village_code, town_code, indicator, eligible, reached, excluded)
SELECT 'grid', p.grid_code, p.village_code, p.town_code, pi.indicator,
       CAST(SUM(CASE WHEN p.excluded = 0 THEN 1 ELSE 0 END) AS BIGINT),
       CAST(SUM(CASE WHEN p.excluded = 0 AND pi.reached_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT),
       CAST(SUM(p.excluded) AS BIGINT)
FROM place_indicators pi JOIN places p ON p.place_id = pi.place_id
GROUP BY p.grid_code, p.village_code, p.town_code, pi.indicator;

INSERT INTO area_coverage (level, area_code, village_code, town_code, indicator, eligible, reached, excluded)
SELECT 'village', village_code, village_code, town_code, indicator,
       CAST(SUM(eligible) AS BIGINT), CAST(SUM(reached) AS BIGINT), CAST(SUM(excluded) AS BIGINT)
FROM area_coverage WHERE level = 'grid' GROUP BY village_code, town_code, indicator;

INSERT INTO area_coverage (level, area_code, village_code, town_code, indicator, eligible, reached, excluded)
SELECT 'town', town_code, '', town_code, indicator,
       CAST(SUM(eligible) AS BIGINT), CAST(SUM(reached) AS BIGINT), CAST(SUM(excluded) AS BIGINT)
FROM area_coverage WHERE level = 'grid' GROUP BY town_code, indicator;
