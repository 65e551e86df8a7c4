//! Places found in the field and corrections proposed from it, kept in the grid document beside visits, and
//! the office's review decisions that the server writes back into the same document.
//!
//! A found place is a new entry of the `places` map under a key `F-<uuid v7>`, written by the device that found
//! it, with `added_by`, `device` and `added_at` beside the usual place fields. It counts in coverage from its
//! first sync until the office rejects it or merges it into another place as a duplicate (`review`,
//! `merged_into`); a merged place's visits count for the place it was merged into, on every replica.
//! A correction is an entry of the `corrections` map proposing a new label and/or address for a place.

use crate::grid::doc::{f64_field, read_map, str_field, DocError, GridDoc, Result};
use crate::grid::model::{Place, PlaceKind};
use automerge::{hydrate, transaction::Transactable, Change, ObjType, ReadDoc, ScalarValue, Value};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

/// Keys of places found in the field start with this, so they never collide with registry ids.
pub const FOUND_PREFIX: &str = "F-";

/// Field names of a found place beyond those of every place (`kind`, `label`, `address`, `lat`, `lon`).
pub mod place_field {
    pub const KIND: &str = "kind";
    pub const LABEL: &str = "label";
    pub const ADDRESS: &str = "address";
    pub const LAT: &str = "lat";
    pub const LON: &str = "lon";
    pub const ADDED_BY: &str = "added_by";
    pub const DEVICE: &str = "device";
    pub const ADDED_AT: &str = "added_at";
    /// Written by the server only.
    pub const REVIEW: &str = "review";
    /// Written by the server only.
    pub const MERGED_INTO: &str = "merged_into";
}

/// Field names of a correction.
pub mod correction_field {
    pub const PLACE: &str = "place";
    pub const LABEL: &str = "label";
    pub const ADDRESS: &str = "address";
    pub const VOLUNTEER: &str = "volunteer";
    pub const DEVICE: &str = "device";
    pub const AT: &str = "at";
    /// Written by the server only.
    pub const REVIEW: &str = "review";
}

/// The office's decision on a found place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlaceReview {
    /// A real place: it stays, no longer awaiting review.
    Confirmed,
    /// Not a place: it leaves coverage.
    Rejected,
    /// A duplicate of this other place: it leaves coverage and its visits count for that place.
    MergedInto(String),
}

impl PlaceReview {
    pub fn id(&self) -> &'static str {
        match self {
            PlaceReview::Confirmed => "confirmed",
            PlaceReview::Rejected => "rejected",
            PlaceReview::MergedInto(_) => "merged",
        }
    }
}

/// The office's decision on a correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CorrectionReview {
    /// The place takes the proposed label and address.
    Confirmed,
    Rejected,
}

impl CorrectionReview {
    pub fn id(self) -> &'static str {
        match self {
            CorrectionReview::Confirmed => "confirmed",
            CorrectionReview::Rejected => "rejected",
        }
    }
}

/// A place a volunteer found in the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoundPlace {
    pub place: Place,
    /// Username of the volunteer who found it.
    pub added_by: String,
    /// Device that recorded it.
    pub device: String,
    pub added_at: DateTime<Utc>,
    pub review: Option<PlaceReview>,
}

impl FoundPlace {
    /// Still counted as a place of its own (not rejected, not merged away).
    pub fn is_active(&self) -> bool {
        matches!(self.review, None | Some(PlaceReview::Confirmed))
    }
}

/// A new label and/or address for a place, proposed from the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    pub id: Uuid,
    pub place_id: String,
    pub label: Option<String>,
    pub address: Option<String>,
    pub volunteer: String,
    pub device: String,
    pub at: DateTime<Utc>,
    pub review: Option<CorrectionReview>,
}

/// A fresh key for a found place.
pub fn new_found_place_id() -> String {
    format!("{FOUND_PREFIX}{}", Uuid::now_v7())
}

/// Whether `key` has the shape of a found place's key.
pub fn is_found_place_key(key: &str) -> bool {
    key.strip_prefix(FOUND_PREFIX).is_some_and(|rest| Uuid::parse_str(rest).is_ok())
}

fn schema_err(msg: impl Into<String>) -> DocError {
    DocError::Schema(msg.into())
}

fn timestamp(m: &HashMap<String, ScalarValue>, k: &str) -> Option<DateTime<Utc>> {
    match m.get(k) {
        Some(ScalarValue::Timestamp(ms)) => Utc.timestamp_millis_opt(*ms).single(),
        _ => None,
    }
}

impl GridDoc {
    /// The found place under `id`, or `None` when there is no such place or it came from the registry.
    pub fn found_place(&self, id: &str) -> Result<Option<FoundPlace>> {
        use place_field as f;
        let places = self.obj("places")?;
        let Some((Value::Object(ObjType::Map), obj)) = self.automerge().get(&places, id)? else {
            return Ok(None);
        };
        let m = read_map(self.automerge(), &obj)?;
        if !m.contains_key(f::ADDED_BY) {
            return Ok(None);
        }
        let err = |k: &str| schema_err(format!("found place {id}: field `{k}` is missing or has the wrong type"));
        let kind = str_field(&m, f::KIND).filter(|k| crate::campaign::is_id(k)).ok_or_else(|| err(f::KIND))?;
        let kind = PlaceKind::of(&kind);
        let review = match str_field(&m, f::REVIEW).as_deref() {
            None => None,
            Some("confirmed") => Some(PlaceReview::Confirmed),
            Some("rejected") => Some(PlaceReview::Rejected),
            Some("merged") => {
                Some(PlaceReview::MergedInto(str_field(&m, f::MERGED_INTO).ok_or_else(|| err(f::MERGED_INTO))?))
            }
            Some(_) => return Err(err(f::REVIEW)),
        };
        Ok(Some(FoundPlace {
            place: Place {
                id: id.to_string(),
                kind,
                label: str_field(&m, f::LABEL).ok_or_else(|| err(f::LABEL))?,
                address: str_field(&m, f::ADDRESS),
                lat: f64_field(&m, f::LAT),
                lon: f64_field(&m, f::LON),
            },
            added_by: str_field(&m, f::ADDED_BY).ok_or_else(|| err(f::ADDED_BY))?,
            device: str_field(&m, f::DEVICE).ok_or_else(|| err(f::DEVICE))?,
            added_at: timestamp(&m, f::ADDED_AT).ok_or_else(|| err(f::ADDED_AT))?,
            review,
        }))
    }

    /// Every place found in the field, reviewed or not.
    pub fn found_places(&self) -> Result<Vec<FoundPlace>> {
        let places = self.obj("places")?;
        let ids: Vec<String> = self.automerge().keys(&places).filter(|k| k.starts_with(FOUND_PREFIX)).collect();
        ids.iter().filter_map(|id| self.found_place(id).transpose()).collect()
    }

    /// Found places merged into another place: their id and the place their visits count for.
    pub fn merged_places(&self) -> Result<HashMap<String, String>> {
        Ok(self
            .found_places()?
            .into_iter()
            .filter_map(|p| match p.review {
                Some(PlaceReview::MergedInto(target)) => Some((p.place.id, target)),
                _ => None,
            })
            .collect())
    }

    /// Places that count in coverage: the registry's and the active found ones, not those rejected or merged.
    pub fn active_places(&self) -> Result<Vec<Place>> {
        let inactive: Vec<String> =
            self.found_places()?.into_iter().filter(|p| !p.is_active()).map(|p| p.place.id).collect();
        Ok(self.places()?.into_iter().filter(|p| !inactive.contains(&p.id)).collect())
    }

    /// Records a found place as one change by this document's actor (device side).
    pub fn add_found_place(&mut self, found: &FoundPlace) -> Result<Change> {
        use place_field as f;
        let p = &found.place;
        if !is_found_place_key(&p.id) {
            return Err(schema_err(format!("{:?} is not a key for a found place", p.id)));
        }
        let mut m: HashMap<&str, hydrate::Value> = HashMap::new();
        let mut put = |k: &'static str, v: ScalarValue| {
            m.insert(k, hydrate::Value::Scalar(v));
        };
        put(f::KIND, p.kind.id().into());
        put(f::LABEL, p.label.as_str().into());
        if let Some(a) = &p.address {
            put(f::ADDRESS, a.as_str().into());
        }
        if let (Some(lat), Some(lon)) = (p.lat, p.lon) {
            put(f::LAT, ScalarValue::F64(lat));
            put(f::LON, ScalarValue::F64(lon));
        }
        put(f::ADDED_BY, found.added_by.as_str().into());
        put(f::DEVICE, found.device.as_str().into());
        put(f::ADDED_AT, ScalarValue::Timestamp(found.added_at.timestamp_millis()));
        self.add_object("places", &p.id, m, found.added_at.timestamp_millis())
    }

    /// Records a correction as one change by this document's actor (device side), preceded by the change that
    /// creates the `corrections` map when the grid predates it. Returns every change to store.
    pub fn add_correction(&mut self, c: &Correction) -> Result<Vec<Change>> {
        use correction_field as f;
        let mut changes: Vec<Change> = self.ensure_corrections()?.into_iter().collect();
        let mut m: HashMap<&str, hydrate::Value> = HashMap::new();
        let mut put = |k: &'static str, v: ScalarValue| {
            m.insert(k, hydrate::Value::Scalar(v));
        };
        put(f::PLACE, c.place_id.as_str().into());
        if let Some(label) = &c.label {
            put(f::LABEL, label.as_str().into());
        }
        if let Some(address) = &c.address {
            put(f::ADDRESS, address.as_str().into());
        }
        put(f::VOLUNTEER, c.volunteer.as_str().into());
        put(f::DEVICE, c.device.as_str().into());
        put(f::AT, ScalarValue::Timestamp(c.at.timestamp_millis()));
        changes.push(self.add_object("corrections", &c.id.to_string(), m, c.at.timestamp_millis())?);
        Ok(changes)
    }

    fn add_object(&mut self, map: &str, key: &str, fields: HashMap<&str, hydrate::Value>, time: i64) -> Result<Change> {
        let parent = self.obj(map)?;
        if self.automerge().get(&parent, key)?.is_some() {
            return Err(schema_err(format!("{key} already exists in {map}")));
        }
        let value = hydrate::Value::Map(hydrate::Map::from(fields));
        self.commit_one(time, |tx| tx.batch_create_object(&parent, key, &value, false).map(|_| ()))
    }

    pub fn corrections(&self) -> Result<Vec<Correction>> {
        let Some(map) = self.obj_opt("corrections")? else { return Ok(Vec::new()) };
        let ids: Vec<String> = self.automerge().keys(&map).collect();
        ids.iter().filter_map(|id| self.correction(id).transpose()).collect()
    }

    pub fn correction(&self, id: &str) -> Result<Option<Correction>> {
        use correction_field as f;
        let Some(map) = self.obj_opt("corrections")? else { return Ok(None) };
        let Some((Value::Object(ObjType::Map), obj)) = self.automerge().get(&map, id)? else {
            return Ok(None);
        };
        let m = read_map(self.automerge(), &obj)?;
        let err = |k: &str| schema_err(format!("correction {id}: field `{k}` is missing or has the wrong type"));
        let review = match str_field(&m, f::REVIEW).as_deref() {
            None => None,
            Some("confirmed") => Some(CorrectionReview::Confirmed),
            Some("rejected") => Some(CorrectionReview::Rejected),
            Some(_) => return Err(err(f::REVIEW)),
        };
        Ok(Some(Correction {
            id: id.parse().map_err(|_| schema_err(format!("correction key {id:?} is not a UUID")))?,
            place_id: str_field(&m, f::PLACE).ok_or_else(|| err(f::PLACE))?,
            label: str_field(&m, f::LABEL),
            address: str_field(&m, f::ADDRESS),
            volunteer: str_field(&m, f::VOLUNTEER).ok_or_else(|| err(f::VOLUNTEER))?,
            device: str_field(&m, f::DEVICE).ok_or_else(|| err(f::DEVICE))?,
            at: timestamp(&m, f::AT).ok_or_else(|| err(f::AT))?,
            review,
        }))
    }

    /// Server side: records the office's decision on a found place as one change.
    pub fn review_place(&mut self, id: &str, review: &PlaceReview) -> Result<Change> {
        let places = self.obj("places")?;
        let Some((Value::Object(ObjType::Map), obj)) = self.automerge().get(&places, id)? else {
            return Err(schema_err(format!("no place {id} in this grid")));
        };
        self.commit_one(chrono::Utc::now().timestamp_millis(), |tx| {
            tx.put(&obj, place_field::REVIEW, review.id())?;
            if let PlaceReview::MergedInto(target) = review {
                tx.put(&obj, place_field::MERGED_INTO, target.as_str())?;
            }
            Ok(())
        })
    }

    /// Server side: records the office's decision on a correction as one change; a confirmed correction also
    /// gives the place its proposed label and address.
    pub fn review_correction(&mut self, id: &str, review: CorrectionReview) -> Result<Change> {
        let correction = self.correction(id)?.ok_or_else(|| schema_err(format!("no correction {id} in this grid")))?;
        let map = self.obj("corrections")?;
        let Some((_, obj)) = self.automerge().get(&map, id)? else {
            return Err(schema_err(format!("no correction {id} in this grid")));
        };
        let places = self.obj("places")?;
        let Some((Value::Object(ObjType::Map), place)) = self.automerge().get(&places, correction.place_id.as_str())?
        else {
            return Err(schema_err(format!("correction {id} is for place {}, not in this grid", correction.place_id)));
        };
        self.commit_one(chrono::Utc::now().timestamp_millis(), |tx| {
            tx.put(&obj, correction_field::REVIEW, review.id())?;
            if review == CorrectionReview::Confirmed {
                if let Some(label) = &correction.label {
                    tx.put(&place, place_field::LABEL, label.as_str())?;
                }
                if let Some(address) = &correction.address {
                    tx.put(&place, place_field::ADDRESS, address.as_str())?;
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(id: &str) -> FoundPlace {
        FoundPlace {
            place: Place {
                id: id.into(),
                kind: PlaceKind::Household,
                label: "new house by the bridge".into(),
                address: None,
                lat: Some(30.1),
                lon: Some(105.8),
            },
            added_by: "amy".into(),
            device: "d1".into(),
            added_at: crate::grid::doc::millis_to_time(1_700_000_000_000),
            review: None,
        }
    }

    #[test]
    fn found_places_round_trip_and_follow_reviews() {
        let mut doc = GridDoc::genesis();
        doc.set_actor(automerge::ActorId::random());
        let a = found(&new_found_place_id());
        let b = found(&new_found_place_id());
        doc.add_found_place(&a).unwrap();
        doc.add_found_place(&b).unwrap();
        assert!(doc.add_found_place(&a).is_err(), "a place key is written once");
        assert_eq!(doc.found_place(&a.place.id).unwrap(), Some(a.clone()));
        assert_eq!(doc.active_places().unwrap().len(), 2);
        doc.review_place(&a.place.id, &PlaceReview::MergedInto(b.place.id.clone())).unwrap();
        assert_eq!(doc.merged_places().unwrap(), HashMap::from([(a.place.id.clone(), b.place.id.clone())]));
        assert_eq!(doc.active_places().unwrap().iter().map(|p| &p.id).collect::<Vec<_>>(), [&b.place.id]);
        let saved = GridDoc::load(&doc.save()).unwrap();
        assert_eq!(saved.found_place(&a.place.id).unwrap().unwrap().review, Some(PlaceReview::MergedInto(b.place.id)));
    }

    #[test]
    fn a_confirmed_correction_relabels_the_place_even_on_an_old_grid() {
        let mut doc = GridDoc::genesis_without_corrections();
        doc.set_actor(automerge::ActorId::random());
        doc.add_found_place(&found("F-0193a000-0000-7000-8000-000000000001")).unwrap();
        let c = Correction {
            id: Uuid::now_v7(),
            place_id: "F-0193a000-0000-7000-8000-000000000001".into(),
            label: Some("the miller's house".into()),
            address: None,
            volunteer: "amy".into(),
            device: "d1".into(),
            at: crate::grid::doc::millis_to_time(1_700_000_000_000),
            review: None,
        };
        let changes = doc.add_correction(&c).unwrap();
        assert_eq!(changes.len(), 2, "the map is created first");
        assert_eq!(doc.corrections().unwrap(), vec![c.clone()]);
        doc.review_correction(&c.id.to_string(), CorrectionReview::Confirmed).unwrap();
        let place = doc.place("F-0193a000-0000-7000-8000-000000000001").unwrap().unwrap();
        assert_eq!(place.label, "the miller's house");
        assert_eq!(doc.correction(&c.id.to_string()).unwrap().unwrap().review, Some(CorrectionReview::Confirmed));
    }
}
