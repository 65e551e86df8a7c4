//! The urgent-task part of an exchange at a team hub: the team's open tasks from the lead's copy go to the
//! volunteers' devices, and their sign-fors and outcomes come back, checked as the server checks them and signed by
//! the devices that wrote them, to be forwarded at the hub's next upstream sync.
//!
//! The hub answers only for tasks it can speak for: those its profile holds (the team's open tasks as of its last
//! sync with the server) and those the server told it are closed (`closed-tasks.json`: ids and the server's signed
//! list of each task's changes, no personal data). A device holding a closed task whose history is all upstream is
//! told `closed` and deletes it; any other task is left out of the answer and stays as it is on the device until
//! it syncs with the server.

use crate::hub_exchange::Hub;
use crate::profile::{ClosedTask, Profile};
use crate::relay;
use client_core::protocol::{hashes_from_wire, TaskPush, TaskReply, TaskReplyKind};
use client_core::sync::Trust;
use client_core::task_doc::TaskDoc;
use client_core::task_store::TaskStore;
use client_core::task_sync::{accept_task_push, new_task_reply, AcceptedTask, TaskPushError};
use server::http::error::ApiError;
use std::collections::{BTreeSet, HashMap};

/// The task pushes of one request, checked against the lead's copy; nothing is stored yet.
pub struct CheckedTasks {
    store: TaskStore,
    accepted: Vec<(TaskDoc, Vec<automerge::ChangeHash>, AcceptedTask)>,
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
            let current = load(&checked.store, hub, &push.task)?;
            let accepted = accept_task_push(&current, push, trust).map_err(|e| push_error(&e))?;
            let have = hashes_from_wire(&push.have).map_err(|e| ApiError::bad_request(e.to_string()))?;
            checked.accepted.push((accepted.doc.clone().unwrap_or(current), have, accepted));
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
        let mut stored = 0;
        for (_, _, accepted) in &self.accepted {
            if !accepted.new_changes.is_empty() {
                let task = &accepted.reply.task;
                store.files().add_signatures(task, &accepted.signatures).map_err(ApiError::internal)?;
                store.append(task, &accepted.new_changes).map_err(ApiError::internal)?;
                stored += accepted.new_changes.len();
            }
        }
        let mut replies = self.closed;
        for (doc, have, accepted) in self.accepted {
            let mut reply = accepted.reply;
            if reply.kind == TaskReplyKind::Synced {
                decorate(store, hub, &doc.changes_since(&have), &mut reply)?;
            }
            replies.push(reply);
        }
        for task in &self.new {
            let doc = load(store, hub, task)?;
            let mut reply = new_task_reply(task, &doc);
            let attested = relay::attested_heads(store.files(), task).map_err(ApiError::internal)?;
            decorate(store, hub, &doc.changes_since(&attested), &mut reply)?;
            replies.push(reply);
        }
        replies.sort_by(|a, b| a.task.cmp(&b.task));
        Ok((replies, stored))
    }
}

/// Adds the writers' signatures of the changes the device receives and the server's latest attestation.
fn decorate(
    store: &TaskStore,
    hub: &Hub,
    changes: &[automerge::Change],
    reply: &mut TaskReply,
) -> Result<(), ApiError> {
    let kept = store.files().signatures(&reply.task).map_err(ApiError::internal)?;
    reply.signatures = relay::signatures_for(changes, &hub.actor, Some(&hub.key), &kept);
    reply.attestation = store.files().attestation(&reply.task).map_err(ApiError::internal)?;
    Ok(())
}

fn load(store: &TaskStore, hub: &Hub, task: &str) -> Result<TaskDoc, ApiError> {
    let mut doc = store.load(task).map_err(ApiError::internal)?;
    doc.set_actor(hub.actor.clone());
    Ok(doc)
}

/// A refused task push becomes a 4xx with the reason, as at the server.
fn push_error(e: &TaskPushError) -> ApiError {
    tracing::warn!(error = %e, "hub refused a sync");
    match e {
        TaskPushError::Forbidden { .. } => ApiError::unprocessable("change_rejected", e.to_string()),
        TaskPushError::Malformed { .. } | TaskPushError::Wire { .. } => ApiError::bad_request(e.to_string()),
    }
}
