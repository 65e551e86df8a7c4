//! What a device may change in a grid document, checked by the server before anything is stored.
//!
//! A device may only add visits: new entries in the `visits` map, written by its own actor, filled with
//! known fields of the right type, for a place of that grid, in the name of its own user and device.
//! Nothing may be deleted or overwritten (no operation may have a predecessor).

use crate::doc::{visit_field as f, GridDoc};
use crate::model::{MAX_NOTE_BYTES, MAX_TEXT_BYTES};
use automerge::{legacy, ActorId, Change, ObjId, ReadDoc, ScalarValue};
use std::collections::HashSet;

/// Who is pushing: taken from the verified device token, never from the message.
#[derive(Debug, Clone)]
pub struct Author {
    pub actor: ActorId,
    pub username: String,
    pub device: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Violation(pub String);

fn deny<T>(msg: impl Into<String>) -> Result<T, Violation> {
    Err(Violation(msg.into()))
}

/// Checks the operations of one change (before it is applied) and returns the keys of the visits it adds.
pub fn check_change_ops(doc: &GridDoc, change: &Change, author: &Author) -> Result<Vec<String>, Violation> {
    let hash = change.hash();
    if change.actor_id() != &author.actor {
        return deny(format!(
            "change {hash} was written by actor {} but this device's actor is {}",
            change.actor_id(),
            author.actor
        ));
    }
    let visits = doc.obj("visits").map_err(|e| Violation(e.to_string()))?;
    // Decoding rejects nothing on its own and may panic on hostile input in some automerge versions.
    let expanded = std::panic::catch_unwind(|| change.decode())
        .or_else(|_| deny(format!("change {hash} could not be decoded")))?;
    let start = change.start_op().get();
    let mut created: HashSet<u64> = HashSet::new();
    let mut keys = Vec::new();
    for (i, op) in expanded.operations.iter().enumerate() {
        let counter = start + i as u64;
        if !op.pred.is_empty() || op.insert {
            return deny(format!("change {hash} overwrites or deletes existing data, which devices may not do"));
        }
        let key = match &op.key {
            legacy::Key::Map(k) => k.to_string(),
            legacy::Key::Seq(_) => return deny(format!("change {hash} writes to a list, outside the schema")),
        };
        match (&op.action, &op.obj) {
            (legacy::OpType::Make(automerge::ObjType::Map), obj) if is_obj(obj, &visits) => {
                if uuid::Uuid::parse_str(&key).is_err() {
                    return deny(format!("visit key {key:?} is not a UUID"));
                }
                if doc.automerge().get(&visits, key.as_str()).ok().flatten().is_some() || keys.contains(&key) {
                    return deny(format!("visit {key} already exists; visits are never rewritten"));
                }
                created.insert(counter);
                keys.push(key);
            }
            (legacy::OpType::Put(value), legacy::ObjectId::Id(legacy::OpId(ctr, actor)))
                if actor == &author.actor && created.contains(ctr) =>
            {
                check_field(&key, value)?;
            }
            _ => return deny(format!("change {hash} writes `{key}` outside a new visit; devices may only add visits")),
        }
    }
    // Valid operations name only the device's own actor and the actor that created the `visits` map; a change
    // whose actor table lists any other is refused, since automerge 0.12 aborts the process when applying a
    // change that names an actor the document does not know.
    let automerge::ObjId::Id(_, visits_actor, _) = &visits else {
        return deny("the grid's visits map has no creator");
    };
    if let Some(other) = change.other_actor_ids().iter().find(|a| *a != visits_actor) {
        return deny(format!("change {hash} refers to actor {other}, which has no place in a new visit"));
    }
    Ok(keys)
}

pub(crate) fn is_obj(obj: &legacy::ObjectId, target: &ObjId) -> bool {
    match (obj, target) {
        (legacy::ObjectId::Id(legacy::OpId(ctr, actor)), automerge::ObjId::Id(tctr, tactor, _)) => {
            ctr == tctr && actor == tactor
        }
        _ => false,
    }
}

fn check_field(key: &str, value: &ScalarValue) -> Result<(), Violation> {
    let ok = match key {
        f::PLACE | f::VOLUNTEER | f::DEVICE | f::OUTCOME => {
            matches!(value, ScalarValue::Str(s) if s.len() <= MAX_TEXT_BYTES)
        }
        f::NOTE => matches!(value, ScalarValue::Str(s) if s.len() <= MAX_NOTE_BYTES),
        f::AT => matches!(value, ScalarValue::Timestamp(_)),
        f::HANDBOOK | f::BRIEFED | f::POSTER | f::BANNER | f::LED_PLAYING => {
            matches!(value, ScalarValue::Boolean(_))
        }
        f::LAT => matches!(value, ScalarValue::F64(x) if (-90.0..=90.0).contains(x)),
        f::LON => matches!(value, ScalarValue::F64(x) if (-180.0..=180.0).contains(x)),
        _ => return deny(format!("visit field `{key}` is not part of the schema")),
    };
    if ok {
        Ok(())
    } else {
        deny(format!("visit field `{key}` has a value of the wrong type or size"))
    }
}

/// Checks a visit as it reads after the changes are applied: complete, for a place of this grid, and in the
/// name of the pushing user and device.
pub fn check_new_visit(doc_after: &GridDoc, key: &str, author: &Author) -> Result<crate::model::Visit, Violation> {
    let visit = doc_after
        .visit(key)
        .map_err(|e| Violation(e.to_string()))?
        .ok_or_else(|| Violation(format!("visit {key} is missing after applying the change")))?;
    if visit.volunteer != author.username {
        return deny(format!(
            "visit {key} claims volunteer {:?} but the device belongs to {:?}",
            visit.volunteer, author.username
        ));
    }
    if visit.device != author.device {
        return deny(format!("visit {key} claims device {:?}, not this device", visit.device));
    }
    if doc_after.place(&visit.place_id).map_err(|e| Violation(e.to_string()))?.is_none() {
        return deny(format!("visit {key} is for place {:?}, which is not in this grid", visit.place_id));
    }
    Ok(visit)
}
