//! The grid document: one automerge document per grid holding its places and visits, with a typed API over it.
//!
//! Layout (all maps):
//! ```text
//! ROOT
//! ├── schema: 1
//! ├── grid:   { code, name, village_code, village_name, village_kind, town_code, town_name }
//! ├── places: { <place_id>: { kind, label, address?, lat?, lon?,
//! │                           added_by?, device?, added_at?, review?, merged_into? } }   (see `found`)
//! ├── visits: { <uuid v7>:  { place, volunteer, device, at, outcome, handbook, briefed, poster,
//! │                           banner, led_playing, note?, lat?, lon? } }
//! └── corrections: { <uuid v7>: { place, label?, address?, volunteer, device, at, review? } }   (see `found`)
//! ```
//! The root maps are created by deterministic changes (fixed actor, fixed time), so every server instance and
//! device that creates them produces the same changes and the maps never conflict. `corrections` came later:
//! its change is a constant (`CORRECTIONS_UPGRADE`) that any replica may apply to a grid created before it.

use crate::grid::model::{
    parse_photo_refs, parse_photo_rejections, write_photo_refs, Deliveries, GridInfo, Outcome, PhotoRejection, Place,
    PlaceKind, Visit, ALWAYS_RECORDED,
};
use automerge::{
    hydrate, transaction::CommitOptions, transaction::Transactable, ActorId, Automerge, AutomergeError, Change,
    ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT,
};
use chrono::{DateTime, TimeZone, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;

/// Version of the document layout above.
pub const SCHEMA_VERSION: i64 = 1;

/// Field names of a visit object, shared by the writer, the reader and the validator.
pub mod visit_field {
    pub const PLACE: &str = "place";
    pub const VOLUNTEER: &str = "volunteer";
    pub const DEVICE: &str = "device";
    pub const AT: &str = "at";
    pub const OUTCOME: &str = "outcome";
    // Then one boolean per delivery, keyed by its id: those of `model::ALWAYS_RECORDED` on every visit, further
    // ones only when delivered.
    pub const NOTE: &str = "note";
    pub const LAT: &str = "lat";
    pub const LON: &str = "lon";
    /// The photos taken, as a JSON list of references (`model::write_photo_refs`); only on visits with photos.
    pub const PHOTOS: &str = "photos";
    /// The office's rejections of some of those photos, as a JSON list; written by the server alone.
    pub const PHOTOS_REJECTED: &str = "photos_rejected";
}

#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("automerge: {0}")]
    Automerge(#[from] AutomergeError),
    #[error("the grid document does not follow the schema: {0}")]
    Schema(String),
}

pub type Result<T, E = DocError> = std::result::Result<T, E>;

/// One grid's document.
#[derive(Debug, Clone)]
pub struct GridDoc {
    doc: Automerge,
    recent: RecentChanges,
    /// The root's maps, looked up once per state of the document: checking a push reads them for every change and
    /// every new visit. Emptied by every write.
    roots: OnceLock<RootMaps>,
}

/// The object ids of the root's maps, by name (`None`: not there, or not a map).
#[derive(Debug, Clone, Default)]
struct RootMaps {
    grid: Option<ObjId>,
    places: Option<ObjId>,
    visits: Option<ObjId>,
    corrections: Option<ObjId>,
}

/// Changes kept as bytes per document (see `RecentChanges`): more than one sync round of a team brings to a grid.
const RECENT_CHANGES_KEPT: usize = 256;

/// The changes this copy applied or made last, as they came. Handing changes on (a device's push, a sync reply)
/// would otherwise make automerge rebuild each from its operations, which costs far more than copying its bytes.
#[derive(Debug, Clone, Default)]
struct RecentChanges {
    by_hash: HashMap<ChangeHash, Change>,
    order: VecDeque<ChangeHash>,
    bytes: usize,
}

impl RecentChanges {
    fn remember(&mut self, change: &Change) {
        let hash = change.hash();
        if self.by_hash.contains_key(&hash) {
            return;
        }
        self.bytes += change.raw_bytes().len();
        self.by_hash.insert(hash, change.clone());
        self.order.push_back(hash);
        if self.order.len() > RECENT_CHANGES_KEPT {
            let oldest = self.order.pop_front().expect("longer than the limit");
            if let Some(gone) = self.by_hash.remove(&oldest) {
                self.bytes -= gone.raw_bytes().len();
            }
        }
    }
}

pub(crate) fn schema_err(msg: impl Into<String>) -> DocError {
    DocError::Schema(msg.into())
}

/// The actor of the deterministic changes that create the root maps.
pub const GENESIS_ACTOR: &[u8] = b"doorstep-genesis";

/// The change adding the `corrections` map to a grid document, as bytes: it must be identical on every replica
/// and under every automerge version, so it is stored rather than rebuilt (a test checks it against a rebuild).
const CORRECTIONS_UPGRADE: &str = "856f4a83d02acd530156019efb2fe0845efd285794c7e6af860b0990a05c678ab5f9a2f41da93cc021b58b10646f6f72737465702d67656e65736973020500000005150d34014202560270027f0b636f7272656374696f6e73017f007f007f00";

/// The constant change that creates the `corrections` map (see the module documentation), parsed once.
pub fn corrections_upgrade() -> Change {
    static UPGRADE: OnceLock<Change> = OnceLock::new();
    UPGRADE
        .get_or_init(|| {
            let bytes = hex::decode(CORRECTIONS_UPGRADE).expect("constant hex");
            Change::from_bytes(bytes).expect("constant change")
        })
        .clone()
}

impl GridDoc {
    /// The empty document of a grid: identical bytes wherever and whenever it is created.
    pub fn genesis() -> Self {
        let mut doc = Self::genesis_without_corrections();
        doc.apply_changes(vec![corrections_upgrade()]).expect("the upgrade follows the first genesis change");
        doc
    }

    /// The first genesis change alone: how grids created before the `corrections` map began.
    pub fn genesis_without_corrections() -> Self {
        let mut doc = Automerge::new().with_actor(ActorId::from(GENESIS_ACTOR));
        let mut tx = doc.transaction();
        tx.put(ROOT, "schema", SCHEMA_VERSION).expect("fresh document");
        tx.put_object(ROOT, "grid", ObjType::Map).expect("fresh document");
        tx.put_object(ROOT, "places", ObjType::Map).expect("fresh document");
        tx.put_object(ROOT, "visits", ObjType::Map).expect("fresh document");
        tx.commit_with(CommitOptions::default().with_time(0));
        GridDoc::from_automerge(doc)
    }

    pub fn load(bytes: &[u8]) -> Result<Self> {
        let this = GridDoc::from_automerge(Automerge::load(bytes)?);
        this.obj("visits")?;
        Ok(this)
    }

    pub fn from_automerge(doc: Automerge) -> Self {
        GridDoc { doc, recent: RecentChanges::default(), roots: OnceLock::new() }
    }

    pub fn automerge(&self) -> &Automerge {
        &self.doc
    }

    pub fn set_actor(&mut self, actor: ActorId) {
        self.doc.set_actor(actor);
    }

    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }

    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// True when every given change is part of this document's history.
    pub fn contains_all(&self, hashes: &[ChangeHash]) -> bool {
        // Metadata only: rebuilding each change just to test that it exists costs far more.
        hashes.iter().all(|h| self.doc.get_change_meta_by_hash(h).is_some())
    }

    /// Changes this document has that a peer whose heads are `have` lacks, in automerge's order. Taken from the
    /// recent changes' bytes when they are all there; rebuilt by automerge otherwise.
    pub fn changes_since(&self, have: &[ChangeHash]) -> Vec<Change> {
        self.map_changes_since(have, Change::clone)
    }

    /// The bytes of `changes_since(have)`, as a push or a reply carries them.
    pub fn change_bytes_since(&self, have: &[ChangeHash]) -> Vec<Vec<u8>> {
        self.map_changes_since(have, |c| c.raw_bytes().to_vec())
    }

    fn map_changes_since<T>(&self, have: &[ChangeHash], f: impl Fn(&Change) -> T) -> Vec<T> {
        let wanted = self.doc.get_changes_meta(have);
        let kept: Option<Vec<T>> = wanted.iter().map(|m| self.recent.by_hash.get(&m.hash).map(&f)).collect();
        kept.unwrap_or_else(|| self.doc.get_changes(have).iter().map(f).collect())
    }

    /// Memory taken by the bytes of recent changes kept beside the document.
    pub fn recent_changes_bytes(&self) -> usize {
        self.recent.bytes
    }

    /// Applies changes (duplicates are ignored). Changes whose dependencies are missing are held back by
    /// automerge until they arrive; callers check `contains_all` to detect that.
    pub fn apply_changes(&mut self, changes: Vec<Change>) -> Result<()> {
        for change in &changes {
            self.recent.remember(change);
        }
        self.roots.take();
        self.doc.apply_changes(changes)?;
        Ok(())
    }

    /// Loads concatenated saved chunks (a snapshot or changes) into this document.
    pub fn load_incremental(&mut self, bytes: &[u8]) -> Result<()> {
        self.roots.take();
        self.doc.load_incremental(bytes)?;
        Ok(())
    }

    pub fn fork(&self) -> Self {
        GridDoc::from_automerge(self.doc.fork().with_actor(self.doc.get_actor().clone()))
    }

    pub(crate) fn obj(&self, name: &str) -> Result<ObjId> {
        self.obj_opt(name)?.ok_or_else(|| schema_err(format!("the root has no `{name}` map")))
    }

    pub(crate) fn obj_opt(&self, name: &str) -> Result<Option<ObjId>> {
        let roots = match self.roots.get() {
            Some(roots) => roots,
            None => {
                let map = |name: &str| -> Result<Option<ObjId>> {
                    match self.doc.get(ROOT, name)? {
                        Some((Value::Object(ObjType::Map), id)) => Ok(Some(id)),
                        _ => Ok(None),
                    }
                };
                let found = RootMaps {
                    grid: map("grid")?,
                    places: map("places")?,
                    visits: map("visits")?,
                    corrections: map("corrections")?,
                };
                self.roots.get_or_init(|| found)
            }
        };
        let id = match name {
            "grid" => &roots.grid,
            "places" => &roots.places,
            "visits" => &roots.visits,
            "corrections" => &roots.corrections,
            other => return Err(schema_err(format!("the root has no map named `{other}` in the schema"))),
        };
        Ok(id.clone())
    }

    /// Adds the `corrections` map to a grid created before it existed; returns the change when it was missing.
    pub fn ensure_corrections(&mut self) -> Result<Option<Change>> {
        let upgrade = corrections_upgrade();
        if self.contains_all(&[upgrade.hash()]) {
            return Ok(None);
        }
        self.roots.take();
        self.doc.apply_changes(vec![upgrade.clone()])?;
        Ok(Some(upgrade))
    }

    pub fn grid_info(&self) -> Result<Option<GridInfo>> {
        let grid = self.obj("grid")?;
        let f = read_map(&self.doc, &grid)?;
        if f.is_empty() {
            return Ok(None);
        }
        let text = |k: &str| str_field(&f, k).ok_or_else(|| schema_err(format!("grid.{k} missing")));
        Ok(Some(GridInfo {
            code: text("code")?,
            name: text("name")?,
            village_code: text("village_code")?,
            village_name: text("village_name")?,
            village_kind: text("village_kind")?.parse().map_err(|e| schema_err(format!("grid.village_kind: {e}")))?,
            town_code: text("town_code")?,
            town_name: text("town_name")?,
        }))
    }

    /// Every place of the grid (registry and found alike), in id order.
    pub fn places(&self) -> Result<Vec<Place>> {
        let mut places: Vec<Place> = self.places_by_id()?.into_values().collect();
        places.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(places)
    }

    /// Every place of the grid by id, read in one pass over the document: for a hundred places about ten times
    /// faster than a `place` call per id.
    pub fn places_by_id(&self) -> Result<HashMap<String, Place>> {
        let places = self.obj("places")?;
        let hydrate::Value::Map(map) = ReadDoc::hydrate(&self.doc, &places, None)? else {
            return Err(schema_err("places is not a map"));
        };
        map.iter()
            .map(|(id, value)| {
                let hydrate::Value::Map(fields) = &value.value else {
                    return Err(schema_err(format!("place {id} is not a map")));
                };
                let scalars: HashMap<String, ScalarValue> = fields
                    .iter()
                    .filter_map(|(k, v)| match &v.value {
                        hydrate::Value::Scalar(s) => Some((k.clone(), s.clone())),
                        _ => None,
                    })
                    .collect();
                Ok((id.clone(), place_from_fields(id, &scalars)?))
            })
            .collect()
    }

    pub fn place(&self, id: &str) -> Result<Option<Place>> {
        let places = self.obj("places")?;
        let Some((Value::Object(ObjType::Map), obj)) = self.doc.get(&places, id)? else {
            return Ok(None);
        };
        Ok(Some(place_from_fields(id, &read_map(&self.doc, &obj)?)?))
    }

    /// Whether the grid holds a place with this id (cheaper than reading it).
    pub fn has_place(&self, id: &str) -> Result<bool> {
        let places = self.obj("places")?;
        Ok(matches!(self.doc.get(&places, id)?, Some((Value::Object(ObjType::Map), _))))
    }

    pub fn visit_count(&self) -> usize {
        self.obj("visits").map(|v| self.doc.length(&v)).unwrap_or(0)
    }

    pub fn visits(&self) -> Result<Vec<Visit>> {
        let visits = self.obj("visits")?;
        let ids: Vec<String> = self.doc.keys(&visits).collect();
        ids.iter().map(|id| self.visit(id)?.ok_or_else(|| schema_err(format!("visit {id} vanished")))).collect()
    }

    pub fn visit(&self, id: &str) -> Result<Option<Visit>> {
        let visits = self.obj("visits")?;
        let Some((Value::Object(ObjType::Map), obj)) = self.doc.get(&visits, id)? else {
            return Ok(None);
        };
        read_visit(&self.doc, id, &obj).map(Some)
    }

    /// Server side: records the office's rejection of one of a visit's photos as one change (the visit's list of
    /// rejections rewritten whole, by the server alone). `None` when the photo was rejected already.
    pub fn reject_photo(&mut self, visit_id: &str, rejection: &PhotoRejection) -> Result<Option<Change>> {
        let visits = self.obj("visits")?;
        let Some((Value::Object(ObjType::Map), obj)) = self.doc.get(&visits, visit_id)? else {
            return Err(schema_err(format!("no visit {visit_id} in this grid")));
        };
        let visit = read_visit(&self.doc, visit_id, &obj)?;
        let Some(photo) = visit.photos.iter().find(|p| p.sha256 == rejection.sha256) else {
            return Err(schema_err(format!("visit {visit_id} has no photo {}", rejection.sha256)));
        };
        if photo.rejected.is_some() {
            return Ok(None);
        }
        let mut rejections: Vec<&PhotoRejection> = visit.photos.iter().filter_map(|p| p.rejected.as_ref()).collect();
        rejections.push(rejection);
        let written = serde_json::to_string(&rejections).map_err(|e| schema_err(e.to_string()))?;
        self.commit_one(rejection.at.timestamp_millis(), |tx| tx.put(&obj, visit_field::PHOTOS_REJECTED, written))
            .map(Some)
    }

    /// Records a visit as one change by this document's actor and returns that change.
    pub fn add_visit(&mut self, visit: &Visit) -> Result<Change> {
        let visits = self.obj("visits")?;
        let key = visit.id.to_string();
        if self.doc.get(&visits, &key)?.is_some() {
            return Err(schema_err(format!("visit {key} already exists")));
        }
        let value = hydrate::Value::Map(visit_to_hydrate(visit));
        self.commit_one(visit.at.timestamp_millis(), |tx| {
            tx.batch_create_object(&visits, key.as_str(), &value, false).map(|_| ())
        })
    }

    /// Runs `write` in one transaction committed with `time` (ms) and returns the change it made.
    pub(crate) fn commit_one(
        &mut self,
        time: i64,
        write: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), AutomergeError>,
    ) -> Result<Change> {
        self.roots.take();
        let mut tx = self.doc.transaction();
        if let Err(e) = write(&mut tx) {
            tx.rollback();
            return Err(e.into());
        }
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(time));
        let hash = hash.ok_or_else(|| schema_err("the write produced no change"))?;
        let change = self.doc.get_change_by_hash(&hash).ok_or_else(|| schema_err("the new change is missing"))?;
        self.recent.remember(&change);
        Ok(change)
    }

    /// Server side: brings the grid's description and registry places up to date, writing only fields that
    /// differ, as one change. Returns `None` when nothing differs, so re-importing the same data adds nothing.
    /// `current` is the grid's places as `places_by_id` reads them (the caller usually needs them too).
    pub fn update_registry(
        &mut self,
        info: &GridInfo,
        places: &[Place],
        current: &HashMap<String, Place>,
    ) -> Result<Option<Change>> {
        let grid = self.obj("grid")?;
        let places_obj = self.obj("places")?;
        self.roots.take();
        let mut tx = self.doc.transaction();
        let mut changed = false;
        let grid_fields = [
            ("code", info.code.as_str()),
            ("name", info.name.as_str()),
            ("village_code", info.village_code.as_str()),
            ("village_name", info.village_name.as_str()),
            ("village_kind", info.village_kind.id()),
            ("town_code", info.town_code.as_str()),
            ("town_name", info.town_name.as_str()),
        ];
        for (k, v) in grid_fields {
            changed |= put_if_different(&mut tx, &grid, k, ScalarValue::Str(v.into()))?;
        }
        for place in places {
            let obj = match current.get(&place.id) {
                Some(old) if old == place => continue,
                Some(_) => match tx.get(&places_obj, place.id.as_str())? {
                    Some((Value::Object(ObjType::Map), obj)) => obj,
                    _ => return Err(schema_err(format!("place {} is not a map", place.id))),
                },
                None => {
                    // Written whole: one splice of the document instead of one per field, ten times faster.
                    let value = hydrate::Value::Map(place_to_hydrate(place));
                    tx.batch_create_object(&places_obj, place.id.as_str(), &value, false)?;
                    changed = true;
                    continue;
                }
            };
            changed |= put_if_different(&mut tx, &obj, "kind", place.kind.id().into())?;
            changed |= put_if_different(&mut tx, &obj, "label", place.label.as_str().into())?;
            for (k, v) in [
                ("address", place.address.clone().map(ScalarValue::from)),
                ("lat", place.lat.map(ScalarValue::F64)),
                ("lon", place.lon.map(ScalarValue::F64)),
            ] {
                changed |= match v {
                    Some(v) => put_if_different(&mut tx, &obj, k, v)?,
                    None if tx.get(&obj, k)?.is_some() => {
                        tx.delete(&obj, k)?;
                        true
                    }
                    None => false,
                };
            }
        }
        if !changed {
            tx.rollback();
            return Ok(None);
        }
        let (hash, _) = tx.commit();
        let hash = hash.ok_or_else(|| schema_err("registry update produced no change"))?;
        let change = self.doc.get_change_by_hash(&hash);
        if let Some(change) = &change {
            self.recent.remember(change);
        }
        Ok(change)
    }
}

/// A registry place's fields as `update_registry` writes them.
fn place_to_hydrate(place: &Place) -> hydrate::Map {
    let mut m: HashMap<&str, hydrate::Value> = HashMap::new();
    m.insert("kind", hydrate::Value::Scalar(place.kind.id().into()));
    m.insert("label", hydrate::Value::Scalar(place.label.as_str().into()));
    if let Some(address) = &place.address {
        m.insert("address", hydrate::Value::Scalar(address.as_str().into()));
    }
    for (k, v) in [("lat", place.lat), ("lon", place.lon)] {
        if let Some(v) = v {
            m.insert(k, hydrate::Value::Scalar(ScalarValue::F64(v)));
        }
    }
    hydrate::Map::from(m)
}

/// A place from its object's scalar fields.
fn place_from_fields(id: &str, f: &HashMap<String, ScalarValue>) -> Result<Place> {
    let kind = str_field(f, "kind").ok_or_else(|| schema_err(format!("place {id} has no kind")))?;
    if !crate::campaign::is_id(&kind) {
        return Err(schema_err(format!("place {id}: kind {kind:?} is not an id")));
    }
    let kind = PlaceKind::of(&kind);
    Ok(Place {
        id: id.to_string(),
        kind,
        label: str_field(f, "label").unwrap_or_default(),
        address: str_field(f, "address"),
        lat: f64_field(f, "lat"),
        lon: f64_field(f, "lon"),
    })
}

fn put_if_different(
    tx: &mut automerge::transaction::Transaction<'_>,
    obj: &ObjId,
    key: &str,
    value: ScalarValue,
) -> Result<bool> {
    if let Some((Value::Scalar(current), _)) = tx.get(obj, key)? {
        if current.as_ref() == &value {
            return Ok(false);
        }
    }
    tx.put(obj, key, value)?;
    Ok(true)
}

fn visit_to_hydrate<'a>(v: &'a Visit) -> hydrate::Map {
    use visit_field as f;
    let mut m: HashMap<&str, hydrate::Value> = HashMap::new();
    let mut put = |k: &'a str, s: ScalarValue| {
        m.insert(k, hydrate::Value::Scalar(s));
    };
    put(f::PLACE, v.place_id.as_str().into());
    put(f::VOLUNTEER, v.volunteer.as_str().into());
    put(f::DEVICE, v.device.as_str().into());
    put(f::AT, ScalarValue::Timestamp(v.at.timestamp_millis()));
    put(f::OUTCOME, v.outcome.id().into());
    for id in ALWAYS_RECORDED {
        put(id, v.deliveries.contains(id).into());
    }
    for id in v.deliveries.iter().filter(|id| !ALWAYS_RECORDED.contains(id)) {
        put(id, true.into());
    }
    if let Some(note) = &v.note {
        put(f::NOTE, note.as_str().into());
    }
    if let Some((lat, lon)) = v.gps {
        put(f::LAT, ScalarValue::F64(lat));
        put(f::LON, ScalarValue::F64(lon));
    }
    if !v.photos.is_empty() {
        put(f::PHOTOS, write_photo_refs(&v.photos).into());
    }
    hydrate::Map::from(m)
}

/// Reads a visit object; any missing or mistyped required field is a schema error.
pub(crate) fn read_visit(doc: &Automerge, id: &str, obj: &ObjId) -> Result<Visit> {
    use visit_field as f;
    let m = read_map(doc, obj)?;
    let err = |k: &str| schema_err(format!("visit {id}: field `{k}` is missing or has the wrong type"));
    let text = |k: &str| str_field(&m, k).ok_or_else(|| err(k));
    let flag = |k: &str| match m.get(k) {
        Some(ScalarValue::Boolean(b)) => Ok(*b),
        _ => Err(err(k)),
    };
    let at = match m.get(f::AT) {
        Some(ScalarValue::Timestamp(ms)) => Utc.timestamp_millis_opt(*ms).single(),
        _ => None,
    }
    .ok_or_else(|| err(f::AT))?;
    let outcome: Outcome = text(f::OUTCOME)?.parse().map_err(|_| err(f::OUTCOME))?;
    for id in ALWAYS_RECORDED {
        flag(id)?;
    }
    // Every field set to true is a delivery: only deliveries are booleans.
    let deliveries =
        Deliveries::of(m.iter().filter(|(_, v)| **v == ScalarValue::Boolean(true)).map(|(k, _)| k.as_str()));
    let gps = match (f64_field(&m, f::LAT), f64_field(&m, f::LON)) {
        (Some(lat), Some(lon)) => Some((lat, lon)),
        (None, None) => None,
        _ => return Err(err(f::LAT)),
    };
    let mut photos = match str_field(&m, f::PHOTOS) {
        Some(text) => parse_photo_refs(&text).map_err(|e| schema_err(format!("visit {id}: {e}")))?,
        None => Vec::new(),
    };
    if let Some(text) = str_field(&m, f::PHOTOS_REJECTED) {
        for rejection in parse_photo_rejections(&text).map_err(|e| schema_err(format!("visit {id}: {e}")))? {
            if let Some(photo) = photos.iter_mut().find(|p| p.sha256 == rejection.sha256) {
                photo.rejected = Some(rejection);
            }
        }
    }
    Ok(Visit {
        id: id.parse().map_err(|_| schema_err(format!("visit key {id:?} is not a UUID")))?,
        place_id: text(f::PLACE)?,
        volunteer: text(f::VOLUNTEER)?,
        device: text(f::DEVICE)?,
        at,
        outcome,
        deliveries,
        note: str_field(&m, f::NOTE),
        gps,
        photos,
    })
}

/// The scalar fields of a map, in one pass over it (a lookup per key costs a search each).
pub(crate) fn read_map(doc: &Automerge, obj: &ObjId) -> Result<HashMap<String, ScalarValue>> {
    let mut out = HashMap::new();
    for item in doc.map_range(obj, ..) {
        if let Value::Scalar(s) = Value::from(item.value) {
            out.insert(item.key.into_owned(), s.into_owned());
        }
    }
    Ok(out)
}

pub(crate) fn str_field(m: &HashMap<String, ScalarValue>, k: &str) -> Option<String> {
    match m.get(k) {
        Some(ScalarValue::Str(s)) => Some(s.to_string()),
        _ => None,
    }
}

pub(crate) fn f64_field(m: &HashMap<String, ScalarValue>, k: &str) -> Option<f64> {
    match m.get(k) {
        Some(ScalarValue::F64(x)) => Some(*x),
        Some(ScalarValue::Int(x)) => Some(*x as f64),
        _ => None,
    }
}

/// Milliseconds since the epoch as a UTC time (for values read back from SQL).
pub fn millis_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::grid::model::AreaKind;

    pub(crate) fn sample_info() -> GridInfo {
        GridInfo {
            code: "G1".into(),
            name: "Grid one".into(),
            village_code: "V1".into(),
            village_name: "Village one".into(),
            village_kind: AreaKind::Village,
            town_code: "T1".into(),
            town_name: "Town".into(),
        }
    }

    fn place(id: &str, kind: PlaceKind) -> Place {
        Place { id: id.into(), kind, label: format!("label {id}"), address: None, lat: None, lon: None }
    }

    #[test]
    fn genesis_is_identical_everywhere() {
        assert_eq!(GridDoc::genesis().heads(), GridDoc::genesis().heads());
        assert!(GridDoc::genesis().obj_opt("corrections").unwrap().is_some());
    }

    /// The stored upgrade change is what this automerge version builds; if this fails after an automerge
    /// upgrade, keep the stored bytes (replicas must agree on them), do not replace them.
    #[test]
    fn the_corrections_upgrade_is_the_change_automerge_builds() {
        let mut doc = GridDoc::genesis_without_corrections();
        let mut tx = doc.doc.transaction();
        tx.put_object(ROOT, "corrections", ObjType::Map).unwrap();
        tx.commit_with(CommitOptions::default().with_time(0));
        let built = doc.doc.get_last_local_change().unwrap().clone();
        assert_eq!(hex::encode(built.raw_bytes()), CORRECTIONS_UPGRADE);

        let mut old = GridDoc::genesis_without_corrections();
        assert!(old.ensure_corrections().unwrap().is_some());
        assert!(old.ensure_corrections().unwrap().is_none(), "applied once");
        assert_eq!(old.heads(), GridDoc::genesis().heads());
    }

    /// The root's maps are looked up once per state of the document: a map that a write adds is found after it,
    /// however the write came (applied change, local upgrade, loaded bytes).
    #[test]
    fn root_maps_are_looked_up_again_after_every_write() {
        let mut applied = GridDoc::genesis_without_corrections();
        assert!(applied.obj_opt("corrections").unwrap().is_none());
        applied.apply_changes(vec![corrections_upgrade()]).unwrap();
        assert!(applied.obj_opt("corrections").unwrap().is_some(), "after apply_changes");

        let mut upgraded = GridDoc::genesis_without_corrections();
        assert!(upgraded.obj_opt("corrections").unwrap().is_none());
        upgraded.ensure_corrections().unwrap();
        assert!(upgraded.obj_opt("corrections").unwrap().is_some(), "after ensure_corrections");

        let mut loaded = GridDoc::genesis_without_corrections();
        assert!(loaded.obj_opt("corrections").unwrap().is_none());
        loaded.load_incremental(corrections_upgrade().raw_bytes()).unwrap();
        assert!(loaded.obj_opt("corrections").unwrap().is_some(), "after load_incremental");

        let mut written = GridDoc::genesis_without_corrections();
        assert!(written.obj_opt("corrections").unwrap().is_none());
        written.commit_one(0, |tx| tx.put_object(ROOT, "corrections", ObjType::Map).map(|_| ())).unwrap();
        assert!(written.obj_opt("corrections").unwrap().is_some(), "after a local change");
        assert_eq!(written.obj("visits").unwrap(), GridDoc::genesis().obj("visits").unwrap());
    }

    #[test]
    fn registry_update_is_idempotent_and_visits_round_trip() {
        let mut doc = GridDoc::genesis();
        doc.set_actor(ActorId::random());
        let mut places = vec![place("P1", PlaceKind::Household), place("P2", PlaceKind::Market)];
        places[0].address = Some("1 Main St".into());
        places[0].lat = Some(30.5);
        places[0].lon = Some(105.25);
        assert!(doc.update_registry(&sample_info(), &places, &HashMap::new()).unwrap().is_some());
        let current = doc.places_by_id().unwrap();
        assert!(doc.update_registry(&sample_info(), &places, &current).unwrap().is_none(), "same data, no change");
        assert_eq!(doc.grid_info().unwrap(), Some(sample_info()));
        assert_eq!(doc.places().unwrap(), places);

        // An edit writes the fields that differ, and a field no longer given is removed.
        places[0].label = "renamed".into();
        places[0].address = None;
        places.push(place("P0", PlaceKind::Shop));
        assert!(doc.update_registry(&sample_info(), &places, &current).unwrap().is_some());
        places.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(doc.places().unwrap(), places);
        for p in &places {
            assert_eq!(doc.place(&p.id).unwrap().as_ref(), Some(p), "read one by one as in one pass");
        }

        let visit = Visit {
            id: uuid::Uuid::now_v7(),
            place_id: "P1".into(),
            volunteer: "amy".into(),
            device: "d1".into(),
            at: millis_to_time(1_700_000_000_000),
            outcome: Outcome::Completed,
            deliveries: Deliveries::of(["handbook"]),
            note: Some("gate locked".into()),
            gps: Some((30.1, 105.8)),
            photos: Vec::new(),
        };
        let change = doc.add_visit(&visit).unwrap();
        assert_eq!(change.actor_id(), doc.automerge().get_actor());
        let bytes = doc.save();
        let loaded = GridDoc::load(&bytes).unwrap();
        assert_eq!(loaded.visits().unwrap(), vec![visit.clone()]);
        assert!(doc.add_visit(&visit).is_err(), "a visit id is written once");
    }
}
