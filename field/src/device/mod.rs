//! The field client: enrol a device, sync its team's grids, list places, record visits offline.
//!
//! A visit is durable when `field visit` returns: its change is appended to the grid's log and fsynced
//! before the visit id is printed.

pub mod attachments;
pub mod bulletins;
pub mod found;
pub mod photo;
pub mod photos;
pub mod tasks;

use crate::api::{Api, CallError};
use crate::device::tasks as field_tasks;
use crate::profile::{Carried, CarriedRecord, Device, Profile};
use crate::relay;
use anyhow::{anyhow, bail, Context, Result};
use automerge::ActorId;
use client_core::campaign::Campaign;
use client_core::docs::{self, Registry, Tally as DocsTally, Writer};
use client_core::grid::found::{Correction, FoundPlace, PlaceReview};
use client_core::grid::model::{Deliveries, Outcome, Visit, MAX_NOTE_BYTES};
use client_core::protocol::{self, GridReply, ReplyKind, SyncRequest, SyncResponse, PROTOCOL_VERSION};
use client_core::sign::{KeyPair, PublicKey};
use client_core::store::GridStore;
use client_core::sync::apply_reply;
use client_core::GridDoc;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};

#[derive(Deserialize)]
struct EnrolReply {
    device_id: String,
    actor: String,
    token: String,
    username: String,
    team: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    server_key: Option<String>,
}

/// What a device enrols with: the volunteer's username and password, or a one-time code from an enrolment sheet
/// (with a team's shared code, the volunteer's name among its members).
pub enum Enrolment<'a> {
    Password { username: &'a str, password: &'a str },
    Code { code: &'a str, member: Option<&'a str> },
}

pub async fn login(profile: &Profile, server: &str, enrolment: Enrolment<'_>, name: &str) -> Result<()> {
    // Never strand another user's unsent visits: they stay until synced.
    let old = profile.try_device()?;
    let mut pending_by = None;
    if let Some(old) = &old {
        let pending = pending_visits(profile, &profile.grids()?, old)?
            + field_tasks::unsent(&profile.tasks()?, old)?
            + profile.task_carry_over()?.len();
        if pending > 0 {
            pending_by = Some((pending, old.username.clone()));
        }
    }
    let strand = |pending: usize, by: &str| {
        anyhow!(
            "this profile holds {pending} unsynced visits or task outcomes by {by}; run `doorstep field sync` first, or use another --profile"
        )
    };
    if let (Enrolment::Password { username, .. }, Some((pending, by))) = (&enrolment, &pending_by) {
        if by != username {
            return Err(strand(*pending, by));
        }
    }
    let api = Api::new(server, None)?;
    // The device signs every change it writes with this key, so its visits can travel through a team hub.
    let key = KeyPair::generate();
    let body = match enrolment {
        Enrolment::Password { username, password } => json!({
            "username": username, "password": password, "device_name": name, "public_key": key.public().to_hex()
        }),
        Enrolment::Code { code, member } => json!({
            "code": code, "member": member, "device_name": name, "public_key": key.public().to_hex()
        }),
    };
    let reply: EnrolReply = api.json(api.request(Method::POST, "/api/v1/devices").json(&body)).await?;
    // A code names its person only in the reply: someone else's unsent visits stay, and this enrolment is not
    // kept (the office sees the unused device and may revoke it).
    if let Some((pending, by)) = &pending_by {
        if *by != reply.username {
            return Err(strand(*pending, by));
        }
    }
    ActorId::try_from(reply.actor.as_str()).map_err(|_| anyhow!("the server sent an invalid actor id"))?;
    // The CA that signs team hubs' certificates: from now on this device trusts hubs it vouches for.
    let ca = match api.send(api.request(Method::GET, "/api/v1/ca")).await {
        Ok(resp) => Some(resp.json::<server::tls::ca::CaInfo>().await?.certificate),
        Err(CallError::Refused { status: 404, .. }) => {
            eprintln!("{server} has no Doorstep CA certificate; this device trusts only publicly certified HTTPS hubs");
            None
        }
        Err(e) => return Err(e.into()),
    };
    let store = profile.grids()?;
    // A new enrolment gets a new actor. The old enrolment's unsent visits, found places and corrections are
    // set aside first (durably), to be recorded again under the new actor at the next sync; then the grids
    // are dropped.
    let mut carried = profile.carry_over()?;
    if let Some(old) = &old {
        carried.extend(unsent_records(&store, old)?);
    }
    profile.save_carry_over(&carried)?;
    for grid in store.grids()? {
        store.remove(&grid)?;
    }
    // The same for urgent tasks: unsent sign-fors and outcomes are set aside, then every task file goes (the
    // next sync brings the team's open tasks again).
    let tasks = profile.tasks()?;
    let mut carried_tasks = profile.task_carry_over()?;
    if let Some(old) = &old {
        carried_tasks.extend(field_tasks::unsent_entries(&tasks, old)?);
    }
    profile.save_task_carry_over(&carried_tasks)?;
    for task in tasks.tasks()? {
        tasks.remove(&task)?;
    }
    let device = Device {
        server: server.trim_end_matches('/').to_string(),
        username: reply.username.clone(),
        team: reply.team.clone(),
        device_id: reply.device_id.clone(),
        actor: reply.actor,
        token: reply.token,
        last_sync: None,
        role: reply.role,
        signing_key: Some(key.to_hex()),
        server_key: reply.server_key,
        ca_certificate: ca,
    };
    profile.save_device(&device)?;
    // Which of the team's hubs the server withdrew, so this device refuses them from its first sync through one.
    refresh_hub_trust(profile, &device, &profile.api(&device, None)?).await;
    eprintln!(
        "device enrolled for {} (team {}); run `doorstep field sync` to download the team's grids",
        reply.username,
        reply.team.as_deref().unwrap_or("none")
    );
    if !carried.is_empty() {
        eprintln!(
            "{} unsynced records (visits, found places, corrections) from the earlier enrolment are kept and go out with the next sync",
            carried.len()
        );
    }
    Ok(())
}

/// Visits, found places and corrections this enrolment recorded that the server has not confirmed.
fn unsent_records(store: &GridStore, device: &Device) -> Result<Vec<CarriedRecord>> {
    let mut out = Vec::new();
    for grid in store.grids()? {
        let doc = store.load(&grid)?;
        let confirmed = store.mark(&grid)?.confirmed_heads();
        let at_server = GridDoc::from_automerge(doc.automerge().fork_at(&confirmed)?);
        let mut keep = |record| out.push(CarriedRecord { grid: grid.clone(), record });
        for found in doc.found_places()? {
            if found.device == device.device_id && at_server.found_place(&found.place.id)?.is_none() {
                keep(Carried::FoundPlace(found));
            }
        }
        for correction in doc.corrections()? {
            if correction.device == device.device_id && at_server.correction(&correction.id.to_string())?.is_none() {
                keep(Carried::Correction(correction));
            }
        }
        for visit in doc.visits()? {
            if visit.device == device.device_id && at_server.visit(&visit.id.to_string())?.is_none() {
                keep(Carried::Visit(visit));
            }
        }
    }
    Ok(out)
}

/// Records carried-over records again under this enrolment, in grids now on the device; a record already
/// there (it reached the server under the earlier enrolment) is skipped. A record dated after this moment (the
/// clock was wrong when it was recorded, and the server refused it) is dated now. Returns how many were recorded.
fn record_carried(profile: &Profile, store: &GridStore, device: &Device) -> Result<usize> {
    let mut carried = profile.carry_over()?;
    carried.sort_by_key(|c| c.record.order());
    let grids = store.grids()?;
    let now = chrono::Utc::now();
    let mut recorded = 0;
    for c in carried.iter().filter(|c| grids.contains(&c.grid)) {
        let mut doc = load(store, device, &c.grid)?;
        let device_id = device.device_id.clone();
        let changes = match &c.record {
            Carried::FoundPlace(found) if doc.found_place(&found.place.id)?.is_none() => {
                let added_at = found.added_at.min(now);
                vec![doc.add_found_place(&FoundPlace { device: device_id, added_at, ..found.clone() })?]
            }
            Carried::Correction(correction) if doc.correction(&correction.id.to_string())?.is_none() => {
                let at = correction.at.min(now);
                doc.add_correction(&Correction { device: device_id, at, ..correction.clone() })?
            }
            Carried::Visit(visit) if doc.visit(&visit.id.to_string())?.is_none() => {
                vec![doc.add_visit(&Visit { device: device_id, at: visit.at.min(now), ..visit.clone() })?]
            }
            _ => continue,
        };
        store.append(&c.grid, &changes)?;
        recorded += 1;
    }
    Ok(recorded)
}

pub(crate) fn actor_of(device: &Device) -> Result<ActorId> {
    ActorId::try_from(device.actor.as_str()).map_err(|_| anyhow!("the profile's actor id is damaged; enrol again"))
}

pub(crate) fn load(store: &GridStore, device: &Device, grid: &str) -> Result<GridDoc> {
    let mut doc = store.load(grid)?;
    doc.set_actor(actor_of(device)?);
    Ok(doc)
}

/// Visits this device recorded that the server has not confirmed yet, per grid.
fn pending_by_grid(store: &GridStore, device: &Device) -> Result<Vec<(String, usize)>> {
    let actor = actor_of(device)?;
    store
        .grids()?
        .into_iter()
        .map(|grid| {
            let doc = store.load(&grid)?;
            let confirmed = store.mark(&grid)?.confirmed_heads();
            let n = doc.changes_since(&confirmed).iter().filter(|c| c.actor_id() == &actor).count();
            Ok((grid, n))
        })
        .collect()
}

/// Unsynced visits: recorded here and not confirmed, plus any carried over from an earlier enrolment.
fn pending_visits(profile: &Profile, store: &GridStore, device: &Device) -> Result<usize> {
    let carried = profile.carry_over()?.len();
    Ok(pending_by_grid(store, device)?.iter().map(|(_, n)| n).sum::<usize>() + carried)
}

#[derive(Default)]
struct SyncTally {
    /// Set when the answer came from a team hub (its device id) rather than the server.
    hub: Option<String>,
    sent: usize,
    stored: u64,
    received: usize,
    new_grids: Vec<String>,
    removed: Vec<String>,
    /// Grids the last answer spoke of (a hub leaves out those it does not hold).
    answered: BTreeSet<String>,
}

/// Syncs every document the device holds (its grids, its tasks, and those of every kind in `kinds`) with the
/// server, or through the team's hub at `via`.
pub async fn sync(profile: &Profile, via: Option<&str>, kinds: &Registry) -> Result<()> {
    sync_then(profile, via, kinds, PhotoUploads::Now).await
}

/// Whether a sync uploads the photos waiting after the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoUploads {
    Now,
    /// At a later sync (e.g. on Wi-Fi): the visits that reference them go now all the same.
    Later,
}

/// `sync`, with the photos uploaded now or left for a later sync.
pub async fn sync_then(profile: &Profile, via: Option<&str>, kinds: &Registry, photos: PhotoUploads) -> Result<()> {
    let mut device = profile.device()?;
    let store = profile.grids()?;
    let tasks = profile.tasks()?;
    let server = via.unwrap_or(&device.server).to_string();
    let api = profile.api(&device, via)?;
    let key = device.key_pair()?;
    let mut tally = SyncTally::default();
    let mut resend_all: BTreeSet<String> = BTreeSet::new();
    let docs_dir = profile.docs_dir()?;
    let actor = actor_of(&device)?;
    let server_key = device.server_key.as_deref().and_then(|k| PublicKey::from_hex(k).ok());
    let mut doc_resend = BTreeSet::new();
    let mut doc_tallies: HashMap<&'static str, DocsTally> = HashMap::new();
    let mut carrying = !profile.carry_over()?.is_empty();
    let mut task_sync = field_tasks::TaskSync {
        carried: profile.task_carry_over()?,
        server_key: device.server_key.as_deref().and_then(|k| PublicKey::from_hex(k).ok()),
        ..Default::default()
    };
    // Normally one round trip; another when the server asked for a document's whole history, to send visits
    // carried over from an earlier enrolment once their grids are here, or to send the sign-for (签收) of tasks
    // that just arrived.
    for _round in 0..3 {
        let writer = Writer { actor: &actor, key: key.as_ref(), server_key: server_key.as_ref() };
        let mut grids = Vec::new();
        let mut docs = HashMap::new();
        for (push, doc) in docs::device_pushes(&store, &writer, &resend_all)? {
            tally.sent += push.changes.len();
            docs.insert(push.grid.clone(), doc);
            grids.push(push);
        }
        let (task_pushes, mut task_docs) = field_tasks::build_pushes(&tasks, &writer, &mut task_sync)?;
        let doc_pushes = docs::all_pushes(kinds, &docs_dir, &writer, &doc_resend)?;
        let request = SyncRequest { protocol: PROTOCOL_VERSION, grids, tasks: Some(task_pushes), docs: doc_pushes };
        let body = protocol::compress(&protocol::encode(&request));
        let req = api
            .request(Method::POST, "/api/v1/sync")
            .header("content-type", protocol::CONTENT_TYPE)
            .header("content-encoding", protocol::CONTENT_ENCODING)
            .body(body);
        let resp = match api.send(req).await {
            Ok(r) => r,
            Err(e) => return Err(sync_failed(profile, &store, &device, e)),
        };
        let bytes = resp.bytes().await.map_err(|e| {
            let pending = pending_visits(profile, &store, &device).unwrap_or(0);
            anyhow!("the connection broke while receiving the server's answer ({e}); your {pending} unsynced visits are kept; run `doorstep field sync` again")
        })?;
        let reply: SyncResponse = protocol::decode(&bytes)?;
        tally.hub = reply.relay.clone();
        task_sync.via_hub = reply.relay.is_some();
        resend_all.clear();
        task_sync.resend_all.clear();
        tally.answered = reply.grids.iter().map(|r| r.grid.clone()).collect();
        for r in reply.grids {
            apply_grid_reply(&store, &device, docs.remove(&r.grid), r, &mut tally, &mut resend_all)?;
        }
        task_sync.tally.signed = 0;
        task_sync.tally.left_for_server =
            task_docs.keys().filter(|t| !reply.tasks.iter().any(|r| &r.task == *t)).count();
        for r in reply.tasks {
            let doc = task_docs.remove(&r.task);
            field_tasks::apply_reply(&tasks, &device, doc, r, &mut task_sync)?;
        }
        doc_tallies = docs::apply_all(kinds, &docs_dir, &writer, reply.relay.is_some(), &reply.docs, &mut doc_resend)?;
        profile.save_task_carry_over(&task_sync.carried)?;
        // A lead's profile serves as the team's hub: it remembers which tasks closed, so that devices syncing only
        // through it delete theirs too.
        if matches!(device.role.as_deref(), Some("lead") | Some("office")) {
            profile.remember_closed_tasks(std::mem::take(&mut task_sync.closed))?;
        }
        if carrying {
            record_carried(profile, &store, &device)?;
            carrying = false;
            continue;
        }
        if resend_all.is_empty()
            && task_sync.resend_all.is_empty()
            && doc_resend.is_empty()
            && task_sync.tally.signed == 0
        {
            break;
        }
    }
    if !resend_all.is_empty() || !task_sync.resend_all.is_empty() {
        bail!(
            "the server still could not place the history of {:?}; try again, or contact the office",
            resend_all.iter().chain(&task_sync.resend_all).collect::<Vec<_>>()
        );
    }
    if !doc_resend.is_empty() {
        bail!("the server still could not place the history of {doc_resend:?}; try again, or contact the office");
    }
    for (kind, t) in doc_tallies.iter().filter(|(_, t)| **t != DocsTally::default()) {
        println!("{kind}: {} new, {} updated, {} deleted", t.new, t.updated, t.deleted);
    }
    let task_tally = task_sync.tally;
    // The attachments of the bulletins held, from the same origin (a hub serves those it cached); a file not
    // downloaded now is tried again, from where it stopped, at the next sync. Those of bulletins no longer held
    // go (a lead's hub then stops serving them too).
    attachments::prune_attachments(profile, &bulletins::held_attachments(profile)?)?;
    let wanted = bulletins::wanted_attachments(profile)?;
    if !wanted.is_empty() {
        let fetched = attachments::fetch_attachments(profile, &server, &device.token, &wanted).await?;
        println!(
            "attachments: {} downloaded{}",
            fetched.downloaded.len(),
            match fetched.failed.first() {
                Some((sha, why)) => format!(
                    ", {} not yet (tried again at the next sync): {}: {why}",
                    fetched.failed.len(),
                    &sha[..12.min(sha.len())]
                ),
                None => String::new(),
            }
        );
    }
    // Photos after the visits that reference them, from the same origin (a hub keeps them for the server); an
    // upload cut short goes on from where it stopped at the next sync.
    let photos_waiting = self::photos::waiting(profile)?.len();
    if photos == PhotoUploads::Later && photos_waiting > 0 {
        println!("photos: {photos_waiting} waiting (left for a later sync)");
    } else if photos_waiting > 0 {
        let api = profile.api(&device, Some(&server))?;
        let up = self::photos::upload_photos(profile, &api).await?;
        println!(
            "photos: {} uploaded, {} waiting{}",
            up.sent,
            up.waiting,
            match up.refused.first() {
                Some((sha, why)) => format!(", {} refused: {}: {why}", up.refused.len(), &sha[..12]),
                None => String::new(),
            }
        );
    }
    // Carried records are now recorded under this enrolment and confirmed, or their grid is gone.
    let still_carried: Vec<CarriedRecord> =
        profile.carry_over()?.into_iter().filter(|c| !store.grids().unwrap_or_default().contains(&c.grid)).collect();
    profile.save_carry_over(&still_carried)?;
    let pending = pending_visits(profile, &store, &device)?;
    let held = tasks.tasks()?.len();
    // From the server, or passed on by the hub: the newest list of withdrawn hubs is kept.
    refresh_hub_trust(profile, &device, &api).await;
    if tally.hub.is_some() {
        let not_on_hub: Vec<String> = store.grids()?.into_iter().filter(|g| !tally.answered.contains(g)).collect();
        let unsent_tasks = field_tasks::unsent(&tasks, &device)?;
        println!(
            "synced {} grids through the hub at {server}: sent {} changes ({} new to the hub), received {}{}{}; \
             {pending} visits not yet at the server (the hub forwards them); {held} urgent tasks on this device{}{}{}; \
             {unsent_tasks} sign-fors and outcomes not yet at the server",
            tally.answered.len(),
            tally.sent + task_tally.sent,
            tally.stored,
            tally.received,
            if tally.new_grids.is_empty() {
                String::new()
            } else {
                format!("; new grids: {}", tally.new_grids.join(", "))
            },
            if not_on_hub.is_empty() {
                String::new()
            } else {
                format!("; not on the hub, left for the server: {}", not_on_hub.join(", "))
            },
            if task_tally.new == 0 {
                String::new()
            } else {
                format!(" ({} new: see `doorstep field tasks`)", task_tally.new)
            },
            if task_tally.deleted == 0 {
                String::new()
            } else {
                format!("; {} closed tasks deleted from this device", task_tally.deleted)
            },
            if task_tally.left_for_server == 0 {
                String::new()
            } else {
                format!("; {} tasks left for the server", task_tally.left_for_server)
            },
        );
        return Ok(());
    }
    device.last_sync = Some(chrono::Utc::now());
    profile.save_device(&device)?;
    let unsent = pending
        + field_tasks::unsent(&tasks, &device)?
        + profile.task_carry_over()?.len()
        + bulletins::unsent(profile, &device)?;
    report_status(&api, unsent).await;
    println!(
        "synced {} grids with {server}: sent {} changes ({} new to the server), received {}{}{}; {pending} visits unsynced; \
         {held} urgent tasks on this device{}{}",
        store.grids()?.len(),
        tally.sent + task_tally.sent,
        tally.stored,
        tally.received,
        if tally.new_grids.is_empty() { String::new() } else { format!("; new grids: {}", tally.new_grids.join(", ")) },
        if tally.removed.is_empty() { String::new() } else { format!("; grids no longer assigned, removed: {}", tally.removed.join(", ")) },
        if task_tally.new == 0 { String::new() } else { format!(" ({} new: see `doorstep field tasks`)", task_tally.new) },
        if task_tally.deleted == 0 { String::new() } else { format!("; {} closed tasks deleted from this device", task_tally.deleted) },
    );
    Ok(())
}

/// Tells the server which app this is and how many records it still holds unsent, for the devices page of the
/// office and the lead. Only a hint: a failure (an older server) is reported and changes nothing.
async fn report_status(api: &Api, unsent: usize) {
    let body = json!({ "app_version": concat!("cli ", env!("CARGO_PKG_VERSION")), "unsent": unsent });
    if let Err(e) = api.send(api.request(Method::POST, "/api/v1/devices/status").json(&body)).await {
        eprintln!("could not report this device's status to the server ({e}); the sync itself is done");
    }
}

/// Refreshes the list of the team's withdrawn hubs (`hub_trust`); a failure is reported and changes nothing (the
/// list held stays in force, and the next sync tries again).
async fn refresh_hub_trust(profile: &Profile, device: &Device, api: &Api) {
    if let Err(e) = crate::hub::trust::refresh(profile, device, api).await {
        eprintln!("note: the list of revoked team hubs could not be refreshed ({e:#}); the next sync tries again");
    }
}

fn sync_failed(profile: &Profile, store: &GridStore, device: &Device, e: CallError) -> anyhow::Error {
    let pending = pending_visits(profile, store, device).unwrap_or(0);
    match e {
        CallError::Unreachable { .. } => {
            anyhow!("{e}\nnothing was lost: {pending} unsynced visits stay on this device; run `doorstep field sync` again when the server is reachable")
        }
        CallError::Refused { status: 401, .. } => {
            anyhow!("the server refused this device: {e}\n{pending} unsynced visits stay on this device; ask the office, then enrol again with `doorstep field login` (unsynced visits are kept)")
        }
        CallError::Refused { .. } => {
            anyhow!("the server refused the sync: {e}\nnothing was lost: {pending} unsynced visits stay on this device")
        }
        CallError::Untrusted { .. } => {
            anyhow!("{e}\nnothing was lost: {pending} unsynced visits stay on this device")
        }
    }
}

fn apply_grid_reply(
    store: &GridStore,
    device: &Device,
    doc: Option<GridDoc>,
    reply: GridReply,
    tally: &mut SyncTally,
    resend_all: &mut BTreeSet<String>,
) -> Result<()> {
    check_grid_code(&reply.grid)?;
    tally.stored += u64::from(reply.stored);
    if let Some(contacts) = &reply.contacts {
        store.set_contacts(&reply.grid, contacts)?;
    }
    // A hub's heads are not the server's: they confirm nothing about what the server holds.
    let from_server = tally.hub.is_none();
    relay::keep_from_reply(store, &reply)?;
    match (reply.kind, doc) {
        (ReplyKind::New, _) => {
            let snapshot = reply.snapshot.as_ref().context("the server sent a new grid without its document")?;
            let mut doc = GridDoc::load(snapshot)?;
            doc.set_actor(actor_of(device)?);
            // Keep anything already held for this grid (e.g. from an earlier enrolment of this profile).
            if let Ok(existing) = store.load(&reply.grid) {
                doc.apply_changes(existing.changes_since(&[]))?;
            }
            store.replace(&reply.grid, &doc)?;
            let mut mark = store.mark(&reply.grid)?;
            let confirmed = match from_server {
                true => protocol::hashes_from_wire(&reply.heads)?,
                false => relay::attested_heads(store, &reply.grid)?,
            };
            mark.set_confirmed(&confirmed);
            mark.last_sync = Some(chrono::Utc::now());
            store.set_mark(&reply.grid, &mark)?;
            tally.new_grids.push(reply.grid);
        }
        (ReplyKind::ResendAll, _) => {
            resend_all.insert(reply.grid);
        }
        (kind @ (ReplyKind::Synced | ReplyKind::Unassigned), Some(mut doc)) => {
            let applied = apply_reply(&mut doc, &reply)?;
            tally.received += applied.new_changes.len();
            // Changes first, then the mark: a crash in between only makes the next push repeat itself.
            store.append(&reply.grid, &applied.new_changes)?;
            if !from_server {
                return Ok(());
            }
            let mut mark = store.mark(&reply.grid)?;
            mark.set_confirmed(&applied.confirmed);
            mark.last_sync = Some(chrono::Utc::now());
            store.set_mark(&reply.grid, &mark)?;
            relay::forget_delivered_signatures(store, &reply.grid, &doc, &applied.confirmed)?;
            if kind == ReplyKind::Unassigned {
                let actor = actor_of(device)?;
                let unsent = doc.changes_since(&applied.confirmed).iter().any(|c| c.actor_id() == &actor);
                if !unsent {
                    store.remove(&reply.grid)?;
                    tally.removed.push(reply.grid);
                }
            }
        }
        (_, None) => bail!("the server answered for grid {} which this device did not send", reply.grid),
    }
    Ok(())
}

/// Grid codes become file names: refuse anything that could escape the grids folder.
fn check_grid_code(code: &str) -> Result<()> {
    let ok = !code.is_empty()
        && code.len() <= 200
        && !code.starts_with('.')
        && code.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        bail!("the server sent an unusable grid code {code:?}")
    }
}

#[derive(Serialize)]
struct PlaceLine {
    place_id: String,
    grid: String,
    kind: String,
    label: String,
    address: Option<String>,
    reached: Vec<String>,
    missing: Vec<String>,
    excluded: bool,
    needs_revisit: bool,
    visits: usize,
    /// Found in the field and not yet reviewed by the office.
    awaiting_review: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact_phone: Option<String>,
}

pub fn places(profile: &Profile, grid: Option<&str>, todo: bool, json_out: bool) -> Result<()> {
    let device = profile.device()?;
    let store = profile.grids()?;
    let campaign = held_campaign(profile)?;
    let grids = store.grids()?;
    if grids.is_empty() {
        bail!("no grids on this device yet; run `doorstep field sync` while connected");
    }
    if let Some(g) = grid {
        if !grids.iter().any(|x| x == g) {
            bail!("grid {g} is not on this device; its grids are: {}", grids.join(", "));
        }
    }
    let mut lines = Vec::new();
    for code in grids.iter().filter(|c| grid.is_none_or(|g| g == c.as_str())) {
        let doc = load(&store, &device, code)?;
        let rural = doc.grid_info()?.is_some_and(|i| i.is_rural());
        let visits = doc.visits()?;
        // Visits of a place merged into another count for that other place, as on the server.
        let merged = doc.merged_places()?;
        let mut by_place: HashMap<&str, Vec<&Visit>> = HashMap::new();
        for v in &visits {
            let place = merged.get(&v.place_id).unwrap_or(&v.place_id);
            by_place.entry(place.as_str()).or_default().push(v);
        }
        let awaiting_review: BTreeSet<String> =
            doc.found_places()?.into_iter().filter(|p| p.review.is_none()).map(|p| p.place.id).collect();
        let mut places = doc.active_places()?;
        places.sort_by(|a, b| a.id.cmp(&b.id));
        let contacts: HashMap<String, client_core::protocol::Contact> =
            store.contacts(code)?.into_iter().map(|c| (c.place_id.clone(), c)).collect();
        for p in places {
            let pv = by_place.get(p.id.as_str()).cloned().unwrap_or_default();
            let cov = campaign.place_coverage(p.kind, rural, pv);
            if todo && cov.is_done() {
                continue;
            }
            let contact = contacts.get(&p.id);
            let awaiting_review = awaiting_review.contains(&p.id);
            lines.push(PlaceLine {
                place_id: p.id,
                grid: code.clone(),
                kind: p.kind.id().to_string(),
                label: p.label,
                address: p.address,
                reached: cov.reached.clone(),
                missing: cov.missing.clone(),
                excluded: cov.excluded,
                needs_revisit: cov.needs_revisit,
                visits: cov.visit_count,
                awaiting_review,
                contact_name: contact.and_then(|c| c.name.clone()),
                contact_phone: contact.and_then(|c| c.phone.clone()),
            });
        }
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&lines)?);
        return Ok(());
    }
    // Urgent tasks come first: the volunteer sees them before the day's round.
    let urgent: Vec<_> = field_tasks::lines(profile, &device)?.into_iter().filter(|l| l.state != "done").collect();
    if !urgent.is_empty() {
        println!("URGENT dissuasion tasks ({}): open one with `doorstep field task TASK_ID`", urgent.len());
        field_tasks::print_table(&urgent);
    }
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(["place", "grid", "kind", "label", "to do", "visits"]);
    for l in &lines {
        let status = if l.excluded {
            "gone (excluded)".to_string()
        } else if l.missing.is_empty() {
            "done".to_string()
        } else {
            format!("{}{}", l.missing.join(", "), if l.needs_revisit { " (revisit)" } else { "" })
        };
        let label = if l.awaiting_review { format!("{} (new, awaiting review)", l.label) } else { l.label.clone() };
        t.add_row([l.place_id.clone(), l.grid.clone(), l.kind.clone(), label, status, l.visits.to_string()]);
    }
    println!("{t}");
    eprintln!("{} places", lines.len());
    Ok(())
}

/// What the volunteer recorded at the door.
pub struct VisitInput {
    pub place_id: String,
    pub deliveries: Deliveries,
    pub outcome: Option<Outcome>,
    pub note: Option<String>,
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    pub gps: Option<(f64, f64)>,
    /// Photo files to shrink and keep with the visit.
    pub photos: Vec<std::path::PathBuf>,
}

pub(crate) fn check_gps(lat: f64, lon: f64) -> Result<()> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        bail!("--gps {lat},{lon} is outside the valid range (latitude -90..90, longitude -180..180)");
    }
    Ok(())
}

/// The campaign this device counts with and offers deliveries of: the newest version it received with its
/// sync (the default campaign until it receives one).
pub(crate) fn held_campaign(profile: &Profile) -> Result<Campaign> {
    Ok(client_core::campaign::doc::held(&profile.docs_dir()?).1)
}

pub fn visit(profile: &Profile, input: VisitInput) -> Result<()> {
    let device = profile.device()?;
    let outcome = input.outcome.unwrap_or(Outcome::Completed);
    if outcome == Outcome::Gone && input.deliveries.any() {
        bail!(
            "a place recorded as gone cannot also have received materials; drop --outcome gone or the delivery flags"
        );
    }
    let campaign = held_campaign(profile)?;
    if let Some(unknown) = input.deliveries.iter().find(|d| !campaign.deliveries.iter().any(|c| c.id == *d)) {
        let ids: Vec<&str> = campaign.deliveries.iter().map(|d| d.id.as_str()).collect();
        bail!("{unknown:?} is not a delivery of the campaign this device holds; it has: {}", ids.join(", "));
    }
    if let Some(note) = &input.note {
        if note.len() > MAX_NOTE_BYTES {
            bail!("the note is {} bytes; notes are limited to {MAX_NOTE_BYTES}", note.len());
        }
    }
    if let Some((lat, lon)) = input.gps {
        check_gps(lat, lon)?;
    }
    // The photos are kept (durably) before the visit that references them is written: a crash in between leaves
    // a photo no visit names, never a visit whose photo is missing.
    let photo_refs = photos::take_photos(profile, &input.photos)?;
    let store = profile.grids()?;
    let grids = store.grids()?;
    for grid in &grids {
        let mut doc = load(&store, &device, grid)?;
        if doc.place(&input.place_id)?.is_none() {
            continue;
        }
        let place_id = match doc.found_place(&input.place_id)?.and_then(|p| p.review) {
            Some(PlaceReview::Rejected) => bail!(
                "the office found that place {} is not a place; add it again with `doorstep field add-place` if it is",
                input.place_id
            ),
            Some(PlaceReview::MergedInto(target)) => {
                eprintln!("place {} is a duplicate of {target}; the visit is recorded for {target}", input.place_id);
                target
            }
            _ => input.place_id.clone(),
        };
        let visit = Visit {
            id: uuid::Uuid::now_v7(),
            place_id,
            volunteer: device.username.clone(),
            device: device.device_id.clone(),
            at: input.at.unwrap_or_else(chrono::Utc::now),
            outcome,
            deliveries: input.deliveries,
            note: input.note.clone(),
            gps: input.gps,
            photos: photo_refs,
        };
        let change = doc.add_visit(&visit)?;
        store.append(grid, &[change])?;
        println!("{}", visit.id);
        return Ok(());
    }
    if grids.is_empty() {
        bail!("no grids on this device yet; run `doorstep field sync` while connected");
    }
    bail!(
        "place {} is not in this device's grids ({}); check the id with `doorstep field places`",
        input.place_id,
        grids.join(", ")
    )
}

pub fn status(profile: &Profile, json_out: bool) -> Result<()> {
    let device = profile.device()?;
    let store = profile.grids()?;
    let per_grid = pending_by_grid(&store, &device)?;
    let total = pending_visits(profile, &store, &device)?;
    let tasks = profile.tasks()?;
    let unsent_task_entries = field_tasks::unsent(&tasks, &device)?;
    let held_tasks = tasks.tasks()?.len();
    drop(tasks);
    let open_tasks = field_tasks::lines(profile, &device)?.iter().filter(|l| l.state != "done").count();
    let held_bulletins = bulletins::lines(profile, &device)?;
    let unread = held_bulletins.iter().filter(|(l, _)| !l.read).count();
    let unsent_receipts = bulletins::unsent(profile, &device)?;
    let photos_waiting = photos::waiting(profile)?;
    let photo_bytes: u64 = photos_waiting.iter().map(|(_, size)| size).sum();
    let rejected = photos::rejected(&store, &device)?;
    if json_out {
        let grids: Vec<_> = per_grid.iter().map(|(g, n)| json!({"grid": g, "unsynced_visits": n})).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "server": device.server, "username": device.username, "team": device.team,
                "device_id": device.device_id, "last_sync": device.last_sync,
                "unsynced_visits": total, "grids": grids,
                "tasks": held_tasks, "open_tasks": open_tasks, "unsynced_task_entries": unsent_task_entries,
                "bulletins": held_bulletins.len(), "unread_bulletins": unread, "unsynced_receipts": unsent_receipts,
                "photos_to_upload": photos_waiting.len(), "photo_bytes_to_upload": photo_bytes,
                "photos_rejected": rejected,
            }))?
        );
        return Ok(());
    }
    println!("server:          {}", device.server);
    println!("volunteer:       {} (team {})", device.username, device.team.as_deref().unwrap_or("none"));
    println!("device:          {}", device.device_id);
    println!("last sync:       {}", device.last_sync.map(|t| t.to_rfc3339()).unwrap_or_else(|| "never".into()));
    println!("unsynced visits: {total}");
    println!(
        "urgent tasks:    {held_tasks} ({open_tasks} to do; {unsent_task_entries} unsynced sign-fors and outcomes)"
    );
    println!("bulletins:       {} ({unread} unread; {unsent_receipts} unsynced read receipts)", held_bulletins.len());
    println!("photos to upload: {} ({} KB)", photos_waiting.len(), photo_bytes.div_ceil(1024));
    for r in &rejected {
        println!("  photo of place {} rejected by the office: {}", r.place_id, r.reason);
    }
    for (g, n) in per_grid {
        println!("  grid {g}: {n} unsynced");
    }
    Ok(())
}
