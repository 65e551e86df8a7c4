//! `doorstep report monthly|gaps|progress|activity`: the month's ranking of villages and communities (every JSON
//! row carries its `rank` and its urgent task figures), the places still to reach, daily progress and activity, as a
//! table, JSON, CSV or XLSX.

use crate::office::api;
use crate::output::{self, names, Cell, Destination, Format, Report, XLSX_MAX_ROWS};
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use field::profile::Profile;
use reqwest::Method;
use serde_json::Value;
use server::reports::monthly::MonthlyReport;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

pub struct MonthlyArgs<'a> {
    pub month: &'a str,
    pub area: Option<&'a str>,
    pub threshold: Option<f64>,
    pub utc_offset: Option<&'a str>,
    pub format: Format,
    pub output: Option<&'a Path>,
}

pub async fn monthly(profile: &Profile, a: MonthlyArgs<'_>) -> Result<()> {
    let (api, _) = api(profile).await?;
    let mut req = api.request(Method::GET, "/api/v1/reports/monthly").query(&[("month", a.month)]);
    if let Some(area) = a.area {
        req = req.query(&[("area", area)]);
    }
    if let Some(t) = a.threshold {
        req = req.query(&[("threshold", t)]);
    }
    if let Some(o) = a.utc_offset {
        req = req.query(&[("utc_offset", o)]);
    }
    let r: MonthlyReport = api.json(req).await?;
    let (header, rows) = r.table();
    let report = Report { title: r.title(), header, rows, json: serde_json::to_value(&r.rows)? };
    output::write(&report, a.format, a.output)
}

/// Sends a report request with the given query pairs (empty values left out) and returns its JSON.
async fn fetch(profile: &Profile, path: &str, params: &[(&str, Option<&str>)]) -> Result<Value> {
    let (api, _) = api(profile).await?;
    let pairs: Vec<(&str, &str)> = params.iter().filter_map(|(k, v)| v.map(|v| (*k, v))).collect();
    api.json(api.request(Method::GET, path).query(&pairs)).await
}

fn text(v: &Value) -> Cell {
    Cell::Text(match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    })
}

fn int(v: &Value) -> Cell {
    Cell::Int(v.as_u64().unwrap_or(0))
}

pub struct GapsArgs<'a> {
    pub grid: Option<&'a str>,
    pub area: Option<&'a str>,
    pub indicator: Option<&'a str>,
    pub revisit: bool,
    pub all: bool,
    pub format: Format,
    pub output: Option<&'a Path>,
}

/// `doorstep report gaps`: the places not yet reached (or needing a revisit) of a grid, an area or everything
/// the login may read. JSON, CSV and XLSX are written as the server streams the list.
pub async fn gaps(profile: &Profile, a: GapsArgs<'_>) -> Result<()> {
    let flag = |on: bool| on.then_some("true");
    let mut params = vec![
        ("grid", a.grid),
        ("area", a.area),
        ("indicator", a.indicator),
        ("revisit", flag(a.revisit)),
        ("all", flag(a.all)),
    ];
    let what = match (a.grid, a.area) {
        (Some(grid), _) => format!("grid {grid}"),
        (None, Some(area)) => format!("area {area}"),
        (None, None) => "everything you may read".to_string(),
    };
    if a.format != Format::Table {
        if a.format == Format::Xlsx && a.output.is_none() {
            bail!("--format xlsx writes a spreadsheet file: add --output FILE.xlsx");
        }
        // XLSX is made from the JSON list: its cells hold the data as it is, the CSV's are neutralised.
        params.push(("format", Some(if a.format == Format::Csv { "csv" } else { "json" })));
        return export(profile, "/api/v1/reports/gaps", &params, a.format, a.output).await;
    }
    let json = fetch(profile, "/api/v1/reports/gaps", &params).await?;
    let rows = json.as_array().cloned().unwrap_or_default();
    let report = Report {
        title: format!("Places of {what} still to reach{}", if a.revisit { " (revisits)" } else { "" }),
        header: names(&[
            "place",
            "grid",
            "kind",
            "label",
            "address",
            "missing",
            "reached",
            "revisit",
            "last visit",
            "last outcome",
        ]),
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    text(&r["place_id"]),
                    text(&r["grid"]),
                    text(&r["kind"]),
                    text(&r["label"]),
                    text(&r["address"]),
                    text(&r["missing"]),
                    text(&r["reached"]),
                    text(&r["needs_revisit"]),
                    text(&r["last_visit_at"]),
                    text(&r["last_outcome"]),
                ]
            })
            .collect(),
        json,
    };
    output::write(&report, Format::Table, a.output)
}

/// Copies a gap list the server streams (JSON or CSV) to the output as it arrives; XLSX is converted from the
/// JSON as it arrives. If the transfer breaks, the command fails and no file is left under the output's name.
async fn export(
    profile: &Profile,
    path: &str,
    params: &[(&str, Option<&str>)],
    format: Format,
    output: Option<&Path>,
) -> Result<()> {
    let (api, _) = api(profile).await?;
    let pairs: Vec<(&str, &str)> = params.iter().filter_map(|(k, v)| v.map(|v| (*k, v))).collect();
    let mut resp = api.send(api.request(Method::GET, path).query(&pairs).timeout(EXPORT_TIMEOUT)).await?;
    let broken = |e: reqwest::Error, into: &str| {
        let left =
            if into == "standard output" { "what was written above is incomplete" } else { "no file was written" };
        anyhow!("the export broke off before it was complete ({}); {left}", field::api::root_cause(&e))
    };
    if format == Format::Xlsx {
        let file = output.expect("checked by the caller").to_path_buf();
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let writer =
            tokio::task::spawn_blocking(move || output::gaps_to_xlsx(ChunkReader::new(rx), &file, XLSX_MAX_ROWS));
        loop {
            let chunk = resp.chunk().await.map_err(|e| broken(e, "").to_string());
            let last = !matches!(chunk, Ok(Some(_)));
            // The writer stops reading when it refuses the file; its error is the one to report.
            if tx.send(chunk).await.is_err() || last {
                break;
            }
        }
        drop(tx);
        return writer.await?;
    }
    let mut out = Destination::open(output)?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| broken(e, &out.name()))? {
        out.write_all(&chunk).with_context(|| format!("cannot write {}", out.name()))?;
    }
    out.finish()
}

/// How long an export may take in all; a stalled server is caught sooner by the client's read timeout.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// A download's chunks as the writer thread receives them: `Ok(None)` marks the end.
type Chunk = Result<Option<Bytes>, String>;

/// Reads the chunks of a download from a blocking thread, as the XLSX writer needs; an error in the download is
/// an error here, so a broken transfer cannot pass for a short file.
struct ChunkReader {
    chunks: tokio::sync::mpsc::Receiver<Chunk>,
    current: Bytes,
    ended: bool,
}

impl ChunkReader {
    fn new(chunks: tokio::sync::mpsc::Receiver<Chunk>) -> ChunkReader {
        ChunkReader { chunks, current: Bytes::new(), ended: false }
    }
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.chunks.blocking_recv() {
                Some(Ok(Some(chunk))) => self.current = chunk,
                Some(Ok(None)) => self.ended = true,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Err(std::io::Error::other("the export ended without its last part")),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

pub struct RangeArgs<'a> {
    pub area: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub format: Format,
    pub output: Option<&'a Path>,
}

/// `doorstep report progress`: cumulative coverage per indicator at the end of each day.
pub async fn progress(profile: &Profile, a: RangeArgs<'_>) -> Result<()> {
    let params = [("area", a.area), ("from", a.from), ("to", a.to)];
    let json = fetch(profile, "/api/v1/reports/progress", &params).await?;
    let mut rows = Vec::new();
    for series in json["series"].as_array().into_iter().flatten() {
        for p in series["points"].as_array().into_iter().flatten() {
            let rate = p["rate"].as_f64().unwrap_or(0.0);
            rows.push(vec![
                text(&p["date"]),
                text(&series["indicator"]),
                int(&p["eligible"]),
                int(&p["reached"]),
                Cell::Rate(rate),
            ]);
        }
    }
    let report = Report {
        title: format!("Progress {} to {}", json["from"].as_str().unwrap_or(""), json["to"].as_str().unwrap_or("")),
        header: names(&["date", "indicator", "eligible", "reached", "rate"]),
        rows,
        json,
    };
    output::write(&report, a.format, a.output)
}

/// `doorstep report activity`: visits per team or volunteer over a period.
pub async fn activity(profile: &Profile, by: &str, a: RangeArgs<'_>) -> Result<()> {
    let params = [("by", Some(by)), ("area", a.area), ("from", a.from), ("to", a.to)];
    let json = fetch(profile, "/api/v1/reports/activity", &params).await?;
    let rows = json.as_array().cloned().unwrap_or_default();
    let report = Report {
        title: format!("Activity by {by}"),
        header: names(&[
            "who",
            "team",
            "visits",
            "places",
            "completed",
            "nobody home",
            "refused",
            "gone",
            "first",
            "last",
        ]),
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    text(&r["key"]),
                    text(&r["team"]),
                    int(&r["visits"]),
                    int(&r["places"]),
                    int(&r["completed"]),
                    int(&r["nobody_home"]),
                    int(&r["refused"]),
                    int(&r["gone"]),
                    text(&r["first_at"]),
                    text(&r["last_at"]),
                ]
            })
            .collect(),
        json,
    };
    output::write(&report, a.format, a.output)
}
