//! `doorstep enrolment`: one-time enrolment codes for volunteers' phones, issued (printed as a table of codes
//! and the addresses their QR codes hold), listed and withdrawn; the dashboard prints the same codes as a sheet.

use crate::office::{api, time_cell, urlencode};
use crate::output::{self, names, Cell, Format, Report};
use anyhow::Result;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Serialize, Deserialize)]
struct Issued {
    id: String,
    username: Option<String>,
    team: Option<String>,
    uses: i64,
    code: String,
    expires_at: i64,
    url: String,
}

#[derive(Serialize, Deserialize)]
struct Listed {
    id: String,
    username: Option<String>,
    team: Option<String>,
    uses: i64,
    used: i64,
    issued_by: String,
    issued_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    device_id: Option<String>,
    state: String,
}

/// Who the codes are for: a whole team's members (a code each), a team's volunteers sharing one code for a
/// number of phones, or named people.
pub enum For<'a> {
    Team(&'a str),
    Shared { team: &'a str, uses: i64 },
    Users(&'a [String]),
}

/// Issues codes valid for `hours`, for phones that open `address` (default: the server logged in to).
pub async fn issue(
    profile: &field::profile::Profile,
    who: For<'_>,
    hours: i64,
    address: Option<&str>,
    format: Format,
) -> Result<()> {
    let (api, session) = api(profile).await?;
    let address = address.unwrap_or(&session.server);
    let body = match who {
        For::Team(team) => json!({ "team": team, "hours": hours, "address": address }),
        For::Shared { team, uses } => {
            json!({ "team": team, "shared_uses": uses, "hours": hours, "address": address })
        }
        For::Users(users) => json!({ "usernames": users, "hours": hours, "address": address }),
    };
    let issued: Vec<Issued> = api.json(api.request(Method::POST, "/api/v1/enrolment-codes").json(&body)).await?;
    let report = Report {
        title: "Enrolment codes (shown once: print or hand them out now)".into(),
        header: names(&["user", "team", "phones", "code", "valid until", "address"]),
        rows: issued
            .iter()
            .map(|c| {
                vec![
                    Cell::Text(c.username.clone().unwrap_or_else(|| "(the team's volunteers)".into())),
                    Cell::Text(c.team.clone().unwrap_or_default()),
                    Cell::Int(c.uses as u64),
                    Cell::Text(c.code.clone()),
                    time_cell(Some(c.expires_at)),
                    Cell::Text(c.url.clone()),
                ]
            })
            .collect(),
        json: serde_json::to_value(&issued)?,
    };
    output::write(&report, format, None)
}

pub async fn list(profile: &field::profile::Profile, format: Format) -> Result<()> {
    let (api, _) = api(profile).await?;
    let codes: Vec<Listed> = api.json(api.request(Method::GET, "/api/v1/enrolment-codes")).await?;
    let report = Report {
        title: "Enrolment codes of the last 30 days".into(),
        header: names(&["id", "user", "team", "phones", "issued by", "issued", "valid until", "state", "last device"]),
        rows: codes
            .iter()
            .map(|c| {
                vec![
                    Cell::Text(c.id.clone()),
                    Cell::Text(c.username.clone().unwrap_or_else(|| "(the team's volunteers)".into())),
                    Cell::Text(c.team.clone().unwrap_or_default()),
                    Cell::Text(format!("{} of {}", c.used, c.uses)),
                    Cell::Text(c.issued_by.clone()),
                    time_cell(Some(c.issued_at)),
                    time_cell(Some(c.expires_at)),
                    Cell::Text(c.state.clone()),
                    Cell::Text(c.device_id.clone().unwrap_or_default()),
                ]
            })
            .collect(),
        json: serde_json::to_value(&codes)?,
    };
    output::write(&report, format, None)
}

pub async fn revoke(profile: &field::profile::Profile, id: &str) -> Result<()> {
    let (api, _) = api(profile).await?;
    api.send(api.request(Method::POST, &format!("/api/v1/enrolment-codes/{}/revoke", urlencode(id)))).await?;
    eprintln!("enrolment code {id} withdrawn: it no longer enrols a phone");
    Ok(())
}
