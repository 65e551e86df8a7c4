//! What the coverage reports read: the per-area counts the projection keeps (`area_coverage`, `area_progress`)
//! and aggregates over the projected places, indicators and visits, for an area's subtree and a team's grids.

use crate::store::area_progress::FROM_THE_START;
use crate::store::campaign_sql::{eligible_sql, indicator_reach_sql};
use crate::store::db::Db;
use crate::store::StoreResult;
use client_core::campaign::IndicatorDef;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};

/// The place filter: an optional area's subtree ($1) and an optional team's grids ($2).
pub(crate) const AREA_FILTER: &str = "($1 = '' OR p.grid_code = $1 OR p.village_code = $1 OR p.town_code = $1) \
    AND ($2 = '' OR p.grid_code IN (SELECT grid_code FROM assignments WHERE team = $2))";

/// Per area (or team) and indicator: eligible, reached, excluded.
pub type Counts = (String, String, i64, i64, i64);

/// The counts the projection keeps for the areas of `level` within `area`'s subtree (or everywhere).
pub async fn area_counts(db: &Db, level: &str, area: &str) -> StoreResult<Vec<Counts>> {
    Ok(sqlx::query_as(
        "SELECT area_code, indicator, eligible, reached, excluded FROM area_coverage \
         WHERE level = $1 AND eligible + excluded > 0 \
         AND ($2 = '' OR area_code = $2 OR village_code = $2 OR town_code = $2)",
    )
    .bind(level)
    .bind(area)
    .fetch_all(&db.pool)
    .await?)
}

/// What scanned counts are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    Town,
    Village,
    Grid,
    /// The team the place's grid is assigned to (places of unassigned grids are left out).
    Team,
}

/// Counts computed from the projected places and indicators, grouped by `by`, within the filter.
pub async fn scanned_counts(db: &Db, by: Grouping, area: &str, team: &str) -> StoreResult<Vec<Counts>> {
    let group_col = match by {
        Grouping::Town => "p.town_code",
        Grouping::Village => "p.village_code",
        Grouping::Grid => "p.grid_code",
        Grouping::Team => "a.team",
    };
    let join = if by == Grouping::Team { "JOIN assignments a ON a.grid_code = p.grid_code" } else { "" };
    let sql = format!(
        "SELECT {group_col}, pi.indicator, \
           CAST(SUM(CASE WHEN p.excluded = 0 THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(SUM(CASE WHEN p.excluded = 0 AND pi.reached_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(SUM(p.excluded) AS BIGINT) \
         FROM place_indicators pi JOIN places p ON p.place_id = pi.place_id {join} \
         WHERE {AREA_FILTER} GROUP BY {group_col}, pi.indicator"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(area).bind(team).fetch_all(&db.pool).await?)
}

/// Per volunteer and indicator: the places within the filter their own visits reached (visits made while in the
/// team the grid is assigned to).
pub async fn reached_by_volunteer(db: &Db, area: &str, team: &str) -> StoreResult<Vec<(String, String, i64)>> {
    let sql = format!(
        "SELECT vi.volunteer, vi.indicator, CAST(COUNT(DISTINCT vi.place_id) AS BIGINT) \
         FROM visit_indicators vi JOIN places p ON p.place_id = vi.place_id \
         JOIN assignments a ON a.grid_code = p.grid_code \
         JOIN users u ON u.username = vi.volunteer AND u.team = a.team \
         WHERE p.excluded = 0 AND {AREA_FILTER} GROUP BY vi.volunteer, vi.indicator"
    );
    Ok(sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(sql))
        .bind(area)
        .bind(team)
        .fetch_all(&db.pool)
        .await?)
}

/// The volunteers who visited places within the filter.
pub async fn volunteers_who_visited(db: &Db, area: &str, team: &str) -> StoreResult<Vec<String>> {
    let sql = format!(
        "SELECT DISTINCT v.volunteer FROM visits v JOIN places p ON p.place_id = v.place_id WHERE {AREA_FILTER}"
    );
    let names: Vec<(String,)> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(area).bind(team).fetch_all(&db.pool).await?;
    Ok(names.into_iter().map(|(n,)| n).collect())
}

/// The places whose last visit before `$3` found them gone. Each place has one last visit, so each appears once.
const GONE_AT: &str = "SELECT v.place_id FROM visits v WHERE v.at < $3 AND v.outcome = 'gone' AND NOT EXISTS \
    (SELECT 1 FROM visits w WHERE w.place_id = v.place_id AND w.at < $3 \
     AND (w.at > v.at OR (w.at = v.at AND w.visit_id > v.visit_id)))";

/// Per village or community and indicator, as it stood at `at_ms` (exclusive), from visit times alone: eligible,
/// reached, excluded.
pub async fn village_counts_at(db: &Db, at_ms: i64, area: &str, team: &str) -> StoreResult<Vec<Counts>> {
    let sql = format!(
        "SELECT p.village_code, pi.indicator, \
           CAST(SUM(CASE WHEN g.place_id IS NULL THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(SUM(CASE WHEN g.place_id IS NULL AND pi.reached_at < $3 THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(SUM(CASE WHEN g.place_id IS NULL THEN 0 ELSE 1 END) AS BIGINT) \
         FROM place_indicators pi JOIN places p ON p.place_id = pi.place_id \
         LEFT JOIN ({GONE_AT}) g ON g.place_id = p.place_id \
         WHERE {AREA_FILTER} GROUP BY p.village_code, pi.indicator"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(area).bind(team).bind(at_ms).fetch_all(&db.pool).await?)
}

/// As [`village_counts_at`] for one indicator, but as `indicator` defines it rather than as the projected rows
/// (which follow the campaign in force now) count it: from the places' kinds and settings and the deliveries of
/// their visits before `at_ms`. For a month counted with an earlier campaign version whose rules for the
/// indicator differ. Rejected and merged places count nowhere, as in the projection.
pub async fn village_counts_at_as_defined(
    db: &Db,
    at_ms: i64,
    area: &str,
    team: &str,
    indicator: &IndicatorDef,
) -> StoreResult<Vec<Counts>> {
    let eligible = eligible_sql(indicator)?;
    let reached = indicator_reach_sql(indicator)?;
    let sql = format!(
        "SELECT p.village_code, $4, \
           CAST(SUM(CASE WHEN g.place_id IS NULL THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(SUM(CASE WHEN g.place_id IS NULL AND EXISTS (SELECT 1 FROM visits v WHERE v.place_id = p.place_id \
             AND v.at < $3 AND {reached}) THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(SUM(CASE WHEN g.place_id IS NULL THEN 0 ELSE 1 END) AS BIGINT) \
         FROM places p LEFT JOIN ({GONE_AT}) g ON g.place_id = p.place_id \
         WHERE p.status NOT IN ('rejected', 'merged') AND ({eligible}) AND {AREA_FILTER} GROUP BY p.village_code"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(area)
        .bind(team)
        .bind(at_ms)
        .bind(indicator.id.as_str())
        .fetch_all(&db.pool)
        .await?)
}

/// Per village or community: visits and distinct places visited in `[from, to)` within the filter.
pub async fn village_visits_between(
    db: &Db,
    (from, to): (i64, i64),
    area: &str,
    team: &str,
) -> StoreResult<Vec<(String, i64, i64)>> {
    let sql = format!(
        "SELECT p.village_code, CAST(COUNT(*) AS BIGINT), CAST(COUNT(DISTINCT v.place_id) AS BIGINT) \
         FROM visits v JOIN places p ON p.place_id = v.place_id \
         WHERE v.at >= $3 AND v.at < $4 AND {AREA_FILTER} GROUP BY p.village_code"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(area).bind(team).bind(from).bind(to).fetch_all(&db.pool).await?)
}

/// Whose progress changes are added up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressRows {
    /// Every area of the level.
    All,
    /// One area of the level.
    Area,
    /// A team's grids within an area (or everywhere).
    TeamGrids,
}

/// The grids of a team ($5) within an area ($4, or everywhere), from the per-grid coverage rows, which know
/// each grid's village and town as its places do.
const TEAM_GRIDS: &str = "level = 'grid' AND ($4 = '' OR area_code = $4 OR village_code = $4 OR town_code = $4) \
    AND area_code IN (SELECT grid_code FROM assignments WHERE team = $5)";

/// The progress changes of `level`'s rows, per indicator and day index: -2 for the eligible places themselves,
/// -1 for changes before bucket `start_bucket`, k for changes during day k (`day_buckets` buckets a day); only
/// buckets before `end_bucket`. Returns (indicator, day index, eligible, reached).
#[allow(clippy::too_many_arguments)]
pub async fn progress_changes(
    db: &Db,
    level: &str,
    rows: ProgressRows,
    (start_bucket, end_bucket): (i64, i64),
    day_buckets: i64,
    area: &str,
    team: &str,
) -> StoreResult<Vec<(String, i64, i64, i64)>> {
    let rows_of = match rows {
        ProgressRows::All => "TRUE".to_string(),
        ProgressRows::Area => "area_code = $4".to_string(),
        ProgressRows::TeamGrids => format!("area_code IN (SELECT area_code FROM area_coverage WHERE {TEAM_GRIDS})"),
    };
    let sql = format!(
        "SELECT indicator, CASE WHEN bucket = {FROM_THE_START} THEN -2 WHEN bucket < $1 THEN -1 \
           ELSE (bucket - $1) / $3 END AS day_index, CAST(SUM(eligible) AS BIGINT), CAST(SUM(reached) AS BIGINT) \
         FROM area_progress WHERE level = '{level}' AND {rows_of} AND bucket < $2 GROUP BY indicator, day_index"
    );
    let mut query = sqlx::query_as::<_, (String, i64, i64, i64)>(sqlx::AssertSqlSafe(sql))
        .bind(start_bucket)
        .bind(end_bucket)
        .bind(day_buckets);
    if rows_of.contains("$4") {
        query = query.bind(area);
    }
    if rows_of.contains("$5") {
        query = query.bind(team);
    }
    Ok(query.fetch_all(&db.pool).await?)
}

/// Places with a "gone" visit.
const EVER_GONE: &str = "EXISTS (SELECT 1 FROM visits g WHERE g.place_id = p.place_id AND g.outcome = 'gone')";

/// Per indicator, over the places within the filter never found gone: how many were reached in each bucket of
/// `day_ms` from `start` (-2: never reached; -1: before `start`; k: during day k).
pub async fn reached_by_day_never_gone(
    db: &Db,
    start: i64,
    day_ms: i64,
    area: &str,
    team: &str,
) -> StoreResult<Vec<(String, i64, i64)>> {
    let sql = format!(
        "SELECT pi.indicator, CASE WHEN pi.reached_at IS NULL THEN -2 WHEN pi.reached_at < $3 THEN -1 \
           ELSE (pi.reached_at - $3) / {day_ms} END AS bucket, CAST(COUNT(*) AS BIGINT) \
         FROM place_indicators pi JOIN places p ON p.place_id = pi.place_id \
         WHERE {AREA_FILTER} AND NOT {EVER_GONE} GROUP BY pi.indicator, bucket"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(area).bind(team).bind(start).fetch_all(&db.pool).await?)
}

/// The indicators of the places within the filter that were ever found gone: place, indicator, reached at.
pub async fn indicators_of_gone_places(
    db: &Db,
    area: &str,
    team: &str,
) -> StoreResult<Vec<(String, String, Option<i64>)>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT p.place_id, pi.indicator, pi.reached_at FROM place_indicators pi \
         JOIN places p ON p.place_id = pi.place_id WHERE {AREA_FILTER} AND {EVER_GONE}"
    )))
    .bind(area)
    .bind(team)
    .fetch_all(&db.pool)
    .await?)
}

/// The visits of the places within the filter that were ever found gone, by place and time: place, at, visit
/// id, outcome.
pub async fn visits_of_gone_places(db: &Db, area: &str, team: &str) -> StoreResult<Vec<(String, i64, String, String)>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT v.place_id, v.at, v.visit_id, v.outcome FROM visits v JOIN places p ON p.place_id = v.place_id \
         WHERE {AREA_FILTER} AND {EVER_GONE} ORDER BY v.place_id, v.at, v.visit_id"
    )))
    .bind(area)
    .bind(team)
    .fetch_all(&db.pool)
    .await?)
}

/// Which places a place list covers.
#[derive(Debug, Clone)]
pub enum PlaceScope {
    Grid(String),
    /// An area of the given kind (`None`: the whole territory), limited to a team's grids when one is given.
    Area {
        area: Option<(String, String)>,
        team: Option<String>,
    },
}

/// One place and one of its indicators: place id, grid, kind, label, address, last visit at, last outcome,
/// excluded, indicator, reached at.
pub type PlaceIndicatorRow =
    (String, String, String, String, Option<String>, Option<i64>, Option<String>, i64, String, Option<i64>);

/// The places of a scope with their indicators, in place id order (a place's rows together), read as a stream.
pub fn place_indicators<'a>(db: &'a Db, scope: &PlaceScope) -> BoxStream<'a, StoreResult<PlaceIndicatorRow>> {
    let (filter, binds) = match scope {
        PlaceScope::Grid(grid) => ("p.grid_code = $1".to_string(), vec![grid.clone()]),
        PlaceScope::Area { area, team } => {
            let mut conditions = Vec::new();
            let mut binds = Vec::new();
            if let Some((code, kind)) = area {
                binds.push(code.clone());
                // An equality on one column, so the database can use that column's index.
                conditions.push(match kind.as_str() {
                    "grid" => "p.grid_code = $1",
                    "village" | "community" => "p.village_code = $1",
                    "town" => "p.town_code = $1",
                    _ => "FALSE",
                });
            }
            if let Some(team) = team {
                binds.push(team.clone());
                conditions.push(if binds.len() == 1 {
                    "p.grid_code IN (SELECT grid_code FROM assignments WHERE team = $1)"
                } else {
                    "p.grid_code IN (SELECT grid_code FROM assignments WHERE team = $2)"
                });
            }
            let filter = if conditions.is_empty() { "TRUE".to_string() } else { conditions.join(" AND ") };
            (filter, binds)
        }
    };
    let sql = format!(
        "SELECT p.place_id, p.grid_code, p.kind, p.label, p.address, p.last_visit_at, p.last_outcome, p.excluded, \
           pi.indicator, pi.reached_at \
         FROM places p JOIN place_indicators pi ON pi.place_id = p.place_id \
         WHERE {filter} ORDER BY p.place_id"
    );
    let mut query = sqlx::query_as::<_, PlaceIndicatorRow>(sqlx::AssertSqlSafe(sql));
    for b in binds {
        query = query.bind(b);
    }
    query.fetch(&db.pool).map_err(Into::into).boxed()
}
