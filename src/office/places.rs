//! `doorstep place review|confirm|reject|merge`: the office reviews places found in the field and corrections
//! proposed from it.

use crate::office::{api, urlencode};
use crate::output::{self, names, Cell, Format, Report};
use anyhow::{bail, Result};
use field::profile::Profile;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Deserialize, Serialize)]
struct Pending {
    places: Vec<PendingPlace>,
    corrections: Vec<PendingCorrection>,
}

#[derive(Deserialize, Serialize)]
struct PendingPlace {
    place_id: String,
    grid: String,
    kind: String,
    label: String,
    address: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    added_by: String,
    device: String,
    added_at: i64,
    visits: i64,
}

#[derive(Deserialize, Serialize)]
struct PendingCorrection {
    correction_id: String,
    grid: String,
    place_id: String,
    current_label: String,
    current_address: Option<String>,
    label: Option<String>,
    address: Option<String>,
    volunteer: String,
    at: i64,
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
}

/// Lists what awaits review: found places, then proposed corrections.
pub async fn review(profile: &Profile, grid: Option<&str>, format: Format) -> Result<()> {
    let (api, _) = api(profile).await?;
    let mut req = api.request(Method::GET, "/api/v1/review");
    if let Some(grid) = grid {
        req = req.query(&[("grid", grid)]);
    }
    let pending: Pending = api.json(req).await?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&pending)?);
        return Ok(());
    }
    if !matches!(format, Format::Table) {
        bail!("the review list prints as a table or JSON");
    }
    let places = Report {
        title: "Places found in the field, awaiting review (confirm, reject, or merge into the place they duplicate)"
            .into(),
        header: names(&["place", "grid", "kind", "label", "address", "gps", "found by", "found at", "visits"]),
        rows: pending
            .places
            .iter()
            .map(|p| {
                let gps = match (p.lat, p.lon) {
                    (Some(lat), Some(lon)) => format!("{lat},{lon}"),
                    _ => String::new(),
                };
                vec![
                    Cell::Text(p.place_id.clone()),
                    Cell::Text(p.grid.clone()),
                    Cell::Text(p.kind.clone()),
                    Cell::Text(p.label.clone()),
                    Cell::Text(p.address.clone().unwrap_or_default()),
                    Cell::Text(gps),
                    Cell::Text(p.added_by.clone()),
                    Cell::Text(time(p.added_at)),
                    Cell::Int(p.visits.max(0) as u64),
                ]
            })
            .collect(),
        json: serde_json::Value::Null,
    };
    output::write(&places, Format::Table, None)?;
    let corrections = Report {
        title: "Corrections proposed from the field, awaiting review (confirm or reject)".into(),
        header: names(&[
            "correction",
            "place",
            "label now",
            "proposed label",
            "address now",
            "proposed address",
            "by",
            "at",
        ]),
        rows: pending
            .corrections
            .iter()
            .map(|c| {
                vec![
                    Cell::Text(c.correction_id.clone()),
                    Cell::Text(c.place_id.clone()),
                    Cell::Text(c.current_label.clone()),
                    Cell::Text(c.label.clone().unwrap_or_default()),
                    Cell::Text(c.current_address.clone().unwrap_or_default()),
                    Cell::Text(c.address.clone().unwrap_or_default()),
                    Cell::Text(c.volunteer.clone()),
                    Cell::Text(time(c.at)),
                ]
            })
            .collect(),
        json: serde_json::Value::Null,
    };
    output::write(&corrections, Format::Table, None)
}

/// What the office decides about a found place or a correction.
pub enum Decision<'a> {
    Confirm,
    Reject,
    MergeInto(&'a str),
}

pub async fn decide(profile: &Profile, id: &str, decision: Decision<'_>) -> Result<()> {
    let (api, _) = api(profile).await?;
    let found_place = client_core::grid::found::is_found_place_key(id);
    let (path, body, done) = match (&decision, found_place) {
        (Decision::MergeInto(into), true) => (
            format!("/api/v1/places/{}/review", urlencode(id)),
            json!({"decision": "merge", "into": into}),
            format!("merged into {into}: its visits now count there"),
        ),
        (Decision::MergeInto(_), false) => bail!("only places found in the field (ids starting with F-) are merged"),
        (Decision::Confirm, _) | (Decision::Reject, _) => {
            let word = if matches!(decision, Decision::Confirm) { "confirm" } else { "reject" };
            let kind = if found_place {
                "places"
            } else if uuid::Uuid::parse_str(id).is_ok() {
                "corrections"
            } else {
                bail!(
                    "{id} is neither a place found in the field (F-…) nor a correction id; see `doorstep place review`"
                )
            };
            (format!("/api/v1/{kind}/{}/review", urlencode(id)), json!({"decision": word}), format!("{word}ed"))
        }
    };
    api.send(api.request(Method::POST, &path).json(&body)).await?;
    eprintln!("{id} {done}");
    Ok(())
}
