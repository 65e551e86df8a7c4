//! The task part of a sync: inside the sync's transaction, check and store what a device pushes for the tasks it
//! holds (its own sign-fors and outcomes, and those of team-mates it relays with their signatures), send it its
//! team's open tasks it lacks, tell it which tasks are closed (so it deletes them), and note which closed tasks it
//! no longer holds. Clients that do not send the request's `tasks` key get no tasks.
//!
//! Every reply but `resend_all` carries the server's signed statement of what it holds of the task: its heads,
//! or, for a closed task, every change, so that a device told of the closing by a hub can check that nothing it
//! holds is missing here before it deletes the task.

use crate::http::auth::DeviceAuth;
use crate::http::error::ApiError;
use crate::store::db::now_ms;
use crate::sync::push_error;
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
    device: &DeviceAuth,
    trust: &Trust<'_>,
    quarantined: &HashSet<String>,
    team: Option<&str>,
    pushes: Option<&[TaskPush]>,
) -> Result<TaskSync, ApiError> {
    // A client that does not handle tasks gets none: their personal data would stay where nothing deletes it.
    let Some(pushes) = pushes else { return Ok(TaskSync::default()) };
    let now = now_ms();
    let mut ids = BTreeSet::new();
    for p in pushes {
        if !ids.insert(p.task.as_str()) {
            return Err(ApiError::bad_request(format!("task {} appears twice in the sync request", p.task)));
        }
    }
    let held: HashMap<String, Option<i64>> =
        sqlx::query_as::<_, (String, Option<i64>)>("SELECT task_id, purged_at FROM device_tasks WHERE device_id = $1")
            .bind(&device.device_id)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
    let mut out = TaskSync::default();
    // Sorted, so that two syncs lock tasks in the same order.
    for push in ids.iter().map(|id| pushes.iter().find(|p| p.task == *id).expect("pushed")) {
        let id = push.task.as_str();
        let row: Option<(String, String)> = sqlx::query_as("SELECT team, status FROM tasks WHERE task_id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
        let (task_team, task_status) =
            row.ok_or_else(|| ApiError::not_found(format!("task {id} does not exist on this server")))?;
        // A device that received a task (or another enrolment of the same user) may still deliver what it
        // recorded, even if its user changed teams meanwhile.
        if team != Some(task_team.as_str()) && !held.contains_key(id) && !received_by_user(tx, device, id).await? {
            return Err(ApiError::forbidden(format!("task {id} is not issued to your team")));
        }
        let gone = task_status == status::CLOSED || team != Some(task_team.as_str());
        if gone && !holds(state, &held, push) {
            // Nothing of a closed task goes to a device that does not hold it, and it is not recorded as holding
            // it: it is left out of the answer, as a hub leaves out what it cannot speak for.
            continue;
        }
        tasks::lock(tx, state.db.backend, id).await?;
        let (mut doc, version) =
            tasks::load_doc(tx, id).await?.ok_or_else(|| ApiError::internal(format!("task {id} has no document")))?;
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
            record_device_task(tx, &device.device_id, id, now).await?;
            attest(state, &mut reply, &doc, now);
        }
        out.replies.push(reply);
    }
    if let Some(team) = team {
        let open: Vec<(String,)> =
            sqlx::query_as("SELECT task_id FROM tasks WHERE team = $1 AND status <> $2 ORDER BY task_id")
                .bind(team)
                .bind(status::CLOSED)
                .fetch_all(&mut **tx)
                .await?;
        for (id,) in open.into_iter().filter(|(id,)| !ids.contains(id.as_str())) {
            let (doc, _) = tasks::load_doc(tx, &id)
                .await?
                .ok_or_else(|| ApiError::internal(format!("task {id} has no document")))?;
            let mut reply = new_reply(&id, &doc);
            record_device_task(tx, &device.device_id, &id, now).await?;
            attest(state, &mut reply, &doc, now);
            out.replies.push(reply);
        }
    }
    // Tasks this device received and no longer holds: once closed, that is the device's word that it deleted them.
    for (id, purged) in &held {
        if purged.is_none() && !ids.contains(id.as_str()) && !out.replies.iter().any(|r| &r.task == id) {
            sqlx::query(
                "UPDATE device_tasks SET purged_at = $1 WHERE device_id = $2 AND task_id = $3 \
                 AND task_id IN (SELECT task_id FROM tasks WHERE status = $4)",
            )
            .bind(now)
            .bind(&device.device_id)
            .bind(id)
            .bind(status::CLOSED)
            .execute(&mut **tx)
            .await?;
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

async fn received_by_user(tx: &mut Tx, device: &DeviceAuth, task: &str) -> Result<bool, ApiError> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT dt.device_id FROM device_tasks dt JOIN devices d ON d.device_id = dt.device_id \
         WHERE dt.task_id = $1 AND d.user_id = $2",
    )
    .bind(task)
    .bind(&device.claims.sub)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.is_some())
}

/// Records that the device holds the task: when it first received it, and that it holds it again if it had
/// deleted it. A device that already holds it leaves its row unwritten.
async fn record_device_task(tx: &mut Tx, device: &str, task: &str, now: i64) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO device_tasks (device_id, task_id, delivered_at) VALUES ($1, $2, $3) \
         ON CONFLICT (device_id, task_id) DO UPDATE SET purged_at = NULL WHERE device_tasks.purged_at IS NOT NULL",
    )
    .bind(device)
    .bind(task)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
