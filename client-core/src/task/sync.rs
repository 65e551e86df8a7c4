//! Urgent tasks as a kind of synced document (`sync::DocKind`): a device adds sign-fors and outcomes
//! (`task_validate`); the receiver's `closed` reply tells it to delete the task once nothing of its own is
//! unconfirmed.

use crate::limits::Budget;
use crate::protocol::{Attestation, ChangeSignature, TaskPush, TaskReply, TaskReplyKind};
use crate::sign::task_subject;
use crate::sync::{Answer, DocKind, PushParts, PushWire, Reply, ReplyWire};
use crate::sync::{Author, Violation};
use crate::task::doc::TaskDoc;
use crate::task::validate::{check_new_entries, check_task_change_ops, EntryKind, NewEntries};
use automerge::{ActorId, Automerge, Change, ChangeHash};
use serde_bytes::ByteBuf;
use std::collections::HashSet;

/// Task entries are recorded only from changes checked against their writer: a change taken on the server's
/// attestation (at a hub) is stored and passed on, not read.
impl DocKind for TaskDoc {
    type Push = TaskPush;
    type Reply = TaskReply;
    type Keys = Vec<(EntryKind, String)>;
    type Records = NewEntries;
    const NOUN: &'static str = "task";
    const BUDGET: Budget = Budget::TaskChanges;

    fn subject(id: &str) -> String {
        task_subject(id)
    }
    fn automerge(&self) -> &Automerge {
        TaskDoc::automerge(self)
    }
    fn set_actor(&mut self, actor: ActorId) {
        TaskDoc::set_actor(self, actor)
    }
    fn changes_since(&self, have: &[ChangeHash]) -> Vec<Change> {
        TaskDoc::changes_since(self, have)
    }
    fn check_ops(&self, change: &Change, author: &Author) -> Result<Self::Keys, Violation> {
        check_task_change_ops(self, change, author)
    }
    fn check_added(&self, keys: &Self::Keys, author: &Author, records: &mut NewEntries) -> Result<(), Violation> {
        let new = check_new_entries(self, keys, author)?;
        records.signs.extend(new.signs);
        records.outcomes.extend(new.outcomes);
        Ok(())
    }
}

impl PushWire for TaskPush {
    fn parts(&self) -> PushParts<'_> {
        PushParts {
            id: &self.task,
            have: &self.have,
            changes: &self.changes,
            signatures: &self.signatures,
            attestation: self.attestation.as_ref(),
        }
    }
    fn unsigned(id: &str, have: Vec<ByteBuf>, changes: Vec<ByteBuf>) -> Self {
        TaskPush { task: id.to_string(), have, changes, ..Default::default() }
    }
    fn relay_parts(&mut self) -> (&mut Vec<ChangeSignature>, &mut Option<Attestation>) {
        (&mut self.signatures, &mut self.attestation)
    }
}

impl ReplyWire for TaskReply {
    fn from_reply(reply: Reply) -> Self {
        TaskReply {
            task: reply.id,
            kind: match reply.answer {
                Answer::Synced => TaskReplyKind::Synced,
                Answer::New => TaskReplyKind::New,
                Answer::ResendAll => TaskReplyKind::ResendAll,
            },
            heads: reply.heads,
            changes: reply.changes,
            snapshot: reply.snapshot,
            stored: reply.stored,
            signatures: Vec::new(),
            attestation: None,
        }
    }
    fn heads_and_changes(&self) -> (&[ByteBuf], &[ByteBuf]) {
        (&self.heads, &self.changes)
    }
    fn id(&self) -> &str {
        &self.task
    }
    fn is_synced(&self) -> bool {
        self.kind == TaskReplyKind::Synced
    }
    fn is_resend_all(&self) -> bool {
        self.kind == TaskReplyKind::ResendAll
    }
    fn set_gone(&mut self) {
        self.kind = TaskReplyKind::Closed;
    }
    fn relay_parts(&mut self) -> (&mut Vec<ChangeSignature>, &mut Option<Attestation>) {
        (&mut self.signatures, &mut self.attestation)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{hashes_to_wire, ChangeSignature};
    use crate::sync::Author;
    use crate::sync::{accept_push_with, apply_reply, build_push, Accepted, PushError, Trust};
    use crate::task::doc::tests::sample_task;
    use crate::task::model::{ContactMethod, Sign, SignKind, TaskOutcome};
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

    fn push_one(f: &Fixture, change: Change) -> Result<Accepted<TaskDoc>, PushError> {
        let push = TaskPush {
            task: "t".into(),
            have: hashes_to_wire(&[change.hash()]),
            changes: vec![ByteBuf::from(change.raw_bytes().to_vec())],
            ..Default::default()
        };
        accept_push_with(&mut f.server.fork(), &push, &Trust::own(&f.author))
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
        let push = build_push("t", &f.device, Some(&f.server.heads()));
        let mut server = f.server.fork();
        let accepted = accept_push_with(&mut server, &push, &Trust::own(&f.author)).unwrap();
        assert_eq!((accepted.reply.stored, accepted.new_changes.len()), (2, 2));
        assert_eq!(accepted.records.signs, vec![sign]);
        assert_eq!(accepted.records.outcomes, vec![o]);
        assert_eq!(accepted.reply.kind, TaskReplyKind::Synced);
        let applied = apply_reply(&mut f.device, &accepted.reply).unwrap();
        assert_eq!(applied.confirmed, server.heads());
        assert!(all_confirmed(&f.device, &applied.confirmed));
        // The same push again stores nothing.
        let again = accept_push_with(&mut server, &push, &Trust::own(&f.author)).unwrap();
        assert_eq!((again.reply.stored, again.new_changes.len()), (0, 0));
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
        let err = accept_push_with(&mut f.server.fork(), &push, &Trust::own(&other)).unwrap_err().to_string();
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
        let err = accept_push_with(&mut f.server.fork(), &push(vec![]), &upstream).unwrap_err().to_string();
        assert!(err.contains("relayed without that device's signature"), "{err}");
        let forged = vec![hub_key.sign_change(&change.hash())];
        let err = accept_push_with(&mut f.server.fork(), &push(forged), &upstream).unwrap_err().to_string();
        assert!(err.contains("its signature is not that device's"), "{err}");
        let signed = vec![volunteer_key.sign_change(&change.hash())];
        let accepted = accept_push_with(&mut f.server.fork(), &push(signed.clone()), &upstream).unwrap();
        assert_eq!(accepted.records.outcomes[0].device, "d1", "attributed to the device that wrote it");
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
        let err = accept_push_with(&mut f.server.fork(), &resent, &volunteer_trust).unwrap_err().to_string();
        assert!(err.contains("no active device of your team"), "{err}");
        assert_eq!(accept_push_with(&mut f.server.fork(), &resent, &hub_trust).unwrap().reply.stored, 1);
        resent.attestation = Some(server_key.attest(&task_subject("other"), &office.heads(), 1));
        assert!(accept_push_with(&mut f.server.fork(), &resent, &hub_trust).is_err(), "another task's attestation");
    }
}
