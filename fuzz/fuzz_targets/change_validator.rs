//! Fuzzes the change validator with arbitrary change bytes, starting from mutations of a real, valid change.
#![no_main]

#[path = "common.rs"]
mod common;

use client_core::protocol::GridPush;
use client_core::sync::accept_push;
use libfuzzer_sys::fuzz_target;
use serde_bytes::ByteBuf;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    common::quiet_caught_panics();
    static GRID: OnceLock<client_core::GridDoc> = OnceLock::new();
    let grid = GRID.get_or_init(common::grid);
    // The whole path the server takes: parse (only plain change chunks), validate, apply, read the new visits
    // back.
    let push = GridPush { grid: "G1".into(), have: vec![], changes: vec![ByteBuf::from(data.to_vec())], ..Default::default() };
    let _ = accept_push(&mut grid.fork(), &push, &common::author());
});
