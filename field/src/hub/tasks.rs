//! The urgent-task part of an exchange at a team hub: the team's open tasks from the lead's copy go to the
//! volunteers' devices, and their sign-fors and outcomes come back, checked as the server checks them and signed by
//! the devices that wrote them, to be forwarded at the hub's next upstream sync.
//!
//! The hub answers only for tasks it can speak for: those its profile holds (the team's open tasks as of its last
//! sync with the server) and those the server told it are closed (`closed-tasks.json`: ids and the server's signed
//! list of each task's changes, no personal data). A device holding a closed task whose history is all upstream is
//! told `closed` and deletes it; any other task is left out of the answer and stays as it is on the device until
//! it syncs with the server.

use super::error::ApiError;
use super::exchange::{check_push, load, relay_parts, store_checked, Checked, Hub};
use crate::profile::{ClosedTask, Profile};
use crate::relay;
use client_core::limits::SyncBudget;
use client_core::protocol::{TaskPush, TaskReply, TaskReplyKind};
use client_core::sync::{new_reply, Trust};
use client_core::task::doc::TaskDoc;
use client_core::task::store::TaskStore;
use std::collections::{BTreeSet, HashMap};

/// The task pushes of one request, checked against the lead's copy; nothing is stored yet.
pub struct CheckedTasks {
    store: TaskStore,
    accepted: Vec<Checked<TaskDoc>>,
    closed: Vec<TaskReply>,
    /// Tasks the hub holds that the device did not push: sent whole.
    new: Vec<String>,
    /// Tasks the hub cannot speak for, left for the server.
    pub skipped: Vec<String>,
}

/// Checks every task push like the server would; a refused change refuses the whole request.
pub fn check(profile: &Profile, hub: &Hub, pushes: &[TaskPush], trust: &Trust<'_>) -> Result<CheckedTasks, ApiError> {
    let store = profile.tasks().map_err(ApiError::internal)?;
    let held: BTreeSet<String> = store.tasks().map_err(ApiError::internal)?.into_iter().collect();
    let closed: HashMap<String, ClosedTask> =
        profile.closed_tasks().map_err(ApiError::internal)?.into_iter().map(|c| (c.task.clone(), c)).collect();
    let mut checked =
        CheckedTasks { store, accepted: Vec::new(), closed: Vec::new(), new: Vec::new(), skipped: Vec::new() };
    let mut pushed = BTreeSet::new();
    for push in pushes {
        // Task ids become file names here.
        if uuid::Uuid::parse_str(&push.task).is_err() {
            return Err(ApiError::bad_request(format!("task id {:?} is not a UUID", push.task)));
        }
        if !pushed.insert(push.task.as_str()) {
            return Err(ApiError::bad_request(format!("task {} appears twice in the sync request", push.task)));
        }
        if held.contains(&push.task) {
            // Task changes are bounded over the request before any is read (`limits::check_task_changes`).
            let task = check_push(&checked.store, hub, &push.task, push, trust, &mut SyncBudget::default())?;
            checked.accepted.push(task);
        } else if let Some(reply) = closed.get(&push.task).and_then(|c| closed_reply(c, push)) {
            checked.closed.push(reply);
        } else {
            checked.skipped.push(push.task.clone());
        }
    }
    checked.new = held.into_iter().filter(|t| !pushed.contains(t.as_str())).collect();
    Ok(checked)
}

/// `closed` for a task the server closed, if the device's history is all upstream: every head it has is a change
/// the server listed (so are their ancestors, since the list is the server's whole history of the task). The
/// device checks the list's signature before it deletes anything.
fn closed_reply(closed: &ClosedTask, push: &TaskPush) -> Option<TaskReply> {
    let listed: BTreeSet<&[u8]> = closed.attestation.heads.iter().map(|h| h.as_slice()).collect();
    // An empty push asks for the whole history, which the hub no longer has.
    if push.have.is_empty() || !push.have.iter().all(|h| listed.contains(h.as_slice())) {
        return None;
    }
    Some(TaskReply {
        task: push.task.clone(),
        kind: TaskReplyKind::Closed,
        heads: Vec::new(),
        changes: Vec::new(),
        snapshot: None,
        stored: 0,
        signatures: Vec::new(),
        attestation: Some(closed.attestation.clone()),
    })
}

impl CheckedTasks {
    /// Stores what is new (signatures before changes, so a stored change can always travel on) and answers:
    /// what each device lacks of the tasks it pushed, with what it needs to pass it on, and the team's open tasks
    /// it does not hold. Returns the replies and how many changes were new to the hub.
    pub fn store_and_answer(self, hub: &Hub) -> Result<(Vec<TaskReply>, usize), ApiError> {
        let store = &self.store;
        let stored = store_checked(store, &self.accepted)?;
        let mut replies = self.closed;
        for Checked { id, doc, have, accepted } in self.accepted {
            let mut reply = accepted.reply;
            if reply.kind == TaskReplyKind::Synced {
                (reply.signatures, reply.attestation) = relay_parts(store, hub, &id, &doc.changes_since(&have))?;
            }
            replies.push(reply);
        }
        for task in &self.new {
            let doc: TaskDoc = load(store, hub, task)?;
            let mut reply = new_reply(task, &doc);
            let attested = relay::attested_heads(store, task).map_err(ApiError::internal)?;
            (reply.signatures, reply.attestation) = relay_parts(store, hub, task, &doc.changes_since(&attested))?;
            replies.push(reply);
        }
        replies.sort_by(|a, b| a.task.cmp(&b.task));
        Ok((replies, stored))
    }
}
