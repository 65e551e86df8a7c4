//! A fixed grid document and author shared by the fuzz targets.

use client_core::grid::validate::Author;
use client_core::GridDoc;

/// automerge 0.12 panics while decoding some malformed changes; the validator catches that and refuses the
/// change. libFuzzer's panic hook would abort on the caught panic, so it is replaced by a quiet one: a panic
/// that escapes the target is still reported, by libfuzzer-sys's own check.
pub fn quiet_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("DOORSTEP_FUZZ_SHOW_PANICS").is_none() {
        ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    }
}

pub fn actor() -> automerge::ActorId {
    automerge::ActorId::from(&[7u8; 16][..])
}

pub fn author() -> Author {
    Author { actor: actor(), username: "amy".into(), device: "dev-1".into() }
}

/// A grid with two places and one visit by the author: a saved document, the same in every run, so that an
/// input found by the fuzzer replays exactly (client-core/tests/fuzz_regressions.rs uses it too).
pub fn grid() -> GridDoc {
    GridDoc::load(include_bytes!("../../client-core/tests/fuzz-regressions/grid.automerge")).expect("grid")
}
