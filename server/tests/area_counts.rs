//! The per-area coverage counts the projection keeps agree with a full scan of the places, after imports,
//! syncs with every outcome, and a re-import that changes kinds and moves a grid to another village.

use server::reports::{coverage, scanned, GroupBy};
use server::{demo, territory, AppState, ServerConfig};

async fn assert_counts_match_scan(state: &AppState) {
    let areas: Vec<(String,)> = sqlx::query_as("SELECT code FROM areas").fetch_all(&state.db.pool).await.unwrap();
    for by in [GroupBy::Town, GroupBy::Village, GroupBy::Grid] {
        let mut filters: Vec<Option<&str>> = vec![None];
        filters.extend(areas.iter().map(|a| Some(a.0.as_str())));
        for area in filters {
            let counted = coverage(state, by, area, None).await.unwrap();
            let scan = scanned(state, by, area.unwrap_or(""), "").await.unwrap();
            assert_eq!(counted, scan, "by {by:?}, area {area:?}");
        }
    }
}

#[tokio::test]
async fn counts_agree_with_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        ServerConfig { data_dir: dir.path().to_path_buf(), database_url: None, login_throttle: Default::default() };
    let state = AppState::open(&config).await.unwrap();
    // The demo town: ~2,000 places, two teams, ~1,200 visits with every outcome, through the sync path.
    demo::populate(&state).await.unwrap().expect("an empty data dir");
    let (excluded,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM places WHERE excluded = 1").fetch_one(&state.db.pool).await.unwrap();
    assert!(excluded > 0, "some places are gone");
    assert_counts_match_scan(&state).await;

    // Re-import: every shop becomes a household, and grid V01-G1 moves to village V02.
    let csv = demo::territory_csv()
        .replace(",shop,", ",household,")
        .replace(",V01-G1,龙凤村第1网格,V01,龙凤村,", ",V01-G1,龙凤村第1网格,V02,石岭村,");
    let summary = territory::import(&state, csv.as_bytes(), false, "test").await.unwrap();
    assert!(summary.places_changed > 0);
    assert_counts_match_scan(&state).await;
}
