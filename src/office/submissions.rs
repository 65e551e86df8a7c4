//! `doorstep roster show|export|deadline` and `doorstep submissions list|show|situations`: the liaison roster,
//! the villages' monthly written submissions and their situation reports, read through the same API as the
//! dashboard.

use crate::cli::{RosterCommand, SubmissionsCommand};
use crate::office::api;
use crate::output::{self, names, Cell, Destination, Format, Report};
use anyhow::{Context, Result};
use field::profile::Profile;
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

fn text(v: &Value) -> Cell {
    Cell::Text(match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

async fn get(profile: &Profile, path: &str, params: &[(&str, &str)]) -> Result<Value> {
    let (api, _) = api(profile).await?;
    api.json(api.request(Method::GET, path).query(params)).await
}

pub async fn roster(profile: &Profile, command: RosterCommand) -> Result<()> {
    match command {
        RosterCommand::Show { format, output } => show_roster(profile, format, output.as_deref()).await,
        RosterCommand::Export { output } => export_roster(profile, &output).await,
        RosterCommand::Deadline { date } => {
            let (api, _) = api(profile).await?;
            let roster: Value = api
                .json(api.request(Method::POST, "/api/v1/roster/deadline").json(&json!({ "deadline": date })))
                .await?;
            match roster["deadline"].as_str() {
                Some(d) => eprintln!("the roster is due by the end of {d}"),
                None => eprintln!("the roster has no deadline"),
            }
            let missing = roster["not_filed"].as_array().map(Vec::len).unwrap_or(0);
            eprintln!("{missing} villages and communities have not yet named both a 分管领导 and a 联络员");
            Ok(())
        }
    }
}

async fn show_roster(profile: &Profile, format: Format, output: Option<&Path>) -> Result<()> {
    let json = get(profile, "/api/v1/roster", &[]).await?;
    let mut rows = Vec::new();
    for area in json["areas"].as_array().into_iter().flatten() {
        let entries = area["entries"].as_array().cloned().unwrap_or_default();
        if entries.is_empty() {
            let missing = area["missing"].as_array().map(|m| m.len()).unwrap_or(0);
            let state = if missing > 0 { "NOT FILED" } else { "" };
            rows.push(vec![text(&area["area"]), text(&area["name"]), Cell::Text(state.into())]);
            continue;
        }
        for e in entries {
            rows.push(vec![
                text(&area["area"]),
                text(&area["name"]),
                text(&e["duty"]),
                text(&e["name"]),
                text(&e["unit"]),
                text(&e["post"]),
                text(&e["phone"]),
                text(&e["note"]),
            ]);
        }
    }
    let deadline = json["deadline"].as_str().map(|d| format!(", due by {d}")).unwrap_or_default();
    let report = Report {
        title: format!("Liaison roster{deadline}"),
        header: names(&["area", "name", "duty", "person", "unit", "post", "phone", "note"]),
        rows: rows
            .into_iter()
            .map(|mut r| {
                r.resize(8, Cell::Text(String::new()));
                r
            })
            .collect(),
        json,
    };
    output::write(&report, format, output)
}

/// Writes the server's XLSX as it is; the file appears only once complete.
async fn export_roster(profile: &Profile, path: &Path) -> Result<()> {
    let (api, _) = api(profile).await?;
    let resp = api.send(api.request(Method::GET, "/api/v1/roster/export.xlsx")).await?;
    let bytes = resp.bytes().await.context("the roster's spreadsheet broke off before it was complete")?;
    let mut out = Destination::open(Some(path))?;
    out.write_all(&bytes).with_context(|| format!("cannot write {}", path.display()))?;
    out.finish()?;
    eprintln!("wrote the roster to {}", path.display());
    Ok(())
}

pub async fn submissions(profile: &Profile, command: SubmissionsCommand) -> Result<()> {
    match command {
        SubmissionsCommand::List { month, format, output } => {
            let json = get(profile, "/api/v1/submissions", &[("month", &month)]).await?;
            let rows = json.as_array().cloned().unwrap_or_default();
            let report = Report {
                title: format!("Monthly submissions of {month}"),
                header: names(&["area", "name", "town", "state", "status", "overdue", "submitted at", "by"]),
                rows: rows
                    .iter()
                    .map(|r| {
                        vec![
                            text(&r["area"]),
                            text(&r["name"]),
                            text(&r["town_name"]),
                            text(&r["state"]),
                            text(&r["status"]),
                            Cell::Text(if r["overdue"] == true { "OVERDUE".into() } else { String::new() }),
                            text(&r["submitted_at"]),
                            text(&r["submitted_by"]),
                        ]
                    })
                    .collect(),
                json,
            };
            output::write(&report, format, output.as_deref())
        }
        SubmissionsCommand::Show { area, month, format } => {
            let path = format!("/api/v1/submissions/{area}/{month}");
            let json = get(profile, &path, &[]).await?;
            let f = &json["figures"];
            let mut rows = vec![
                vec![Cell::Text("state".into()), text(&json["state"])],
                vec![Cell::Text("status".into()), text(&json["status"])],
                vec![Cell::Text("submitted at".into()), text(&json["submitted_at"])],
                vec![Cell::Text("visits".into()), text(&f["visits"])],
                vec![Cell::Text("score".into()), Cell::Rate(f["score"].as_f64().unwrap_or(0.0))],
            ];
            for i in f["indicators"].as_array().into_iter().flatten() {
                rows.push(vec![text(&i["indicator"]), Cell::Rate(i["rate"].as_f64().unwrap_or(0.0))]);
            }
            rows.push(vec![Cell::Text("tasks issued".into()), text(&f["tasks"]["created"])]);
            rows.push(vec![Cell::Text("tasks completed".into()), text(&f["tasks"]["completed"])]);
            for key in ["work_done", "problems", "plans"] {
                rows.push(vec![Cell::Text(key.replace('_', " ")), text(&json[key])]);
            }
            let title = format!("{} {month}", json["name"].as_str().unwrap_or(&area));
            output::write(&Report { title, header: names(&["", ""]), rows, json }, format, None)
        }
        SubmissionsCommand::Situations { format } => {
            let json = get(profile, "/api/v1/situations", &[]).await?;
            let reports = json["reports"].as_array().cloned().unwrap_or_default();
            let report = Report {
                title: format!("Situation reports ({} unread)", json["unread"]),
                header: names(&["filed at", "area", "urgency", "title", "by", "read"]),
                rows: reports
                    .iter()
                    .map(|r| {
                        vec![
                            text(&r["filed_at"]),
                            text(&r["area_name"]),
                            text(&r["urgency"]),
                            text(&r["title"]),
                            text(&r["filed_by"]),
                            Cell::Text(if r["read"] == true { "read".into() } else { "UNREAD".into() }),
                        ]
                    })
                    .collect(),
                json,
            };
            output::write(&report, format, None)
        }
    }
}
