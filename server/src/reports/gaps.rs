//! Gap lists: the places still missing an indicator, and those whose last visit found nobody home or was
//! refused (to revisit), for a grid, an area or the whole territory. Contact details are never read here.
//!
//! A list is streamed: one query reads the places in id order, a task turns them into JSON or CSV in chunks of
//! about [`CHUNK_BYTES`] and hands each to the HTTP response through a small channel, so a list of a million
//! places takes the memory of a few chunks. A failure midway ends the response without its closing chunk,
//! which clients see as an incomplete body rather than a short list.

use crate::refusal::Refusal;
use crate::reports::csv_safe;
use crate::reports::time::time_text;
use crate::store::coverage;
use crate::AppState;
use axum::body::Bytes;
use chrono::FixedOffset;
use client_core::campaign::Campaign;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapRow {
    pub place_id: String,
    pub grid: String,
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

impl GapRow {
    /// The row's cells as the CSV columns (`CSV_HEADER`) hold them, before the CSV writer neutralises formulas.
    pub fn cells(&self) -> [Cow<'_, str>; 11] {
        let flag = |b: bool| Cow::Borrowed(if b { "true" } else { "false" });
        [
            Cow::Borrowed(self.place_id.as_str()),
            Cow::Borrowed(self.grid.as_str()),
            Cow::Borrowed(self.kind.as_str()),
            Cow::Borrowed(self.label.as_str()),
            Cow::Borrowed(self.address.as_deref().unwrap_or("")),
            Cow::Owned(self.missing.join(" ")),
            Cow::Owned(self.reached.join(" ")),
            flag(self.excluded),
            flag(self.needs_revisit),
            Cow::Borrowed(self.last_visit_at.as_deref().unwrap_or("")),
            Cow::Borrowed(self.last_outcome.as_deref().unwrap_or("")),
        ]
    }
}

/// Which places a list covers.
pub use crate::store::coverage::PlaceScope as GapScope;

#[derive(Debug, Clone)]
pub struct GapQuery {
    pub scope: GapScope,
    /// Only places missing this indicator.
    pub indicator: Option<String>,
    /// Only places needing a revisit.
    pub revisit_only: bool,
    /// Every place, done or not (for the dashboard's place list and full exports).
    pub all: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GapFormat {
    #[default]
    Json,
    Csv,
}

/// The CSV columns, in order.
pub const CSV_HEADER: [&str; 11] = [
    "place",
    "grid",
    "kind",
    "label",
    "address",
    "missing",
    "reached",
    "excluded",
    "revisit",
    "last visit",
    "last outcome",
];

/// How much of a list is gathered before it is handed to the response.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Refuses an unknown indicator before anything is streamed.
pub fn check_indicator(campaign: &Campaign, indicator: Option<&str>) -> Result<(), Refusal> {
    match indicator {
        Some(ind) if campaign.indicator(ind).is_none() => {
            let ids: Vec<&str> = campaign.indicators.iter().map(|i| i.id.as_str()).collect();
            Err(Refusal::invalid(format!("unknown indicator {ind:?}; expected one of {}", ids.join(", "))))
        }
        _ => Ok(()),
    }
}

/// Starts the list; the receiver yields its chunks in order, or an error where it stopped.
pub fn stream(
    state: AppState,
    q: GapQuery,
    offset: FixedOffset,
    format: GapFormat,
) -> mpsc::Receiver<Result<Bytes, Refusal>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut out = Encoder::new(format);
        if let Err(e) = produce(&state, &q, offset, &mut out, &tx).await {
            // The receiver may be gone already (the client left); nothing else to tell then.
            let _ = tx.send(Err(e)).await;
        }
    });
    rx
}

async fn produce(
    state: &AppState,
    q: &GapQuery,
    offset: FixedOffset,
    out: &mut Encoder,
    tx: &mpsc::Sender<Result<Bytes, Refusal>>,
) -> Result<(), Refusal> {
    let campaign = state.campaigns.current().campaign.clone();
    let mut rows = coverage::place_indicators(&state.db, &q.scope);
    let mut current: Option<GapRow> = None;
    while let Some((id, grid, kind, label, address, last_at, last_outcome, excluded, indicator, reached_at)) =
        rows.try_next().await?
    {
        if current.as_ref().is_some_and(|r| r.place_id != id) {
            let done = current.take().expect("checked");
            let full = !out.push(finish(&campaign, done), q).map_err(Refusal::internal)?;
            // Waits while the client is slower than the database; stops if it left.
            if full && tx.send(Ok(out.take().map_err(Refusal::internal)?)).await.is_err() {
                return Ok(());
            }
        }
        let row = current.get_or_insert_with(|| GapRow {
            place_id: id,
            grid,
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
    if let Some(done) = current.take() {
        out.push(finish(&campaign, done), q).map_err(Refusal::internal)?;
    }
    out.end().map_err(Refusal::internal)?;
    let _ = tx.send(Ok(out.take().map_err(Refusal::internal)?)).await;
    Ok(())
}

/// Orders a place's indicators and decides whether it needs a revisit.
fn finish(campaign: &Campaign, mut r: GapRow) -> GapRow {
    let order = |id: &str| campaign.indicators.iter().position(|i| i.id == id).unwrap_or(usize::MAX);
    r.reached.sort_by_key(|i| order(i));
    r.missing.sort_by_key(|i| order(i));
    // Same rule as client_core::grid::coverage::place_coverage.
    r.needs_revisit = !r.excluded
        && !r.missing.is_empty()
        && matches!(r.last_outcome.as_deref(), Some("nobody-home") | Some("refused"));
    r
}

fn wanted(r: &GapRow, q: &GapQuery) -> bool {
    q.all
        || (!r.excluded
            && !r.missing.is_empty()
            && q.indicator.as_deref().is_none_or(|i| r.missing.iter().any(|m| m == i))
            && (!q.revisit_only || r.needs_revisit))
}

/// Writes rows as a JSON array (one object per line) or as CSV with a header.
struct Encoder {
    rows: u64,
    out: Out,
}

enum Out {
    Json(Vec<u8>),
    Csv(Box<csv_safe::Writer<Vec<u8>>>),
}

type EncodeError = Box<dyn std::error::Error + Send + Sync>;

/// Cells are neutralised: labels and addresses come from territory files and phones, and must not run as
/// formulas in a spreadsheet.
fn csv_writer() -> Box<csv_safe::Writer<Vec<u8>>> {
    Box::new(csv_safe::Writer::from_writer(Vec::with_capacity(CHUNK_BYTES + 4096)))
}

impl Encoder {
    fn new(format: GapFormat) -> Encoder {
        let out = match format {
            GapFormat::Json => Out::Json(Vec::with_capacity(CHUNK_BYTES + 4096)),
            GapFormat::Csv => Out::Csv(csv_writer()),
        };
        Encoder { rows: 0, out }
    }

    /// Adds the row if the query wants it; returns whether the chunk still has room.
    fn push(&mut self, r: GapRow, q: &GapQuery) -> Result<bool, EncodeError> {
        if !wanted(&r, q) {
            return Ok(true);
        }
        let first = self.rows == 0;
        self.rows += 1;
        match &mut self.out {
            Out::Json(buf) => {
                buf.extend_from_slice(if first { b"[\n" } else { b",\n" });
                serde_json::to_writer(&mut *buf, &r)?;
                Ok(buf.len() < CHUNK_BYTES)
            }
            Out::Csv(w) => {
                if first {
                    w.write_record(CSV_HEADER)?;
                }
                w.write_record(r.cells())?;
                w.flush()?;
                Ok(w.get_ref().len() < CHUNK_BYTES)
            }
        }
    }

    /// Closes the list (an empty one too).
    fn end(&mut self) -> Result<(), EncodeError> {
        match &mut self.out {
            Out::Json(buf) => buf.extend_from_slice(if self.rows == 0 { b"[]\n" } else { b"\n]\n" }),
            Out::Csv(w) if self.rows == 0 => {
                w.write_record(CSV_HEADER)?;
                w.flush()?;
            }
            Out::Csv(_) => {}
        }
        Ok(())
    }

    /// The bytes written since the last call.
    fn take(&mut self) -> Result<Bytes, EncodeError> {
        let bytes = match &mut self.out {
            Out::Json(buf) => std::mem::take(buf),
            Out::Csv(w) => std::mem::replace(w, csv_writer()).into_inner()?,
        };
        Ok(Bytes::from(bytes))
    }
}
