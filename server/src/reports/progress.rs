//! Progress over time: per indicator and day, coverage as it stood at the end of that day (same definition as
//! the monthly report's month end: reached before then, excluded if the last visit before then found the
//! place gone).
//!
//! [`progress`] reads the per-area changes the projection keeps (`area_progress`, see
//! [`crate::store::area_progress`]): a few rows per day, whatever the number of places. [`scanned`] computes the same
//! series from the places, indicators and visits; it is the reference the counts are checked against, and
//! answers the rare requests the counts cannot (offsets that are not whole quarter hours, areas above towns).

use crate::refusal::Refusal;
use crate::reports::time::{day_start_ms, offset_text, DAY_MS};
use crate::store::area_progress::BUCKET_MS;
use crate::store::areas;
use crate::store::coverage::{self as stored, ProgressRows};
use crate::AppState;
use chrono::{FixedOffset, NaiveDate};
use client_core::campaign::Campaign;
use client_core::grid::coverage::Figure;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressPoint {
    pub date: String,
    pub eligible: u64,
    pub reached: u64,
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressSeries {
    pub indicator: String,
    pub points: Vec<ProgressPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub area: Option<String>,
    pub from: String,
    pub to: String,
    pub utc_offset: String,
    pub series: Vec<ProgressSeries>,
}

/// Per indicator: eligible and reached at the end of each day of the series.
type Figures = HashMap<String, (Vec<u64>, Vec<u64>)>;

/// Counts per indicator for `days` (consecutive), within the area and team filter.
pub async fn progress(
    state: &AppState,
    days: &[NaiveDate],
    offset: FixedOffset,
    area: &str,
    team: &str,
) -> Result<Progress, Refusal> {
    match counted(state, days, offset, area, team).await? {
        Some(progress) => Ok(progress),
        None => scanned(state, days, offset, area, team).await,
    }
}

/// The series from the per-area changes, or `None` when they cannot answer: day ends that are not on a quarter
/// hour, or an area above towns.
pub async fn counted(
    state: &AppState,
    days: &[NaiveDate],
    offset: FixedOffset,
    area: &str,
    team: &str,
) -> Result<Option<Progress>, Refusal> {
    let first = *days.first().ok_or_else(|| Refusal::invalid("an empty date range"))?;
    if i64::from(offset.local_minus_utc()) * 1000 % BUCKET_MS != 0 {
        return Ok(None);
    }
    let area_kind =
        if area.is_empty() { None } else { Some(areas::kind_of(&state.db, area).await?.unwrap_or_default()) };
    // Whose rows to add up: every town's, one area's, or (for a team) the team's grids within the area.
    let (level, rows) = match (team.is_empty(), area_kind.as_deref()) {
        (true, None) => ("town", ProgressRows::All),
        (true, Some("town")) => ("town", ProgressRows::Area),
        (true, Some("village" | "community")) => ("village", ProgressRows::Area),
        (true, Some("grid")) => ("grid", ProgressRows::Area),
        (true, Some(_)) => return Ok(None),
        (false, _) => ("grid", ProgressRows::TeamGrids),
    };
    let n = days.len();
    let start = day_start_ms(first, offset);
    let end = day_start_ms(days[n - 1], offset) + DAY_MS;
    // Day -2: the eligible places themselves; -1: changes before the first day; k: changes during day k.
    let buckets = (start / BUCKET_MS, end / BUCKET_MS);
    let changes = stored::progress_changes(&state.db, level, rows, buckets, DAY_MS / BUCKET_MS, area, team).await?;
    // Indicators none of whose places is in scope (a grid that moved away leaves rows adding up to zero) are
    // left out, as the scan leaves them out.
    let present: Vec<&str> = changes.iter().filter(|c| c.1 == -2 && c.2 > 0).map(|c| c.0.as_str()).collect();
    let mut sums: HashMap<&str, (Vec<i64>, Vec<i64>)> = HashMap::new();
    for (indicator, day, eligible, reached) in &changes {
        if !present.contains(&indicator.as_str()) {
            continue;
        }
        let (e, r) = sums.entry(indicator.as_str()).or_insert_with(|| (vec![0; n], vec![0; n]));
        let from = usize::try_from(*day).unwrap_or(0);
        if from < n {
            e[from] += eligible;
            r[from] += reached;
        }
    }
    let mut figures: Figures = HashMap::new();
    for (indicator, (e, r)) in sums {
        let cumulative = |changes: Vec<i64>| {
            changes
                .iter()
                .scan(0, |sum, c| {
                    *sum += c;
                    Some(u64::try_from(*sum).unwrap_or(0))
                })
                .collect()
        };
        figures.insert(indicator.to_string(), (cumulative(e), cumulative(r)));
    }
    Ok(Some(series(&state.campaigns.current().campaign, days, offset, area, figures)))
}

/// The series computed from places, indicators and visits: the reference for [`progress`].
pub async fn scanned(
    state: &AppState,
    days: &[NaiveDate],
    offset: FixedOffset,
    area: &str,
    team: &str,
) -> Result<Progress, Refusal> {
    let first = *days.first().ok_or_else(|| Refusal::invalid("an empty date range"))?;
    let start = day_start_ms(first, offset);
    // Bucket -2: never reached; -1: before the first day; k: during day k.
    let buckets = stored::reached_by_day_never_gone(&state.db, start, DAY_MS, area, team).await?;
    let n = days.len();
    // Per indicator: eligible total, and reached per day (cumulative after the loop).
    let mut figures: Figures = HashMap::new();
    for (ind, bucket, count) in buckets {
        let (eligible, reached) = figures.entry(ind).or_insert_with(|| (vec![0; n], vec![0; n]));
        for e in eligible.iter_mut() {
            *e += count as u64;
        }
        if bucket == -1 {
            reached[0] += count as u64;
        } else if bucket >= 0 && (bucket as usize) < n {
            reached[bucket as usize] += count as u64;
        }
    }
    for (_, reached) in figures.values_mut() {
        for k in 1..n {
            reached[k] += reached[k - 1];
        }
    }
    replay_gone_places(state, days, offset, area, team, &mut figures).await?;
    Ok(series(&state.campaigns.current().campaign, days, offset, area, figures))
}

fn series(campaign: &Campaign, days: &[NaiveDate], offset: FixedOffset, area: &str, figures: Figures) -> Progress {
    let n = days.len();
    let series = campaign
        .indicators
        .iter()
        .filter_map(|ind| {
            let (eligible, reached) = figures.get(&ind.id)?;
            let points = days
                .iter()
                .enumerate()
                .map(|(k, d)| {
                    let f =
                        Figure { indicator: ind.id.clone(), eligible: eligible[k], reached: reached[k], excluded: 0 };
                    ProgressPoint { date: d.to_string(), eligible: eligible[k], reached: reached[k], rate: f.rate() }
                })
                .collect();
            Some(ProgressSeries { indicator: ind.id.clone(), points })
        })
        .collect();
    Progress {
        area: (!area.is_empty()).then(|| area.to_string()),
        from: days[0].to_string(),
        to: days[n - 1].to_string(),
        utc_offset: offset_text(offset),
        series,
    }
}

/// Adds the places that have a "gone" visit, deciding their exclusion at each day's end from their visits.
async fn replay_gone_places(
    state: &AppState,
    days: &[NaiveDate],
    offset: FixedOffset,
    area: &str,
    team: &str,
    figures: &mut Figures,
) -> Result<(), Refusal> {
    let n = days.len();
    let indicators = stored::indicators_of_gone_places(&state.db, area, team).await?;
    if indicators.is_empty() {
        return Ok(());
    }
    let visits = stored::visits_of_gone_places(&state.db, area, team).await?;
    let mut by_place: HashMap<&str, Vec<(i64, bool)>> = HashMap::new();
    for (place, at, _, outcome) in &visits {
        // Ordered by (at, visit_id): the last one before a time is the last in the list before it.
        by_place.entry(place.as_str()).or_default().push((*at, outcome == "gone"));
    }
    let ends: Vec<i64> = days.iter().map(|d| day_start_ms(*d, offset) + DAY_MS).collect();
    for (place, indicator, reached_at) in &indicators {
        let place_visits = by_place.get(place.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        let (eligible, reached) = figures.entry(indicator.clone()).or_insert_with(|| (vec![0; n], vec![0; n]));
        for (k, end) in ends.iter().enumerate() {
            let gone = place_visits.iter().take_while(|(at, _)| at < end).last().is_some_and(|(_, g)| *g);
            if !gone {
                eligible[k] += 1;
                reached[k] += u64::from(reached_at.is_some_and(|r| r < *end));
            }
        }
    }
    Ok(())
}
