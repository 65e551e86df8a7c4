//! Activity: visits per team or volunteer in a period, with their outcomes, so a lead sees who is walking.

use crate::http::error::ApiError;
use crate::reports::time::time_text;
use crate::reports::AREA_FILTER;
use crate::AppState;
use chrono::FixedOffset;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ActivityBy {
    #[default]
    Team,
    Volunteer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ActivityRow {
    /// The team name, or the volunteer's username.
    pub key: String,
    /// The volunteer's team (for `by=volunteer`).
    pub team: Option<String>,
    pub visits: u64,
    pub places: u64,
    pub completed: u64,
    pub nobody_home: u64,
    pub refused: u64,
    pub gone: u64,
    pub first_at: Option<String>,
    pub last_at: Option<String>,
}

type Counts = (String, i64, i64, i64, i64, i64, i64, Option<i64>, Option<i64>);

/// Visits in `[from, to)` on places within the area and team filter, grouped by the volunteer's team (as it is
/// now) or by volunteer. `list_idle`: also list the teams or team members with no visits (within `team`).
pub async fn activity(
    state: &AppState,
    by: ActivityBy,
    (from, to): (i64, i64),
    offset: FixedOffset,
    (area, team): (&str, &str),
    list_idle: bool,
) -> Result<Vec<ActivityRow>, ApiError> {
    let key = match by {
        ActivityBy::Team => "COALESCE(u.team, '')",
        ActivityBy::Volunteer => "v.volunteer",
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
    let counts: Vec<Counts> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(area)
        .bind(team)
        .bind(from)
        .bind(to)
        .fetch_all(&state.db.pool)
        .await?;
    let teams: BTreeMap<String, Option<String>> =
        sqlx::query_as::<_, (String, Option<String>)>("SELECT username, team FROM users")
            .fetch_all(&state.db.pool)
            .await?
            .into_iter()
            .collect();
    let mut rows: BTreeMap<String, ActivityRow> = BTreeMap::new();
    if list_idle {
        let idle: Vec<(String,)> = match by {
            ActivityBy::Team => sqlx::query_as("SELECT name FROM teams WHERE ($1 = '' OR name = $1)"),
            ActivityBy::Volunteer => sqlx::query_as(
                "SELECT username FROM users WHERE role IN ('volunteer', 'lead') AND team IS NOT NULL \
                 AND disabled_at IS NULL AND ($1 = '' OR team = $1)",
            ),
        }
        .bind(team)
        .fetch_all(&state.db.pool)
        .await?;
        for (k,) in idle {
            rows.insert(k.clone(), ActivityRow { key: k, ..Default::default() });
        }
    }
    for (k, visits, places, completed, nobody_home, refused, gone, first, last) in counts {
        rows.insert(
            k.clone(),
            ActivityRow {
                key: k,
                team: None,
                visits: visits as u64,
                places: places as u64,
                completed: completed as u64,
                nobody_home: nobody_home as u64,
                refused: refused as u64,
                gone: gone as u64,
                first_at: first.map(|ms| time_text(ms, offset)),
                last_at: last.map(|ms| time_text(ms, offset)),
            },
        );
    }
    Ok(rows
        .into_values()
        .map(|mut r| {
            if by == ActivityBy::Volunteer {
                r.team = teams.get(&r.key).cloned().flatten();
            }
            r
        })
        .collect())
}
