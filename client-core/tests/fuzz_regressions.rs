//! Inputs that once made the fuzzers crash (automerge 0.12 panics or aborts on some malformed changes),
//! replayed through the server's path: none may panic or abort any more.
//!
//! `change-*` files are raw automerge changes; `sync_message-*` files are whole CBOR sync requests;
//! `grid.automerge` is the document they are checked against (the fuzz targets use the same one).

use automerge::ActorId;
use client_core::protocol::{decode, GridPush, SyncRequest};
use client_core::sync::accept_push;
use client_core::sync::Author;
use client_core::GridDoc;
use serde_bytes::ByteBuf;

/// The grid the fuzz targets check pushes against (a saved document, so that recorded inputs replay exactly).
fn grid() -> GridDoc {
    GridDoc::load(include_bytes!("fuzz-regressions/grid.automerge")).unwrap()
}

#[test]
fn every_recorded_crash_input_is_refused_without_panicking() {
    let author = Author { actor: ActorId::from(&[7u8; 16][..]), username: "amy".into(), device: "dev-1".into() };
    let doc = grid();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "automerge") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let pushes = if name.starts_with("sync_message") {
            decode::<SyncRequest>(&bytes).map(|r| r.grids).unwrap_or_default()
        } else {
            vec![GridPush {
                grid: "G1".into(),
                have: vec![],
                changes: vec![ByteBuf::from(bytes)],
                ..Default::default()
            }]
        };
        assert!(!pushes.is_empty(), "{name} still reaches the validator");
        let refused = pushes
            .iter()
            .map(|push| {
                let outcome = std::panic::catch_unwind(|| accept_push(&mut doc.fork(), push, &author));
                outcome.unwrap_or_else(|_| panic!("{name}: a panic escaped the validator")).is_err()
            })
            .filter(|refused| *refused)
            .count();
        // A bare change that once crashed is malformed and must be refused; a whole request may instead be
        // answered without applying anything (e.g. asking for a resend), as long as nothing panics.
        assert!(refused > 0 || name.starts_with("sync_message"), "{name}: its malformed change must be refused");
        seen += 1;
    }
    assert!(seen >= 2);
}
