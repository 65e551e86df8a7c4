//! Fuzzes the territory CSV parser and checker.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = server::territory_csv::parse_territory_csv(data) {
        // Every accepted row is complete.
        for row in rows {
            assert!(!row.place.id.is_empty() && !row.grid.code.is_empty());
        }
    }
});
