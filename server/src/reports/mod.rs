//! Coverage reports computed in SQL from the projected tables: per town, village, grid, team or volunteer,
//! for the whole territory or one area's subtree.

pub mod activity;
pub mod csv_safe;
pub mod gaps;
pub mod monthly;
pub mod progress;
pub mod time;

use crate::http::error::ApiError;
use crate::AppState;
use client_core::grid::coverage::{Figure, INDICATORS};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Town,
    #[default]
    Village,
    Grid,
    Team,
    Volunteer,
}

/// One line of a coverage report: the public JSON shape of `doorstep report coverage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageRow {
    pub area: String,
    pub name: String,
    pub indicator: String,
    pub eligible: u64,
    pub reached: u64,
    pub excluded: u64,
    pub rate: f64,
}

type Counts = (String, String, i64, i64, i64);

/// The place filter: an optional area's subtree ($1) and an optional team's grids ($2).
pub(crate) const AREA_FILTER: &str = "($1 = '' OR p.grid_code = $1 OR p.village_code = $1 OR p.town_code = $1) \
    AND ($2 = '' OR p.grid_code IN (SELECT grid_code FROM assignments WHERE team = $2))";

/// Coverage grouped by `by`, limited to `area`'s subtree and, for a lead, to `team`'s grids.
pub async fn coverage(
    state: &AppState,
    by: GroupBy,
    area: Option<&str>,
    team: Option<&str>,
) -> Result<Vec<CoverageRow>, ApiError> {
    let area = area.unwrap_or("");
    let team = team.unwrap_or("");
    let area_kind = if area.is_empty() {
        None
    } else {
        let kind: Option<(String,)> =
            sqlx::query_as("SELECT kind FROM areas WHERE code = $1").bind(area).fetch_optional(&state.db.pool).await?;
        Some(kind.ok_or_else(|| ApiError::not_found(format!("no area with code {area:?}")))?.0)
    };
    // Area levels read the counts the projection keeps, when the filter is an area at or above the grouping.
    let level = match by {
        GroupBy::Town => Some(("town", ["town"].as_slice())),
        GroupBy::Village => Some(("village", ["town", "village", "community"].as_slice())),
        GroupBy::Grid => Some(("grid", ["town", "village", "community", "grid"].as_slice())),
        GroupBy::Team | GroupBy::Volunteer => None,
    };
    if let Some((level, filters)) = level {
        if team.is_empty() && area_kind.as_deref().is_none_or(|k| filters.contains(&k)) {
            return counted(state, level, area).await;
        }
    }
    scanned(state, by, area, team).await
}

/// Coverage from the per-area counts (a few rows, whatever the number of places).
async fn counted(state: &AppState, level: &str, area: &str) -> Result<Vec<CoverageRow>, ApiError> {
    let counts: Vec<Counts> = sqlx::query_as(
        "SELECT area_code, indicator, eligible, reached, excluded FROM area_coverage \
         WHERE level = $1 AND eligible + excluded > 0 \
         AND ($2 = '' OR area_code = $2 OR village_code = $2 OR town_code = $2)",
    )
    .bind(level)
    .bind(area)
    .fetch_all(&state.db.pool)
    .await?;
    let names = area_names(state).await?;
    let rows = counts
        .into_iter()
        .map(|c| {
            let name = names.get(&c.0).cloned().unwrap_or_default();
            (c.0, name, c.1, c.2 as u64, c.3 as u64, c.4 as u64)
        })
        .collect();
    Ok(sorted_rows(rows))
}

/// Coverage computed from the projected places and indicators (any grouping and filter).
pub async fn scanned(state: &AppState, by: GroupBy, area: &str, team: &str) -> Result<Vec<CoverageRow>, ApiError> {
    let group_col = match by {
        GroupBy::Town => "p.town_code",
        GroupBy::Village => "p.village_code",
        GroupBy::Grid => "p.grid_code",
        GroupBy::Team | GroupBy::Volunteer => "a.team",
    };
    let join = if matches!(by, GroupBy::Team | GroupBy::Volunteer) {
        "JOIN assignments a ON a.grid_code = p.grid_code"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {group_col}, pi.indicator, \
           CAST(SUM(CASE WHEN p.excluded = 0 THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(SUM(CASE WHEN p.excluded = 0 AND pi.reached_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(SUM(p.excluded) AS BIGINT) \
         FROM place_indicators pi JOIN places p ON p.place_id = pi.place_id {join} \
         WHERE {AREA_FILTER} GROUP BY {group_col}, pi.indicator"
    );
    let counts: Vec<Counts> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(area).bind(team).fetch_all(&state.db.pool).await?;
    let rows = match by {
        GroupBy::Volunteer => volunteer_rows(state, area, team, counts).await?,
        GroupBy::Team => {
            counts.into_iter().map(|c| (c.0.clone(), c.0, c.1, c.2 as u64, c.3 as u64, c.4 as u64)).collect()
        }
        _ => {
            let names = area_names(state).await?;
            counts
                .into_iter()
                .map(|c| {
                    let name = names.get(&c.0).cloned().unwrap_or_default();
                    (c.0, name, c.1, c.2 as u64, c.3 as u64, c.4 as u64)
                })
                .collect()
        }
    };
    Ok(sorted_rows(rows))
}

/// Per volunteer: the team's denominator, and the places this volunteer's own visits reached.
async fn volunteer_rows(
    state: &AppState,
    area: &str,
    team: &str,
    team_counts: Vec<Counts>,
) -> Result<Vec<(String, String, String, u64, u64, u64)>, ApiError> {
    let team_figures: HashMap<(String, String), (u64, u64)> =
        team_counts.into_iter().map(|c| ((c.0, c.1), (c.2 as u64, c.4 as u64))).collect();
    let sql = format!(
        "SELECT vi.volunteer, vi.indicator, CAST(COUNT(DISTINCT vi.place_id) AS BIGINT) \
         FROM visit_indicators vi JOIN places p ON p.place_id = vi.place_id \
         JOIN assignments a ON a.grid_code = p.grid_code \
         JOIN users u ON u.username = vi.volunteer AND u.team = a.team \
         WHERE p.excluded = 0 AND {AREA_FILTER} GROUP BY vi.volunteer, vi.indicator"
    );
    let reached: HashMap<(String, String), i64> = sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(sql))
        .bind(area)
        .bind(team)
        .fetch_all(&state.db.pool)
        .await?
        .into_iter()
        .map(|(u, i, n)| ((u, i), n))
        .collect();
    let members: Vec<(String, String)> = sqlx::query_as(
        "SELECT username, team FROM users WHERE team IS NOT NULL AND role IN ('volunteer', 'lead') AND disabled_at IS NULL",
    )
    .fetch_all(&state.db.pool)
    .await?;
    // Within an area, only the volunteers whose visits are in it: a report on one village (all a viewer scoped
    // to it may read) names nobody who works elsewhere. Without an area, every member of a team with grids,
    // visits or not, so that the office and a lead see who has not started.
    let worked_in_area: Option<HashSet<String>> = if area.is_empty() {
        None
    } else {
        let sql = format!(
            "SELECT DISTINCT v.volunteer FROM visits v JOIN places p ON p.place_id = v.place_id WHERE {AREA_FILTER}"
        );
        let names: Vec<(String,)> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(area).bind(team).fetch_all(&state.db.pool).await?;
        Some(names.into_iter().map(|(n,)| n).collect())
    };
    let mut rows = Vec::new();
    for (user, team) in members {
        if worked_in_area.as_ref().is_some_and(|names| !names.contains(&user)) {
            continue;
        }
        for ind in INDICATORS {
            if let Some((eligible, excluded)) = team_figures.get(&(team.clone(), ind.id.to_string())) {
                let r = reached.get(&(user.clone(), ind.id.to_string())).copied().unwrap_or(0) as u64;
                rows.push((user.clone(), user.clone(), ind.id.to_string(), *eligible, r, *excluded));
            }
        }
    }
    Ok(rows)
}

async fn area_names(state: &AppState) -> Result<HashMap<String, String>, ApiError> {
    Ok(sqlx::query_as::<_, (String, String)>("SELECT code, name FROM areas")
        .fetch_all(&state.db.pool)
        .await?
        .into_iter()
        .collect())
}

fn sorted_rows(rows: Vec<(String, String, String, u64, u64, u64)>) -> Vec<CoverageRow> {
    let order: HashMap<&str, usize> = INDICATORS.iter().enumerate().map(|(i, ind)| (ind.id, i)).collect();
    let mut keyed: BTreeMap<(String, usize), CoverageRow> = BTreeMap::new();
    for (area, name, indicator, eligible, reached, excluded) in rows {
        let Some(&pos) = order.get(indicator.as_str()) else {
            continue;
        };
        let fig = Figure { indicator: INDICATORS[pos].id, eligible, reached, excluded };
        keyed.insert(
            (area.clone(), pos),
            CoverageRow { area, name, indicator, eligible, reached, excluded, rate: fig.rate() },
        );
    }
    keyed.into_values().collect()
}

/// The kind of an area (town, village, grid), if there is an area with this code.
pub async fn area_kind(db: &crate::store::db::Db, code: &str) -> Result<Option<String>, sqlx::Error> {
    let kind: Option<(String,)> =
        sqlx::query_as("SELECT kind FROM areas WHERE code = $1").bind(code).fetch_optional(&db.pool).await?;
    Ok(kind.map(|k| k.0))
}

/// The team a grid is assigned to, if any.
pub async fn grid_team(db: &crate::store::db::Db, grid: &str) -> Result<Option<String>, sqlx::Error> {
    let team: Option<(String,)> =
        sqlx::query_as("SELECT team FROM assignments WHERE grid_code = $1").bind(grid).fetch_optional(&db.pool).await?;
    Ok(team.map(|t| t.0))
}
