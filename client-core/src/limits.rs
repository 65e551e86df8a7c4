//! How much one sync may bring, checked by the receiver (the server, or a hub) from the changes' headers before
//! any of their operations is decoded or applied, so that a hostile push costs no more than a legitimate one.
//!
//! The figures come from what devices write: every visit, found place, correction, sign-for or outcome is a change
//! of its own (the CLI, the web app and the carry-over at re-enrolment alike), at most 14 operations and about
//! 4.5 KB (a visit with the longest note and texts). A volunteer's day is well under 500 visits; the largest
//! legitimate sync is a hub (or a device relaying what it received from one) bringing a whole team's days.

use crate::sync::Violation;
use automerge::Change;

/// Most operations in one change a device wrote: a visit has 14 (the map and 13 fields).
pub const MAX_CHANGE_OPS: usize = 64;

/// Most bytes in one change a device wrote: a visit with a 2,000-byte note and 500-byte texts is about 4.5 KB,
/// plus 32 bytes for each head of the document it was written on.
pub const MAX_CHANGE_BYTES: usize = 16 * 1024;

/// Most changes new to the receiver in one sync request, over all its grids: a hub relaying the heaviest day
/// (500 visits each) of a 20-volunteer team twice over, or about two weeks of such a team's ordinary days.
pub const MAX_SYNC_NEW_CHANGES: usize = 20_000;

/// Most bytes of changes new to the receiver in one sync request: 20,000 visits with notes of 500 bytes.
pub const MAX_SYNC_NEW_BYTES: usize = 16 * 1024 * 1024;

/// Most task changes in one sync request (urgent tasks are few and each gets a handful of entries per device).
pub const MAX_SYNC_TASK_CHANGES: usize = 2_000;

/// Which bound the new changes of one document's push count against (`sync::DocKind::BUDGET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Counted, as they are found new, in the request's `SyncBudget` (grids).
    SyncNewChanges,
    /// Bounded over the whole request by `check_task_changes` before any is read (urgent tasks).
    TaskChanges,
}

/// Refuses a change a device cannot have written: more operations or bytes than any visit, found place,
/// correction, sign-for or outcome. Reads only the change's header, not its operations.
pub fn check_change_size(change: &Change) -> Result<(), Violation> {
    let (ops, bytes) = (change.len(), change.raw_bytes().len());
    if ops > MAX_CHANGE_OPS || bytes > MAX_CHANGE_BYTES {
        return Err(Violation(format!(
            "change {} holds {ops} operations in {bytes} bytes; a device writes each visit, found place, \
             correction, sign-for or outcome as a change of its own, at most {MAX_CHANGE_OPS} operations and \
             {MAX_CHANGE_BYTES} bytes",
            change.hash()
        )));
    }
    Ok(())
}

/// Why a sync request is too large to take. Nothing of it is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TooLarge(pub String);

/// What a sync request brings, counted over its grids as each is checked (before it is applied).
#[derive(Debug, Clone, Default)]
pub struct SyncBudget {
    changes: usize,
    bytes: usize,
}

impl SyncBudget {
    /// Counts `changes` (new to the receiver) in, or refuses the request if they take it over a bound.
    pub fn spend(&mut self, changes: &[Change]) -> Result<(), TooLarge> {
        self.changes += changes.len();
        self.bytes += changes.iter().map(|c| c.raw_bytes().len()).sum::<usize>();
        if self.changes > MAX_SYNC_NEW_CHANGES || self.bytes > MAX_SYNC_NEW_BYTES {
            return Err(TooLarge(format!(
                "this sync brings at least {} changes ({:.1} MiB) new to the receiver, and a sync may bring at most \
                 {MAX_SYNC_NEW_CHANGES} changes and {} MiB, more than a team's days; nothing was stored. Sync more \
                 often, and let the team's devices sync with the server themselves (what they delivered no longer \
                 counts here)",
                self.changes,
                self.bytes as f64 / (1024.0 * 1024.0),
                MAX_SYNC_NEW_BYTES / (1024 * 1024)
            )));
        }
        Ok(())
    }
}

/// Refuses a request with more task changes than a team's tasks can hold, before any is read.
pub fn check_task_changes(pushes: Option<&[crate::protocol::TaskPush]>) -> Result<(), TooLarge> {
    let count: usize = pushes.unwrap_or_default().iter().map(|p| p.changes.len()).sum();
    if count > MAX_SYNC_TASK_CHANGES {
        return Err(TooLarge(format!(
            "this sync brings {count} urgent-task changes; a sync may bring at most {MAX_SYNC_TASK_CHANGES}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::model::{Deliveries, Outcome, Visit, MAX_NOTE_BYTES, MAX_TEXT_BYTES};
    use crate::GridDoc;
    use automerge::ActorId;

    fn visit(text: &str, note: Option<String>) -> Visit {
        Visit {
            id: uuid::Uuid::now_v7(),
            place_id: text.into(),
            volunteer: text.into(),
            device: text.into(),
            at: chrono::Utc::now(),
            outcome: Outcome::Completed,
            deliveries: Deliveries::of(["handbook"]),
            note,
            gps: Some((30.1, 105.8)),
            photos: Vec::new(),
        }
    }

    /// The largest change a device writes, on a grid whose document has 100 heads (100 team-mates' concurrent
    /// visits), is within both bounds, with room to spare.
    #[test]
    fn the_largest_visit_a_device_writes_fits() {
        let mut doc = GridDoc::genesis();
        let base = doc.fork();
        for _ in 0..100 {
            let mut other = base.fork();
            other.set_actor(ActorId::random());
            doc.apply_changes(vec![other.add_visit(&visit("p", None)).unwrap()]).unwrap();
        }
        assert_eq!(doc.heads().len(), 100);
        doc.set_actor(ActorId::random());
        let longest = "长".repeat(MAX_TEXT_BYTES / 3);
        let change = doc.add_visit(&visit(&longest, Some("注".repeat(MAX_NOTE_BYTES / 3)))).unwrap();
        assert_eq!(change.len(), 14);
        assert!(change.raw_bytes().len() < MAX_CHANGE_BYTES / 2, "{} bytes", change.raw_bytes().len());
        check_change_size(&change).unwrap();
    }

    #[test]
    fn a_change_holding_several_visits_is_refused_from_its_header() {
        use automerge::transaction::Transactable;
        let mut am = GridDoc::genesis().automerge().fork().with_actor(ActorId::random());
        let visits = automerge::ReadDoc::get(&am, automerge::ROOT, "visits").unwrap().unwrap().1;
        let mut tx = am.transaction();
        for i in 0..5 {
            let obj = tx.put_object(&visits, format!("v{i}"), automerge::ObjType::Map).unwrap();
            for field in ["place", "volunteer", "device", "outcome", "note", "a", "b", "c", "d", "e", "f", "g", "h"] {
                tx.put(&obj, field, "x").unwrap();
            }
        }
        tx.commit();
        let change = am.get_last_local_change().unwrap().clone();
        let err = check_change_size(&change).unwrap_err().to_string();
        assert!(err.contains("holds 70 operations") && err.contains("at most 64 operations"), "{err}");
    }

    #[test]
    fn a_sync_budget_counts_changes_and_bytes_over_its_grids() {
        let mut doc = GridDoc::genesis();
        doc.set_actor(ActorId::random());
        let small = doc.add_visit(&visit("p", None)).unwrap();
        let mut budget = SyncBudget { changes: MAX_SYNC_NEW_CHANGES - 3, bytes: 0 };
        budget.spend(&[small.clone(), small.clone()]).unwrap();
        budget.spend(std::slice::from_ref(&small)).unwrap();
        let err = budget.spend(std::slice::from_ref(&small)).unwrap_err().to_string();
        assert!(err.contains("at least 20001 changes") && err.contains("at most 20000 changes and 16 MiB"), "{err}");
        let mut budget = SyncBudget { changes: 0, bytes: MAX_SYNC_NEW_BYTES - small.raw_bytes().len() };
        budget.spend(std::slice::from_ref(&small)).unwrap();
        assert!(budget.spend(std::slice::from_ref(&small)).is_err(), "bytes count too");
    }
}
