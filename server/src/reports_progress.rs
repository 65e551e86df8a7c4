//! Progress over time: per indicator and day, coverage as it stood at the end of that day (same definition as
//! the monthly report's month end: reached before then, excluded if the last visit before then found the
//! place gone).
//!
//! Places that were never found gone are counted in SQL, bucketed by the day their indicator was first
//! reached. The few places with a "gone" visit are replayed here, day by day, from their visits.

use crate::error::ApiError;
use crate::report_time::{day_start_ms, offset_text, DAY_MS};
use crate::reports::AREA_FILTER;
use crate::AppState;
use chrono::{FixedOffset, NaiveDate};
use client_core::coverage::{Figure, INDICATORS};
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

/// Counts per indicator for `days` (consecutive), within the area and team filter.
pub async fn progress(
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
    let mut figures: HashMap<String, (Vec<u64>, Vec<u64>)> = HashMap::new();
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
    Ok(Progress {
        area: (!area.is_empty()).then(|| area.to_string()),
        from: first.to_string(),
        to: days[n - 1].to_string(),
        utc_offset: offset_text(offset),
        series,
    })
}

/// Adds the places that have a "gone" visit, deciding their exclusion at each day's end from their visits.
async fn replay_gone_places(
    state: &AppState,
    days: &[NaiveDate],
    offset: FixedOffset,
    area: &str,
    team: &str,
    figures: &mut HashMap<String, (Vec<u64>, Vec<u64>)>,
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
