//! Fuzzes the server's reading of a sync request: CBOR decoding, then checking every push against a grid.
#![no_main]

#[path = "common.rs"]
mod common;

use client_core::protocol::{decode, SyncRequest};
use client_core::sync::accept_push;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    common::quiet_caught_panics();
    static GRID: OnceLock<client_core::GridDoc> = OnceLock::new();
    let grid = GRID.get_or_init(common::grid);
    if let Ok(req) = decode::<SyncRequest>(data) {
        for push in req.grids.iter().take(4) {
            let _ = accept_push(&mut grid.fork(), push, &common::author());
        }
    }
});
