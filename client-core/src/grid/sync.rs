//! Grids as a kind of synced document (`sync::DocKind`): a device adds visits, places it found and corrections
//! (`validate`), and no record may be dated far after the receiver's clock.

use crate::grid::doc::{corrections_upgrade, DocError, GridDoc};
use crate::grid::found::{Correction, FoundPlace};
use crate::grid::model::Visit;
use crate::grid::validate::{check_change_ops, check_new_correction, check_new_place, check_new_visit, Added};
use crate::limits::Budget;
use crate::protocol::{Attestation, ChangeSignature, GridPush, GridReply, ReplyKind};
use crate::sync::{
    Accepted, Answer, Author, DocKind, DocRef, PushError, PushParts, PushWire, Reply, ReplyWire, Violation,
};
use automerge::{ActorId, Automerge, Change, ChangeHash};
use serde_bytes::ByteBuf;

/// What a grid push added: visits to project, places found in the field, corrections proposed.
#[derive(Debug, Default)]
pub struct GridRecords {
    pub visits: Vec<Visit>,
    pub places: Vec<FoundPlace>,
    pub corrections: Vec<Correction>,
}

impl GridRecords {
    pub fn is_empty(&self) -> bool {
        self.visits.is_empty() && self.places.is_empty() && self.corrections.is_empty()
    }
}

impl DocKind for GridDoc {
    type Push = GridPush;
    type Reply = GridReply;
    type Keys = Added;
    type Records = GridRecords;
    const NOUN: &'static str = "grid";
    const BUDGET: Budget = Budget::SyncNewChanges;

    fn subject(id: &str) -> String {
        id.to_string()
    }
    fn automerge(&self) -> &Automerge {
        GridDoc::automerge(self)
    }
    fn set_actor(&mut self, actor: ActorId) {
        GridDoc::set_actor(self, actor)
    }
    fn changes_since(&self, have: &[ChangeHash]) -> Vec<Change> {
        GridDoc::changes_since(self, have)
    }
    fn change_bytes_since(&self, have: &[ChangeHash]) -> Vec<Vec<u8>> {
        GridDoc::change_bytes_since(self, have)
    }
    fn check_ops(&self, change: &Change, author: &Author) -> Result<Added, Violation> {
        check_change_ops(self, change, author)
    }
    fn check_added(&self, keys: &Added, author: &Author, records: &mut GridRecords) -> Result<(), Violation> {
        for key in &keys.visits {
            records.visits.push(check_new_visit(self, key, author)?);
        }
        for key in &keys.places {
            records.places.push(check_new_place(self, key, author)?);
        }
        for key in &keys.corrections {
            records.corrections.push(check_new_correction(self, key, author)?);
        }
        Ok(())
    }
    fn attested_keys(&self, change: &Change) -> Option<Added> {
        let writer = Author { actor: change.actor_id().clone(), username: String::new(), device: String::new() };
        check_change_ops(self, change, &writer).ok()
    }
    fn read_attested(&self, keys: &Added, records: &mut GridRecords) -> Result<(), DocError> {
        for key in &keys.visits {
            records.visits.extend(self.visit(key)?);
        }
        for key in &keys.places {
            records.places.extend(self.found_place(key)?);
        }
        for key in &keys.corrections {
            records.corrections.extend(self.correction(key)?);
        }
        Ok(())
    }
    /// The constant change that creates the `corrections` map has no writer to check.
    fn is_constant(change: &ChangeHash) -> bool {
        *change == corrections_upgrade().hash()
    }
}

impl PushWire for GridPush {
    fn parts(&self) -> PushParts<'_> {
        PushParts {
            id: &self.grid,
            have: &self.have,
            changes: &self.changes,
            signatures: &self.signatures,
            attestation: self.attestation.as_ref(),
        }
    }
    fn unsigned(id: &str, have: Vec<ByteBuf>, changes: Vec<ByteBuf>) -> Self {
        GridPush { grid: id.to_string(), have, changes, ..Default::default() }
    }
    fn relay_parts(&mut self) -> (&mut Vec<ChangeSignature>, &mut Option<Attestation>) {
        (&mut self.signatures, &mut self.attestation)
    }
}

impl ReplyWire for GridReply {
    fn from_reply(reply: Reply) -> Self {
        GridReply {
            grid: reply.id,
            kind: match reply.answer {
                Answer::Synced => ReplyKind::Synced,
                Answer::New => ReplyKind::New,
                Answer::ResendAll => ReplyKind::ResendAll,
            },
            heads: reply.heads,
            changes: reply.changes,
            snapshot: reply.snapshot,
            stored: reply.stored,
            contacts: None,
            signatures: Vec::new(),
            attestation: None,
        }
    }
    fn heads_and_changes(&self) -> (&[ByteBuf], &[ByteBuf]) {
        (&self.heads, &self.changes)
    }
    fn id(&self) -> &str {
        &self.grid
    }
    fn is_synced(&self) -> bool {
        self.kind == ReplyKind::Synced
    }
    fn is_resend_all(&self) -> bool {
        self.kind == ReplyKind::ResendAll
    }
    fn set_gone(&mut self) {
        self.kind = ReplyKind::Unassigned;
    }
    fn relay_parts(&mut self) -> (&mut Vec<ChangeSignature>, &mut Option<Attestation>) {
        (&mut self.signatures, &mut self.attestation)
    }
}

/// How far after the receiver's clock a device may date a visit, found place or correction. Phones that take
/// the time from the network are within seconds, one set by hand within a few minutes; and a record X minutes
/// ahead is taken once X minus this has passed since it was recorded, so a clock a little fast only delays the
/// sync of what was recorded just before it. What it refuses is a wrong date, hour or time zone.
pub const MAX_CLOCK_AHEAD: chrono::Duration = chrono::Duration::minutes(10);

impl Accepted<GridDoc> {
    /// Refuses the push if it adds a visit, found place or correction dated more than `MAX_CLOCK_AHEAD` after
    /// `now`, the receiver's clock; `receiver` names it in the message ("the server", "this hub").
    pub fn check_not_ahead(&self, now: chrono::DateTime<chrono::Utc>, receiver: &str) -> Result<(), PushError> {
        let dated = self
            .records
            .visits
            .iter()
            .map(|v| (format!("visit {} (place {})", v.id, v.place_id), v.at))
            .chain(self.records.places.iter().map(|p| (format!("found place {}", p.place.id), p.added_at)))
            .chain(self.records.corrections.iter().map(|c| (format!("correction {}", c.id), c.at)));
        let Some((what, at)) = dated.max_by_key(|(_, at)| *at).filter(|(_, at)| *at > now + MAX_CLOCK_AHEAD) else {
            return Ok(());
        };
        let ahead = at - now;
        let ahead = match (ahead.num_days(), ahead.num_hours(), ahead.num_minutes()) {
            (days, _, _) if days >= 2 => format!("{days} days"),
            (_, hours, _) if hours >= 2 => format!("{hours} hours"),
            (_, _, minutes) => format!("{minutes} minutes"),
        };
        let format = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
        Err(PushError::FromTheFuture {
            doc: DocRef { noun: "grid", id: self.reply.grid.clone() },
            violation: Violation(format!(
                "{what} is dated {}, {ahead} after {receiver}'s clock ({}): the phone's clock is probably wrong. Set \
                 its date, time and time zone right. Nothing of this sync was stored and nothing is lost; the sync \
                 is accepted from {} on, or at once after enrolling again with the clock right (`doorstep field \
                 login`, or the app's enrolment), which records what is dated in the future again at that time",
                format(at),
                format(now),
                format(at - MAX_CLOCK_AHEAD),
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::model::{Deliveries, Outcome};
    use crate::sync::new_reply;

    fn accepted_visit_at(at: chrono::DateTime<chrono::Utc>) -> Accepted<GridDoc> {
        let visit = Visit {
            id: uuid::Uuid::now_v7(),
            place_id: "P1".into(),
            volunteer: "amy".into(),
            device: "d1".into(),
            at,
            outcome: Outcome::Completed,
            deliveries: Deliveries::default(),
            note: None,
            gps: None,
            photos: Vec::new(),
        };
        let mut reply = new_reply("G1", &GridDoc::genesis());
        reply.kind = ReplyKind::Synced;
        Accepted {
            new_changes: Vec::new(),
            records: GridRecords { visits: vec![visit], ..Default::default() },
            signatures: Vec::new(),
            reply,
        }
    }

    /// A phone a few minutes fast syncs; one with a wrong date hears why it may not.
    #[test]
    fn records_dated_beyond_the_tolerance_after_the_receivers_clock_are_refused() {
        let now = chrono::Utc::now();
        for ahead in [-600, 0, 60, 599, 600] {
            accepted_visit_at(now + chrono::Duration::seconds(ahead)).check_not_ahead(now, "the server").unwrap();
        }
        let err = accepted_visit_at(now + chrono::Duration::seconds(601)).check_not_ahead(now, "the server");
        assert!(matches!(err, Err(PushError::FromTheFuture { .. })), "{err:?}");
        let year_2099 = chrono::DateTime::parse_from_rfc3339("2099-01-01T08:00:00Z").unwrap().to_utc();
        let err = accepted_visit_at(year_2099).check_not_ahead(now, "this hub").unwrap_err().to_string();
        for words in ["dated 2099-01-01 08:00 UTC", "days after this hub's clock", "phone's clock is probably wrong"] {
            assert!(err.contains(words), "{words:?} in {err}");
        }
    }
}
