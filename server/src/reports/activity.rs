//! Activity: visits per team or volunteer in a period, with their outcomes, so a lead sees who is walking.

use crate::refusal::Refusal;
use crate::reports::time::time_text;
use crate::store::activity::{self as stored, ActivityKey};
use crate::store::people;
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

/// Visits in `[from, to)` on places within the area and team filter, grouped by the volunteer's team (as it is
/// now) or by volunteer. `list_idle`: also list the teams or team members with no visits (within `team`).
pub async fn activity(
    state: &AppState,
    by: ActivityBy,
    (from, to): (i64, i64),
    offset: FixedOffset,
    (area, team): (&str, &str),
    list_idle: bool,
) -> Result<Vec<ActivityRow>, Refusal> {
    let key = match by {
        ActivityBy::Team => ActivityKey::Team,
        ActivityBy::Volunteer => ActivityKey::Volunteer,
    };
    let counts = stored::visit_counts(&state.db, key, (from, to), area, team).await?;
    let teams: BTreeMap<String, Option<String>> = people::teams_by_username(&state.db).await?.into_iter().collect();
    let mut rows: BTreeMap<String, ActivityRow> = BTreeMap::new();
    if list_idle {
        for k in stored::possible_keys(&state.db, key, team).await? {
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
