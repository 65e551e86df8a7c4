//! Applying a campaign version recounts exactly the places whose indicators change, from their visits: after a
//! change of reach and of eligibility over the demo town, the counted figures equal a full scan, last month's
//! report is what it was, and this month's counts with the new version; and an apply interrupted after the
//! version was stored (the server stopped) is finished when the server starts again.

mod common;
use chrono::Datelike;
use server::reports::monthly::{monthly, MonthlyParams, MonthlyReport};
use server::reports::{coverage, progress, scanned, GroupBy};
use server::{campaign, demo, AppState, ServerConfig};
use std::collections::BTreeMap;

/// The default campaign with the poster reached by a poster or a banner, and every household counted for it.
fn next_version() -> String {
    client_core::campaign::DEFAULT_TOML
        .replace("reached_by = { any_of = [\"poster\"] }", "reached_by = { any_of = [\"poster\", \"banner\"] }")
        .replace("{ kinds = [\"household\"], setting = \"village\" },", "{ kinds = [\"household\"] },")
}

/// The monthly report of the month `back` months before this one, at UTC+8, for the whole town.
async fn month_report(state: &AppState, back: u32) -> MonthlyReport {
    let offset = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let today = chrono::Utc::now().with_timezone(&offset).date_naive();
    let month = today.with_day(1).unwrap() - chrono::Months::new(back);
    let month = month.format("%Y-%m").to_string();
    let params = MonthlyParams { month: &month, offset, threshold: 0.8, area: None, team: None };
    monthly(state, params).await.unwrap()
}

/// Per indicator, the (eligible, reached) of a month's report summed over its units.
fn month_totals(report: &MonthlyReport) -> BTreeMap<String, (u64, u64)> {
    let mut totals = BTreeMap::new();
    for indicator in report.rows.iter().flat_map(|r| &r.indicators) {
        let t: &mut (u64, u64) = totals.entry(indicator.indicator.clone()).or_default();
        *t = (t.0 + indicator.eligible, t.1 + indicator.reached);
    }
    totals
}

async fn counts_agree(state: &AppState) {
    for by in [GroupBy::Town, GroupBy::Village, GroupBy::Grid] {
        let counted = coverage(state, by, None, None).await.unwrap();
        assert_eq!(counted, scanned(state, by, "", "").await.unwrap(), "{by:?}");
    }
    // The daily progress series over the demo's 45 days, from the kept changes and from a scan.
    let offset = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let today = chrono::Utc::now().with_timezone(&offset).date_naive();
    let days = server::reports::time::day_range(today - chrono::Duration::days(50), today, 400).unwrap();
    for area in ["", "T01"] {
        let counted = progress::progress(state, &days, offset, area, "").await.unwrap();
        assert_eq!(counted, progress::scanned(state, &days, offset, area, "").await.unwrap(), "progress of {area:?}");
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
        // The demo's visits span the last 45 days: last month has some.
        let last_month = month_report(&state, 1).await;
        assert!(last_month.rows.iter().any(|r| r.visits > 0), "{last_month:?}");

        let plan = campaign::apply(&state, &next_version(), "office").await.unwrap();
        assert!(plan.places_changing > 0, "{plan:?}");
        assert_eq!(plan.indicators_changed, ["poster"]);
        counts_agree(&state).await;
        let after = poster(&coverage(&state, GroupBy::Town, None, None).await.unwrap());
        assert!(after.0 > before.0, "urban households count for the poster now: {before:?} → {after:?}");

        // Last month is counted as it was, with version 0's poster (village households, posters only), although
        // the projected rows now follow version 1; this month is counted with version 1.
        assert_eq!(month_report(&state, 1).await, last_month, "last month's report does not move");
        let this_month = month_report(&state, 0).await;
        assert_eq!(this_month.campaign_version, 1);
        let town = coverage(&state, GroupBy::Town, None, None).await.unwrap();
        let now: BTreeMap<String, (u64, u64)> =
            town.iter().map(|r| (r.indicator.clone(), (r.eligible, r.reached))).collect();
        assert_eq!(month_totals(&this_month), now, "this month ends with today's figures");
        assert_eq!(month_totals(&this_month)["poster"], after);

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
