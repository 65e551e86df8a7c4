//! What the activity report reads: visits per team or volunteer in a period, and who could have walked.

use crate::store::coverage::AREA_FILTER;
use crate::store::db::Db;
use crate::store::StoreResult;

/// Per key: visits, places, completed, nobody home, refused, gone, first and last visit time.
pub type ActivityCounts = (String, i64, i64, i64, i64, i64, i64, Option<i64>, Option<i64>);

/// Whose visits are counted together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKey {
    /// The volunteer's team as it is now (`''` for none).
    Team,
    Volunteer,
}

/// Visits in `[from, to)` on places within the filter, grouped by `key`.
pub async fn visit_counts(
    db: &Db,
    key: ActivityKey,
    (from, to): (i64, i64),
    area: &str,
    team: &str,
) -> StoreResult<Vec<ActivityCounts>> {
    let key = match key {
        ActivityKey::Team => "COALESCE(u.team, '')",
        ActivityKey::Volunteer => "v.volunteer",
    };
    let sql = format!(
        "SELECT {key}, CAST(COUNT(*) AS BIGINT), CAST(COUNT(DISTINCT v.place_id) AS BIGINT), \
           CAST(SUM(CASE WHEN v.outcome = 'completed' THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(SUM(CASE WHEN v.outcome = 'nobody-home' THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(SUM(CASE WHEN v.outcome = 'refused' THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(SUM(CASE WHEN v.outcome = 'gone' THEN 1 ELSE 0 END) AS BIGINT), MIN(v.at), MAX(v.at) \
         FROM visits v JOIN places p ON p.place_id = v.place_id LEFT JOIN users u ON u.username = v.volunteer \
         WHERE v.at >= $3 AND v.at < $4 AND {AREA_FILTER} GROUP BY {key}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(area).bind(team).bind(from).bind(to).fetch_all(&db.pool).await?)
}

/// Every key that could have visits within `team` (or everywhere): the teams, or the active team members.
pub async fn possible_keys(db: &Db, key: ActivityKey, team: &str) -> StoreResult<Vec<String>> {
    let keys: Vec<(String,)> = match key {
        ActivityKey::Team => sqlx::query_as("SELECT name FROM teams WHERE ($1 = '' OR name = $1)"),
        ActivityKey::Volunteer => sqlx::query_as(
            "SELECT username FROM users WHERE role IN ('volunteer', 'lead') AND team IS NOT NULL \
             AND disabled_at IS NULL AND ($1 = '' OR team = $1)",
        ),
    }
    .bind(team)
    .fetch_all(&db.pool)
    .await?;
    Ok(keys.into_iter().map(|(k,)| k).collect())
}
