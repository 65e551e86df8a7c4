//! Progress over time: per indicator and day, coverage as it stood at the end of that day (same definition as
//! the monthly report's month end: reached before then, excluded if the last visit before then found the
//! place gone).
//!
//! [`progress`] reads the per-area changes the projection keeps (`area_progress`, see
//! [`crate::store::area_progress`]): a few rows per day, whatever the number of places. [`scanned`] computes the same
//! series from the places, indicators and visits; it is the reference the counts are checked against, and
//! answers the rare requests the counts cannot (offsets that are not whole quarter hours, areas above towns).

use crate::http::error::ApiError;
use crate::reports::time::{day_start_ms, offset_text, DAY_MS};
use crate::reports::AREA_FILTER;
use crate::store::area_progress::{BUCKET_MS, FROM_THE_START};
use crate::AppState;
use chrono::{FixedOffset, NaiveDate};
use client_core::grid::coverage::{Figure, INDICATORS};
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

const EVER_GONE: &str = "EXISTS (SELECT 1 FROM visits g WHERE g.place_id = p.place_id AND g.outcome = 'gone')";

/// Per indicator: eligible and reached at the end of each day of the series.
type Figures = HashMap<String, (Vec<u64>, Vec<u64>)>;

/// Counts per indicator for `days` (consecutive), within the area and team filter.
pub async fn progress(
    state: &AppState,
    days: &[NaiveDate],
    offset: FixedOffset,
    area: &str,
    team: &str,
) -> Result<Progress, ApiError> {
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
) -> Result<Option<Progress>, ApiError> {
    let first = *days.first().ok_or_else(|| ApiError::bad_request("an empty date range"))?;
    if i64::from(offset.local_minus_utc()) * 1000 % BUCKET_MS != 0 {
        return Ok(None);
    }
    let area_kind = if area.is_empty() {
        None
    } else {
        let kind: Option<(String,)> =
            sqlx::query_as("SELECT kind FROM areas WHERE code = $1").bind(area).fetch_optional(&state.db.pool).await?;
        Some(kind.map(|k| k.0).unwrap_or_default())
    };
    // Whose rows to add up: every town's, one area's, or (for a team) the team's grids within the area.
    let (level, rows_of) = match (team.is_empty(), area_kind.as_deref()) {
        (true, None) => ("town", "TRUE".to_string()),
        (true, Some("town")) => ("town", "area_code = $4".to_string()),
        (true, Some("village" | "community")) => ("village", "area_code = $4".to_string()),
        (true, Some("grid")) => ("grid", "area_code = $4".to_string()),
        (true, Some(_)) => return Ok(None),
        (false, _) => ("grid", format!("area_code IN (SELECT area_code FROM area_coverage WHERE {TEAM_GRIDS})")),
    };
    let n = days.len();
    let start = day_start_ms(first, offset);
    let end = day_start_ms(days[n - 1], offset) + DAY_MS;
    // Day -2: the eligible places themselves; -1: changes before the first day; k: changes during day k.
    let sql = format!(
        "SELECT indicator, CASE WHEN bucket = {FROM_THE_START} THEN -2 WHEN bucket < $1 THEN -1 \
           ELSE (bucket - $1) / $3 END AS day_index, CAST(SUM(eligible) AS BIGINT), CAST(SUM(reached) AS BIGINT) \
         FROM area_progress WHERE level = '{level}' AND {rows_of} AND bucket < $2 GROUP BY indicator, day_index"
    );
    let mut query = sqlx::query_as::<_, (String, i64, i64, i64)>(sqlx::AssertSqlSafe(sql))
        .bind(start / BUCKET_MS)
        .bind(end / BUCKET_MS)
        .bind(DAY_MS / BUCKET_MS);
    if rows_of.contains("$4") {
        query = query.bind(area);
    }
    if rows_of.contains("$5") {
        query = query.bind(team);
    }
    let changes = query.fetch_all(&state.db.pool).await?;
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
    Ok(Some(series(days, offset, area, figures)))
}

/// The grids of a team ($5) within an area ($4, or everywhere), from the per-grid coverage rows, which know
/// each grid's village and town as its places do.
const TEAM_GRIDS: &str = "level = 'grid' AND ($4 = '' OR area_code = $4 OR village_code = $4 OR town_code = $4) \
    AND area_code IN (SELECT grid_code FROM assignments WHERE team = $5)";

/// The series computed from places, indicators and visits: the reference for [`progress`].
pub async fn scanned(
    state: &AppState,
    days: &[NaiveDate],
    offset: FixedOffset,
    area: &str,
    team: &str,
) -> Result<Progress, ApiError> {
    let first = *days.first().ok_or_else(|| ApiError::bad_request("an empty date range"))?;
    let start = day_start_ms(first, offset);
    // Bucket -2: never reached; -1: before the first day; k: during day k.
    let sql = format!(
        "SELECT pi.indicator, CASE WHEN pi.reached_at IS NULL THEN -2 WHEN pi.reached_at < $3 THEN -1 \
           ELSE (pi.reached_at - $3) / {DAY_MS} END AS bucket, CAST(COUNT(*) AS BIGINT) \
         FROM place_indicators pi JOIN places p ON p.place_id = pi.place_id \
         WHERE {AREA_FILTER} AND NOT {EVER_GONE} GROUP BY pi.indicator, bucket"
    );
    let buckets: Vec<(String, i64, i64)> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(area).bind(team).bind(start).fetch_all(&state.db.pool).await?;
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
    Ok(series(days, offset, area, figures))
}

fn series(days: &[NaiveDate], offset: FixedOffset, area: &str, figures: Figures) -> Progress {
    let n = days.len();
    let series = INDICATORS
        .iter()
        .filter_map(|ind| {
            let (eligible, reached) = figures.get(ind.id)?;
            let points = days
                .iter()
                .enumerate()
                .map(|(k, d)| {
                    let f = Figure { indicator: ind.id, eligible: eligible[k], reached: reached[k], excluded: 0 };
                    ProgressPoint { date: d.to_string(), eligible: eligible[k], reached: reached[k], rate: f.rate() }
                })
                .collect();
            Some(ProgressSeries { indicator: ind.id.to_string(), points })
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
) -> Result<(), ApiError> {
    let n = days.len();
    let indicators: Vec<(String, String, Option<i64>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT p.place_id, pi.indicator, pi.reached_at FROM place_indicators pi \
         JOIN places p ON p.place_id = pi.place_id WHERE {AREA_FILTER} AND {EVER_GONE}"
    )))
    .bind(area)
    .bind(team)
    .fetch_all(&state.db.pool)
    .await?;
    if indicators.is_empty() {
        return Ok(());
    }
    let visits: Vec<(String, i64, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT v.place_id, v.at, v.visit_id, v.outcome FROM visits v JOIN places p ON p.place_id = v.place_id \
         WHERE {AREA_FILTER} AND {EVER_GONE} ORDER BY v.place_id, v.at, v.visit_id"
    )))
    .bind(area)
    .bind(team)
    .fetch_all(&state.db.pool)
    .await?;
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
