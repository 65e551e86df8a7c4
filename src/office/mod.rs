//! Office commands: log in, import the territory, manage users and teams, assign grids, print coverage; the
//! campaign definition (`campaign`), urgent tasks (`tasks`), found places and their review (`places`, the `place`
//! commands), visits' photos (`photos`) and the other reports (`reports`) in their modules.

pub mod bulletins;
pub mod campaign;
pub mod enrolment;
pub mod people;
pub mod photos;
pub mod places;
pub mod reports;
pub mod submissions;
pub mod tasks;

use crate::output::{self, names, Cell, Format, Report};
use anyhow::{Context, Result};
use field::api::Api;
use field::profile::{Profile, Session};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;

/// A client for the logged-in session, renewing the short-lived access token first if it is about to expire.
pub(crate) async fn api(profile: &Profile) -> Result<(Api, Session)> {
    let mut session = profile.session()?;
    if session.expires_at < chrono::Utc::now().timestamp() + 30 {
        let expired = || anyhow::anyhow!("your login to {} has expired; run `doorstep login` again", session.server);
        let Some(refresh_token) = session.refresh_token.clone() else { return Err(expired()) };
        let anon = Api::new(&session.server, None)?;
        let reply: LoginReply = anon
            .json(anon.request(Method::POST, "/api/v1/auth/refresh").json(&json!({"refresh_token": refresh_token})))
            .await
            .map_err(|e| anyhow::anyhow!("{e}\nrun `doorstep login` again"))?;
        session = session_from(&session.server, reply);
        profile.save_session(&session)?;
    }
    Ok((Api::new(&session.server, Some(session.token.clone()))?, session))
}

#[derive(Deserialize)]
struct LoginReply {
    token: String,
    refresh_token: Option<String>,
    username: String,
    role: String,
    expires_at: i64,
}

fn session_from(server: &str, reply: LoginReply) -> Session {
    Session {
        server: server.trim_end_matches('/').to_string(),
        username: reply.username,
        role: reply.role,
        token: reply.token,
        expires_at: reply.expires_at,
        refresh_token: reply.refresh_token,
    }
}

pub async fn login(profile: &Profile, server: &str, username: &str, password: &str) -> Result<()> {
    let api = Api::new(server, None)?;
    let reply: LoginReply = api
        .json(
            api.request(Method::POST, "/api/v1/auth/login").json(&json!({"username": username, "password": password})),
        )
        .await?;
    let session = session_from(server, reply);
    profile.save_session(&session)?;
    eprintln!("logged in to {server} as {} ({})", session.username, session.role);
    Ok(())
}

/// Ends the session: the refresh token is revoked on the server and the profile forgets the login.
pub async fn logout(profile: &Profile) -> Result<()> {
    let session = profile.session()?;
    if let Some(refresh_token) = &session.refresh_token {
        let api = Api::new(&session.server, None)?;
        api.send(api.request(Method::POST, "/api/v1/auth/logout").json(&json!({"refresh_token": refresh_token})))
            .await?;
    }
    profile.forget_session()?;
    eprintln!("logged out of {}", session.server);
    Ok(())
}

#[derive(Deserialize, Serialize)]
struct DeviceInfo {
    device_id: String,
    username: String,
    team: Option<String>,
    name: String,
    created_at: i64,
    last_seen_at: Option<i64>,
    revoked_at: Option<i64>,
    #[serde(default)]
    app_version: Option<String>,
    #[serde(default)]
    unsent_hint: Option<i64>,
    #[serde(default)]
    status_at: Option<i64>,
}

pub(crate) fn time_cell(ms: Option<i64>) -> Cell {
    Cell::Text(
        ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default(),
    )
}

pub async fn device_list(profile: &Profile, format: Format) -> Result<()> {
    let (api, _) = api(profile).await?;
    let devices: Vec<DeviceInfo> = api.json(api.request(Method::GET, "/api/v1/devices")).await?;
    let report = Report {
        title: "Devices".into(),
        header: names(&["device", "user", "team", "name", "enrolled", "last seen", "app", "unsent", "revoked"]),
        rows: devices
            .iter()
            .map(|d| {
                vec![
                    Cell::Text(d.device_id.clone()),
                    Cell::Text(d.username.clone()),
                    Cell::Text(d.team.clone().unwrap_or_default()),
                    Cell::Text(d.name.clone()),
                    time_cell(Some(d.created_at)),
                    time_cell(d.last_seen_at),
                    Cell::Text(d.app_version.clone().unwrap_or_default()),
                    Cell::Text(d.unsent_hint.map(|n| n.to_string()).unwrap_or_default()),
                    time_cell(d.revoked_at),
                ]
            })
            .collect(),
        json: serde_json::to_value(&devices)?,
    };
    output::write(&report, format, None)
}

pub async fn device_revoke(profile: &Profile, id: &str) -> Result<()> {
    let (api, _) = api(profile).await?;
    api.send(api.request(Method::POST, &format!("/api/v1/devices/{}/revoke", urlencode(id)))).await?;
    eprintln!("device {id} revoked: its token no longer works");
    Ok(())
}

pub async fn user_disable(profile: &Profile, username: &str) -> Result<()> {
    let (api, _) = api(profile).await?;
    api.send(api.request(Method::POST, &format!("/api/v1/users/{}/disable", urlencode(username)))).await?;
    eprintln!("user {username} disabled: their sessions and devices no longer work");
    Ok(())
}

pub async fn user_unlock(profile: &Profile, username: &str) -> Result<()> {
    let (api, _) = api(profile).await?;
    api.send(api.request(Method::POST, &format!("/api/v1/users/{}/unlock", urlencode(username)))).await?;
    eprintln!("user {username} unlocked: their failed logins from every address are forgotten");
    Ok(())
}

/// Prints the server's settings, after changing one if asked.
pub async fn settings(profile: &Profile, change: Option<(&str, &str)>) -> Result<()> {
    let (api, _) = api(profile).await?;
    let values: std::collections::BTreeMap<String, String> = match change {
        Some((name, value)) => {
            let path = format!("/api/v1/settings/{}", urlencode(name));
            api.json(api.request(Method::PUT, &path).json(&json!({ "value": value }))).await?
        }
        None => api.json(api.request(Method::GET, "/api/v1/settings")).await?,
    };
    for (name, value) in values {
        println!("{name} = {value}");
    }
    Ok(())
}

#[derive(Deserialize, Serialize)]
struct AuditEvent {
    at: String,
    username: Option<String>,
    action: String,
    detail: String,
}

/// What `doorstep audit` selects.
pub struct AuditArgs<'a> {
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub user: Option<&'a str>,
    pub action: Option<&'a str>,
    pub newest: bool,
    pub limit: Option<u32>,
}

pub async fn audit(profile: &Profile, filter: &AuditArgs<'_>, format: Format) -> Result<()> {
    let (api, _) = api(profile).await?;
    let mut req = api.request(Method::GET, "/api/v1/audit");
    let texts = [("since", filter.since), ("until", filter.until), ("user", filter.user), ("action", filter.action)];
    for (name, value) in texts {
        if let Some(value) = value {
            req = req.query(&[(name, value)]);
        }
    }
    if filter.newest {
        req = req.query(&[("order", "newest")]);
    }
    if let Some(limit) = filter.limit {
        req = req.query(&[("limit", limit)]);
    }
    let events: Vec<AuditEvent> = api.json(req).await?;
    let report = Report {
        title: "Audit log".into(),
        header: names(&["at", "user", "action", "detail"]),
        rows: events
            .iter()
            .map(|e| {
                vec![
                    Cell::Text(e.at.clone()),
                    Cell::Text(e.username.clone().unwrap_or_default()),
                    Cell::Text(e.action.clone()),
                    Cell::Text(e.detail.clone()),
                ]
            })
            .collect(),
        json: serde_json::to_value(&events)?,
    };
    output::write(&report, format, None)
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
    /// Per village or community (servers before it answered without).
    #[serde(default)]
    villages: Vec<VillageSummary>,
}

#[derive(Deserialize, Serialize)]
struct VillageSummary {
    village_code: String,
    village_name: String,
    places_added: u64,
    places_changed: u64,
    places_moved: u64,
    places_unchanged: u64,
    places_not_in_file: u64,
}

pub async fn territory_import(profile: &Profile, file: &Path, dry_run: bool) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    // The server tells a workbook from CSV by its content; the type only says it to whoever looks. A workbook is
    // compressed already; a province's CSV is a hundred megabytes or more, and compresses about sixfold.
    let workbook = bytes.starts_with(b"PK\x03\x04");
    let (content_type, encoding, body) = if workbook {
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", None, bytes)
    } else {
        ("text/csv", Some("gzip"), client_core::protocol::compress(&bytes))
    };
    // The server answers once everything is applied: about a minute per million places.
    let (api, _) = api(profile).await?;
    let api = api.waiting(std::time::Duration::from_secs(3600))?;
    let path = format!("/api/v1/territory/import?dry_run={dry_run}");
    let mut request = api.request(Method::POST, &path).header("content-type", content_type);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    let s: ImportSummary = api.json(request.body(body)).await?;
    let verb = if s.dry_run { "would import (dry run, nothing changed)" } else { "imported" };
    println!(
        "{verb} {} rows: {} places added, {} changed, {} unchanged; {} areas added, {} changed; {} grids updated",
        s.rows, s.places_added, s.places_changed, s.places_unchanged, s.areas_added, s.areas_changed, s.grids_changed
    );
    // A dry run says what the file does per village (where something changes or the file leaves places out: a
    // province has thousands); an import keeps its one line, which scripts read.
    for v in s.villages.iter().filter(|_| s.dry_run) {
        if v.places_added + v.places_changed + v.places_moved + v.places_not_in_file == 0 {
            continue;
        }
        println!(
            "  {} {}: {} added, {} changed, {} moved, {} unchanged, {} not in the file (kept)",
            v.village_code,
            v.village_name,
            v.places_added,
            v.places_changed,
            v.places_moved,
            v.places_unchanged,
            v.places_not_in_file
        );
    }
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
    let (api, _) = api(profile).await?;
    let body = json!({"username": username, "password": password, "role": role, "team": team, "area": area});
    api.send(api.request(Method::POST, "/api/v1/users").json(&body)).await?;
    eprintln!("created user {username} ({role})");
    Ok(())
}

pub async fn team_create(profile: &Profile, name: &str, lead: Option<&str>) -> Result<()> {
    let (api, _) = api(profile).await?;
    api.send(api.request(Method::POST, "/api/v1/teams").json(&json!({"name": name, "lead": lead}))).await?;
    eprintln!("created team {name}");
    Ok(())
}

pub async fn assign(profile: &Profile, grid: &str, team: &str) -> Result<()> {
    let (api, _) = api(profile).await?;
    let path = format!("/api/v1/assignments/{}", urlencode(grid));
    api.send(api.request(Method::PUT, &path).json(&json!({"team": team}))).await?;
    eprintln!("grid {grid} assigned to team {team}");
    Ok(())
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
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
    let (api, _) = api(profile).await?;
    let mut req = api.request(Method::GET, "/api/v1/reports/coverage").query(&[("by", by)]);
    if let Some(area) = area {
        req = req.query(&[("area", area)]);
    }
    let rows: Vec<CoverageRow> = api.json(req).await?;
    let report = Report {
        title: format!("Coverage by {by}{}", area.map(|a| format!(" in {a}")).unwrap_or_default()),
        header: names(&["area", "name", "indicator", "eligible", "reached", "excluded", "rate"]),
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
