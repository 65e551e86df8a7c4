//! The sync engine for task documents, both halves, with no IO. The exchange is the grids' (heads-based, all
//! or nothing, resend on a missing dependency); only the validator and the `closed` reply differ.

use crate::protocol::{
    hashes_from_wire, hashes_to_wire, ChangeSignature, TaskPush, TaskReply, TaskReplyKind, WireError,
};
use crate::sign::task_subject;
use crate::sync::{
    author_of, check_sequence, decode_changes, signatures_by_change, vouched_changes, Applied, ApplyError, Trust,
};
use crate::task_doc::TaskDoc;
use crate::task_validate::{check_new_entries, check_task_change_ops, NewEntries};
use crate::validate::Violation;
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
        ..Default::default()
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

/// True when every change the device holds, its own and those it relays, is part of what the server confirmed:
/// the device may then delete the task without losing anything.
pub fn all_confirmed(doc: &TaskDoc, confirmed: &[ChangeHash]) -> bool {
    doc.contains_all(confirmed) && doc.changes_since(confirmed).is_empty()
}

/// True when every change the device holds is among `stored` (the changes a `closed` reply's attestation lists):
/// the test for a closing told by a hub, which no longer holds the task to send what the device lacks.
pub fn all_listed(doc: &TaskDoc, stored: &[ChangeHash]) -> bool {
    let stored: HashSet<&ChangeHash> = stored.iter().collect();
    doc.changes_since(&[]).iter().all(|c| stored.contains(&c.hash()))
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
    /// The changes new to the receiver, in an order that respects their dependencies, for a hub to store.
    pub new_changes: Vec<Change>,
    /// Sign-for entries and outcomes those changes added, to record in SQL; each names the device that wrote it.
    pub entries: NewEntries,
    /// Verified writers' signatures of the new changes, for a hub to keep and pass on.
    pub signatures: Vec<ChangeSignature>,
    pub reply: TaskReply,
}

/// Checks a push, which may relay team-mates' signed changes, and computes the reply. `current` is the
/// receiver's copy, not modified. Each change is checked against the device that wrote it (see `Trust`).
pub fn accept_task_push(current: &TaskDoc, push: &TaskPush, trust: &Trust<'_>) -> Result<AcceptedTask, TaskPushError> {
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
    // A hub takes what the server attested to holding as it is (the office's own changes among them).
    let vouched = vouched_changes(&unknown, &trust.attested(&task_subject(&task), push.attestation.as_ref()));
    let signatures = signatures_by_change(&push.signatures);
    let mut added = Vec::new();
    let mut kept_signatures = Vec::new();
    for change in unknown.iter().filter(|c| !vouched.contains(&c.hash())) {
        crate::limits::check_change_size(change).map_err(forbidden)?;
        let (author, signature) = author_of(change, trust, &signatures).map_err(forbidden)?;
        let keys = check_task_change_ops(current, change, &author).map_err(forbidden)?;
        added.push((author, keys));
        kept_signatures.extend(signature.cloned());
    }
    let in_sequence = check_sequence(current.automerge(), &unknown).map_err(forbidden)?;
    let resend_all = || AcceptedTask {
        doc: None,
        stored: 0,
        new_changes: Vec::new(),
        entries: NewEntries::default(),
        signatures: Vec::new(),
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
    let mut entries = NewEntries::default();
    for (author, keys) in &added {
        let new = check_new_entries(&next, keys, author).map_err(forbidden)?;
        entries.signs.extend(new.signs);
        entries.outcomes.extend(new.outcomes);
    }
    let stored = unknown.len();
    let new_changes = if unknown.is_empty() { Vec::new() } else { next.changes_since(&current.heads()) };
    Ok(AcceptedTask {
        reply: reply(&task, TaskReplyKind::Synced, &next, &have, stored),
        doc: (stored > 0).then_some(next),
        stored,
        new_changes,
        entries,
        signatures: kept_signatures,
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
        signatures: Vec::new(),
        attestation: None,
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
        signatures: Vec::new(),
        attestation: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_doc::tests::sample_task;
    use crate::task_model::{ContactMethod, Sign, SignKind, TaskOutcome};
    use crate::validate::Author;
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
            ..Default::default()
        };
        accept_task_push(&f.server, &push, &Trust::own(&f.author))
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
        let accepted = accept_task_push(&f.server, &push, &Trust::own(&f.author)).unwrap();
        assert_eq!(accepted.stored, 2);
        assert_eq!(accepted.entries.signs, vec![sign]);
        assert_eq!(accepted.entries.outcomes, vec![o]);
        assert_eq!(accepted.reply.kind, TaskReplyKind::Synced);
        let server = accepted.doc.unwrap();
        let applied = apply_task_reply(&mut f.device, &accepted.reply).unwrap();
        assert_eq!(applied.confirmed, server.heads());
        assert!(all_confirmed(&f.device, &applied.confirmed));
        // The same push again stores nothing.
        let again = accept_task_push(&server, &push, &Trust::own(&f.author)).unwrap();
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
    fn a_change_adds_one_entry_at_most() {
        let f = fixture();
        let mut doc = f.device.automerge().clone();
        let signs = match doc.get(ROOT, "signs").unwrap() {
            Some((_, id)) => id,
            None => unreachable!(),
        };
        let mut tx = doc.transaction();
        for _ in 0..2 {
            let entry = tx.put_object(&signs, Uuid::now_v7().to_string(), automerge::ObjType::Map).unwrap();
            tx.put(&entry, "kind", "received").unwrap();
        }
        let (hash, _) = tx.commit();
        let change = doc.get_change_by_hash(&hash.unwrap()).unwrap();
        let err = push_one(&f, change).unwrap_err().to_string();
        assert!(err.contains("adds more than one entry"), "{err}");
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
            ..Default::default()
        };
        let err = accept_task_push(&f.server, &push, &Trust::own(&other)).unwrap_err().to_string();
        assert!(err.contains("this device's actor"), "{err}");
    }

    /// A hub relays a volunteer's outcome: accepted with the volunteer's signature and attributed to the
    /// volunteer; refused without it or with the hub's own; the office's changes pass on the server's attestation.
    #[test]
    fn relayed_entries_need_their_writers_signature() {
        let mut f = fixture();
        let volunteer_key = crate::sign::KeyPair::generate();
        let hub = Author { actor: ActorId::random(), username: "lead".into(), device: "hub".into() };
        let hub_key = crate::sign::KeyPair::generate();
        let signer = crate::sync::Signer { author: f.author.clone(), key: volunteer_key.public() };
        let team = std::collections::HashMap::from([(f.author.actor.clone(), signer)]);
        let upstream = Trust { pusher: &hub, pusher_key: None, signers: Some(&team), server_key: None };
        let change = f.device.add_outcome(&outcome(&f)).unwrap();
        let push = |signatures: Vec<ChangeSignature>| TaskPush {
            task: "t".into(),
            have: hashes_to_wire(&[change.hash()]),
            changes: vec![ByteBuf::from(change.raw_bytes().to_vec())],
            signatures,
            attestation: None,
        };
        let err = accept_task_push(&f.server, &push(vec![]), &upstream).unwrap_err().to_string();
        assert!(err.contains("relayed without that device's signature"), "{err}");
        let forged = vec![hub_key.sign_change(&change.hash())];
        let err = accept_task_push(&f.server, &push(forged), &upstream).unwrap_err().to_string();
        assert!(err.contains("its signature is not that device's"), "{err}");
        let signed = vec![volunteer_key.sign_change(&change.hash())];
        let accepted = accept_task_push(&f.server, &push(signed.clone()), &upstream).unwrap();
        assert_eq!(accepted.entries.outcomes[0].device, "d1", "attributed to the device that wrote it");
        assert_eq!(accepted.signatures, signed, "kept for passing on");
        assert_eq!(accepted.new_changes, vec![change.clone()]);

        // A hub whose copy lacks the office's follow-up takes it on the server's attestation alone.
        let server_key = crate::sign::KeyPair::generate();
        let mut office = f.server.fork();
        let follow_up = office.request_follow_up(chrono::Utc::now(), "call again", None).unwrap();
        let attestation = server_key.attest(&task_subject("t"), &office.heads(), 1);
        let volunteer_trust =
            Trust { pusher: &f.author, pusher_key: Some(&volunteer_key.public()), signers: None, server_key: None };
        let hub_trust = Trust { server_key: Some(&server_key.public()), ..volunteer_trust };
        let mut resent = TaskPush {
            task: "t".into(),
            have: hashes_to_wire(&office.heads()),
            changes: vec![ByteBuf::from(follow_up.raw_bytes().to_vec())],
            signatures: vec![],
            attestation: Some(attestation),
        };
        let err = accept_task_push(&f.server, &resent, &volunteer_trust).unwrap_err().to_string();
        assert!(err.contains("no active device of your team"), "{err}");
        assert_eq!(accept_task_push(&f.server, &resent, &hub_trust).unwrap().stored, 1);
        resent.attestation = Some(server_key.attest(&task_subject("other"), &office.heads(), 1));
        assert!(accept_task_push(&f.server, &resent, &hub_trust).is_err(), "another task's attestation");
    }
}
