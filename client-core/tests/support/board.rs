//! A third kind of synced document, for tests: a team's notice board, where a device may only add a note in its
//! own name. Its whole definition is this file: the engine, the stores and the sync paths need nothing more.

use automerge::transaction::Transactable;
use automerge::{legacy, ActorId, Automerge, Change, ChangeHash, ObjType, ReadDoc, ROOT};
use client_core::grid::doc::DocError;
use client_core::limits::Budget;
use client_core::protocol::{DocPush, DocReply};
use client_core::store::StoredDoc;
use client_core::sync::{Author, DocKind, Violation};

#[derive(Debug, Clone)]
pub struct Board(pub Automerge);

#[derive(Debug, Default, PartialEq)]
pub struct Notes(pub Vec<(String, String)>);

impl client_core::docs::Entries for Notes {
    fn entries(&self) -> Vec<client_core::docs::DocEntry> {
        Vec::new()
    }
}

impl Board {
    /// The same first change on every replica.
    pub fn genesis() -> Self {
        let mut doc = Automerge::new().with_actor(ActorId::from(b"board-genesis".as_slice()));
        let mut tx = doc.transaction();
        tx.put_object(ROOT, "notes", ObjType::Map).unwrap();
        tx.commit_with(automerge::transaction::CommitOptions::default().with_time(0));
        Board(doc)
    }
    pub fn notes_map(&self) -> automerge::ObjId {
        self.0.get(ROOT, "notes").unwrap().unwrap().1
    }
    pub fn add(&mut self, key: &str, by: &str, text: &str) -> Change {
        let notes = self.notes_map();
        let mut tx = self.0.transaction();
        let note = tx.put_object(&notes, key, ObjType::Map).unwrap();
        tx.put(&note, "by", by).unwrap();
        tx.put(&note, "text", text).unwrap();
        let hash = tx.commit().0.unwrap();
        self.0.get_change_by_hash(&hash).unwrap().clone()
    }
    pub fn field(&self, key: &str, field: &str) -> Option<String> {
        let (_, note) = self.0.get(self.notes_map(), key).ok()??;
        self.0.get(&note, field).ok()?.map(|(v, _)| v.into_string().unwrap_or_default())
    }
}

impl StoredDoc for Board {
    fn load(bytes: &[u8]) -> Result<Self, DocError> {
        Ok(Board(Automerge::load(bytes)?))
    }
    fn apply_changes(&mut self, changes: Vec<Change>) -> Result<(), DocError> {
        Ok(self.0.apply_changes(changes)?)
    }
    fn save(&self) -> Vec<u8> {
        self.0.save()
    }
}

impl DocKind for Board {
    type Push = DocPush;
    type Reply = DocReply;
    type Keys = Vec<String>;
    type Records = Notes;
    const NOUN: &'static str = "board";
    const BUDGET: Budget = Budget::SyncNewChanges;

    fn subject(id: &str) -> String {
        format!("board/{id}")
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
    /// One new note (a map under `notes`) and its fields; nothing is ever rewritten.
    fn check_ops(&self, change: &Change, _author: &Author) -> Result<Vec<String>, Violation> {
        let deny = |why: &str| Violation(format!("change {}: {why}", change.hash()));
        let ops = change.decode().operations;
        let Some((first, fields)) = ops.split_first() else { return Err(deny("adds nothing")) };
        let key = match (&first.action, &first.key) {
            (legacy::OpType::Make(ObjType::Map), legacy::Key::Map(key)) if first.pred.is_empty() => key.to_string(),
            _ => return Err(deny("a device only adds a note")),
        };
        if self.field(&key, "by").is_some() || fields.iter().any(|op| !op.pred.is_empty()) {
            return Err(deny("notes are never rewritten"));
        }
        Ok(vec![key])
    }
    fn check_added(&self, keys: &Vec<String>, author: &Author, records: &mut Notes) -> Result<(), Violation> {
        for key in keys {
            let by = self.field(key, "by").unwrap_or_default();
            if by != author.username {
                return Err(Violation(format!("note {key} claims {by:?}, not {:?}", author.username)));
            }
            records.0.push((by, self.field(key, "text").unwrap_or_default()));
        }
        Ok(())
    }
}
