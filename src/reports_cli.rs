//! `doorstep report monthly`: the month's ranking of villages and communities, with laggards, as a table,
//! JSON (one row per unit, each with its `rank`), CSV or XLSX.

use crate::office::api;
use crate::output::{self, Cell, Format, Report};
use crate::profile::Profile;
use anyhow::Result;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

const INDICATORS: [&str; 5] = ["handbook", "awareness", "poster", "banner", "led"];

#[derive(Deserialize)]
struct MonthlyReport {
    month: String,
    area: Option<String>,
    area_name: Option<String>,
    threshold: f64,
    rows: Vec<Value>,
}

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
    let place = match (&r.area_name, &r.area) {
        (Some(n), Some(c)) => format!(" · {n} ({c})"),
        _ => String::new(),
    };
    let mut header = vec!["rank", "area", "name", "visits", "score", "change"];
    for ind in INDICATORS {
        header.push(ind);
    }
    header.push("laggard");
    let rows = r
        .rows
        .iter()
        .map(|row| {
            let num = |k: &str| row[k].as_f64().unwrap_or(0.0);
            let mut cells = vec![
                Cell::Int(row["rank"].as_u64().unwrap_or(0)),
                Cell::Text(row["area"].as_str().unwrap_or("").into()),
                Cell::Text(row["name"].as_str().unwrap_or("").into()),
                Cell::Int(row["visits"].as_u64().unwrap_or(0)),
                Cell::Rate(num("score")),
                Cell::Rate(num("score_change")),
            ];
            for ind in INDICATORS {
                let found = row["indicators"].as_array().and_then(|a| a.iter().find(|i| i["indicator"] == ind));
                cells.push(match found.and_then(|i| i["rate"].as_f64()) {
                    Some(rate) => Cell::Rate(rate),
                    None => Cell::Text(String::new()),
                });
            }
            cells.push(Cell::Text(if row["laggard"] == true { "挂牌整治".into() } else { String::new() }));
            cells
        })
        .collect();
    let report = Report {
        title: format!(
            "Monthly report {}{place}: ranked by mean coverage at month end; laggards below {:.0}%",
            r.month,
            r.threshold * 100.0
        ),
        header,
        rows,
        json: Value::Array(r.rows),
    };
    output::write(&report, a.format, a.output)
}
