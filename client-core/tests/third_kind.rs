//! A third kind of synced document (`support/board.rs`, a team's notice board) travels device → receiver → other
//! device through the same engine as grids and tasks, and is kept in the same store, with no code of its own in
//! the sync path.

mod support {
    pub mod board;
}

use automerge::ActorId;
use client_core::protocol::{DocAnswer, DocPush};
use client_core::store::{DocStore, StoredDoc};
use client_core::sync::{accept_push, apply_reply, build_push, new_reply, Author, DocKind, PushError};
use serde_bytes::ByteBuf;
use support::board::{Board, Notes};

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
    assert_eq!((accepted.new_changes.len(), accepted.reply.answer), (1, DocAnswer::Synced));
    assert!(apply_reply(&mut amys, &accepted.reply).unwrap().confirmed == office.automerge().get_heads());

    // Bob's copy is the whole board the first time, then what he lacks.
    let bobs_copy: Board = StoredDoc::load(new_reply("team", &office).snapshot.as_ref().unwrap()).unwrap();
    assert_eq!(bobs_copy.field("n1", "text").as_deref(), Some("water the seedlings"));
    let pull = accept_push(&mut office, &build_push("team", &bobs, None), &bob).unwrap();
    apply_reply(&mut bobs, &pull.reply).unwrap();
    assert_eq!(bobs.field("n1", "by").as_deref(), Some("amy"));

    // A note in another's name is refused by the kind's own check, with the engine's error.
    let forged = bobs.add("n2", "amy", "bob was here");
    let push = DocPush {
        id: "team".into(),
        have: client_core::protocol::hashes_to_wire(&[forged.hash()]),
        changes: vec![ByteBuf::from(forged.raw_bytes().to_vec())],
        ..Default::default()
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
    let push = DocPush { changes: vec![ByteBuf::from(theirs.raw_bytes().to_vec())], ..Default::default() };
    let err = accept_push(&mut office.clone(), &push, &bob).unwrap_err().to_string();
    assert!(err.contains("this device's actor"), "{err}");
}
