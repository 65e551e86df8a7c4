//! `doorstep task create|list|show|evaluate`: the office issues urgent dissuasion tasks (预警劝阻), follows their
//! sign-for and response times, and evaluates them.

use crate::office::api;
use crate::output::{self, names, Cell, Format, Report};
use anyhow::{bail, Context, Result};
use field::profile::Profile;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;

/// Who to reach and what to do, as given on the command line.
pub struct CreateArgs<'a> {
    pub place: Option<&'a str>,
    pub address: Option<&'a str>,
    pub grid: Option<&'a str>,
    pub team: Option<&'a str>,
    pub person: &'a str,
    pub phone: Option<&'a str>,
    pub fraud_type: &'a str,
    pub priority: &'a str,
    pub deadline: Option<&'a str>,
    pub within: Option<&'a str>,
    pub instructions: Option<&'a str>,
}

/// `90m`, `2h`, `1d`: a delay from now.
fn parse_within(s: &str) -> Result<chrono::Duration> {
    let bad = || anyhow::anyhow!("--within {s:?} is not a delay such as 90m, 2h or 1d");
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let n: i64 = s[..split].parse().map_err(|_| bad())?;
    match &s[split..] {
        "m" | "min" => Ok(chrono::Duration::minutes(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        "d" => Ok(chrono::Duration::days(n)),
        _ => Err(bad()),
    }
}

pub async fn create(profile: &Profile, a: CreateArgs<'_>) -> Result<()> {
    if a.place.is_none() && a.address.is_none() {
        bail!("say where the person is: --place PLACE_ID for a place of the registry, or --address TEXT");
    }
    let deadline = match (a.deadline, a.within) {
        (Some(d), None) => d.to_string(),
        (None, Some(w)) => (chrono::Utc::now() + parse_within(w)?).to_rfc3339(),
        _ => bail!("give the deadline: --deadline RFC3339 (e.g. 2026-11-27T18:00:00+08:00) or --within 2h"),
    };
    let (api, _) = api(profile).await?;
    let body = json!({
        "place_id": a.place, "address": a.address, "grid": a.grid, "team": a.team, "person": a.person,
        "phone": a.phone, "fraud_type": a.fraud_type, "priority": a.priority, "deadline": deadline,
        "instructions": a.instructions.unwrap_or(""),
    });
    let task: Value = api.json(api.request(Method::POST, "/api/v1/tasks").json(&body)).await?;
    println!("{}", task["task_id"].as_str().unwrap_or_default());
    eprintln!(
        "task issued to team {}, deadline {}; it reaches the team's devices at their next sync",
        task["team"].as_str().unwrap_or("?"),
        task["deadline"].as_str().unwrap_or("?")
    );
    Ok(())
}

fn text(v: &Value) -> Cell {
    Cell::Text(match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// `doorstep task list`: most urgent first, with the sign-for, response and reach times in minutes.
pub async fn list(profile: &Profile, status: &str, format: Format, output: Option<&Path>) -> Result<()> {
    let (api, _) = api(profile).await?;
    let json: Value = api.json(api.request(Method::GET, "/api/v1/tasks").query(&[("status", status)])).await?;
    let rows = json.as_array().cloned().unwrap_or_default();
    let report = Report {
        title: format!("Urgent tasks ({status})"),
        header: names(&[
            "task",
            "team",
            "priority",
            "fraud",
            "person",
            "status",
            "overdue",
            "deadline",
            "sign (min)",
            "response (min)",
            "reach (min)",
            "evaluation",
        ]),
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    text(&r["task_id"]),
                    text(&r["team"]),
                    text(&r["priority"]),
                    text(&r["fraud_type"]),
                    text(&r["person"]),
                    text(&r["status"]),
                    Cell::Text(if r["overdue"] == true { "OVERDUE".into() } else { String::new() }),
                    text(&r["deadline"]),
                    text(&r["sign_minutes"]),
                    text(&r["response_minutes"]),
                    text(&r["reach_minutes"]),
                    text(&r["evaluation"]),
                ]
            })
            .collect(),
        json,
    };
    output::write(&report, format, output)
}

/// `doorstep task show`: everything about one task, including which devices still hold it.
pub async fn show(profile: &Profile, id: &str, json_out: bool) -> Result<()> {
    let (api, _) = api(profile).await?;
    let t: Value = api.json(api.request(Method::GET, &format!("/api/v1/tasks/{}", path_id(id)?))).await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&t)?);
        return Ok(());
    }
    let s = |k: &str| match &t[k] {
        Value::Null => "-".to_string(),
        Value::String(v) => v.clone(),
        other => other.to_string(),
    };
    for (label, key) in [
        ("task", "task_id"),
        ("team", "team"),
        ("status", "status"),
        ("priority", "priority"),
        ("fraud type", "fraud_type"),
        ("person", "person"),
        ("place", "place_id"),
        ("address", "address"),
        ("phone", "phone"),
        ("instructions", "instructions"),
        ("created", "created_at"),
        ("deadline", "deadline"),
        ("signed for", "received_at"),
        ("opened", "opened_at"),
        ("first action", "first_action_at"),
        ("reached", "reached_at"),
        ("evaluation", "evaluation"),
        ("comment", "evaluation_comment"),
    ] {
        println!("{:<13} {}", format!("{label}:"), s(key));
    }
    if t["overdue"] == true {
        println!("OVERDUE: the deadline passed and the person has not been reached");
    }
    for o in t["outcomes"].as_array().into_iter().flatten() {
        println!(
            "outcome:      {} {} via {}: reached {}, dissuaded {}, money lost {}{}; {}",
            o["at"].as_str().unwrap_or(""),
            o["volunteer"].as_str().unwrap_or(""),
            o["method"].as_str().unwrap_or(""),
            o["reached"],
            o["dissuaded"],
            o["money_lost"],
            o["amount_fen"]
                .as_i64()
                .map(|f| format!(" ({} yuan)", client_core::task::model::yuan_text(f)))
                .unwrap_or_default(),
            o["feedback"].as_str().unwrap_or("")
        );
    }
    for d in t["devices"].as_array().into_iter().flatten() {
        let state = match d["purged_at"].as_str() {
            Some(p) => format!("deleted by {p}"),
            None => "holds it".to_string(),
        };
        println!(
            "device:       {} ({}) received {}, {state}",
            d["device_id"].as_str().unwrap_or(""),
            d["username"].as_str().unwrap_or(""),
            d["delivered_at"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// Task ids are UUIDs; anything else is refused before it reaches a URL.
fn path_id(id: &str) -> Result<String> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .with_context(|| format!("{id:?} is not a task id; `doorstep task list` shows them"))
}

pub async fn evaluate(
    profile: &Profile,
    id: &str,
    result: &str,
    comment: Option<&str>,
    deadline: Option<&str>,
) -> Result<()> {
    let (api, _) = api(profile).await?;
    let body = json!({"result": result, "comment": comment.unwrap_or(""), "deadline": deadline});
    let path = format!("/api/v1/tasks/{}/evaluate", path_id(id)?);
    let t: Value = api.json(api.request(Method::POST, &path).json(&body)).await?;
    match t["status"].as_str() {
        Some("closed") => eprintln!("task {id} evaluated {result} and closed; devices delete it at their next sync"),
        _ => eprintln!("task {id} sent back for follow-up; the team's devices receive the comment at their next sync"),
    }
    Ok(())
}
