//! Applying a campaign version recounts exactly the places whose indicators change, from their visits: after a
//! change of reach and of eligibility over the demo town, the counted figures equal a full scan; and an apply
//! interrupted after the version was stored (the server stopped) is finished when the server starts again.

mod common;
use server::reports::{coverage, scanned, GroupBy};
use server::{campaign, demo, AppState, ServerConfig};

/// The default campaign with the poster reached by a poster or a banner, and every household counted for it.
fn next_version() -> String {
    client_core::campaign::DEFAULT_TOML
        .replace("reached_by = { any_of = [\"poster\"] }", "reached_by = { any_of = [\"poster\", \"banner\"] }")
        .replace("{ kinds = [\"household\"], setting = \"village\" },", "{ kinds = [\"household\"] },")
}

async fn counts_agree(state: &AppState) {
    for by in [GroupBy::Town, GroupBy::Village, GroupBy::Grid] {
        let counted = coverage(state, by, None, None).await.unwrap();
        assert_eq!(counted, scanned(state, by, "", "").await.unwrap(), "{by:?}");
    }
}

#[test]
fn an_apply_recounts_the_changed_places_and_an_interrupted_one_finishes_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let database_url = std::env::var("DOORSTEP_TEST_PG_URL").ok().map(|_| common::fresh_pg_database());
    let config = ServerConfig::with_defaults(tmp.path().to_path_buf(), database_url);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let state = AppState::open(&config).await.unwrap();
        demo::populate(&state).await.unwrap().expect("an empty database");
        let poster = |rows: &[server::reports::CoverageRow]| {
            rows.iter().find(|r| r.indicator == "poster").map(|r| (r.eligible, r.reached)).unwrap()
        };
        let before = poster(&coverage(&state, GroupBy::Town, None, None).await.unwrap());

        let plan = campaign::apply(&state, &next_version(), "office").await.unwrap();
        assert!(plan.places_changing > 0, "{plan:?}");
        assert_eq!(plan.indicators_changed, ["poster"]);
        counts_agree(&state).await;
        let after = poster(&coverage(&state, GroupBy::Town, None, None).await.unwrap());
        assert!(after.0 > before.0, "urban households count for the poster now: {before:?} → {after:?}");

        // Version 2 is stored as an apply stores it, and the server stops before recounting anything.
        let back = client_core::campaign::DEFAULT_TOML;
        let mut tx = state.db.pool.begin().await.unwrap();
        server::store::campaigns::insert(&mut tx, 2, back, 1, "office").await.unwrap();
        tx.commit().await.unwrap();
        drop(state);

        let state = AppState::open(&config).await.unwrap();
        assert_eq!(state.campaigns.current().version, 2);
        counts_agree(&state).await;
        assert_eq!(poster(&coverage(&state, GroupBy::Town, None, None).await.unwrap()), before, "back as it was");
        assert_eq!(server::store::campaigns::not_recounted(&state.db).await.unwrap(), None);
    });
}
