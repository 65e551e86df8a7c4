//! `doorstep photo list|get|reject`: the photos visits carry as evidence, as the office, a lead or a viewer may
//! see them (the server scopes every call), and the office's rejection of one that does not show the delivery.

use crate::office::{api, time_cell, urlencode};
use crate::output::{self, names, Cell, Destination, Format, Report};
use anyhow::{bail, Context, Result};
use client_core::grid::model::is_photo_hash;
use field::profile::Profile;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::io::Write;
use std::path::Path;

/// One photo as `GET /api/v1/photos` lists it.
#[derive(Deserialize, Serialize)]
struct Photo {
    sha256: String,
    visit_id: String,
    place_id: String,
    place_label: String,
    place_kind: String,
    grid_code: String,
    village_code: String,
    volunteer: String,
    visited_at: i64,
    taken_at: i64,
    media_type: String,
    size: i64,
    received: bool,
    /// Its files were deleted (the place was rejected as not a place).
    #[serde(default)]
    deleted: bool,
    width: Option<i64>,
    height: Option<i64>,
    rejected_at: Option<i64>,
    rejected_by: Option<String>,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    photos: Vec<Photo>,
    next: Option<String>,
}

/// What `doorstep photo list` selects.
pub struct Filter<'a> {
    pub area: Option<&'a str>,
    pub place: Option<&'a str>,
    pub indicator: Option<&'a str>,
    /// `all`, `standing` or `rejected`.
    pub state: &'a str,
    /// At most this many photos.
    pub limit: usize,
}

/// The server's largest page.
const PAGE: usize = 200;

/// Lists the photos, reading the server's pages until `limit` or the last page.
pub async fn list(profile: &Profile, filter: &Filter<'_>, format: Format, output_path: Option<&Path>) -> Result<()> {
    let (api, _) = api(profile).await?;
    let mut photos: Vec<Photo> = Vec::new();
    let mut after: Option<String> = None;
    while photos.len() < filter.limit {
        let page_size = PAGE.min(filter.limit - photos.len());
        let mut req = api
            .request(Method::GET, "/api/v1/photos")
            .query(&[("state", filter.state), ("limit", &page_size.to_string())]);
        for (name, value) in [("area", filter.area), ("place", filter.place), ("indicator", filter.indicator)] {
            if let Some(value) = value {
                req = req.query(&[(name, value)]);
            }
        }
        if let Some(after) = &after {
            req = req.query(&[("after", after)]);
        }
        let page: Page = api.json(req).await?;
        let last = page.photos.len() < page_size || page.next.is_none();
        photos.extend(page.photos);
        if last {
            break;
        }
        after = page.next;
    }
    let report = Report {
        title: format!("Photos ({})", photos.len()),
        header: names(&[
            "sha256",
            "visit",
            "place",
            "label",
            "grid",
            "village",
            "volunteer",
            "visited",
            "taken",
            "type",
            "bytes",
            "received",
            "rejected",
            "rejected by",
            "reason",
        ]),
        rows: photos
            .iter()
            .map(|p| {
                vec![
                    Cell::Text(p.sha256.clone()),
                    Cell::Text(p.visit_id.clone()),
                    Cell::Text(p.place_id.clone()),
                    Cell::Text(p.place_label.clone()),
                    Cell::Text(p.grid_code.clone()),
                    Cell::Text(p.village_code.clone()),
                    Cell::Text(p.volunteer.clone()),
                    time_cell(Some(p.visited_at)),
                    time_cell(Some(p.taken_at)),
                    Cell::Text(p.media_type.clone()),
                    Cell::Int(u64::try_from(p.size).unwrap_or(0)),
                    // Not received: still on the volunteer's phone, to be uploaded at a later sync.
                    Cell::Text(
                        match (p.received, p.deleted) {
                            (true, _) => "yes",
                            (false, true) => "deleted",
                            (false, false) => "on the phone",
                        }
                        .into(),
                    ),
                    time_cell(p.rejected_at),
                    Cell::Text(p.rejected_by.clone().unwrap_or_default()),
                    Cell::Text(p.reason.clone().unwrap_or_default()),
                ]
            })
            .collect(),
        json: serde_json::to_value(&photos)?,
    };
    output::write(&report, format, output_path)
}

#[derive(Deserialize, Serialize)]
struct Evidence {
    indicator: String,
    reached: i64,
    with_evidence: i64,
}

/// Prints, for each indicator that asks for a photo, reached places and those with a photo that arrived and stands.
pub async fn evidence(profile: &Profile, area: Option<&str>, format: Format, output_path: Option<&Path>) -> Result<()> {
    #[derive(Deserialize)]
    struct Answer {
        indicators: Vec<Evidence>,
    }
    let (api, _) = api(profile).await?;
    let mut req = api.request(Method::GET, "/api/v1/photos/evidence");
    if let Some(area) = area {
        req = req.query(&[("area", area)]);
    }
    let answer: Answer = api.json(req).await?;
    let report = Report {
        title: format!("Photo evidence{}", area.map(|a| format!(" in {a}")).unwrap_or_default()),
        header: names(&["indicator", "reached", "with evidence"]),
        rows: answer
            .indicators
            .iter()
            .map(|e| {
                vec![
                    Cell::Text(e.indicator.clone()),
                    Cell::Int(u64::try_from(e.reached).unwrap_or(0)),
                    Cell::Int(u64::try_from(e.with_evidence).unwrap_or(0)),
                ]
            })
            .collect(),
        json: serde_json::to_value(&answer.indicators)?,
    };
    output::write(&report, format, output_path)
}

fn check_hash(sha256: &str) -> Result<()> {
    if !is_photo_hash(sha256) {
        bail!("{sha256:?} is not a photo's SHA-256 (64 lowercase hex digits); `doorstep photo list` shows them");
    }
    Ok(())
}

/// Saves the photo (or its thumbnail) to `out`; the file appears only once complete.
pub async fn get(profile: &Profile, sha256: &str, out: &Path, thumbnail: bool) -> Result<()> {
    check_hash(sha256)?;
    let (api, _) = api(profile).await?;
    let which = if thumbnail { "thumbnail" } else { "file" };
    let resp = api.send(api.request(Method::GET, &format!("/api/v1/photos/{sha256}/{which}"))).await?;
    let bytes = resp.bytes().await.context("the photo's download was cut off; try again")?;
    let mut file = Destination::open(Some(out))?;
    file.write_all(&bytes).with_context(|| format!("cannot write {}", out.display()))?;
    file.finish()?;
    eprintln!(
        "saved the {} of photo {sha256} to {} ({} bytes)",
        if thumbnail { "thumbnail" } else { "photo" },
        out.display(),
        bytes.len()
    );
    Ok(())
}

/// Rejects a visit's photo as not showing the delivery (office).
pub async fn reject(profile: &Profile, sha256: &str, visit: &str, reason: &str) -> Result<()> {
    check_hash(sha256)?;
    if reason.trim().is_empty() {
        bail!("say why with --reason: the volunteer reads it on the phone");
    }
    let (api, _) = api(profile).await?;
    let path = format!("/api/v1/photos/{}/reject", urlencode(sha256));
    api.send(api.request(Method::POST, &path).json(&json!({ "visit": visit, "reason": reason }))).await?;
    eprintln!(
        "photo {sha256} of visit {visit} rejected: the place is counted without it, and the volunteer's phone shows \
         why at its next sync"
    );
    Ok(())
}
