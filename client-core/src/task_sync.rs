//! The sync engine for task documents, both halves, with no IO. The exchange is the grids' (heads-based, all
//! or nothing, resend on a missing dependency); only the validator and the `closed` reply differ.

use crate::protocol::{hashes_from_wire, hashes_to_wire, TaskPush, TaskReply, TaskReplyKind, WireError};
use crate::sync::{check_sequence, decode_changes, Applied, ApplyError};
use crate::task_doc::TaskDoc;
use crate::task_validate::{check_new_entries, check_task_change_ops, NewEntries};
use crate::validate::{Author, Violation};
use automerge::{Change, ChangeHash};
use serde_bytes::ByteBuf;
use std::collections::HashSet;

// ---------- device side ----------

/// The push for one task: every change after the heads the server last confirmed (`None` = send all).
pub fn build_task_push(task: &str, doc: &TaskDoc, confirmed: Option<&[ChangeHash]>) -> TaskPush {
    TaskPush {
        task: task.to_string(),
        have: hashes_to_wire(&doc.heads()),
        changes: doc
            .changes_since(confirmed.unwrap_or(&[]))
            .iter()
            .map(|c| ByteBuf::from(c.raw_bytes().to_vec()))
            .collect(),
    }
}

/// Applies a `Synced` or `Closed` reply to the device's copy.
pub fn apply_task_reply(doc: &mut TaskDoc, reply: &TaskReply) -> Result<Applied, ApplyError> {
    let changes = decode_changes(&reply.changes).map_err(|(_, e)| ApplyError::BadChange(e))?;
    let new_changes: Vec<Change> = changes.into_iter().filter(|c| !doc.contains_all(&[c.hash()])).collect();
    doc.apply_changes(new_changes.clone())?;
    let server_heads = hashes_from_wire(&reply.heads)?;
    let confirmed = if doc.contains_all(&server_heads) { server_heads } else { Vec::new() };
    Ok(Applied { new_changes, confirmed })
}

/// True when every change `actor` wrote is part of what the server confirmed: the device may then delete.
pub fn all_confirmed(doc: &TaskDoc, confirmed: &[ChangeHash], actor: &automerge::ActorId) -> bool {
    !doc.changes_since(confirmed).iter().any(|c| c.actor_id() == actor)
}

// ---------- server side ----------

#[derive(Debug, thiserror::Error)]
pub enum TaskPushError {
    #[error("task {task}: change #{index} is not a valid automerge change: {reason}")]
    Malformed { task: String, index: usize, reason: String },
    #[error("task {task}: {violation}")]
    Forbidden { task: String, violation: Violation },
    #[error("task {task}: {source}")]
    Wire {
        task: String,
        #[source]
        source: WireError,
    },
}

/// The outcome of checking a push against the server's copy of a task.
#[derive(Debug)]
pub struct AcceptedTask {
    /// The document with the push applied; `None` when the push brought nothing new.
    pub doc: Option<TaskDoc>,
    /// How many changes were new to the server.
    pub stored: usize,
    /// Sign-for entries and outcomes those changes added, to record in SQL.
    pub entries: NewEntries,
    pub reply: TaskReply,
}

/// Checks a push and computes the reply. `current` is the server's copy, not modified.
pub fn accept_task_push(current: &TaskDoc, push: &TaskPush, author: &Author) -> Result<AcceptedTask, TaskPushError> {
    let task = push.task.clone();
    let have = hashes_from_wire(&push.have).map_err(|source| TaskPushError::Wire { task: task.clone(), source })?;
    let changes = decode_changes(&push.changes).map_err(|(index, reason)| TaskPushError::Malformed {
        task: task.clone(),
        index,
        reason,
    })?;
    let forbidden = |violation| TaskPushError::Forbidden { task: task.clone(), violation };
    let mut seen = HashSet::new();
    let unknown: Vec<Change> =
        changes.into_iter().filter(|c| !current.contains_all(&[c.hash()]) && seen.insert(c.hash())).collect();
    let mut keys = Vec::new();
    for change in &unknown {
        keys.extend(check_task_change_ops(current, change, author).map_err(forbidden)?);
    }
    let in_sequence = check_sequence(current.automerge(), &unknown).map_err(forbidden)?;
    let resend_all = || AcceptedTask {
        doc: None,
        stored: 0,
        entries: NewEntries::default(),
        reply: reply(&task, TaskReplyKind::ResendAll, current, &[], 0),
    };
    if !in_sequence {
        return Ok(resend_all());
    }
    let mut next = current.fork();
    if !unknown.is_empty() {
        next.apply_changes(unknown.clone()).map_err(|e| TaskPushError::Malformed {
            task: task.clone(),
            index: 0,
            reason: e.to_string(),
        })?;
    }
    if !unknown.iter().all(|c| next.contains_all(&[c.hash()])) || !next.contains_all(&have) {
        return Ok(resend_all());
    }
    let entries = check_new_entries(&next, &keys, author).map_err(forbidden)?;
    let stored = unknown.len();
    Ok(AcceptedTask {
        reply: reply(&task, TaskReplyKind::Synced, &next, &have, stored),
        doc: (stored > 0).then_some(next),
        stored,
        entries,
    })
}

fn reply(task: &str, kind: TaskReplyKind, doc: &TaskDoc, have: &[ChangeHash], stored: usize) -> TaskReply {
    let changes = match kind {
        TaskReplyKind::ResendAll => Vec::new(),
        _ => doc.changes_since(have).iter().map(|c| ByteBuf::from(c.raw_bytes().to_vec())).collect(),
    };
    TaskReply {
        task: task.to_string(),
        kind,
        heads: hashes_to_wire(&doc.heads()),
        changes,
        snapshot: None,
        stored: stored as u32,
    }
}

/// The reply for a task the device does not hold yet.
pub fn new_task_reply(task: &str, doc: &TaskDoc) -> TaskReply {
    TaskReply {
        task: task.to_string(),
        kind: TaskReplyKind::New,
        heads: hashes_to_wire(&doc.heads()),
        changes: Vec::new(),
        snapshot: Some(ByteBuf::from(doc.save())),
        stored: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_doc::tests::sample_task;
    use crate::task_model::{ContactMethod, Sign, SignKind, TaskOutcome};
    use automerge::transaction::Transactable;
    use automerge::{ActorId, ReadDoc, ROOT};
    use chrono::Duration;
    use uuid::Uuid;

    struct Fixture {
        server: TaskDoc,
        device: TaskDoc,
        author: Author,
    }

    fn fixture() -> Fixture {
        let server = TaskDoc::create(ActorId::random(), &sample_task()).unwrap();
        let author = Author { actor: ActorId::random(), username: "amy".into(), device: "d1".into() };
        let mut device = TaskDoc::load(&server.save()).unwrap();
        device.set_actor(author.actor.clone());
        Fixture { server, device, author }
    }

    fn outcome(f: &Fixture) -> TaskOutcome {
        TaskOutcome {
            id: Uuid::now_v7(),
            volunteer: f.author.username.clone(),
            device: f.author.device.clone(),
            at: f.server.info().unwrap().created_at + Duration::minutes(30),
            method: ContactMethod::Phone,
            reached: true,
            dissuaded: true,
            money_lost: false,
            amount_fen: None,
            feedback: Some("she will not transfer anything".into()),
            gps: None,
        }
    }

    fn push_one(f: &Fixture, change: Change) -> Result<AcceptedTask, TaskPushError> {
        let push = TaskPush {
            task: "t".into(),
            have: hashes_to_wire(&[change.hash()]),
            changes: vec![ByteBuf::from(change.raw_bytes().to_vec())],
        };
        accept_task_push(&f.server, &push, &f.author)
    }

    #[test]
    fn signs_and_outcomes_are_accepted_and_converge() {
        let mut f = fixture();
        let at = f.server.info().unwrap().created_at + Duration::minutes(2);
        let sign =
            Sign { id: Uuid::now_v7(), kind: SignKind::Received, volunteer: "amy".into(), device: "d1".into(), at };
        f.device.add_sign(&sign).unwrap();
        let o = outcome(&f);
        f.device.add_outcome(&o).unwrap();
        let push = build_task_push("t", &f.device, Some(&f.server.heads()));
        let accepted = accept_task_push(&f.server, &push, &f.author).unwrap();
        assert_eq!(accepted.stored, 2);
        assert_eq!(accepted.entries.signs, vec![sign]);
        assert_eq!(accepted.entries.outcomes, vec![o]);
        assert_eq!(accepted.reply.kind, TaskReplyKind::Synced);
        let server = accepted.doc.unwrap();
        let applied = apply_task_reply(&mut f.device, &accepted.reply).unwrap();
        assert_eq!(applied.confirmed, server.heads());
        assert!(all_confirmed(&f.device, &applied.confirmed, &f.author.actor));
        // The same push again stores nothing.
        let again = accept_task_push(&server, &push, &f.author).unwrap();
        assert_eq!(again.stored, 0);
        assert!(again.doc.is_none());
    }

    #[test]
    fn devices_may_not_touch_the_office_part_or_write_in_anothers_name() {
        let mut f = fixture();
        // Rewriting the deadline.
        let mut doc = f.device.automerge().clone();
        let task = match doc.get(ROOT, "task").unwrap() {
            Some((_, id)) => id,
            None => unreachable!(),
        };
        let mut tx = doc.transaction();
        tx.put(&task, "deadline", automerge::ScalarValue::Timestamp(0)).unwrap();
        let (hash, _) = tx.commit();
        let change = doc.get_change_by_hash(&hash.unwrap()).unwrap();
        let err = push_one(&f, change).unwrap_err().to_string();
        assert!(err.contains("overwrites") || err.contains("outside"), "{err}");

        // An outcome in another volunteer's name.
        let o = TaskOutcome { volunteer: "bob".into(), ..outcome(&f) };
        let change = f.device.add_outcome(&o).unwrap();
        let err = push_one(&f, change).unwrap_err().to_string();
        assert!(err.contains("claims volunteer \"bob\""), "{err}");
    }

    #[test]
    fn inconsistent_outcomes_and_foreign_actors_are_refused() {
        let f = fixture();
        // Written with the automerge API directly, bypassing the device's own check.
        let mut doc = f.device.automerge().clone();
        let outcomes = match doc.get(ROOT, "outcomes").unwrap() {
            Some((_, id)) => id,
            None => unreachable!(),
        };
        let mut tx = doc.transaction();
        let entry = tx.put_object(&outcomes, Uuid::now_v7().to_string(), automerge::ObjType::Map).unwrap();
        for (k, v) in [("volunteer", "amy"), ("device", "d1"), ("method", "phone")] {
            tx.put(&entry, k, v).unwrap();
        }
        tx.put(&entry, "at", automerge::ScalarValue::Timestamp(1)).unwrap();
        tx.put(&entry, "reached", false).unwrap();
        tx.put(&entry, "dissuaded", true).unwrap();
        tx.put(&entry, "money_lost", false).unwrap();
        let (hash, _) = tx.commit();
        let change = doc.get_change_by_hash(&hash.unwrap()).unwrap();
        let err = push_one(&f, change).unwrap_err().to_string();
        assert!(err.contains("not reached cannot have been dissuaded"), "{err}");

        let other = Author { actor: ActorId::random(), ..f.author.clone() };
        let mut device = f.device.clone();
        let change = device.add_outcome(&outcome(&f)).unwrap();
        let push = TaskPush {
            task: "t".into(),
            have: hashes_to_wire(&[change.hash()]),
            changes: vec![ByteBuf::from(change.raw_bytes().to_vec())],
        };
        let err = accept_task_push(&f.server, &push, &other).unwrap_err().to_string();
        assert!(err.contains("this device's actor"), "{err}");
    }
}
