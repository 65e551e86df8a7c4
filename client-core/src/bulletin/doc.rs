//! A bulletin as a synced document (kind `bulletin`, id = the bulletin's UUID): the server writes its notice (and
//! rewrites it whole at each correction), devices add read receipts in their own name and write nothing else.
//! Layout in `docs/bulletins.md`.

use super::{Attachment, Notice, Receipt};
use crate::docs::DocEntry;
use crate::grid::doc::DocError;
use crate::grid::model::MAX_TEXT_BYTES;
use crate::limits::Budget;
use crate::protocol::{DocPush, DocReply};
use crate::store::StoredDoc;
use crate::sync::{Author, DocKind, Violation};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{legacy, ActorId, Automerge, Change, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};

const NOTICE: &str = "notice";
const RECEIPTS: &str = "receipts";

/// The fields of a receipt entry.
mod f {
    pub const VOLUNTEER: &str = "volunteer";
    pub const DEVICE: &str = "device";
    pub const READ_AT: &str = "read_at";
    pub const EDITION: &str = "edition";
}

#[derive(Debug, Clone)]
pub struct BulletinDoc(Automerge);

/// The actor the server writes a bulletin's notice as: one per bulletin, so that its corrections continue the
/// same sequence.
fn server_actor(id: &str) -> ActorId {
    ActorId::from(format!("bulletin-{id}").as_bytes())
}

fn scalar(doc: &Automerge, obj: &ObjId, key: &str) -> Option<ScalarValue> {
    match doc.get(obj, key).ok()??.0 {
        Value::Scalar(s) => Some(s.into_owned()),
        Value::Object(_) => None,
    }
}

fn text(doc: &Automerge, obj: &ObjId, key: &str) -> Option<String> {
    match scalar(doc, obj, key)? {
        ScalarValue::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

fn int(doc: &Automerge, obj: &ObjId, key: &str) -> Option<i64> {
    match scalar(doc, obj, key)? {
        ScalarValue::Int(v) | ScalarValue::Timestamp(v) => Some(v),
        ScalarValue::Uint(v) => i64::try_from(v).ok(),
        _ => None,
    }
}

impl BulletinDoc {
    /// A new bulletin `id` with its first edition.
    pub fn new(id: &str, notice: &Notice) -> BulletinDoc {
        let mut doc = Automerge::new().with_actor(server_actor(id));
        let mut tx = doc.transaction();
        tx.put_object(ROOT, RECEIPTS, ObjType::Map).expect("a fresh document takes a map");
        write_notice(&mut tx, notice);
        tx.commit_with(CommitOptions::default().with_time(notice.published_at / 1000));
        BulletinDoc(doc)
    }

    /// Replaces the notice with a corrected edition, written as the server.
    pub fn correct(&mut self, id: &str, notice: &Notice) {
        let actor = self.0.get_actor().clone();
        self.0.set_actor(server_actor(id));
        let mut tx = self.0.transaction();
        write_notice(&mut tx, notice);
        tx.commit();
        self.0.set_actor(actor);
    }

    /// The current edition; `None` if the document holds none that reads back.
    pub fn notice(&self) -> Option<Notice> {
        let doc = &self.0;
        let (_, notice) = doc.get(ROOT, NOTICE).ok()??;
        let attachments = match doc.get(&notice, "attachments").ok()? {
            Some((_, list)) => (0..doc.length(&list))
                .map(|i| {
                    let (_, a) = doc.get(&list, i).ok()??;
                    Some(Attachment {
                        sha256: text(doc, &a, "sha256")?,
                        name: text(doc, &a, "name")?,
                        content_type: text(doc, &a, "type")?,
                        size: u64::try_from(int(doc, &a, "size")?).ok()?,
                    })
                })
                .collect::<Option<Vec<_>>>()?,
            None => Vec::new(),
        };
        let fraud_type = text(doc, &notice, "fraud_type").unwrap_or_default();
        Some(Notice {
            title: text(doc, &notice, "title")?,
            body: text(doc, &notice, "body")?,
            kind: text(doc, &notice, "kind")?.parse().ok()?,
            fraud_type: match fraud_type.as_str() {
                "" => None,
                t => Some(t.parse().ok()?),
            },
            priority: text(doc, &notice, "priority")?.parse().ok()?,
            edition: int(doc, &notice, "edition")?,
            published_at: int(doc, &notice, "published_at")?,
            expires_at: int(doc, &notice, "expires_at").filter(|at| *at > 0),
            attachments,
        })
    }

    fn receipts_map(&self) -> Option<ObjId> {
        Some(self.0.get(ROOT, RECEIPTS).ok()??.1)
    }

    fn receipt(&self, key: &str) -> Option<Receipt> {
        let (_, entry) = self.0.get(&self.receipts_map()?, key).ok()??;
        Some(Receipt {
            key: key.to_string(),
            volunteer: text(&self.0, &entry, f::VOLUNTEER)?,
            device: text(&self.0, &entry, f::DEVICE)?,
            read_at: int(&self.0, &entry, f::READ_AT)?,
            edition: int(&self.0, &entry, f::EDITION)?,
        })
    }

    /// Every receipt the document holds, in key order.
    pub fn receipts(&self) -> Vec<Receipt> {
        let Some(map) = self.receipts_map() else { return Vec::new() };
        self.0.keys(&map).filter_map(|k| self.receipt(&k)).collect()
    }

    /// Whether `volunteer` has read the current edition.
    pub fn read_by(&self, volunteer: &str) -> bool {
        let edition = self.notice().map_or(0, |n| n.edition);
        self.receipts().iter().any(|r| r.volunteer == volunteer && r.edition >= edition)
    }

    /// Records that `volunteer` read `edition` on `device` at `read_at` (ms), as this copy's actor. Returns the
    /// change (to be stored before anything is said).
    pub fn add_receipt(&mut self, volunteer: &str, device: &str, read_at: i64, edition: i64) -> Change {
        let map = self.receipts_map().expect("a bulletin has its receipts map from its first change");
        let key = uuid::Uuid::new_v4().to_string();
        let mut tx = self.0.transaction();
        let entry = tx.put_object(&map, key.as_str(), ObjType::Map).expect("a map takes an entry");
        tx.put(&entry, f::VOLUNTEER, volunteer).expect("an entry takes a field");
        tx.put(&entry, f::DEVICE, device).expect("an entry takes a field");
        tx.put(&entry, f::READ_AT, ScalarValue::Timestamp(read_at)).expect("an entry takes a field");
        tx.put(&entry, f::EDITION, edition).expect("an entry takes a field");
        let hash = tx.commit().0.expect("a receipt is a change");
        self.0.get_change_by_hash(&hash).expect("just committed").clone()
    }
}

fn write_notice(tx: &mut impl Transactable, n: &Notice) {
    let put = "a new map takes a field";
    let notice = tx.put_object(ROOT, NOTICE, ObjType::Map).expect("the root takes a map");
    tx.put(&notice, "title", n.title.as_str()).expect(put);
    tx.put(&notice, "body", n.body.as_str()).expect(put);
    tx.put(&notice, "kind", n.kind.id()).expect(put);
    tx.put(&notice, "fraud_type", n.fraud_type.map_or("", |t| t.id())).expect(put);
    tx.put(&notice, "priority", n.priority.id()).expect(put);
    tx.put(&notice, "edition", n.edition).expect(put);
    tx.put(&notice, "published_at", n.published_at).expect(put);
    if let Some(at) = n.expires_at {
        tx.put(&notice, "expires_at", at).expect(put);
    }
    let list = tx.put_object(&notice, "attachments", ObjType::List).expect(put);
    for (i, a) in n.attachments.iter().enumerate() {
        let item = tx.insert_object(&list, i, ObjType::Map).expect("a list takes an item");
        tx.put(&item, "sha256", a.sha256.as_str()).expect(put);
        tx.put(&item, "name", a.name.as_str()).expect(put);
        tx.put(&item, "type", a.content_type.as_str()).expect(put);
        tx.put(&item, "size", i64::try_from(a.size).unwrap_or(i64::MAX)).expect(put);
    }
}

impl StoredDoc for BulletinDoc {
    fn load(bytes: &[u8]) -> Result<Self, DocError> {
        Ok(BulletinDoc(Automerge::load(bytes)?))
    }
    fn apply_changes(&mut self, changes: Vec<Change>) -> Result<(), DocError> {
        Ok(self.0.apply_changes(changes)?)
    }
    fn save(&self) -> Vec<u8> {
        self.0.save()
    }
}

fn is_obj(obj: &legacy::ObjectId, target: &ObjId) -> bool {
    matches!((obj, target), (legacy::ObjectId::Id(legacy::OpId(ctr, actor)), ObjId::Id(tctr, tactor, _))
        if ctr == tctr && actor == tactor)
}

impl DocKind for BulletinDoc {
    type Push = DocPush;
    type Reply = DocReply;
    /// The receipt a change adds.
    type Keys = String;
    type Records = Vec<DocEntry>;
    const NOUN: &'static str = "bulletin";
    const BUDGET: Budget = Budget::SyncNewChanges;

    fn subject(id: &str) -> String {
        format!("bulletin/{id}")
    }
    fn automerge(&self) -> &Automerge {
        &self.0
    }
    fn set_actor(&mut self, actor: ActorId) {
        self.0.set_actor(actor);
    }
    fn changes_since(&self, have: &[ChangeHash]) -> Vec<Change> {
        self.0.get_changes(have)
    }
    /// One new receipt (a map under `receipts`, keyed by a UUID) and its four fields, in the writer's actor;
    /// nothing else, and nothing ever rewritten.
    fn check_ops(&self, change: &Change, author: &Author) -> Result<String, Violation> {
        let hash = change.hash();
        let deny = |why: String| Err(Violation(format!("change {hash}: {why}")));
        if change.actor_id() != &author.actor {
            return deny(format!("written by actor {}, not this device's {}", change.actor_id(), author.actor));
        }
        let Some(receipts) = self.receipts_map() else { return deny("the bulletin has no receipts map".into()) };
        let ops = match std::panic::catch_unwind(|| change.decode()) {
            Ok(expanded) => expanded.operations,
            Err(_) => return deny("could not be decoded".into()),
        };
        let Some((first, fields)) = ops.split_first() else { return deny("adds nothing".into()) };
        let key = match (&first.action, &first.key, first.pred.is_empty() && !first.insert) {
            (legacy::OpType::Make(ObjType::Map), legacy::Key::Map(key), true) if is_obj(&first.obj, &receipts) => {
                key.to_string()
            }
            _ => return deny("a device writes nothing into a bulletin but its own read receipt".into()),
        };
        if uuid::Uuid::parse_str(&key).is_err() {
            return deny(format!("receipt key {key:?} is not a UUID"));
        }
        if self.0.get(&receipts, key.as_str()).ok().flatten().is_some() {
            return deny(format!("receipt {key} exists already; receipts are never rewritten"));
        }
        let entry = legacy::ObjectId::Id(legacy::OpId(change.start_op().get(), author.actor.clone()));
        let mut seen = Vec::new();
        for op in fields {
            let (legacy::OpType::Put(value), legacy::Key::Map(name)) = (&op.action, &op.key) else {
                return deny("a receipt holds four plain fields and nothing else".into());
            };
            if op.obj != entry || !op.pred.is_empty() || op.insert || seen.contains(&name.to_string()) {
                return deny("a device writes nothing into a bulletin but its own read receipt, once".into());
            }
            let fits = match name.as_str() {
                f::VOLUNTEER | f::DEVICE => matches!(value, ScalarValue::Str(s) if s.len() <= MAX_TEXT_BYTES),
                f::READ_AT => matches!(value, ScalarValue::Timestamp(_)),
                f::EDITION => matches!(value, ScalarValue::Int(e) if *e >= 1),
                other => return deny(format!("receipt field `{other}` is not part of the schema")),
            };
            if !fits {
                return deny(format!("receipt field `{name}` has a value of the wrong type or size"));
            }
            seen.push(name.to_string());
        }
        let ObjId::Id(_, maps_actor, _) = &receipts else { return deny("the receipts map has no creator".into()) };
        if let Some(other) = change.other_actor_ids().iter().find(|a| *a != maps_actor) {
            return deny(format!("refers to actor {other}, which has no place in a receipt"));
        }
        Ok(key)
    }
    /// The receipt as it reads after applying: complete, in the pusher's name and device, of an edition that
    /// exists.
    fn check_added(&self, key: &String, author: &Author, records: &mut Vec<DocEntry>) -> Result<(), Violation> {
        let deny = |why: String| Err(Violation(format!("receipt {key}: {why}")));
        let Some(r) = self.receipt(key) else { return deny("incomplete after applying the change".into()) };
        if r.volunteer != author.username {
            return deny(format!("claims volunteer {:?} but the device belongs to {:?}", r.volunteer, author.username));
        }
        if r.device != author.device {
            return deny(format!("claims device {:?}, not this device", r.device));
        }
        let edition = self.notice().map_or(0, |n| n.edition);
        if r.edition > edition {
            return deny(format!("marks edition {} read, but the bulletin is at edition {edition}", r.edition));
        }
        records.push(DocEntry {
            key: r.key,
            username: r.volunteer,
            device: r.device,
            at: r.read_at,
            detail: serde_json::json!({ "edition": r.edition }),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulletin::{BulletinKind, BulletinPriority};
    use crate::task::model::FraudType;

    pub(crate) fn notice(edition: i64) -> Notice {
        Notice {
            title: "新型诈骗：冒充客服退款".into(),
            body: "**不要**点陌生链接\n- 核实来电".into(),
            kind: BulletinKind::FraudMethod,
            fraud_type: Some(FraudType::Impersonation),
            priority: BulletinPriority::Urgent,
            edition,
            published_at: 1_790_000_000_000,
            expires_at: None,
            attachments: vec![Attachment {
                sha256: "ab".repeat(32),
                name: "海报.png".into(),
                content_type: "image/png".into(),
                size: 2048,
            }],
        }
    }

    fn author() -> Author {
        Author { actor: ActorId::random(), username: "zhang".into(), device: "d1".into() }
    }

    fn device_copy(doc: &BulletinDoc, author: &Author) -> BulletinDoc {
        let mut copy = BulletinDoc::load(&doc.save()).unwrap();
        copy.set_actor(author.actor.clone());
        copy
    }

    #[test]
    fn a_notice_reads_back_and_a_correction_replaces_it() {
        let mut doc = BulletinDoc::new("b1", &notice(1));
        assert_eq!(doc.notice(), Some(notice(1)));
        let mut second = notice(2);
        second.attachments.clear();
        second.expires_at = Some(1_800_000_000_000);
        doc.correct("b1", &second);
        assert_eq!(doc.notice(), Some(second));
        assert!(notice(1).check().is_ok());
    }

    #[test]
    fn a_device_adds_its_own_receipt_and_nothing_else() {
        let server = BulletinDoc::new("b1", &notice(1));
        let zhang = author();
        let mut phone = device_copy(&server, &zhang);
        let change = phone.add_receipt("zhang", "d1", 1_790_000_100_000, 1);
        let key = server.check_ops(&change, &zhang).unwrap();
        let mut after = server.clone();
        after.apply_changes(vec![change.clone()]).unwrap();
        let mut records = Vec::new();
        after.check_added(&key, &zhang, &mut records).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!((records[0].username.as_str(), records[0].at), ("zhang", 1_790_000_100_000));
        assert!(after.read_by("zhang") && !after.read_by("wang"));

        // In another's name: refused once applied.
        let mut forged = device_copy(&server, &zhang);
        let change = forged.add_receipt("wang", "d1", 1, 1);
        let key = server.check_ops(&change, &zhang).unwrap();
        let mut after = server.clone();
        after.apply_changes(vec![change]).unwrap();
        assert!(after.check_added(&key, &zhang, &mut Vec::new()).is_err());

        // A change to the notice: refused before it is applied.
        let mut editor = device_copy(&server, &zhang);
        let notice_map = editor.0.get(ROOT, NOTICE).unwrap().unwrap().1;
        let mut tx = editor.0.transaction();
        tx.put(&notice_map, "title", "改掉").unwrap();
        tx.commit();
        let change = editor.0.get_last_local_change().unwrap().clone();
        assert!(server.check_ops(&change, &zhang).unwrap_err().0.contains("nothing into a bulletin"));

        // An extra field in a receipt.
        let mut extra = device_copy(&server, &zhang);
        let map = extra.receipts_map().unwrap();
        let mut tx = extra.0.transaction();
        let entry = tx.put_object(&map, uuid::Uuid::new_v4().to_string(), ObjType::Map).unwrap();
        tx.put(&entry, f::VOLUNTEER, "zhang").unwrap();
        tx.put(&entry, "comment", "x").unwrap();
        tx.commit();
        let change = extra.0.get_last_local_change().unwrap().clone();
        assert!(server.check_ops(&change, &zhang).unwrap_err().0.contains("not part of the schema"));

        // Another actor's change pushed as this device's.
        let other = author();
        let mut theirs = device_copy(&server, &other);
        let change = theirs.add_receipt("zhang", "d1", 1, 1);
        assert!(server.check_ops(&change, &zhang).is_err());
    }

    #[test]
    fn a_receipt_of_an_edition_not_yet_published_is_refused() {
        let server = BulletinDoc::new("b1", &notice(1));
        let zhang = author();
        let mut phone = device_copy(&server, &zhang);
        let change = phone.add_receipt("zhang", "d1", 5, 2);
        let key = server.check_ops(&change, &zhang).unwrap();
        let mut after = server.clone();
        after.apply_changes(vec![change]).unwrap();
        assert!(after.check_added(&key, &zhang, &mut Vec::new()).unwrap_err().0.contains("edition 1"));
    }

    #[test]
    fn a_correction_asks_for_a_new_read() {
        let mut server = BulletinDoc::new("b1", &notice(1));
        let zhang = author();
        let mut phone = device_copy(&server, &zhang);
        let change = phone.add_receipt("zhang", "d1", 5, 1);
        server.apply_changes(vec![change]).unwrap();
        assert!(server.read_by("zhang"));
        server.correct("b1", &notice(2));
        assert!(!server.read_by("zhang"));
    }

    #[test]
    fn notices_break_no_rule_or_say_which() {
        let mut n = notice(1);
        n.title = " ".into();
        assert!(n.check().unwrap_err().contains("title"));
        let mut n = notice(1);
        n.attachments[0].content_type = "text/html".into();
        assert!(n.check().unwrap_err().contains("not accepted"));
        let mut n = notice(1);
        n.expires_at = Some(n.published_at);
        assert!(n.check().unwrap_err().contains("expiry"));
    }
}
