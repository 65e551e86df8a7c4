//! The task document: one small automerge document per urgent dissuasion task, so that deleting its files from a
//! device deletes the task's whole history there (contact data included).
//!
//! Layout (all maps):
//! ```text
//! ROOT
//! ├── schema: 1
//! ├── task:     { id, fraud_type, priority, created_at, deadline, instructions, target_label, place_id?, grid?,
//! │               target_address?, target_phone?, follow_up_at?, follow_up_comment? }      (written by the server)
//! ├── signs:    { <uuid v7>: { kind, volunteer, device, at } }                              (added by devices)
//! └── outcomes: { <uuid v7>: { volunteer, device, at, method, reached, dissuaded, money_lost, amount_fen?,
//!                              feedback?, lat?, lon? } }                                     (added by devices)
//! ```
//! The server creates the document in one change; devices only add entries to `signs` and `outcomes`
//! (checked by `task_validate`).

use crate::grid::doc::{f64_field, read_map, schema_err, str_field, DocError, Result};
use crate::task::model::{FollowUp, Sign, Target, TaskInfo, TaskOutcome};
use automerge::{
    hydrate, transaction::CommitOptions, transaction::Transactable, ActorId, Automerge, Change, ChangeHash, ObjId,
    ObjType, ReadDoc, ScalarValue, Value, ROOT,
};
use chrono::{DateTime, TimeZone, Utc};
use std::collections::HashMap;

/// Version of the layout above.
pub const TASK_SCHEMA_VERSION: i64 = 1;

/// The two maps devices add to.
pub const SIGNS: &str = "signs";
pub const OUTCOMES: &str = "outcomes";

/// Field names of the `task` map, of sign-for entries and of outcomes.
pub mod task_field {
    pub const ID: &str = "id";
    pub const FRAUD_TYPE: &str = "fraud_type";
    pub const PRIORITY: &str = "priority";
    pub const CREATED_AT: &str = "created_at";
    pub const DEADLINE: &str = "deadline";
    pub const INSTRUCTIONS: &str = "instructions";
    pub const TARGET_LABEL: &str = "target_label";
    pub const PLACE_ID: &str = "place_id";
    pub const GRID: &str = "grid";
    pub const TARGET_ADDRESS: &str = "target_address";
    pub const TARGET_PHONE: &str = "target_phone";
    pub const FOLLOW_UP_AT: &str = "follow_up_at";
    pub const FOLLOW_UP_COMMENT: &str = "follow_up_comment";
    // entries
    pub const KIND: &str = "kind";
    pub const VOLUNTEER: &str = "volunteer";
    pub const DEVICE: &str = "device";
    pub const AT: &str = "at";
    pub const METHOD: &str = "method";
    pub const REACHED: &str = "reached";
    pub const DISSUADED: &str = "dissuaded";
    pub const MONEY_LOST: &str = "money_lost";
    pub const AMOUNT_FEN: &str = "amount_fen";
    pub const FEEDBACK: &str = "feedback";
    pub const LAT: &str = "lat";
    pub const LON: &str = "lon";
}
use task_field as f;

/// One task's document.
#[derive(Debug, Clone)]
pub struct TaskDoc {
    doc: Automerge,
}

impl TaskDoc {
    /// Server side: the document of a new task, written as one change by `actor`.
    pub fn create(actor: ActorId, info: &TaskInfo) -> Result<Self> {
        let mut doc = Automerge::new().with_actor(actor);
        let mut tx = doc.transaction();
        tx.put(ROOT, "schema", TASK_SCHEMA_VERSION)?;
        let task = tx.put_object(ROOT, "task", ObjType::Map)?;
        let t = &info.target;
        let mut fields: Vec<(&str, ScalarValue)> = vec![
            (f::ID, info.id.to_string().into()),
            (f::FRAUD_TYPE, info.fraud_type.id().into()),
            (f::PRIORITY, info.priority.id().into()),
            (f::CREATED_AT, ScalarValue::Timestamp(info.created_at.timestamp_millis())),
            (f::DEADLINE, ScalarValue::Timestamp(info.deadline.timestamp_millis())),
            (f::INSTRUCTIONS, info.instructions.as_str().into()),
            (f::TARGET_LABEL, t.label.as_str().into()),
        ];
        for (k, v) in [
            (f::PLACE_ID, &t.place_id),
            (f::GRID, &t.grid),
            (f::TARGET_ADDRESS, &t.address),
            (f::TARGET_PHONE, &t.phone),
        ] {
            if let Some(v) = v {
                fields.push((k, v.as_str().into()));
            }
        }
        for (k, v) in fields {
            tx.put(&task, k, v)?;
        }
        tx.put_object(ROOT, SIGNS, ObjType::Map)?;
        tx.put_object(ROOT, OUTCOMES, ObjType::Map)?;
        tx.commit_with(CommitOptions::default().with_time(info.created_at.timestamp_millis()));
        Ok(TaskDoc { doc })
    }

    pub fn load(bytes: &[u8]) -> Result<Self> {
        let this = TaskDoc { doc: Automerge::load(bytes)? };
        this.obj("task")?;
        this.obj(SIGNS)?;
        this.obj(OUTCOMES)?;
        Ok(this)
    }

    pub fn from_automerge(doc: Automerge) -> Self {
        TaskDoc { doc }
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

    pub fn contains_all(&self, hashes: &[ChangeHash]) -> bool {
        hashes.iter().all(|h| self.doc.get_change_meta_by_hash(h).is_some())
    }

    pub fn changes_since(&self, have: &[ChangeHash]) -> Vec<Change> {
        self.doc.get_changes(have)
    }

    pub fn apply_changes(&mut self, changes: Vec<Change>) -> Result<()> {
        self.doc.apply_changes(changes)?;
        Ok(())
    }

    pub fn fork(&self) -> Self {
        TaskDoc { doc: self.doc.fork().with_actor(self.doc.get_actor().clone()) }
    }

    pub(crate) fn obj(&self, name: &str) -> Result<ObjId> {
        match self.doc.get(ROOT, name)? {
            Some((Value::Object(ObjType::Map), id)) => Ok(id),
            _ => Err(schema_err(format!("the task document has no `{name}` map"))),
        }
    }

    pub fn info(&self) -> Result<TaskInfo> {
        let m = read_map(&self.doc, &self.obj("task")?)?;
        let err = |k: &str| schema_err(format!("task field `{k}` is missing or has the wrong type"));
        let text = |k: &str| str_field(&m, k).ok_or_else(|| err(k));
        let time = |k: &str| time_field(&m, k).ok_or_else(|| err(k));
        let follow_up = match (time_field(&m, f::FOLLOW_UP_AT), str_field(&m, f::FOLLOW_UP_COMMENT)) {
            (Some(at), comment) => Some(FollowUp { at, comment: comment.unwrap_or_default() }),
            _ => None,
        };
        Ok(TaskInfo {
            id: text(f::ID)?.parse().map_err(|_| err(f::ID))?,
            fraud_type: text(f::FRAUD_TYPE)?.parse().map_err(|_| err(f::FRAUD_TYPE))?,
            priority: text(f::PRIORITY)?.parse().map_err(|_| err(f::PRIORITY))?,
            created_at: time(f::CREATED_AT)?,
            deadline: time(f::DEADLINE)?,
            instructions: text(f::INSTRUCTIONS)?,
            target: Target {
                label: text(f::TARGET_LABEL)?,
                place_id: str_field(&m, f::PLACE_ID),
                grid: str_field(&m, f::GRID),
                address: str_field(&m, f::TARGET_ADDRESS),
                phone: str_field(&m, f::TARGET_PHONE),
            },
            follow_up,
        })
    }

    pub fn signs(&self) -> Result<Vec<Sign>> {
        self.entries(SIGNS, read_sign)
    }

    pub fn outcomes(&self) -> Result<Vec<TaskOutcome>> {
        self.entries(OUTCOMES, read_outcome)
    }

    pub fn sign(&self, key: &str) -> Result<Option<Sign>> {
        self.entry(SIGNS, key, read_sign)
    }

    pub fn outcome(&self, key: &str) -> Result<Option<TaskOutcome>> {
        self.entry(OUTCOMES, key, read_outcome)
    }

    fn entries<T>(&self, map: &str, read: fn(&str, &HashMap<String, ScalarValue>) -> Result<T>) -> Result<Vec<T>> {
        let obj = self.obj(map)?;
        let keys: Vec<String> = self.doc.keys(&obj).collect();
        keys.iter()
            .map(|k| self.entry(map, k, read)?.ok_or_else(|| schema_err(format!("{map} entry {k} vanished"))))
            .collect()
    }

    fn entry<T>(
        &self,
        map: &str,
        key: &str,
        read: fn(&str, &HashMap<String, ScalarValue>) -> Result<T>,
    ) -> Result<Option<T>> {
        let obj = self.obj(map)?;
        let Some((Value::Object(ObjType::Map), entry)) = self.doc.get(&obj, key)? else {
            return Ok(None);
        };
        read(key, &read_map(&self.doc, &entry)?).map(Some)
    }

    /// Records a sign-for entry as one change by this document's actor and returns that change.
    pub fn add_sign(&mut self, s: &Sign) -> Result<Change> {
        let fields = vec![
            (f::KIND, s.kind.id().into()),
            (f::VOLUNTEER, s.volunteer.as_str().into()),
            (f::DEVICE, s.device.as_str().into()),
            (f::AT, ScalarValue::Timestamp(s.at.timestamp_millis())),
        ];
        self.add_entry(SIGNS, &s.id.to_string(), fields, s.at)
    }

    /// Records an outcome as one change by this document's actor and returns that change.
    pub fn add_outcome(&mut self, o: &TaskOutcome) -> Result<Change> {
        o.check().map_err(schema_err)?;
        let mut fields = vec![
            (f::VOLUNTEER, o.volunteer.as_str().into()),
            (f::DEVICE, o.device.as_str().into()),
            (f::AT, ScalarValue::Timestamp(o.at.timestamp_millis())),
            (f::METHOD, o.method.id().into()),
            (f::REACHED, o.reached.into()),
            (f::DISSUADED, o.dissuaded.into()),
            (f::MONEY_LOST, o.money_lost.into()),
        ];
        if let Some(a) = o.amount_fen {
            fields.push((f::AMOUNT_FEN, ScalarValue::Int(a)));
        }
        if let Some(text) = &o.feedback {
            fields.push((f::FEEDBACK, text.as_str().into()));
        }
        if let Some((lat, lon)) = o.gps {
            fields.push((f::LAT, ScalarValue::F64(lat)));
            fields.push((f::LON, ScalarValue::F64(lon)));
        }
        self.add_entry(OUTCOMES, &o.id.to_string(), fields, o.at)
    }

    fn add_entry(
        &mut self,
        map: &str,
        key: &str,
        fields: Vec<(&str, ScalarValue)>,
        at: DateTime<Utc>,
    ) -> Result<Change> {
        let obj = self.obj(map)?;
        if self.doc.get(&obj, key)?.is_some() {
            return Err(schema_err(format!("{map} entry {key} already exists")));
        }
        let value = hydrate::Value::Map(hydrate::Map::from(
            fields.into_iter().map(|(k, v)| (k, hydrate::Value::Scalar(v))).collect::<HashMap<_, _>>(),
        ));
        let mut tx = self.doc.transaction();
        tx.batch_create_object(&obj, key, &value, false)?;
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(at.timestamp_millis()));
        let hash = hash.ok_or_else(|| schema_err("recording the entry produced no change"))?;
        self.doc.get_change_by_hash(&hash).ok_or_else(|| schema_err("the new change is missing"))
    }

    /// Server side: the office asks for a follow-up, optionally with a new deadline. One change by this
    /// document's actor, for the devices to receive.
    pub fn request_follow_up(
        &mut self,
        at: DateTime<Utc>,
        comment: &str,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<Change> {
        let task = self.obj("task")?;
        let mut tx = self.doc.transaction();
        tx.put(&task, f::FOLLOW_UP_AT, ScalarValue::Timestamp(at.timestamp_millis()))?;
        tx.put(&task, f::FOLLOW_UP_COMMENT, comment)?;
        if let Some(d) = deadline {
            tx.put(&task, f::DEADLINE, ScalarValue::Timestamp(d.timestamp_millis()))?;
        }
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(at.timestamp_millis()));
        let hash = hash.ok_or_else(|| schema_err("the follow-up produced no change"))?;
        self.doc.get_change_by_hash(&hash).ok_or_else(|| schema_err("the new change is missing"))
    }
}

fn time_field(m: &HashMap<String, ScalarValue>, k: &str) -> Option<DateTime<Utc>> {
    match m.get(k) {
        Some(ScalarValue::Timestamp(ms)) => Utc.timestamp_millis_opt(*ms).single(),
        _ => None,
    }
}

fn flag(m: &HashMap<String, ScalarValue>, k: &str) -> Option<bool> {
    match m.get(k) {
        Some(ScalarValue::Boolean(b)) => Some(*b),
        _ => None,
    }
}

fn entry_err(key: &str, field: &str) -> DocError {
    schema_err(format!("entry {key}: field `{field}` is missing or has the wrong type"))
}

fn read_sign(key: &str, m: &HashMap<String, ScalarValue>) -> Result<Sign> {
    let text = |k: &str| str_field(m, k).ok_or_else(|| entry_err(key, k));
    Ok(Sign {
        id: key.parse().map_err(|_| schema_err(format!("sign-for key {key:?} is not a UUID")))?,
        kind: text(f::KIND)?.parse().map_err(|_| entry_err(key, f::KIND))?,
        volunteer: text(f::VOLUNTEER)?,
        device: text(f::DEVICE)?,
        at: time_field(m, f::AT).ok_or_else(|| entry_err(key, f::AT))?,
    })
}

fn read_outcome(key: &str, m: &HashMap<String, ScalarValue>) -> Result<TaskOutcome> {
    let text = |k: &str| str_field(m, k).ok_or_else(|| entry_err(key, k));
    let yes_no = |k: &str| flag(m, k).ok_or_else(|| entry_err(key, k));
    let gps = match (f64_field(m, f::LAT), f64_field(m, f::LON)) {
        (Some(lat), Some(lon)) => Some((lat, lon)),
        (None, None) => None,
        _ => return Err(entry_err(key, f::LAT)),
    };
    let amount_fen = match m.get(f::AMOUNT_FEN) {
        None => None,
        Some(ScalarValue::Int(a)) => Some(*a),
        Some(_) => return Err(entry_err(key, f::AMOUNT_FEN)),
    };
    Ok(TaskOutcome {
        id: key.parse().map_err(|_| schema_err(format!("outcome key {key:?} is not a UUID")))?,
        volunteer: text(f::VOLUNTEER)?,
        device: text(f::DEVICE)?,
        at: time_field(m, f::AT).ok_or_else(|| entry_err(key, f::AT))?,
        method: text(f::METHOD)?.parse().map_err(|_| entry_err(key, f::METHOD))?,
        reached: yes_no(f::REACHED)?,
        dissuaded: yes_no(f::DISSUADED)?,
        money_lost: yes_no(f::MONEY_LOST)?,
        amount_fen,
        feedback: str_field(m, f::FEEDBACK),
        gps,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::task::model::{ContactMethod, FraudType, Priority, SignKind};
    use uuid::Uuid;

    pub(crate) fn sample_task() -> TaskInfo {
        let created_at = Utc.timestamp_millis_opt(1_700_000_000_000).unwrap();
        TaskInfo {
            id: Uuid::now_v7(),
            fraud_type: FraudType::Impersonation,
            priority: Priority::Urgent,
            created_at,
            deadline: created_at + chrono::Duration::hours(2),
            instructions: "Visit at once; the caller claims to be from the court.".into(),
            target: Target {
                label: "王某, 62".into(),
                place_id: None,
                grid: Some("G1".into()),
                address: Some("龙凤村3组8号".into()),
                phone: Some("13800001111".into()),
            },
            follow_up: None,
        }
    }

    #[test]
    fn a_task_round_trips_with_its_signs_and_outcomes() {
        let info = sample_task();
        let server = TaskDoc::create(ActorId::random(), &info).unwrap();
        let mut device = TaskDoc::load(&server.save()).unwrap();
        device.set_actor(ActorId::random());
        assert_eq!(device.info().unwrap(), info);
        let sign = Sign {
            id: Uuid::now_v7(),
            kind: SignKind::Received,
            volunteer: "amy".into(),
            device: "d1".into(),
            at: info.created_at + chrono::Duration::minutes(3),
        };
        let c1 = device.add_sign(&sign).unwrap();
        let outcome = TaskOutcome {
            id: Uuid::now_v7(),
            volunteer: "amy".into(),
            device: "d1".into(),
            at: info.created_at + chrono::Duration::minutes(40),
            method: ContactMethod::FaceToFace,
            reached: true,
            dissuaded: true,
            money_lost: true,
            amount_fen: Some(120_000),
            feedback: Some("she had already sent 1,200 yuan; stopped the second transfer".into()),
            gps: Some((30.1, 105.8)),
        };
        let c2 = device.add_outcome(&outcome).unwrap();
        assert_eq!(c1.actor_id(), c2.actor_id());
        let loaded = TaskDoc::load(&device.save()).unwrap();
        assert_eq!(loaded.signs().unwrap(), vec![sign]);
        assert_eq!(loaded.outcomes().unwrap(), vec![outcome.clone()]);
        assert!(device.add_outcome(&outcome).is_err(), "an outcome is written once");

        let mut server = server;
        server.apply_changes(vec![c1, c2]).unwrap();
        let at = info.created_at + chrono::Duration::hours(1);
        server.request_follow_up(at, "call her again tomorrow", None).unwrap();
        let follow = server.info().unwrap().follow_up.unwrap();
        assert_eq!((follow.at, follow.comment.as_str()), (at, "call her again tomorrow"));
    }
}
