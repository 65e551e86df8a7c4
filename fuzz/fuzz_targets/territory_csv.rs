//! Fuzzes the territory CSV parser and checker.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let campaign = std::sync::Arc::new(client_core::campaign::Campaign::default_campaign().clone());
    if let Ok(territory) = server::territory::csv::parse_territory_csv(data, campaign) {
        // Every accepted row reads again from the file, complete.
        let rows = territory.rows().expect("an accepted row reads again");
        assert_eq!(rows.len(), territory.row_count());
        for row in rows {
            assert!(!row.place.id.is_empty() && !row.grid.code.is_empty());
        }
    }
});
