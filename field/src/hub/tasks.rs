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
use super::exchange::docs_error;
use crate::profile::{ClosedTask, Profile};
use client_core::docs::{self, Writer};
use client_core::limits::SyncBudget;
use client_core::protocol::{TaskPush, TaskReply, TaskReplyKind};
use client_core::sync::Trust;
use client_core::task::doc::TaskDoc;
use client_core::task::store::TaskStore;
use std::collections::{BTreeSet, HashMap};

/// The task pushes of one request, checked against the lead's copy; nothing is stored yet.
pub struct CheckedTasks {
    store: TaskStore,
    checked: docs::Checked<TaskDoc>,
    closed: Vec<TaskReply>,
    /// Tasks the hub cannot speak for, left for the server.
    pub skipped: Vec<String>,
}

/// Checks every task push like the server would; a refused change refuses the whole request.
pub fn check(
    profile: &Profile,
    writer: &Writer<'_>,
    pushes: &[TaskPush],
    trust: &Trust<'_>,
) -> Result<CheckedTasks, ApiError> {
    // Task ids become file names here.
    if let Some(push) = pushes.iter().find(|p| uuid::Uuid::parse_str(&p.task).is_err()) {
        return Err(ApiError::bad_request(format!("task id {:?} is not a UUID", push.task)));
    }
    let store = profile.tasks().map_err(ApiError::internal)?;
    // Task changes are bounded over the request before any is read (`limits::check_task_changes`).
    let checked =
        docs::relay_check(&store, writer, pushes, trust, &mut SyncBudget::default()).map_err(|e| docs_error(&e))?;
    let closed: HashMap<String, ClosedTask> =
        profile.closed_tasks().map_err(ApiError::internal)?.into_iter().map(|c| (c.task.clone(), c)).collect();
    let mut tasks = CheckedTasks { store, checked, closed: Vec::new(), skipped: Vec::new() };
    for id in std::mem::take(&mut tasks.checked.skipped) {
        let push = pushes.iter().find(|p| p.task == id).expect("pushed");
        match closed.get(&id).and_then(|c| closed_reply(c, push)) {
            Some(reply) => tasks.closed.push(reply),
            None => tasks.skipped.push(id),
        }
    }
    Ok(tasks)
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
    /// Stores what is new and answers: what each device lacks of the tasks it pushed, with what it needs to pass
    /// it on, the team's open tasks it does not hold, and the closed ones it may delete. Returns the replies and
    /// how many changes were new to the hub.
    pub fn store_and_answer(self, writer: &Writer<'_>) -> Result<(Vec<TaskReply>, usize), ApiError> {
        let (mut replies, stored) = self.checked.store_and_answer(&self.store, writer).map_err(|e| docs_error(&e))?;
        replies.extend(self.closed);
        replies.sort_by(|a, b| a.task.cmp(&b.task));
        Ok((replies, stored))
    }
}
