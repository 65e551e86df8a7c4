//! `doorstep bulletin publish | list | correct | withdraw | receipts`: the office's bulletins to volunteers'
//! phones (通报), through the same API as the dashboard.

use crate::cli::BulletinArgs;
use crate::office::api;
use crate::output::{self, names, Cell, Format, Report};
use anyhow::{bail, Context, Result};
use field::api::Api;
use reqwest::Method;
use server::bulletins::{AttachmentRef, Audience, Bulletin, Draft, Receipts};
use server::http::bulletins::BulletinList;
use std::path::Path;

fn read_body(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{} is not UTF-8 text; save it as UTF-8", path.display()))
}

/// Uploads each file to the server's store (which tells its type from its bytes) before anything is published,
/// so that a refused file publishes nothing.
async fn upload(api: &Api, files: &[std::path::PathBuf]) -> Result<Vec<AttachmentRef>> {
    #[derive(serde::Deserialize)]
    struct Stored {
        sha256: String,
    }
    let mut out = Vec::new();
    for file in files {
        let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "attachment".into());
        let request = api.request(Method::POST, "/api/v1/blobs").query(&[("name", &name)]).body(bytes);
        let stored: Stored = api.json(request).await.with_context(|| format!("{}: not attached", file.display()))?;
        out.push(AttachmentRef { sha256: stored.sha256, name });
    }
    Ok(out)
}

async fn draft(api: &Api, args: &BulletinArgs) -> Result<Draft> {
    let expires_at = match args.expires {
        Some(day) => {
            let end = day.succ_opt().unwrap_or(day).and_hms_opt(0, 0, 0).expect("midnight exists");
            let local = end.and_local_timezone(chrono::Local).earliest().context("that day has no midnight here")?;
            Some(local.timestamp_millis())
        }
        None => None,
    };
    if !args.everyone && args.town.is_empty() && args.village.is_empty() && args.team.is_empty() {
        bail!("choose the audience: --everyone, or --town, --village or --team (each repeatable)");
    }
    let body = read_body(&args.body_file)?;
    Ok(Draft {
        title: args.title.clone(),
        body,
        kind: args.kind.clone(),
        fraud_type: args.fraud_type.clone(),
        priority: Some(if args.urgent { "urgent" } else { "normal" }.into()),
        audience: Audience {
            everyone: args.everyone,
            towns: args.town.clone(),
            villages: args.village.clone(),
            teams: args.team.clone(),
        },
        expires_at,
        attachments: upload(api, &args.attach).await?,
    })
}

fn said(b: &Bulletin, verb: &str) {
    println!("{}", b.id);
    eprintln!(
        "{verb} bulletin edition {} to {} ({} expected readers); phones receive it at their next sync",
        b.edition,
        b.audience_teams.iter().map(|t| if t == "*" { "everyone" } else { t.as_str() }).collect::<Vec<_>>().join(", "),
        b.expected
    );
}

pub async fn publish(profile: &field::profile::Profile, args: &BulletinArgs) -> Result<()> {
    let (api, _) = api(profile).await?;
    let draft = draft(&api, args).await?;
    let b: Bulletin = api.json(api.request(Method::POST, "/api/v1/bulletins").json(&draft)).await?;
    said(&b, "published");
    Ok(())
}

pub async fn correct(profile: &field::profile::Profile, id: &str, args: &BulletinArgs) -> Result<()> {
    let (api, _) = api(profile).await?;
    let draft = draft(&api, args).await?;
    let b: Bulletin = api.json(api.request(Method::PUT, &format!("/api/v1/bulletins/{id}")).json(&draft)).await?;
    said(&b, "corrected");
    Ok(())
}

pub async fn withdraw(profile: &field::profile::Profile, id: &str) -> Result<()> {
    let (api, _) = api(profile).await?;
    let b: Bulletin = api.json(api.request(Method::POST, &format!("/api/v1/bulletins/{id}/withdraw"))).await?;
    eprintln!("withdrawn: {} ({}); phones delete it at their next sync", b.id, b.title);
    Ok(())
}

fn day(ms: i64) -> String {
    client_core::grid::doc::millis_to_time(ms).with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M").to_string()
}

pub async fn list(profile: &field::profile::Profile, json_out: bool) -> Result<()> {
    let (api, _) = api(profile).await?;
    let list: BulletinList = api.json(api.request(Method::GET, "/api/v1/bulletins")).await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&list.bulletins)?);
        return Ok(());
    }
    let rows = list
        .bulletins
        .iter()
        .map(|b| {
            vec![
                Cell::Text(b.id.clone()),
                Cell::Text(day(b.published_at)),
                Cell::Text(b.kind.clone()),
                Cell::Text(b.priority.clone()),
                Cell::Text(b.title.clone()),
                Cell::Int(u64::try_from(b.edition).unwrap_or(0)),
                Cell::Text(format!("{}/{}", b.read, b.expected)),
                Cell::Text(b.withdrawn_at.map(day).unwrap_or_default()),
            ]
        })
        .collect();
    let report = Report {
        title: format!("{} bulletins", list.bulletins.len()),
        header: names(&["id", "published", "kind", "priority", "title", "edition", "read", "withdrawn"]),
        rows,
        json: serde_json::to_value(&list.bulletins)?,
    };
    output::write(&report, Format::Table, None)
}

pub async fn receipts(
    profile: &field::profile::Profile,
    id: &str,
    days: i64,
    format: Format,
    out: Option<&Path>,
) -> Result<()> {
    let (api, _) = api(profile).await?;
    let path = format!("/api/v1/bulletins/{id}/receipts?days={days}");
    let r: Receipts = api.json(api.request(Method::GET, &path)).await?;
    if format == Format::Table {
        let b = &r.bulletin;
        println!("{} (edition {}): {}/{} have read it", b.title, b.edition, b.read, b.expected);
        for t in &r.by_team {
            println!("  team {}: {}/{}", t.team, t.read, t.expected);
        }
        for v in &r.by_village {
            println!("  {} {}: {}/{}", v.town, v.village, v.read, v.expected);
        }
    }
    let (header, rows) = server::http::bulletins::receipts_table(&r);
    let report = Report {
        title: format!("readers of {} after {} days", r.bulletin.id, r.days),
        header,
        rows,
        json: serde_json::to_value(&r)?,
    };
    output::write(&report, format, out)
}
