//! Gap lists: the places of a grid still missing an indicator, and those whose last visit found nobody home
//! or was refused (to revisit). Contact details are never read here.

use crate::error::ApiError;
use crate::report_time::time_text;
use crate::AppState;
use chrono::FixedOffset;
use client_core::coverage::INDICATORS;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapRow {
    pub place_id: String,
    pub kind: String,
    pub label: String,
    pub address: Option<String>,
    /// Eligible indicators already reached, in report order.
    pub reached: Vec<String>,
    /// Eligible indicators not yet reached.
    pub missing: Vec<String>,
    /// The last visit found the place gone: it is outside the denominator.
    pub excluded: bool,
    /// Something is missing and the last visit found nobody home or was refused.
    pub needs_revisit: bool,
    pub last_visit_at: Option<String>,
    pub last_outcome: Option<String>,
}

pub struct GapQuery<'a> {
    pub grid: &'a str,
    /// Only places missing this indicator.
    pub indicator: Option<&'a str>,
    /// Only places needing a revisit.
    pub revisit_only: bool,
    /// Every place of the grid, done or not (for the dashboard's place list).
    pub all: bool,
}

type Row = (String, String, String, Option<String>, Option<i64>, Option<String>, i64, String, Option<i64>);

pub async fn gaps(state: &AppState, q: GapQuery<'_>, offset: FixedOffset) -> Result<Vec<GapRow>, ApiError> {
    if let Some(ind) = q.indicator {
        if !INDICATORS.iter().any(|i| i.id == ind) {
            let ids: Vec<&str> = INDICATORS.iter().map(|i| i.id).collect();
            return Err(ApiError::bad_request(format!(
                "unknown indicator {ind:?}; expected one of {}",
                ids.join(", ")
            )));
        }
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT p.place_id, p.kind, p.label, p.address, p.last_visit_at, p.last_outcome, p.excluded, \
           pi.indicator, pi.reached_at \
         FROM places p JOIN place_indicators pi ON pi.place_id = p.place_id \
         WHERE p.grid_code = $1 ORDER BY p.place_id",
    )
    .bind(q.grid)
    .fetch_all(&state.db.pool)
    .await?;
    let order = |id: &str| INDICATORS.iter().position(|i| i.id == id).unwrap_or(usize::MAX);
    let mut places: BTreeMap<String, GapRow> = BTreeMap::new();
    for (id, kind, label, address, last_at, last_outcome, excluded, indicator, reached_at) in rows {
        let row = places.entry(id.clone()).or_insert_with(|| GapRow {
            place_id: id,
            kind,
            label,
            address,
            reached: vec![],
            missing: vec![],
            excluded: excluded != 0,
            needs_revisit: false,
            last_visit_at: last_at.map(|ms| time_text(ms, offset)),
            last_outcome,
        });
        if reached_at.is_some() {
            row.reached.push(indicator);
        } else {
            row.missing.push(indicator);
        }
    }
    Ok(places
        .into_values()
        .map(|mut r| {
            r.reached.sort_by_key(|i| order(i));
            r.missing.sort_by_key(|i| order(i));
            // Same rule as client_core::coverage::place_coverage.
            r.needs_revisit = !r.excluded
                && !r.missing.is_empty()
                && matches!(r.last_outcome.as_deref(), Some("nobody-home") | Some("refused"));
            r
        })
        .filter(|r| {
            q.all
                || (!r.excluded
                    && !r.missing.is_empty()
                    && q.indicator.is_none_or(|i| r.missing.iter().any(|m| m == i))
                    && (!q.revisit_only || r.needs_revisit))
        })
        .collect())
}
