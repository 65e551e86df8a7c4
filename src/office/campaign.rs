//! `doorstep campaign show | check FILE | apply FILE [--dry-run]`: what counts, as the office defines it.

use crate::office::api;
use anyhow::{Context, Result};
use reqwest::Method;
use server::campaign::Plan;
use server::http::campaign::CampaignInForce;
use std::path::Path;

/// Prints the campaign in force: its version and the definition file as applied.
pub async fn show(profile: &field::profile::Profile) -> Result<()> {
    let (api, _) = api(profile).await?;
    let c: CampaignInForce = api.json(api.request(Method::GET, "/api/v1/campaign")).await?;
    match (&c.applied_at, &c.applied_by) {
        (Some(at), Some(by)) => println!("# campaign version {}, applied {at} by {by}", c.version),
        _ => println!("# campaign version 0: the default campaign"),
    }
    print!("{}", c.definition);
    Ok(())
}

fn read(file: &Path) -> Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{} is not UTF-8 text; save it as UTF-8", file.display()))
}

/// Checks a definition file on this machine: every problem with its line, or a summary of what it defines.
pub fn check(file: &Path) -> Result<()> {
    let c = client_core::campaign::parse(&read(file)?).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    println!(
        "{}: {} ({}): {} place kinds, {} deliveries, {} indicators: {}",
        file.display(),
        c.name_zh,
        c.name_en,
        c.place_kinds.len(),
        c.deliveries.len(),
        c.indicators.len(),
        c.indicators.iter().map(|i| i.id.as_str()).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// Sends the file to the server, which says what applying it changes (and, without `dry_run`, applies it).
pub async fn apply(profile: &field::profile::Profile, file: &Path, dry_run: bool) -> Result<()> {
    let text = read(file)?;
    // Checked here first, so that a mistake is reported with its line before anything is sent.
    client_core::campaign::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let (api, _) = api(profile).await?;
    let api = api.waiting(std::time::Duration::from_secs(3600))?;
    let request = api
        .request(Method::POST, &format!("/api/v1/campaign?dry_run={dry_run}"))
        .header("content-type", "application/toml")
        .body(text);
    let plan: Plan = api.json(request).await?;
    print_plan(&plan, dry_run);
    Ok(())
}

fn print_plan(p: &Plan, dry_run: bool) {
    let verb = if dry_run { "would change (dry run, nothing changed)" } else { "applied" };
    println!("campaign version {} → {}: {verb}", p.from_version, p.to_version);
    // What the file adds is shown with the Chinese name it gives it.
    let list = |what: &str, ids: &[String], names: Option<&str>| {
        let named = |id: &String| match names.and_then(|list| p.names.get(list)?.get(id)) {
            Some(n) => format!("{id} ({})", n.zh),
            None => id.clone(),
        };
        if !ids.is_empty() {
            println!("  {what}: {}", ids.iter().map(named).collect::<Vec<_>>().join(", "));
        }
    };
    list("indicators added", &p.indicators_added, Some("indicators"));
    list("indicators removed", &p.indicators_removed, None);
    list("indicators changed", &p.indicators_changed, None);
    list("place kinds added", &p.kinds_added, Some("place_kinds"));
    list("place kinds removed", &p.kinds_removed, None);
    list("deliveries added", &p.deliveries_added, Some("deliveries"));
    list("deliveries removed", &p.deliveries_removed, None);
    if p.only_names {
        println!("  nothing that counts changes (names only, or nothing)");
    }
    println!("  places whose indicators change: {}", p.places_changing);
    for v in &p.villages {
        let kinds: Vec<String> = v.places.iter().map(|(k, n)| format!("{n} {k}")).collect();
        println!("    {}: {}", v.village, kinds.join(", "));
    }
}
