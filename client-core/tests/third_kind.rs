//! A third kind of synced document, written here and nowhere else: a team's notice board, where a device may only
//! add a note in its own name. It travels device → receiver → other device through the same engine as grids and
//! tasks (and is kept in the same store), with no code of its own in the sync path.

use automerge::transaction::Transactable;
use automerge::{legacy, ActorId, Automerge, Change, ChangeHash, ObjType, ReadDoc, ROOT};
use client_core::grid::doc::DocError;
use client_core::limits::Budget;
use client_core::store::{DocStore, StoredDoc};
use client_core::sync::{
    accept_push, apply_reply, build_push, new_reply, Answer, DocKind, PushError, PushParts, Reply,
};
use client_core::sync::{Author, Violation};
use serde_bytes::ByteBuf;

#[derive(Debug, Clone)]
struct Board(Automerge);

#[derive(Debug, Default)]
struct BoardPush {
    board: String,
    have: Vec<ByteBuf>,
    changes: Vec<ByteBuf>,
}

#[derive(Debug)]
struct BoardReply(Reply);

#[derive(Debug, Default, PartialEq)]
struct Notes(Vec<(String, String)>);

impl Board {
    /// The same first change on every replica.
    fn genesis() -> Self {
        let mut doc = Automerge::new().with_actor(ActorId::from(b"board-genesis".as_slice()));
        let mut tx = doc.transaction();
        tx.put_object(ROOT, "notes", ObjType::Map).unwrap();
        tx.commit_with(automerge::transaction::CommitOptions::default().with_time(0));
        Board(doc)
    }
    fn notes_map(&self) -> automerge::ObjId {
        self.0.get(ROOT, "notes").unwrap().unwrap().1
    }
    fn add(&mut self, key: &str, by: &str, text: &str) -> Change {
        let notes = self.notes_map();
        let mut tx = self.0.transaction();
        let note = tx.put_object(&notes, key, ObjType::Map).unwrap();
        tx.put(&note, "by", by).unwrap();
        tx.put(&note, "text", text).unwrap();
        let hash = tx.commit().0.unwrap();
        self.0.get_change_by_hash(&hash).unwrap().clone()
    }
    fn field(&self, key: &str, field: &str) -> Option<String> {
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
    type Push = BoardPush;
    type Reply = BoardReply;
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
    fn push_parts(push: &BoardPush) -> PushParts<'_> {
        PushParts { id: &push.board, have: &push.have, changes: &push.changes, signatures: &[], attestation: None }
    }
    fn push(id: &str, have: Vec<ByteBuf>, changes: Vec<ByteBuf>) -> BoardPush {
        BoardPush { board: id.to_string(), have, changes }
    }
    fn reply(reply: Reply) -> BoardReply {
        BoardReply(reply)
    }
    fn reply_parts(reply: &BoardReply) -> (&[ByteBuf], &[ByteBuf]) {
        (&reply.0.heads, &reply.0.changes)
    }
}

fn device(name: &str) -> (Author, Board) {
    let author = Author { actor: ActorId::random(), username: name.into(), device: format!("{name}-phone") };
    let mut board = Board::genesis();
    board.set_actor(author.actor.clone());
    (author, board)
}

#[test]
fn a_third_kind_syncs_through_the_one_engine_and_store() {
    let mut office = Board::genesis();
    let (amy, mut amys) = device("amy");
    let (bob, mut bobs) = device("bob");

    // Amy writes a note, keeps it in a store of boards, and pushes it.
    let dir = tempfile::tempdir().unwrap();
    let store = DocStore::<Board>::open(dir.path()).unwrap();
    store.replace("team", &amys).unwrap();
    let change = amys.add("n1", "amy", "water the seedlings");
    store.append("team", &[change]).unwrap();
    let amys_stored = store.load("team").unwrap();
    let accepted = accept_push(&mut office, &build_push("team", &amys_stored, None), &amy).unwrap();
    assert_eq!(accepted.records, Notes(vec![("amy".into(), "water the seedlings".into())]));
    assert_eq!((accepted.new_changes.len(), accepted.reply.0.answer), (1, Answer::Synced));
    assert!(apply_reply(&mut amys, &accepted.reply).unwrap().confirmed == office.automerge().get_heads());

    // Bob's copy is the whole board the first time, then what he lacks.
    let bobs_copy: Board = StoredDoc::load(new_reply("team", &office).0.snapshot.as_ref().unwrap()).unwrap();
    assert_eq!(bobs_copy.field("n1", "text").as_deref(), Some("water the seedlings"));
    let pull = accept_push(&mut office, &build_push("team", &bobs, None), &bob).unwrap();
    apply_reply(&mut bobs, &pull.reply).unwrap();
    assert_eq!(bobs.field("n1", "by").as_deref(), Some("amy"));

    // A note in another's name is refused by the kind's own check, with the engine's error.
    let forged = bobs.add("n2", "amy", "bob was here");
    let push = BoardPush {
        board: "team".into(),
        have: client_core::protocol::hashes_to_wire(&[forged.hash()]),
        changes: vec![ByteBuf::from(forged.raw_bytes().to_vec())],
    };
    match accept_push(&mut office.clone(), &push, &bob) {
        Err(PushError::Forbidden { doc, violation }) => {
            assert_eq!(doc.to_string(), "board team");
            assert!(violation.0.contains("claims \"amy\""), "{violation}");
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    // And one written by someone else's actor, by the engine's writer check.
    let (_, mut eves) = device("eve");
    let theirs = eves.add("n3", "eve", "hello");
    let push = BoardPush { changes: vec![ByteBuf::from(theirs.raw_bytes().to_vec())], ..Default::default() };
    let err = accept_push(&mut office.clone(), &push, &bob).unwrap_err().to_string();
    assert!(err.contains("this device's actor"), "{err}");
}
