//! Office commands for people, teams and grids: `user list|edit|enable|password`, `team list|lead`,
//! `grid list`, `assign` of several grids or a whole village, and `unassign`; the same JSON API as the
//! dashboard's people and teams pages.

use super::{api, urlencode};
use crate::output::{self, names, Cell, Format, Report};
use anyhow::Result;
use reqwest::Method;
use serde_json::{json, Value};

fn time_cell(ms: Option<i64>) -> Cell {
    Cell::Text(
        ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default(),
    )
}

fn text(v: &Value) -> Cell {
    Cell::Text(v.as_str().unwrap_or_default().to_string())
}

fn count(v: &Value) -> Cell {
    Cell::Int(v.as_u64().unwrap_or_default())
}

/// Reads every page of a list (`after=` the previous page's `next`) and returns its rows under `key`.
async fn every_page(
    path: &str,
    query: &[(&str, String)],
    key: &str,
    profile: &field::profile::Profile,
) -> Result<Vec<Value>> {
    let (api, _) = api(profile).await?;
    let mut rows = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut req = api.request(Method::GET, path).query(query).query(&[("limit", "1000")]);
        if let Some(after) = &after {
            req = req.query(&[("after", after)]);
        }
        let page: Value = api.json(req).await?;
        rows.extend(page[key].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => return Ok(rows),
        }
    }
}

/// What `user list` selects.
pub struct UserFilter<'a> {
    pub team: Option<&'a str>,
    pub role: Option<&'a str>,
    pub search: Option<&'a str>,
}

pub async fn user_list(profile: &field::profile::Profile, f: &UserFilter<'_>, format: Format) -> Result<()> {
    let query: Vec<(&str, String)> = [("team", f.team), ("role", f.role), ("q", f.search)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v.to_string())))
        .collect();
    let users = every_page("/api/v1/users", &query, "users", profile).await?;
    let report = Report {
        title: format!("Users ({})", users.len()),
        header: names(&["username", "role", "team", "area", "created", "disabled", "active devices", "last sync"]),
        rows: users
            .iter()
            .map(|u| {
                vec![
                    text(&u["username"]),
                    text(&u["role"]),
                    text(&u["team"]),
                    text(&u["area"]),
                    time_cell(u["created_at"].as_i64()),
                    time_cell(u["disabled_at"].as_i64()),
                    count(&u["active_devices"]),
                    time_cell(u["last_sync_at"].as_i64()),
                ]
            })
            .collect(),
        json: Value::Array(users),
    };
    output::write(&report, format, None)
}

/// What `user edit` changes: `team` is `Some(None)` to take the user out of their team.
pub struct UserEdit<'a> {
    pub role: Option<&'a str>,
    pub team: Option<Option<String>>,
    pub area: Option<String>,
    pub may_publish: Option<bool>,
}

pub async fn user_edit(profile: &field::profile::Profile, username: &str, edit: UserEdit<'_>) -> Result<()> {
    let (api, _) = api(profile).await?;
    let mut body = serde_json::Map::new();
    if let Some(role) = edit.role {
        body.insert("role".into(), json!(role));
        // A viewer is in no team; anyone else loses the area they read.
        if role == "viewer" && edit.team.is_none() {
            body.insert("team".into(), Value::Null);
        }
    }
    if let Some(team) = edit.team {
        body.insert("team".into(), json!(team));
    }
    if let Some(area) = edit.area {
        body.insert("area".into(), json!(area));
    }
    if let Some(may) = edit.may_publish {
        body.insert("may_publish".into(), json!(may));
    }
    let path = format!("/api/v1/users/{}", urlencode(username));
    let edited: Value = api.json(api.request(Method::PATCH, &path).json(&body)).await?;
    match edited["changed"].as_str().filter(|c| !c.is_empty()) {
        Some(changed) => eprintln!("{username}: {changed}"),
        None => eprintln!("{username}: nothing to change"),
    }
    Ok(())
}

pub async fn user_enable(profile: &field::profile::Profile, username: &str) -> Result<()> {
    let (api, _) = api(profile).await?;
    api.send(api.request(Method::POST, &format!("/api/v1/users/{}/enable", urlencode(username)))).await?;
    eprintln!("user {username} enabled: they may log in again (their phones enrol again)");
    Ok(())
}

/// Sets a new password: the one given, or one the server chooses, printed once on stdout.
pub async fn user_password(profile: &field::profile::Profile, username: &str, password: Option<String>) -> Result<()> {
    let (api, _) = api(profile).await?;
    let path = format!("/api/v1/users/{}/password", urlencode(username));
    let body = match &password {
        Some(password) => json!({ "password": password }),
        None => json!({}),
    };
    let reset: Value = api.json(api.request(Method::POST, &path).json(&body)).await?;
    if let Some(new) = reset["password"].as_str() {
        println!("{new}");
    }
    eprintln!("{username} has a new password; their sessions ended (their phones keep syncing)");
    Ok(())
}

pub async fn team_list(profile: &field::profile::Profile, format: Format) -> Result<()> {
    let (api, _) = api(profile).await?;
    let teams: Vec<Value> = api.json(api.request(Method::GET, "/api/v1/teams")).await?;
    let report = Report {
        title: "Teams".into(),
        header: names(&["team", "lead", "members", "volunteers", "grids"]),
        rows: teams
            .iter()
            .map(|t| {
                vec![
                    text(&t["name"]),
                    text(&t["lead"]),
                    count(&t["members"]),
                    count(&t["volunteers"]),
                    count(&t["grids"]),
                ]
            })
            .collect(),
        json: Value::Array(teams),
    };
    output::write(&report, format, None)
}

pub async fn team_lead(profile: &field::profile::Profile, team: &str, lead: Option<&str>) -> Result<()> {
    let (api, _) = api(profile).await?;
    let path = format!("/api/v1/teams/{}", urlencode(team));
    api.send(api.request(Method::PATCH, &path).json(&json!({ "lead": lead }))).await?;
    match lead {
        Some(lead) => eprintln!("{lead} leads team {team}"),
        None => eprintln!("team {team} has no named lead"),
    }
    Ok(())
}

/// What `grid list` selects.
pub struct GridFilter<'a> {
    pub unassigned: bool,
    pub village: Option<&'a str>,
    pub team: Option<&'a str>,
}

pub async fn grid_list(profile: &field::profile::Profile, f: &GridFilter<'_>, format: Format) -> Result<()> {
    let mut query: Vec<(&str, String)> = [("village", f.village), ("team", f.team)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v.to_string())))
        .collect();
    if f.unassigned {
        query.push(("unassigned", "true".into()));
    }
    let grids = every_page("/api/v1/grids", &query, "grids", profile).await?;
    let unassigned = grids.iter().filter(|g| g["team"].is_null()).count();
    let report = Report {
        title: format!("Grids ({}, {unassigned} without a team)", grids.len()),
        header: names(&["grid", "name", "village", "village name", "town", "town name", "team", "places"]),
        rows: grids
            .iter()
            .map(|g| {
                vec![
                    text(&g["code"]),
                    text(&g["name"]),
                    text(&g["village"]),
                    text(&g["village_name"]),
                    text(&g["town"]),
                    text(&g["town_name"]),
                    text(&g["team"]),
                    count(&g["places"]),
                ]
            })
            .collect(),
        json: Value::Array(grids),
    };
    output::write(&report, format, None)
}

/// Assigns several grids, or every grid of a village, to a team in one request: all or nothing.
pub async fn assign(
    profile: &field::profile::Profile,
    team: &str,
    village: Option<&str>,
    grids: &[String],
) -> Result<()> {
    let (api, _) = api(profile).await?;
    let body = match village {
        Some(village) => json!({ "team": team, "village": village }),
        None => json!({ "team": team, "grids": grids }),
    };
    let done: Value = api.json(api.request(Method::PUT, "/api/v1/assignments").json(&body)).await?;
    let all = done["grids"].as_array().map(Vec::len).unwrap_or_default();
    let changed = done["changed"].as_array().map(Vec::len).unwrap_or_default();
    eprintln!("{all} grids assigned to team {team} ({changed} of them changed team)");
    Ok(())
}

pub async fn unassign(profile: &field::profile::Profile, grid: &str) -> Result<()> {
    let (api, _) = api(profile).await?;
    api.send(api.request(Method::DELETE, &format!("/api/v1/assignments/{}", urlencode(grid)))).await?;
    eprintln!("grid {grid} has no team now; the devices that held it are told at their next sync");
    Ok(())
}
