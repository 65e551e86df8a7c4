//! The task part of a sync: inside the sync's transaction, check and store what a device pushes for the tasks it
//! holds (its own sign-fors and outcomes, and those of team-mates it relays with their signatures), send it its
//! team's open tasks it lacks, tell it which tasks are closed (so it deletes them), and note which closed tasks it
//! no longer holds. Clients that do not send the request's `tasks` key get no tasks.
//!
//! Every reply but `resend_all` carries the server's signed statement of what it holds of the task: its heads,
//! or, for a closed task, every change, so that a device told of the closing by a hub can check that nothing it
//! holds is missing here before it deletes the task.

use crate::refusal::Refusal;
use crate::store::db::now_ms;
use crate::store::tasks as stored;
use crate::sync::{push_error, Device};
use crate::tasks::{self, status};
use crate::AppState;
use client_core::protocol::{TaskPush, TaskReply, TaskReplyKind};
use client_core::sign::task_subject;
use client_core::sync::{accept_push_with, new_reply, Trust};
use client_core::task::doc::TaskDoc;
use client_core::task::validate::NewEntries;
use sqlx::{Any, Transaction};
use std::collections::{BTreeSet, HashMap, HashSet};

type Tx = Transaction<'static, Any>;

/// What the task part of a sync did.
#[derive(Default)]
pub struct TaskSync {
    pub replies: Vec<TaskReply>,
    /// Team-mates' changes the device relayed.
    pub relayed: usize,
}

/// Runs within the sync's write transaction: a refused push fails the whole sync, and nothing is stored.
/// `trust` says whose changes the device may relay; entries of `quarantined` devices (revoked, or their account
/// disabled) relayed by a team-mate are stored in the document but not recorded.
pub async fn sync_tasks(
    state: &AppState,
    tx: &mut Tx,
    device: &Device,
    trust: &Trust<'_>,
    quarantined: &HashSet<String>,
    team: Option<&str>,
    pushes: Option<&[TaskPush]>,
) -> Result<TaskSync, Refusal> {
    // A client that does not handle tasks gets none: their personal data would stay where nothing deletes it.
    let Some(pushes) = pushes else { return Ok(TaskSync::default()) };
    let now = now_ms();
    let mut ids = BTreeSet::new();
    for p in pushes {
        if !ids.insert(p.task.as_str()) {
            return Err(Refusal::invalid(format!("task {} appears twice in the sync request", p.task)));
        }
    }
    let held: HashMap<String, Option<i64>> = stored::held_by_device(tx, &device.device_id).await?.into_iter().collect();
    let mut out = TaskSync::default();
    // Sorted, so that two syncs lock tasks in the same order.
    for push in ids.iter().map(|id| pushes.iter().find(|p| p.task == *id).expect("pushed")) {
        let id = push.task.as_str();
        let (task_team, task_status) = stored::team_and_status(tx, id)
            .await?
            .ok_or_else(|| Refusal::not_found(format!("task {id} does not exist on this server")))?;
        // A device that received a task (or another enrolment of the same user) may still deliver what it
        // recorded, even if its user changed teams meanwhile.
        if team != Some(task_team.as_str())
            && !held.contains_key(id)
            && !stored::received_by_user(tx, id, &device.user_id).await?
        {
            return Err(Refusal::forbidden(format!("task {id} is not issued to your team")));
        }
        let gone = task_status == status::CLOSED || team != Some(task_team.as_str());
        if gone && !holds(state, &held, push) {
            // Nothing of a closed task goes to a device that does not hold it, and it is not recorded as holding
            // it: it is left out of the answer, as a hub leaves out what it cannot speak for.
            continue;
        }
        tasks::lock(tx, state.db.backend, id).await?;
        let (mut doc, version) =
            tasks::load_doc(tx, id).await?.ok_or_else(|| Refusal::internal(format!("task {id} has no document")))?;
        // Applied in place: a refused push fails the sync, and its transaction drops `doc` unsaved.
        let accepted = accept_push_with(&mut doc, push, trust).map_err(|e| push_error(&e))?;
        if !accepted.new_changes.is_empty() {
            tasks::save_doc(tx, id, &doc, version).await?;
            let counted = NewEntries {
                signs: accepted.records.signs.iter().filter(|s| !quarantined.contains(&s.device)).cloned().collect(),
                outcomes: accepted
                    .records
                    .outcomes
                    .iter()
                    .filter(|o| !quarantined.contains(&o.device))
                    .cloned()
                    .collect(),
            };
            tasks::record_entries(tx, id, &counted).await?;
        }
        out.relayed += accepted.signatures.len();
        let mut reply = accepted.reply;
        if reply.kind == TaskReplyKind::Synced && gone {
            reply.kind = TaskReplyKind::Closed;
        }
        if reply.kind != TaskReplyKind::ResendAll {
            stored::note_delivered(tx, &device.device_id, id, now).await?;
            attest(state, &mut reply, &doc, now);
        }
        out.replies.push(reply);
    }
    if let Some(team) = team {
        let open = stored::ids_of_team_but(tx, team, status::CLOSED).await?;
        for id in open.into_iter().filter(|id| !ids.contains(id.as_str())) {
            let (doc, _) = tasks::load_doc(tx, &id)
                .await?
                .ok_or_else(|| Refusal::internal(format!("task {id} has no document")))?;
            let mut reply = new_reply(&id, &doc);
            stored::note_delivered(tx, &device.device_id, &id, now).await?;
            attest(state, &mut reply, &doc, now);
            out.replies.push(reply);
        }
    }
    // Tasks this device received and no longer holds: once closed, that is the device's word that it deleted them.
    for (id, purged) in &held {
        if purged.is_none() && !ids.contains(id.as_str()) && !out.replies.iter().any(|r| &r.task == id) {
            stored::note_purged_if(tx, &device.device_id, id, status::CLOSED, now).await?;
        }
    }
    Ok(out)
}

/// Whether the device holds the task: the server delivered it to this device, which has not deleted it since, or
/// the push carries the server's signed statement of the task, which only devices given the task receive (from
/// the server or the team's hub) and which a re-enrolled profile keeps for the entries it carries over.
fn holds(state: &AppState, held: &HashMap<String, Option<i64>>, push: &TaskPush) -> bool {
    let attested = push
        .attestation
        .as_ref()
        .is_some_and(|a| state.keys.server_key().public().attested_heads(&task_subject(&push.task), a).is_some());
    matches!(held.get(&push.task), Some(None)) || attested
}

/// Signs what the server holds of the task: its heads, or every change once the device is told it is closed.
fn attest(state: &AppState, reply: &mut TaskReply, doc: &TaskDoc, now: i64) {
    let held = match reply.kind {
        TaskReplyKind::Closed => doc.changes_since(&[]).iter().map(|c| c.hash()).collect(),
        _ => doc.heads(),
    };
    reply.attestation = Some(state.keys.server_key().attest(&task_subject(&reply.task), &held, now));
}
