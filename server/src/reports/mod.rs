//! Coverage reports computed in SQL from the projected tables: per town, village, grid, team or volunteer,
//! for the whole territory or one area's subtree.

pub mod activity;
pub mod csv_safe;
pub mod gaps;
pub mod monthly;
pub mod progress;
pub mod sheet;
pub mod time;

use crate::refusal::Refusal;
use crate::store::coverage::{self as stored, Counts, Grouping};
use crate::store::{areas, people, StoreResult};
use crate::AppState;
use client_core::campaign::Campaign;
use client_core::grid::coverage::Figure;
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

/// Coverage grouped by `by`, limited to `area`'s subtree and, for a lead, to `team`'s grids.
pub async fn coverage(
    state: &AppState,
    by: GroupBy,
    area: Option<&str>,
    team: Option<&str>,
) -> Result<Vec<CoverageRow>, Refusal> {
    let area = area.unwrap_or("");
    let team = team.unwrap_or("");
    let area_kind = if area.is_empty() {
        None
    } else {
        let kind = areas::kind_of(&state.db, area).await?;
        Some(kind.ok_or_else(|| Refusal::not_found(format!("no area with code {area:?}")))?)
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
async fn counted(state: &AppState, level: &str, area: &str) -> Result<Vec<CoverageRow>, Refusal> {
    let counts = stored::area_counts(&state.db, level, area).await?;
    let names = area_names(state).await?;
    let rows = counts
        .into_iter()
        .map(|c| {
            let name = names.get(&c.0).cloned().unwrap_or_default();
            (c.0, name, c.1, c.2 as u64, c.3 as u64, c.4 as u64)
        })
        .collect();
    Ok(sorted_rows(&state.campaigns.current().campaign, rows))
}

/// Coverage computed from the projected places and indicators (any grouping and filter).
pub async fn scanned(state: &AppState, by: GroupBy, area: &str, team: &str) -> Result<Vec<CoverageRow>, Refusal> {
    let grouping = match by {
        GroupBy::Town => Grouping::Town,
        GroupBy::Village => Grouping::Village,
        GroupBy::Grid => Grouping::Grid,
        GroupBy::Team | GroupBy::Volunteer => Grouping::Team,
    };
    let counts = stored::scanned_counts(&state.db, grouping, area, team).await?;
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
    Ok(sorted_rows(&state.campaigns.current().campaign, rows))
}

/// Per volunteer: the team's denominator, and the places this volunteer's own visits reached.
async fn volunteer_rows(
    state: &AppState,
    area: &str,
    team: &str,
    team_counts: Vec<Counts>,
) -> Result<Vec<(String, String, String, u64, u64, u64)>, Refusal> {
    let team_figures: HashMap<(String, String), (u64, u64)> =
        team_counts.into_iter().map(|c| ((c.0, c.1), (c.2 as u64, c.4 as u64))).collect();
    let reached: HashMap<(String, String), i64> =
        stored::reached_by_volunteer(&state.db, area, team).await?.into_iter().map(|(u, i, n)| ((u, i), n)).collect();
    let members = people::active_team_members(&state.db).await?;
    // Within an area, only the volunteers whose visits are in it: a report on one village (all a viewer scoped
    // to it may read) names nobody who works elsewhere. Without an area, every member of a team with grids,
    // visits or not, so that the office and a lead see who has not started.
    let worked_in_area: Option<HashSet<String>> = if area.is_empty() {
        None
    } else {
        Some(stored::volunteers_who_visited(&state.db, area, team).await?.into_iter().collect())
    };
    let mut rows = Vec::new();
    for (user, team) in members {
        if worked_in_area.as_ref().is_some_and(|names| !names.contains(&user)) {
            continue;
        }
        for ind in &state.campaigns.current().campaign.indicators {
            if let Some((eligible, excluded)) = team_figures.get(&(team.clone(), ind.id.to_string())) {
                let r = reached.get(&(user.clone(), ind.id.to_string())).copied().unwrap_or(0) as u64;
                rows.push((user.clone(), user.clone(), ind.id.to_string(), *eligible, r, *excluded));
            }
        }
    }
    Ok(rows)
}

async fn area_names(state: &AppState) -> Result<HashMap<String, String>, Refusal> {
    Ok(areas::names(&state.db).await?.into_iter().collect())
}

/// The rows of the campaign's indicators, in its report order by area.
fn sorted_rows(campaign: &Campaign, rows: Vec<(String, String, String, u64, u64, u64)>) -> Vec<CoverageRow> {
    let order: HashMap<&str, usize> =
        campaign.indicators.iter().enumerate().map(|(i, ind)| (ind.id.as_str(), i)).collect();
    let mut keyed: BTreeMap<(String, usize), CoverageRow> = BTreeMap::new();
    for (area, name, indicator, eligible, reached, excluded) in rows {
        let Some(&pos) = order.get(indicator.as_str()) else {
            continue;
        };
        let fig = Figure { indicator: indicator.clone(), eligible, reached, excluded };
        keyed.insert(
            (area.clone(), pos),
            CoverageRow { area, name, indicator, eligible, reached, excluded, rate: fig.rate() },
        );
    }
    keyed.into_values().collect()
}

/// The kind of an area (town, village, grid), if there is an area with this code.
pub async fn area_kind(db: &crate::store::db::Db, code: &str) -> StoreResult<Option<String>> {
    areas::kind_of(db, code).await
}

/// The team a grid is assigned to, if any.
pub async fn grid_team(db: &crate::store::db::Db, grid: &str) -> StoreResult<Option<String>> {
    areas::team_of_grid(db, grid).await
}
