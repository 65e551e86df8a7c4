//! `doorstep field bulletins` and `doorstep field read ID`: the bulletins this device holds (received at its
//! syncs, readable with no network), and the read receipt (已阅) recorded durably on the device, which travels to
//! the server at the next sync like a visit.

use crate::device::actor_of;
use crate::device::attachments;
use crate::profile::{Device, Profile};
use anyhow::{anyhow, bail, Result};
use client_core::bulletin::doc::BulletinDoc;
use client_core::bulletin::{BulletinPriority, Notice};
use client_core::store::DocStore;
use client_core::sync::DocKind;
use serde::Serialize;

/// The device's bulletins folder (its own lock; a sync holds it while it runs).
pub fn store(profile: &Profile) -> Result<DocStore<BulletinDoc>> {
    Ok(DocStore::open(&profile.docs_dir()?.join(<BulletinDoc as DocKind>::NOUN))?)
}

/// One bulletin as the list shows it.
#[derive(Debug, Serialize)]
pub struct BulletinLine {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub kind_zh: String,
    pub priority: String,
    pub edition: i64,
    pub published_at: String,
    pub read: bool,
    /// Attachments downloaded (and verified) of those it has.
    pub attachments_here: usize,
    pub attachments: usize,
}

fn local(ms: i64) -> String {
    client_core::grid::doc::millis_to_time(ms).with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M").to_string()
}

/// The bulletins held, not expired: unread urgent ones first, then unread, then read; newest first in each.
pub fn lines(profile: &Profile, device: &Device) -> Result<Vec<(BulletinLine, Notice)>> {
    let store = store(profile)?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::new();
    for id in store.ids()? {
        let doc = store.load(&id)?;
        let Some(notice) = doc.notice() else { continue };
        if notice.expired(now) {
            continue;
        }
        let here = notice.attachments.iter().filter(|a| attachments::is_held(profile, &a.sha256, a.size)).count();
        out.push((
            BulletinLine {
                id: id.clone(),
                title: notice.title.clone(),
                kind: notice.kind.id().to_string(),
                kind_zh: notice.kind.zh().to_string(),
                priority: notice.priority.id().to_string(),
                edition: notice.edition,
                published_at: local(notice.published_at),
                read: doc.read_by(&device.username),
                attachments_here: here,
                attachments: notice.attachments.len(),
            },
            notice,
        ));
    }
    let rank = |l: &BulletinLine, n: &Notice| match (l.read, n.priority) {
        (false, BulletinPriority::Urgent) => 0,
        (false, _) => 1,
        (true, _) => 2,
    };
    out.sort_by_key(|(l, n)| (rank(l, n), -n.published_at));
    Ok(out)
}

/// `doorstep field bulletins`.
pub fn list(profile: &Profile, json_out: bool) -> Result<()> {
    let device = profile.device()?;
    let lines: Vec<BulletinLine> = lines(profile, &device)?.into_iter().map(|(l, _)| l).collect();
    if json_out {
        println!("{}", serde_json::to_string_pretty(&lines)?);
        return Ok(());
    }
    if lines.is_empty() {
        println!("no bulletins on this device (they arrive at the next sync)");
        return Ok(());
    }
    for l in &lines {
        println!(
            "{}  {}{}  {} ({})  {}  edition {}, {}{}",
            &l.id[..8.min(l.id.len())],
            if l.read { "已阅 read  " } else { "未读 UNREAD" },
            if l.priority == "urgent" { "  紧急 URGENT" } else { "" },
            l.kind,
            l.kind_zh,
            l.title,
            l.edition,
            l.published_at,
            if l.attachments == 0 {
                String::new()
            } else {
                format!(", attachments {}/{} downloaded", l.attachments_here, l.attachments)
            }
        );
    }
    let unread = lines.iter().filter(|l| !l.read).count();
    if unread > 0 {
        eprintln!("{unread} unread: read one with `doorstep field read ID`");
    }
    Ok(())
}

/// The bulletin an id or its first characters (at least 4) name.
fn resolve(store: &DocStore<BulletinDoc>, id: &str) -> Result<String> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() < 4 {
        bail!("give the bulletin's id or at least its first 4 characters (see `doorstep field bulletins`)");
    }
    let found: Vec<String> = store.ids()?.into_iter().filter(|b| b.starts_with(&id)).collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(anyhow!("no bulletin {id} on this device; sync first, or see `doorstep field bulletins`")),
        _ => Err(anyhow!("{id} names {} bulletins; give more of the id", found.len())),
    }
}

/// `doorstep field read ID`: prints the bulletin and, the first time its current edition is read here, records
/// the receipt on disk before saying so (works with no network).
pub fn read(profile: &Profile, id: &str) -> Result<()> {
    let device = profile.device()?;
    let store = store(profile)?;
    let id = resolve(&store, id)?;
    let mut doc = store.load(&id)?;
    doc.set_actor(actor_of(&device)?);
    let notice = doc.notice().ok_or_else(|| anyhow!("bulletin {id} holds no readable notice; sync again"))?;
    println!("bulletin:   {id}");
    println!("title:      {}", notice.title);
    println!("kind:       {} ({})", notice.kind.id(), notice.kind.zh());
    if let Some(t) = notice.fraud_type {
        println!("fraud type: {} ({})", t.id(), t.zh());
    }
    println!("priority:   {} ({})", notice.priority.id(), notice.priority.zh());
    println!("edition:    {} (published {})", notice.edition, local(notice.published_at));
    if let Some(at) = notice.expires_at {
        println!("expires:    {}", local(at));
    }
    println!();
    println!("{}", notice.body);
    println!();
    for a in &notice.attachments {
        let state = match attachments::attachment_path(profile, &a.sha256) {
            Some(path) if attachments::is_held(profile, &a.sha256, a.size) => path.display().to_string(),
            _ => "not downloaded yet (next sync)".into(),
        };
        println!("attachment: {} ({}, {} bytes): {state}", a.name, a.content_type, a.size);
    }
    if doc.read_by(&device.username) {
        eprintln!("already marked read (已阅)");
        return Ok(());
    }
    let now = chrono::Utc::now().timestamp_millis();
    let change = doc.add_receipt(&device.username, &device.device_id, now, notice.edition);
    store.append(&id, &[change])?;
    eprintln!("marked read (已阅); the receipt reaches the office at the next sync");
    Ok(())
}

/// Receipts recorded on this device that the server has not confirmed yet.
pub fn unsent(profile: &Profile, device: &Device) -> Result<usize> {
    let store = store(profile)?;
    let actor = actor_of(device)?;
    let mut n = 0;
    for id in store.ids()? {
        let doc = store.load(&id)?;
        let confirmed = store.mark(&id)?.confirmed_heads();
        n += doc.changes_since(&confirmed).iter().filter(|c| c.actor_id() == &actor).count();
    }
    Ok(n)
}

/// The attachments of the bulletins held, not expired, that are not downloaded yet: `(sha256, size)`.
pub fn wanted_attachments(profile: &Profile) -> Result<Vec<(String, u64)>> {
    let store = store(profile)?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::new();
    for id in store.ids()? {
        let Some(notice) = store.load(&id)?.notice() else { continue };
        if notice.expired(now) {
            continue;
        }
        for a in notice.attachments {
            if !attachments::is_held(profile, &a.sha256, a.size) && !out.iter().any(|(s, _)| *s == a.sha256) {
                out.push((a.sha256, a.size));
            }
        }
    }
    Ok(out)
}

/// Every attachment of the bulletins held (downloaded or not): what the profile's `attachments/` keeps.
pub fn held_attachments(profile: &Profile) -> Result<Vec<String>> {
    let store = store(profile)?;
    let mut out = Vec::new();
    for id in store.ids()? {
        if let Some(notice) = store.load(&id)?.notice() {
            out.extend(notice.attachments.into_iter().map(|a| a.sha256));
        }
    }
    Ok(out)
}
