//! What a device may change in a task document, checked by the server before anything is stored.
//!
//! A device may only add entries: new sign-for entries (`signs`) and outcomes (`outcomes`), each a new map under
//! a UUID key, written by its own actor, filled with known fields of the right type, in the name of its own user
//! and device. It may not touch the office's `task` map, and nothing may be deleted or overwritten.

use crate::grid::model::{MAX_NOTE_BYTES, MAX_TEXT_BYTES};
use crate::grid::validate::is_obj;
use crate::sync::{Author, Violation};
use crate::task::doc::{task_field as f, TaskDoc, OUTCOMES, SIGNS};
use crate::task::model::{ContactMethod, Sign, SignKind, TaskOutcome};
use automerge::{legacy, Change, ReadDoc, ScalarValue};
use std::collections::HashSet;

/// Which map a new entry went into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Sign,
    Outcome,
}

fn deny<T>(msg: impl Into<String>) -> Result<T, Violation> {
    Err(Violation(msg.into()))
}

/// Checks the operations of one change (before it is applied) and returns the entries it adds.
pub fn check_task_change_ops(
    doc: &TaskDoc,
    change: &Change,
    author: &Author,
) -> Result<Vec<(EntryKind, String)>, Violation> {
    let hash = change.hash();
    if change.actor_id() != &author.actor {
        return deny(format!(
            "change {hash} was written by actor {} but this device's actor is {}",
            change.actor_id(),
            author.actor
        ));
    }
    let signs = doc.obj(SIGNS).map_err(|e| Violation(e.to_string()))?;
    let outcomes = doc.obj(OUTCOMES).map_err(|e| Violation(e.to_string()))?;
    let expanded = std::panic::catch_unwind(|| change.decode())
        .or_else(|_| deny(format!("change {hash} could not be decoded")))?;
    let start = change.start_op().get();
    let mut created: Vec<(u64, EntryKind)> = Vec::new();
    let mut entries: Vec<(EntryKind, String)> = Vec::new();
    for (i, op) in expanded.operations.iter().enumerate() {
        let counter = start + i as u64;
        if !op.pred.is_empty() || op.insert {
            return deny(format!("change {hash} overwrites or deletes existing data, which devices may not do"));
        }
        let key = match &op.key {
            legacy::Key::Map(k) => k.to_string(),
            legacy::Key::Seq(_) => return deny(format!("change {hash} writes to a list, outside the schema")),
        };
        let new_entry = match &op.obj {
            obj if is_obj(obj, &signs) => Some((EntryKind::Sign, &signs)),
            obj if is_obj(obj, &outcomes) => Some((EntryKind::Outcome, &outcomes)),
            _ => None,
        };
        match (&op.action, new_entry, &op.obj) {
            (legacy::OpType::Make(automerge::ObjType::Map), Some((kind, map)), _) => {
                if !created.is_empty() {
                    return deny(format!(
                        "change {hash} adds more than one entry; a device writes each sign-for or outcome as a \
                         change of its own"
                    ));
                }
                if uuid::Uuid::parse_str(&key).is_err() {
                    return deny(format!("task entry key {key:?} is not a UUID"));
                }
                let exists = doc.automerge().get(map, key.as_str()).ok().flatten().is_some();
                if exists || entries.iter().any(|(_, k)| k == &key) {
                    return deny(format!("task entry {key} already exists; entries are never rewritten"));
                }
                created.push((counter, kind));
                entries.push((kind, key));
            }
            (legacy::OpType::Put(value), None, legacy::ObjectId::Id(legacy::OpId(ctr, actor)))
                if actor == &author.actor =>
            {
                let Some((_, kind)) = created.iter().find(|(c, _)| c == ctr) else {
                    return deny(format!("change {hash} writes `{key}` outside a new entry"));
                };
                check_field(*kind, &key, value)?;
            }
            _ => {
                return deny(format!(
                    "change {hash} writes `{key}` outside a new sign-for or outcome entry; devices may only add those"
                ))
            }
        }
    }
    // As for grids: a change naming any actor besides the device's and the maps' creator is refused, since
    // automerge aborts on changes that name actors the document does not know.
    let automerge::ObjId::Id(_, maps_actor, _) = &signs else {
        return deny("the task's signs map has no creator");
    };
    if let Some(other) = change.other_actor_ids().iter().find(|a| *a != maps_actor) {
        return deny(format!("change {hash} refers to actor {other}, which has no place in a new entry"));
    }
    Ok(entries)
}

fn check_field(kind: EntryKind, key: &str, value: &ScalarValue) -> Result<(), Violation> {
    let text = |max: usize| matches!(value, ScalarValue::Str(s) if s.len() <= max);
    let ok = match (kind, key) {
        (_, f::VOLUNTEER | f::DEVICE) => text(MAX_TEXT_BYTES),
        (_, f::AT) => matches!(value, ScalarValue::Timestamp(_)),
        (EntryKind::Sign, f::KIND) => matches!(value, ScalarValue::Str(s) if s.parse::<SignKind>().is_ok()),
        (EntryKind::Outcome, f::METHOD) => matches!(value, ScalarValue::Str(s) if s.parse::<ContactMethod>().is_ok()),
        (EntryKind::Outcome, f::REACHED | f::DISSUADED | f::MONEY_LOST) => matches!(value, ScalarValue::Boolean(_)),
        (EntryKind::Outcome, f::AMOUNT_FEN) => matches!(value, ScalarValue::Int(a) if *a >= 0),
        (EntryKind::Outcome, f::FEEDBACK) => text(MAX_NOTE_BYTES),
        (EntryKind::Outcome, f::LAT) => matches!(value, ScalarValue::F64(x) if (-90.0..=90.0).contains(x)),
        (EntryKind::Outcome, f::LON) => matches!(value, ScalarValue::F64(x) if (-180.0..=180.0).contains(x)),
        _ => return deny(format!("task entry field `{key}` is not part of the schema")),
    };
    if ok {
        Ok(())
    } else {
        deny(format!("task entry field `{key}` has a value of the wrong type or size"))
    }
}

/// New entries as they read after the changes are applied: complete, consistent, in the pusher's name.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct NewEntries {
    pub signs: Vec<Sign>,
    pub outcomes: Vec<TaskOutcome>,
}

pub fn check_new_entries(
    doc_after: &TaskDoc,
    entries: &[(EntryKind, String)],
    author: &Author,
) -> Result<NewEntries, Violation> {
    let mut out = NewEntries::default();
    let mut seen = HashSet::new();
    for (kind, key) in entries {
        if !seen.insert(key) {
            return deny(format!("task entry {key} is added twice"));
        }
        let missing = || Violation(format!("task entry {key} is missing after applying the change"));
        let (volunteer, device) = match kind {
            EntryKind::Sign => {
                let s = doc_after.sign(key).map_err(|e| Violation(e.to_string()))?.ok_or_else(missing)?;
                let who = (s.volunteer.clone(), s.device.clone());
                out.signs.push(s);
                who
            }
            EntryKind::Outcome => {
                let o = doc_after.outcome(key).map_err(|e| Violation(e.to_string()))?.ok_or_else(missing)?;
                o.check().map_err(|e| Violation(format!("outcome {key}: {e}")))?;
                let who = (o.volunteer.clone(), o.device.clone());
                out.outcomes.push(o);
                who
            }
        };
        if volunteer != author.username {
            return deny(format!(
                "task entry {key} claims volunteer {volunteer:?} but the device belongs to {:?}",
                author.username
            ));
        }
        if device != author.device {
            return deny(format!("task entry {key} claims device {device:?}, not this device"));
        }
    }
    Ok(out)
}
