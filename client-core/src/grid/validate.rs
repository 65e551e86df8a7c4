//! What a device may change in a grid document, checked by the server (and a hub) before anything is stored.
//!
//! A device may only add: new visits (entries of the `visits` map), places it found (entries of the `places` map
//! under a fresh `F-<uuid>` key) and corrections it proposes (entries of the `corrections` map), written by its
//! own actor, filled with known fields of the right type, in the name of its own user and device. Nothing may be
//! deleted or overwritten (no operation may have a predecessor), and review decisions are the server's alone.

use crate::campaign::{file::MAX_DELIVERIES, is_known_delivery, is_known_kind};
use crate::grid::doc::{corrections_upgrade, visit_field as f, GridDoc};
use crate::grid::found::{correction_field as cf, is_found_place_key, place_field as pf, Correction, FoundPlace};
use crate::grid::model::{parse_photo_refs, Visit, MAX_NOTE_BYTES, MAX_PHOTOS_PER_VISIT, MAX_TEXT_BYTES};

/// Longest `photos` field a visit may carry: its most references, each well under 200 bytes as written.
const MAX_PHOTOS_FIELD_BYTES: usize = MAX_PHOTOS_PER_VISIT * 200;
use crate::sync::{Author, Violation};
use automerge::{legacy, Change, ObjId, ReadDoc, ScalarValue};
use std::collections::HashMap;

fn deny<T>(msg: impl Into<String>) -> Result<T, Violation> {
    Err(Violation(msg.into()))
}

/// The kinds of object a device may add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Visit,
    Place,
    Correction,
}

/// Keys of the objects one change adds, by kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Added {
    pub visits: Vec<String>,
    pub places: Vec<String>,
    pub corrections: Vec<String>,
}

/// Checks the operations of one change (before it is applied) and returns the keys of the objects it adds.
pub fn check_change_ops(doc: &GridDoc, change: &Change, author: &Author) -> Result<Added, Violation> {
    let hash = change.hash();
    if change.actor_id() != &author.actor {
        return deny(format!(
            "change {hash} was written by actor {} but this device's actor is {}",
            change.actor_id(),
            author.actor
        ));
    }
    let visits = doc.obj("visits").map_err(|e| Violation(e.to_string()))?;
    let places = doc.obj("places").map_err(|e| Violation(e.to_string()))?;
    let corrections = doc.obj_opt("corrections").map_err(|e| Violation(e.to_string()))?;
    // Decoding rejects nothing on its own and may panic on hostile input in some automerge versions.
    let expanded = std::panic::catch_unwind(|| change.decode())
        .or_else(|_| deny(format!("change {hash} could not be decoded")))?;
    let start = change.start_op().get();
    let mut created: HashMap<u64, Kind> = HashMap::new();
    let mut added = Added::default();
    for (i, op) in expanded.operations.iter().enumerate() {
        let counter = start + i as u64;
        if !op.pred.is_empty() || op.insert {
            return deny(format!("change {hash} overwrites or deletes existing data, which devices may not do"));
        }
        let key = match &op.key {
            legacy::Key::Map(k) => k.to_string(),
            legacy::Key::Seq(_) => return deny(format!("change {hash} writes to a list, outside the schema")),
        };
        let exists =
            |map: Option<&ObjId>| map.is_some_and(|m| doc.automerge().get(m, key.as_str()).ok().flatten().is_some());
        if matches!(op.action, legacy::OpType::Make(_)) && !created.is_empty() {
            return deny(format!(
                "change {hash} adds more than one object; a device writes each visit, found place or correction as \
                 a change of its own"
            ));
        }
        match (&op.action, &op.obj) {
            (legacy::OpType::Make(automerge::ObjType::Map), obj) if is_obj(obj, &visits) => {
                if uuid::Uuid::parse_str(&key).is_err() {
                    return deny(format!("visit key {key:?} is not a UUID"));
                }
                if exists(Some(&visits)) || added.visits.contains(&key) {
                    return deny(format!("visit {key} already exists; visits are never rewritten"));
                }
                created.insert(counter, Kind::Visit);
                added.visits.push(key);
            }
            (legacy::OpType::Make(automerge::ObjType::Map), obj) if is_obj(obj, &places) => {
                if !is_found_place_key(&key) {
                    return deny(format!("a place found in the field needs a key F-<uuid>, not {key:?}"));
                }
                if exists(Some(&places)) || added.places.contains(&key) {
                    return deny(format!("place {key} already exists; devices only add new places"));
                }
                created.insert(counter, Kind::Place);
                added.places.push(key);
            }
            (legacy::OpType::Make(automerge::ObjType::Map), obj) if is_corrections(obj) => {
                if uuid::Uuid::parse_str(&key).is_err() {
                    return deny(format!("correction key {key:?} is not a UUID"));
                }
                if exists(corrections.as_ref()) || added.corrections.contains(&key) {
                    return deny(format!("correction {key} already exists; corrections are never rewritten"));
                }
                created.insert(counter, Kind::Correction);
                added.corrections.push(key);
            }
            (legacy::OpType::Put(value), legacy::ObjectId::Id(legacy::OpId(ctr, actor))) if actor == &author.actor => {
                match created.get(ctr) {
                    Some(kind) => check_field(*kind, &key, value)?,
                    None => return deny(outside(hash, &key)),
                }
            }
            _ => return deny(outside(hash, &key)),
        }
    }
    // Valid operations name only the device's own actor and the actor that created the root maps; a change whose
    // actor table lists any other is refused, since automerge 0.12 aborts the process when applying a change
    // that names an actor the document does not know.
    let automerge::ObjId::Id(_, root_maps_actor, _) = &visits else {
        return deny("the grid's visits map has no creator");
    };
    if let Some(other) = change.other_actor_ids().iter().find(|a| *a != root_maps_actor) {
        return deny(format!("change {hash} refers to actor {other}, which has no place in what a device adds"));
    }
    Ok(added)
}

fn outside(hash: automerge::ChangeHash, key: &str) -> String {
    format!("change {hash} writes `{key}` outside a new visit, place or correction; devices may only add those")
}

pub(crate) fn is_obj(obj: &legacy::ObjectId, target: &ObjId) -> bool {
    match (obj, target) {
        (legacy::ObjectId::Id(legacy::OpId(ctr, actor)), automerge::ObjId::Id(tctr, tactor, _)) => {
            ctr == tctr && actor == tactor
        }
        _ => false,
    }
}

/// The `corrections` map is the one object of the constant upgrade change, in grids that have it and in those
/// whose push brings it.
fn is_corrections(obj: &legacy::ObjectId) -> bool {
    let upgrade = corrections_upgrade();
    matches!(obj, legacy::ObjectId::Id(legacy::OpId(ctr, actor))
        if *ctr == upgrade.start_op().get() && actor == upgrade.actor_id())
}

fn text(value: &ScalarValue, max: usize) -> bool {
    matches!(value, ScalarValue::Str(s) if s.len() <= max)
}

fn check_field(kind: Kind, key: &str, value: &ScalarValue) -> Result<(), Violation> {
    let lat = |v: &ScalarValue| matches!(v, ScalarValue::F64(x) if (-90.0..=90.0).contains(x));
    let lon = |v: &ScalarValue| matches!(v, ScalarValue::F64(x) if (-180.0..=180.0).contains(x));
    let ok = match (kind, key) {
        (Kind::Visit, f::PLACE | f::VOLUNTEER | f::DEVICE | f::OUTCOME) => text(value, MAX_TEXT_BYTES),
        (Kind::Visit, f::NOTE) => text(value, MAX_NOTE_BYTES),
        (Kind::Visit, f::PHOTOS) => match value {
            ScalarValue::Str(s) if s.len() <= MAX_PHOTOS_FIELD_BYTES => match parse_photo_refs(s) {
                Ok(refs) => !refs.is_empty(),
                Err(e) => return deny(format!("visit field `photos`: {e}")),
            },
            _ => false,
        },
        (Kind::Visit, f::AT) => matches!(value, ScalarValue::Timestamp(_)),
        (Kind::Visit, f::LAT) | (Kind::Place, pf::LAT) => lat(value),
        (Kind::Visit, f::LON) | (Kind::Place, pf::LON) => lon(value),
        (Kind::Place, pf::KIND) => matches!(value, ScalarValue::Str(s) if is_known_kind(s)),
        (Kind::Place, pf::LABEL | pf::ADDRESS | pf::ADDED_BY | pf::DEVICE) => text(value, MAX_TEXT_BYTES),
        // Any other field of a visit is a delivery of a campaign, keyed by its id.
        (Kind::Visit, delivery) if is_known_delivery(delivery) => matches!(value, ScalarValue::Boolean(_)),
        (Kind::Place, pf::ADDED_AT) | (Kind::Correction, cf::AT) => matches!(value, ScalarValue::Timestamp(_)),
        (Kind::Correction, cf::PLACE | cf::LABEL | cf::ADDRESS | cf::VOLUNTEER | cf::DEVICE) => {
            text(value, MAX_TEXT_BYTES)
        }
        (kind, _) => {
            return deny(format!("{} field `{key}` is not part of the schema a device may write", kind_name(kind)))
        }
    };
    if ok {
        Ok(())
    } else {
        deny(format!("{} field `{key}` has a value of the wrong type or size", kind_name(kind)))
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Visit => "visit",
        Kind::Place => "place",
        Kind::Correction => "correction",
    }
}

/// Checks a visit as it reads after the changes are applied: complete, for a place of this grid, and in the
/// name of its writer's user and device.
pub fn check_new_visit(doc_after: &GridDoc, key: &str, author: &Author) -> Result<Visit, Violation> {
    let visit = doc_after
        .visit(key)
        .map_err(|e| Violation(e.to_string()))?
        .ok_or_else(|| Violation(format!("visit {key} is missing after applying the change")))?;
    check_name("visit", key, &visit.volunteer, &visit.device, author)?;
    if visit.deliveries.iter().count() > MAX_DELIVERIES {
        return deny(format!("visit {key} records more than {MAX_DELIVERIES} deliveries"));
    }
    if !doc_after.has_place(&visit.place_id).map_err(|e| Violation(e.to_string()))? {
        return deny(format!("visit {key} is for place {:?}, which is not in this grid", visit.place_id));
    }
    Ok(visit)
}

/// Checks a found place after the changes are applied: complete, labelled, in its writer's name.
pub fn check_new_place(doc_after: &GridDoc, key: &str, author: &Author) -> Result<FoundPlace, Violation> {
    let found = doc_after
        .found_place(key)
        .map_err(|e| Violation(e.to_string()))?
        .ok_or_else(|| Violation(format!("place {key} does not say who found it")))?;
    check_name("place", key, &found.added_by, &found.device, author)?;
    if found.place.label.trim().is_empty() {
        return deny(format!("place {key} has an empty label"));
    }
    if found.place.lat.is_some() != found.place.lon.is_some() {
        return deny(format!("place {key} has a latitude without a longitude or the reverse"));
    }
    Ok(found)
}

/// Checks a correction after the changes are applied: for a place of this grid, proposing something, in its
/// writer's name.
pub fn check_new_correction(doc_after: &GridDoc, key: &str, author: &Author) -> Result<Correction, Violation> {
    let correction = doc_after
        .correction(key)
        .map_err(|e| Violation(e.to_string()))?
        .ok_or_else(|| Violation(format!("correction {key} is missing after applying the change")))?;
    check_name("correction", key, &correction.volunteer, &correction.device, author)?;
    if correction.label.is_none() && correction.address.is_none() {
        return deny(format!("correction {key} proposes neither a label nor an address"));
    }
    if correction.label.as_deref().is_some_and(|l| l.trim().is_empty()) {
        return deny(format!("correction {key} proposes an empty label"));
    }
    if !doc_after.has_place(&correction.place_id).map_err(|e| Violation(e.to_string()))? {
        return deny(format!("correction {key} is for place {:?}, which is not in this grid", correction.place_id));
    }
    Ok(correction)
}

fn check_name(what: &str, key: &str, username: &str, device: &str, author: &Author) -> Result<(), Violation> {
    if username != author.username {
        return deny(format!(
            "{what} {key} claims volunteer {username:?} but the device belongs to {:?}",
            author.username
        ));
    }
    if device != author.device {
        return deny(format!("{what} {key} claims device {device:?}, not the device that wrote it"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::doc::tests::sample_info;
    use crate::grid::model::{Deliveries, Outcome, PhotoRef, PhotoRejection, Place, PlaceKind};
    use automerge::ActorId;

    fn grid_with_place() -> GridDoc {
        let mut doc = GridDoc::genesis();
        doc.set_actor(ActorId::random());
        let place = Place {
            id: "P1".into(),
            kind: PlaceKind::Building,
            label: "P1".into(),
            address: None,
            lat: None,
            lon: None,
        };
        doc.update_registry(&sample_info(), &[place], &Default::default()).unwrap();
        doc
    }

    fn photo(n: u8) -> PhotoRef {
        PhotoRef {
            sha256: format!("{n:02x}").repeat(32),
            size: 200_000,
            media_type: "image/jpeg".into(),
            taken_at: chrono::Utc::now(),
            rejected: None,
        }
    }

    fn visit(author: &Author, photos: Vec<PhotoRef>) -> Visit {
        Visit {
            id: uuid::Uuid::now_v7(),
            place_id: "P1".into(),
            volunteer: author.username.clone(),
            device: author.device.clone(),
            at: chrono::Utc::now(),
            outcome: Outcome::Completed,
            deliveries: Deliveries::of(["poster"]),
            note: None,
            gps: None,
            photos,
        }
    }

    /// The change a device makes when it records `visit`, checked against the grid it was made on.
    fn checked(
        server: &GridDoc,
        author: &Author,
        write: impl FnOnce(&mut GridDoc) -> Change,
    ) -> Result<Added, Violation> {
        let mut device = server.fork();
        device.set_actor(author.actor.clone());
        let change = write(&mut device);
        check_change_ops(server, &change, author)
    }

    #[test]
    fn a_visit_references_its_photos_and_nothing_else_about_them() {
        let server = grid_with_place();
        let author = Author { actor: ActorId::random(), username: "amy".into(), device: "d1".into() };
        let with_photos = visit(&author, vec![photo(1), photo(2)]);
        let added = checked(&server, &author, |d| d.add_visit(&with_photos).unwrap()).unwrap();
        assert_eq!(added.visits, [with_photos.id.to_string()]);

        // Read back as written, rejections apart.
        let mut device = server.fork();
        device.set_actor(author.actor.clone());
        device.add_visit(&with_photos).unwrap();
        let read = device.visit(&with_photos.id.to_string()).unwrap().unwrap();
        assert_eq!(read.photos.len(), 2);
        assert_eq!(read.photos[0].sha256, photo(1).sha256);
        assert_eq!(read.photos[0].taken_at.timestamp_millis(), with_photos.photos[0].taken_at.timestamp_millis());

        let too_many = visit(&author, (1..=9).map(photo).collect());
        let err = checked(&server, &author, |d| d.add_visit(&too_many).unwrap()).unwrap_err();
        assert!(err.0.contains("at most 8"), "{err}");
        let mut twice = visit(&author, vec![photo(3), photo(3)]);
        let err = checked(&server, &author, |d| d.add_visit(&twice).unwrap()).unwrap_err();
        assert!(err.0.contains("referenced twice"), "{err}");
        twice.photos = vec![PhotoRef { media_type: "application/pdf".into(), ..photo(4) }];
        let err = checked(&server, &author, |d| d.add_visit(&twice).unwrap()).unwrap_err();
        assert!(err.0.contains("photos are image/jpeg or image/webp"), "{err}");
        twice.photos = vec![PhotoRef { sha256: "ABC".into(), ..photo(4) }];
        let err = checked(&server, &author, |d| d.add_visit(&twice).unwrap()).unwrap_err();
        assert!(err.0.contains("not a SHA-256"), "{err}");
        twice.photos = vec![PhotoRef { size: 5 << 20, ..photo(4) }];
        let err = checked(&server, &author, |d| d.add_visit(&twice).unwrap()).unwrap_err();
        assert!(err.0.contains("a photo has 1 to"), "{err}");
    }

    #[test]
    fn only_the_server_rejects_a_photo_and_the_visit_then_reads_it_rejected() {
        let mut server = grid_with_place();
        let author = Author { actor: ActorId::random(), username: "amy".into(), device: "d1".into() };
        let v = visit(&author, vec![photo(1), photo(2)]);
        let mut device = server.fork();
        device.set_actor(author.actor.clone());
        let change = device.add_visit(&v).unwrap();
        server.apply_changes(vec![change]).unwrap();

        // A device writing a rejection (even of its own visit) writes outside what it may add.
        let rejection = PhotoRejection { sha256: photo(1).sha256, reason: "blurred".into(), at: chrono::Utc::now() };
        let mut forger = server.fork();
        forger.set_actor(author.actor.clone());
        let forged = forger.reject_photo(&v.id.to_string(), &rejection).unwrap().unwrap();
        assert!(check_change_ops(&server, &forged, &author).is_err());

        assert!(server.reject_photo(&v.id.to_string(), &rejection).unwrap().is_some());
        assert!(server.reject_photo(&v.id.to_string(), &rejection).unwrap().is_none(), "rejected once");
        let read = server.visit(&v.id.to_string()).unwrap().unwrap();
        assert_eq!(read.photos[0].rejected.as_ref().map(|r| r.reason.as_str()), Some("blurred"));
        assert!(read.photos[1].rejected.is_none());
        assert!(read.has_accepted_photo());
        let second = PhotoRejection { sha256: photo(2).sha256, ..rejection };
        server.reject_photo(&v.id.to_string(), &second).unwrap();
        let read = GridDoc::load(&server.save()).unwrap().visit(&v.id.to_string()).unwrap().unwrap();
        assert!(!read.has_accepted_photo(), "both rejected, after a save and load");
        let unknown = PhotoRejection { sha256: photo(7).sha256, ..second };
        assert!(server.reject_photo(&v.id.to_string(), &unknown).is_err());
    }
}
