//! Urgent dissuasion tasks on the field device: their part of `field sync` (receive, sign for, send outcomes,
//! delete once closed), and `field tasks`, `field task` and `field task-done`, which work with no network.
//!
//! An outcome is durable when `field task-done` prints its id: its change is appended to the task's log and
//! fsynced first, exactly like a visit.
//!
//! Task changes travel like grid changes: signed by the device that wrote them, with the signatures of
//! team-mates' changes received from a hub kept (`tasks/<id>.sigs`) and passed on, and the server's latest
//! attestation kept (`tasks/<id>.attest`) for hubs.

use crate::profile::{CarriedTaskEntry, ClosedTask, Device, Profile};
use crate::relay;
use anyhow::{anyhow, bail, Context, Result};
use automerge::{ActorId, ChangeHash};
use client_core::protocol::{self, TaskPush, TaskReply, TaskReplyKind};
use client_core::sign::{task_subject, KeyPair, PublicKey};
use client_core::sync;
use client_core::task::doc::TaskDoc;
use client_core::task::model::{yuan_text, ContactMethod, Sign, SignKind, TaskInfo, TaskOutcome};
use client_core::task::store::TaskStore;
use client_core::task::sync::{all_confirmed, all_listed};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

fn actor_of(device: &Device) -> Result<ActorId> {
    ActorId::try_from(device.actor.as_str()).map_err(|_| anyhow!("the profile's actor id is damaged; enrol again"))
}

fn load(store: &TaskStore, device: &Device, task: &str) -> Result<TaskDoc> {
    let mut doc = store.load(task)?;
    doc.set_actor(actor_of(device)?);
    Ok(doc)
}

// ---------- sync ----------

/// What the task part of a sync did, for the summary line.
#[derive(Default)]
pub struct TaskTally {
    pub sent: usize,
    pub new: usize,
    pub deleted: usize,
    /// Sign-for entries recorded while applying the answer, to send in another round.
    pub signed: usize,
    /// Tasks a hub left out of its answer (it does not hold them, or cannot check what the device sends for a
    /// task it knows to be closed): they stay as they are until the device syncs with the server.
    pub left_for_server: usize,
}

/// The task part of one `field sync`, carried from round to round.
#[derive(Default)]
pub struct TaskSync {
    pub tally: TaskTally,
    /// Tasks whose whole history goes out in the next round.
    pub resend_all: BTreeSet<String>,
    pub carried: Vec<CarriedTaskEntry>,
    /// The answer came from a team hub: its heads are not the server's and confirm nothing.
    pub via_hub: bool,
    /// The server's key, to check the attestations a hub passes on before trusting them.
    pub server_key: Option<PublicKey>,
    /// Tasks the server said are closed and this device deleted, for a lead's profile to remember when it
    /// serves as the team's hub.
    pub closed: Vec<ClosedTask>,
}

/// One push per task held (the whole history of those in `resend_all`), and an empty one per task that only
/// carried-over entries name: its answer brings the task's whole history, even once closed, so that those
/// entries can still be delivered. Each push carries the signatures of its changes (this device's own, and
/// team-mates' it received from a hub) and the server's latest attestation.
pub fn build_pushes(
    store: &TaskStore,
    device: &Device,
    key: Option<&KeyPair>,
    sync: &mut TaskSync,
) -> Result<(Vec<TaskPush>, HashMap<String, TaskDoc>)> {
    let mut pushes = Vec::new();
    let mut docs = HashMap::new();
    let held = store.tasks()?;
    let actor = actor_of(device)?;
    for task in &held {
        let doc = load(store, device, task)?;
        let confirmed = store.mark(task)?.confirmed_heads();
        let since = (!sync.resend_all.contains(task)).then_some(confirmed.as_slice());
        let mut push = sync::build_push(task, &doc, since);
        let changes = doc.changes_since(since.unwrap_or(&[]));
        push.signatures = relay::signatures_for(&changes, &actor, key, &store.signatures(task)?);
        push.attestation = store.attestation(task)?;
        sync.tally.sent += push.changes.len();
        pushes.push(push);
        docs.insert(task.clone(), doc);
    }
    let wanted: BTreeSet<&String> = sync.carried.iter().map(|c| &c.task).filter(|t| !held.contains(t)).collect();
    pushes.extend(wanted.into_iter().map(|t| {
        // The newest statement the earlier enrolment kept: the server sends a closed task only to its holders.
        let kept = sync.carried.iter().filter(|c| &c.task == t).filter_map(|c| c.attestation.clone());
        TaskPush { task: t.clone(), attestation: kept.max_by_key(|a| a.at), ..Default::default() }
    }));
    Ok((pushes, docs))
}

/// Entries an enrolment recorded that the server has not confirmed, to carry over to the next enrolment.
pub fn unsent_entries(store: &TaskStore, device: &Device) -> Result<Vec<CarriedTaskEntry>> {
    let mut out = Vec::new();
    for task in store.tasks()? {
        let doc = store.load(&task)?;
        let attestation = store.attestation(&task)?;
        let confirmed = store.mark(&task)?.confirmed_heads();
        let at_server = TaskDoc::from_automerge(doc.automerge().fork_at(&confirmed)?);
        for sign in doc.signs()? {
            if sign.device == device.device_id && at_server.sign(&sign.id.to_string())?.is_none() {
                out.push(CarriedTaskEntry {
                    task: task.clone(),
                    sign: Some(sign),
                    outcome: None,
                    attestation: attestation.clone(),
                });
            }
        }
        for outcome in doc.outcomes()? {
            if outcome.device == device.device_id && at_server.outcome(&outcome.id.to_string())?.is_none() {
                out.push(CarriedTaskEntry {
                    task: task.clone(),
                    sign: None,
                    outcome: Some(outcome),
                    attestation: attestation.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Records the carried-over entries of a task now on the device, under this enrolment, and forgets them from
/// `carried` (the caller saves the list after the sync). Entries already in the document are skipped, so a crash
/// between the two writes repeats nothing. Returns how many were recorded.
fn record_carried(
    store: &TaskStore,
    device: &Device,
    task: &str,
    doc: &mut TaskDoc,
    carried: &mut Vec<CarriedTaskEntry>,
) -> Result<usize> {
    let mut changes = Vec::new();
    for c in carried.iter().filter(|c| c.task == task) {
        if let Some(s) = &c.sign {
            if doc.sign(&s.id.to_string())?.is_none() {
                changes.push(doc.add_sign(&Sign { device: device.device_id.clone(), ..s.clone() })?);
            }
        }
        if let Some(o) = &c.outcome {
            if doc.outcome(&o.id.to_string())?.is_none() {
                changes.push(doc.add_outcome(&TaskOutcome { device: device.device_id.clone(), ..o.clone() })?);
            }
        }
    }
    store.append(task, &changes)?;
    carried.retain(|c| c.task != task);
    Ok(changes.len())
}

/// Applies the answer (of the server, or of a hub) for one task.
pub fn apply_reply(
    store: &TaskStore,
    device: &Device,
    doc: Option<TaskDoc>,
    reply: TaskReply,
    sync: &mut TaskSync,
) -> Result<()> {
    check_task_id(&reply.task)?;
    let carries = sync.carried.iter().any(|c| c.task == reply.task);
    // Signatures before changes: a stored change never lacks what it needs to travel on.
    relay::keep(store, &reply.task, &reply.signatures, reply.attestation.as_ref())?;
    match (reply.kind, doc) {
        (TaskReplyKind::New, _) => {
            let snapshot = reply.snapshot.as_ref().context("the server sent a new task without its document")?;
            let mut doc = TaskDoc::load(snapshot)?;
            doc.set_actor(actor_of(device)?);
            if let Ok(existing) = store.load(&reply.task) {
                doc.apply_changes(existing.changes_since(&[]))?;
            }
            // Signed for (签收) the moment the task is on the device; the sign-for goes out in the next round.
            if !signed(&doc, device, SignKind::Received)? {
                add_sign(&mut doc, device, SignKind::Received)?;
                sync.tally.signed += 1;
            }
            store.replace(&reply.task, &doc)?;
            let confirmed = match sync.via_hub {
                false => protocol::hashes_from_wire(&reply.heads)?,
                true => attested_heads_held(&doc, &reply, sync.server_key.as_ref()),
            };
            let mut mark = store.mark(&reply.task)?;
            mark.set_confirmed(&confirmed);
            mark.last_sync = Some(chrono::Utc::now());
            store.set_mark(&reply.task, &mark)?;
            sync.tally.new += 1;
            sync.tally.signed += record_carried(store, device, &reply.task, &mut doc, &mut sync.carried)?;
        }
        // Asked for because carried-over entries name it: the answer holds the task's whole history.
        (TaskReplyKind::Synced | TaskReplyKind::Closed, None) if carries => {
            let mut doc = TaskDoc::from_automerge(automerge::Automerge::new());
            let applied = sync::apply_reply(&mut doc, &reply)?;
            let mut doc = TaskDoc::load(&doc.save())?;
            doc.set_actor(actor_of(device)?);
            store.replace(&reply.task, &doc)?;
            let confirmed = match sync.via_hub {
                false => applied.confirmed,
                true => attested_heads_held(&doc, &reply, sync.server_key.as_ref()),
            };
            let mut mark = store.mark(&reply.task)?;
            mark.set_confirmed(&confirmed);
            store.set_mark(&reply.task, &mark)?;
            sync.tally.signed += record_carried(store, device, &reply.task, &mut doc, &mut sync.carried)?;
        }
        (TaskReplyKind::ResendAll, _) => {
            sync.resend_all.insert(reply.task);
        }
        // A hub's heads confirm nothing; what it sent is kept, and goes to the server with its signatures.
        (TaskReplyKind::Synced, Some(mut doc)) if sync.via_hub => {
            let applied = sync::apply_reply(&mut doc, &reply)?;
            store.append(&reply.task, &applied.new_changes)?;
        }
        // A hub that no longer holds a closed task says so with the server's list of the task's changes: nothing
        // this device holds may be missing from it.
        (TaskReplyKind::Closed, Some(doc)) if sync.via_hub => {
            let listed = sync
                .server_key
                .as_ref()
                .zip(reply.attestation.as_ref())
                .and_then(|(key, a)| key.attested_heads(&task_subject(&reply.task), a));
            if listed.is_some_and(|listed| all_listed(&doc, &listed)) {
                store.remove(&reply.task)?;
                sync.tally.deleted += 1;
            }
        }
        (kind @ (TaskReplyKind::Synced | TaskReplyKind::Closed), Some(mut doc)) => {
            let applied = sync::apply_reply(&mut doc, &reply)?;
            // Changes first, then the mark: a crash in between only makes the next push repeat itself.
            store.append(&reply.task, &applied.new_changes)?;
            let mut mark = store.mark(&reply.task)?;
            mark.set_confirmed(&applied.confirmed);
            mark.last_sync = Some(chrono::Utc::now());
            store.set_mark(&reply.task, &mark)?;
            relay::forget_signatures_but(store, &reply.task, &doc.changes_since(&applied.confirmed))?;
            // Deleted only once the server holds everything this device holds: its own entries, and those of
            // team-mates it relays (a hub's copy may be the only one left of them).
            if kind == TaskReplyKind::Closed && all_confirmed(&doc, &applied.confirmed) {
                if let Some(attestation) = reply.attestation {
                    sync.closed.push(ClosedTask {
                        task: reply.task.clone(),
                        learned_at: chrono::Utc::now(),
                        attestation,
                    });
                }
                store.remove(&reply.task)?;
                sync.tally.deleted += 1;
            }
        }
        (_, None) => bail!("the server answered for task {} which this device did not send", reply.task),
    }
    Ok(())
}

/// The heads the server attested to holding, as a hub passed them on, if they are genuine and this device holds
/// them (then they are confirmed); none otherwise (the next push to the server sends the whole history).
fn attested_heads_held(doc: &TaskDoc, reply: &TaskReply, server_key: Option<&PublicKey>) -> Vec<ChangeHash> {
    let heads = server_key
        .zip(reply.attestation.as_ref())
        .and_then(|(key, a)| key.attested_heads(&task_subject(&reply.task), a))
        .unwrap_or_default();
    if doc.contains_all(&heads) {
        heads
    } else {
        Vec::new()
    }
}

/// Task ids become file names: only UUIDs are accepted.
fn check_task_id(id: &str) -> Result<()> {
    uuid::Uuid::parse_str(id).map(|_| ()).map_err(|_| anyhow!("the server sent an unusable task id {id:?}"))
}

fn signed(doc: &TaskDoc, device: &Device, kind: SignKind) -> Result<bool> {
    Ok(doc.signs()?.iter().any(|s| s.kind == kind && s.device == device.device_id))
}

fn add_sign(doc: &mut TaskDoc, device: &Device, kind: SignKind) -> Result<automerge::Change> {
    let sign = Sign {
        id: uuid::Uuid::now_v7(),
        kind,
        volunteer: device.username.clone(),
        device: device.device_id.clone(),
        at: chrono::Utc::now(),
    };
    Ok(doc.add_sign(&sign)?)
}

/// Sign-for entries and outcomes this device recorded that the server has not confirmed.
pub fn unsent(store: &TaskStore, device: &Device) -> Result<usize> {
    let actor = actor_of(device)?;
    let mut n = 0;
    for task in store.tasks()? {
        let doc = store.load(&task)?;
        let confirmed = store.mark(&task)?.confirmed_heads();
        n += doc.changes_since(&confirmed).iter().filter(|c| c.actor_id() == &actor).count();
    }
    Ok(n)
}

// ---------- listing and recording ----------

/// A task as the device lists it.
#[derive(Serialize)]
pub struct TaskLine {
    pub task_id: String,
    pub priority: String,
    pub fraud_type: String,
    pub person: String,
    pub address: Option<String>,
    pub place_id: Option<String>,
    pub grid: Option<String>,
    pub deadline: String,
    /// `new` (not opened here), `opened`, `attempted` (an outcome, person not reached) or `done` (reached).
    pub state: &'static str,
    pub overdue: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<String>,
}

fn local(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M").to_string()
}

fn line(doc: &TaskDoc, device: &Device) -> Result<(TaskInfo, TaskLine)> {
    let info = doc.info()?;
    // After a follow-up request, only outcomes recorded since count.
    let since = info.follow_up.as_ref().map(|f| f.at);
    let outcomes: Vec<TaskOutcome> = doc.outcomes()?.into_iter().filter(|o| since.is_none_or(|s| o.at > s)).collect();
    let state = if outcomes.iter().any(|o| o.reached) {
        "done"
    } else if !outcomes.is_empty() {
        "attempted"
    } else if signed(doc, device, SignKind::Opened)? {
        "opened"
    } else {
        "new"
    };
    let line = TaskLine {
        task_id: info.id.to_string(),
        priority: info.priority.id().to_string(),
        fraud_type: info.fraud_type.id().to_string(),
        person: info.target.label.clone(),
        address: info.target.address.clone(),
        place_id: info.target.place_id.clone(),
        grid: info.target.grid.clone(),
        deadline: local(info.deadline),
        state,
        overdue: state != "done" && info.deadline < chrono::Utc::now(),
        follow_up: info.follow_up.as_ref().map(|f| f.comment.clone()),
    };
    Ok((info, line))
}

/// The tasks on this device, those still to do first, then by priority and deadline.
pub fn lines(profile: &Profile, device: &Device) -> Result<Vec<TaskLine>> {
    let store = profile.tasks()?;
    let mut out = Vec::new();
    for task in store.tasks()? {
        let (info, line) = line(&load(&store, device, &task)?, device)?;
        out.push((line.state == "done", info.priority, info.deadline, line));
    }
    out.sort_by_key(|a| (a.0, a.1, a.2));
    Ok(out.into_iter().map(|(.., l)| l).collect())
}

/// `doorstep field tasks`.
pub fn list(profile: &Profile, json_out: bool) -> Result<()> {
    let device = profile.device()?;
    let lines = lines(profile, &device)?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&lines)?);
        return Ok(());
    }
    print_table(&lines);
    eprintln!("{} urgent tasks; open one with `doorstep field task TASK_ID`", lines.len());
    Ok(())
}

/// The urgent tasks as a table (also shown above `field places`).
pub fn print_table(lines: &[TaskLine]) {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(["task", "priority", "fraud", "person", "address", "deadline", "state"]);
    for l in lines {
        let state = if l.overdue { format!("{} (OVERDUE)", l.state) } else { l.state.to_string() };
        t.add_row([
            l.task_id[..8].to_string(),
            l.priority.clone(),
            l.fraud_type.clone(),
            l.person.clone(),
            l.address.clone().unwrap_or_default(),
            l.deadline.clone(),
            state,
        ]);
    }
    println!("{t}");
}

/// Finds a held task by its id or a unique prefix of it (at least 4 characters).
fn resolve(store: &TaskStore, wanted: &str) -> Result<String> {
    let held = store.tasks()?;
    if held.is_empty() {
        bail!("no urgent tasks on this device; run `doorstep field sync` while connected");
    }
    let found: Vec<&String> = held.iter().filter(|t| wanted.len() >= 4 && t.starts_with(wanted)).collect();
    match found[..] {
        [one] => Ok(one.clone()),
        [] => bail!("no task {wanted} on this device (it may be closed); list them with `doorstep field tasks`"),
        _ => bail!("{wanted} matches several tasks; give more of the id"),
    }
}

#[derive(Serialize)]
struct TaskView<'a> {
    #[serde(flatten)]
    line: &'a TaskLine,
    phone: Option<String>,
    instructions: String,
    created_at: String,
    outcomes: Vec<TaskOutcome>,
}

/// `doorstep field task TASK_ID`: the task in full; the first open by this device is recorded (signed for).
pub fn show(profile: &Profile, task: &str, json_out: bool) -> Result<()> {
    let device = profile.device()?;
    let store = profile.tasks()?;
    let task = resolve(&store, task)?;
    let mut doc = load(&store, &device, &task)?;
    if !signed(&doc, &device, SignKind::Opened)? {
        let change = add_sign(&mut doc, &device, SignKind::Opened)?;
        store.append(&task, &[change])?;
    }
    let (info, line) = line(&doc, &device)?;
    let view = TaskView {
        line: &line,
        phone: info.target.phone.clone(),
        instructions: info.instructions.clone(),
        created_at: local(info.created_at),
        outcomes: doc.outcomes()?,
    };
    if json_out {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    println!("task:         {}", line.task_id);
    println!("priority:     {} ({})", info.priority.id(), info.priority.zh());
    println!("fraud type:   {} ({})", info.fraud_type.id(), info.fraud_type.zh());
    println!("person:       {}", info.target.label);
    if let Some(p) = &info.target.place_id {
        println!("place:        {p}");
    }
    println!("address:      {}", info.target.address.as_deref().unwrap_or("-"));
    println!("phone:        {}", info.target.phone.as_deref().unwrap_or("-"));
    println!("issued:       {}", view.created_at);
    println!("deadline:     {}{}", line.deadline, if line.overdue { " (OVERDUE)" } else { "" });
    println!("state:        {}", line.state);
    println!("instructions: {}", info.instructions);
    if let Some(f) = &info.follow_up {
        println!("follow-up:    {} ({})", f.comment, local(f.at));
    }
    for o in &view.outcomes {
        let lost = match (o.money_lost, o.amount_fen) {
            (true, Some(a)) => format!(", money lost: {} yuan", yuan_text(a)),
            (true, None) => ", money lost".to_string(),
            _ => String::new(),
        };
        println!(
            "outcome:      {} by {} via {}: reached {}, dissuaded {}{lost}; {}",
            local(o.at),
            o.volunteer,
            o.method.id(),
            yes_no(o.reached),
            yes_no(o.dissuaded),
            o.feedback.as_deref().unwrap_or("")
        );
    }
    eprintln!("record what happened with `doorstep field task-done {} --method ... --reached yes|no ...`", &task[..8]);
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// What the volunteer records with `field task-done`.
pub struct DoneInput {
    pub task: String,
    pub method: ContactMethod,
    pub reached: bool,
    pub dissuaded: bool,
    pub money_lost: bool,
    pub amount_fen: Option<i64>,
    pub feedback: Option<String>,
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    pub gps: Option<(f64, f64)>,
}

/// `doorstep field task-done`: records an outcome (works with no network) and prints its id once it is on disk.
pub fn done(profile: &Profile, input: DoneInput) -> Result<()> {
    let device = profile.device()?;
    let store = profile.tasks()?;
    let task = resolve(&store, &input.task)?;
    let mut doc = load(&store, &device, &task)?;
    let outcome = TaskOutcome {
        id: uuid::Uuid::now_v7(),
        volunteer: device.username.clone(),
        device: device.device_id.clone(),
        at: input.at.unwrap_or_else(chrono::Utc::now),
        method: input.method,
        reached: input.reached,
        dissuaded: input.dissuaded,
        money_lost: input.money_lost,
        amount_fen: input.amount_fen,
        feedback: input.feedback,
        gps: input.gps,
    };
    outcome.check().map_err(|e| anyhow!("{e}; nothing was recorded"))?;
    let mut changes = Vec::new();
    // Acting on a task means it was opened, even if nobody displayed it first.
    if !signed(&doc, &device, SignKind::Opened)? {
        changes.push(add_sign(&mut doc, &device, SignKind::Opened)?);
    }
    changes.push(doc.add_outcome(&outcome)?);
    store.append(&task, &changes)?;
    println!("{}", outcome.id);
    if !outcome.reached {
        eprintln!("recorded: the person was not reached; the task stays open for another attempt");
    }
    Ok(())
}
