//! Office commands: log in, import the territory, manage users and teams, assign grids, print reports.

use crate::http::Api;
use crate::output::{self, Cell, Format, Report};
use crate::profile::{Profile, Session};
use anyhow::{Context, Result};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;

fn api(profile: &Profile) -> Result<(Api, Session)> {
    let session = profile.session()?;
    if session.expires_at < chrono::Utc::now().timestamp() {
        anyhow::bail!(
            "your login to {} has expired; run `doorstep login` again",
            session.server
        );
    }
    Ok((
        Api::new(&session.server, Some(session.token.clone()))?,
        session,
    ))
}

#[derive(Deserialize)]
struct LoginReply {
    token: String,
    username: String,
    role: String,
    expires_at: i64,
}

pub async fn login(profile: &Profile, server: &str, username: &str, password: &str) -> Result<()> {
    let api = Api::new(server, None)?;
    let reply: LoginReply = api
        .json(
            api.request(Method::POST, "/api/v1/auth/login")
                .json(&json!({"username": username, "password": password})),
        )
        .await?;
    profile.save_session(&Session {
        server: server.trim_end_matches('/').to_string(),
        username: reply.username.clone(),
        role: reply.role.clone(),
        token: reply.token,
        expires_at: reply.expires_at,
    })?;
    eprintln!(
        "logged in to {server} as {} ({})",
        reply.username, reply.role
    );
    Ok(())
}

#[derive(Deserialize, Serialize)]
struct ImportSummary {
    dry_run: bool,
    rows: u64,
    places_added: u64,
    places_changed: u64,
    places_unchanged: u64,
    areas_added: u64,
    areas_changed: u64,
    grids_changed: u64,
}

pub async fn territory_import(profile: &Profile, file: &Path, dry_run: bool) -> Result<()> {
    let (api, _) = api(profile)?;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let path = format!("/api/v1/territory/import?dry_run={dry_run}");
    let s: ImportSummary = api
        .json(
            api.request(Method::POST, &path)
                .header("content-type", "text/csv")
                .body(bytes),
        )
        .await?;
    let verb = if s.dry_run {
        "would import (dry run, nothing changed)"
    } else {
        "imported"
    };
    println!(
        "{verb} {} rows: {} places added, {} changed, {} unchanged; {} areas added, {} changed; {} grids updated",
        s.rows, s.places_added, s.places_changed, s.places_unchanged, s.areas_added, s.areas_changed, s.grids_changed
    );
    Ok(())
}

pub async fn user_create(
    profile: &Profile,
    username: &str,
    role: &str,
    team: Option<&str>,
    area: Option<&str>,
    password: &str,
) -> Result<()> {
    let (api, _) = api(profile)?;
    let body = json!({"username": username, "password": password, "role": role, "team": team, "area": area});
    api.send(api.request(Method::POST, "/api/v1/users").json(&body))
        .await?;
    eprintln!("created user {username} ({role})");
    Ok(())
}

pub async fn team_create(profile: &Profile, name: &str, lead: Option<&str>) -> Result<()> {
    let (api, _) = api(profile)?;
    api.send(
        api.request(Method::POST, "/api/v1/teams")
            .json(&json!({"name": name, "lead": lead})),
    )
    .await?;
    eprintln!("created team {name}");
    Ok(())
}

pub async fn assign(profile: &Profile, grid: &str, team: &str) -> Result<()> {
    let (api, _) = api(profile)?;
    let path = format!("/api/v1/assignments/{}", urlencode(grid));
    api.send(api.request(Method::PUT, &path).json(&json!({"team": team})))
        .await?;
    eprintln!("grid {grid} assigned to team {team}");
    Ok(())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct CoverageRow {
    area: String,
    name: String,
    indicator: String,
    eligible: u64,
    reached: u64,
    excluded: u64,
    rate: f64,
}

pub async fn report_coverage(
    profile: &Profile,
    by: &str,
    area: Option<&str>,
    format: Format,
    output_path: Option<&Path>,
) -> Result<()> {
    let (api, _) = api(profile)?;
    let mut req = api
        .request(Method::GET, "/api/v1/reports/coverage")
        .query(&[("by", by)]);
    if let Some(area) = area {
        req = req.query(&[("area", area)]);
    }
    let rows: Vec<CoverageRow> = api.json(req).await?;
    let report = Report {
        title: format!(
            "Coverage by {by}{}",
            area.map(|a| format!(" in {a}")).unwrap_or_default()
        ),
        header: vec![
            "area",
            "name",
            "indicator",
            "eligible",
            "reached",
            "excluded",
            "rate",
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.area.clone()),
                    Cell::Text(r.name.clone()),
                    Cell::Text(r.indicator.clone()),
                    Cell::Int(r.eligible),
                    Cell::Int(r.reached),
                    Cell::Int(r.excluded),
                    Cell::Rate(r.rate),
                ]
            })
            .collect(),
        json: serde_json::to_value(&rows)?,
    };
    output::write(&report, format, output_path)
}
