//! The daily progress series read from the per-area changes the projection keeps (`area_progress`) equals the
//! reference scan over places, indicators and visits, on the backend under test: after the demo town's syncs,
//! batches of generated visits (earlier visits synced late, places found gone and found again, same-time ties,
//! visits on quarter-hour and midnight edges), and a re-import that changes kinds, moves a grid to another
//! village and adds a town; for every area, both teams, several UTC offsets (with half and quarter hours) and
//! date ranges. The migration that creates the table fills it from existing data with the same figures.

mod common;
use chrono::{Duration, FixedOffset, NaiveDate, Utc};
use client_core::grid::model::{Deliveries, Outcome, Visit};
use server::reports::progress::{counted, progress, scanned};
use server::reports::time::{day_range, day_start_ms};
use server::store::db;
use server::store::projection::{apply_visits, plan_visits, AreaDeltas};
use server::{demo, territory, AppState, ServerConfig};

/// xorshift: the same dataset on every run.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const OFFSETS: [&str; 7] = ["+08:00", "+00:00", "-05:00", "+05:30", "+05:45", "-09:30", "+08:07"];

fn offset(text: &str) -> FixedOffset {
    server::reports::time::parse_offset(Some(text)).unwrap()
}

/// Records `count` generated visits through the sync projection, in one transaction, at times from `span`
/// (milliseconds) before `now` up to `now`.
async fn sync_visits(state: &AppState, rng: &mut Rng, count: usize, now: i64, span: i64) {
    let places: Vec<(String, String)> = sqlx::query_as("SELECT place_id, grid_code FROM places ORDER BY place_id")
        .fetch_all(&state.db.pool)
        .await
        .unwrap();
    let edges: Vec<i64> = OFFSETS
        .iter()
        .map(|o| day_start_ms(Utc::now().with_timezone(&offset(o)).date_naive() - Duration::days(3), offset(o)))
        .collect();
    let mut visits = Vec::new();
    for i in 0..count {
        let (place, grid) = &places[rng.below(places.len() as u64) as usize];
        let at = match rng.below(10) {
            // On a local midnight of one of the offsets, or on a quarter hour, or just before one.
            0 => edges[rng.below(edges.len() as u64) as usize],
            1 => (now - rng.below(span as u64) as i64) / 900_000 * 900_000,
            2 => (now - rng.below(span as u64) as i64) / 900_000 * 900_000 - 1,
            _ => now - rng.below(span as u64) as i64,
        };
        let outcome = match rng.below(8) {
            0 | 1 => Outcome::Gone,
            2 => Outcome::NobodyHome,
            3 => Outcome::Refused,
            _ => Outcome::Completed,
        };
        let done = outcome == Outcome::Completed;
        let visit = Visit {
            id: uuid::Uuid::now_v7(),
            place_id: place.clone(),
            volunteer: "generated".into(),
            device: "generated-device".into(),
            at: client_core::grid::doc::millis_to_time(at),
            outcome,
            deliveries: Deliveries::of_flags([
                done && rng.below(3) > 0,
                done && rng.below(2) > 0,
                done && rng.below(3) > 0,
                done,
                done,
            ]),
            note: None,
            gps: None,
            photos: Vec::new(),
        };
        visits.push((grid.clone(), visit.clone()));
        // A same-time visit with another outcome: the greater id (the later one) decides.
        if i % 17 == 0 {
            let tie = Visit { id: uuid::Uuid::now_v7(), outcome: Outcome::Completed, ..visit };
            visits.push((grid.clone(), tie));
        }
    }
    let rows: Vec<(&str, &Visit)> = visits.iter().map(|(g, v)| (g.as_str(), v)).collect();
    let mut tx = state.db.pool.begin().await.unwrap();
    let mut deltas = AreaDeltas::default();
    let plan =
        plan_visits(&mut tx, client_core::campaign::Campaign::default_campaign(), &rows, &mut deltas).await.unwrap();
    apply_visits(&mut tx, &plan).await.unwrap();
    deltas.flush(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
}

/// Every area, the whole territory and each team, on every offset and several ranges.
async fn assert_series_match_scan(state: &AppState) {
    let areas: Vec<(String,)> =
        sqlx::query_as("SELECT code FROM areas ORDER BY code").fetch_all(&state.db.pool).await.unwrap();
    let teams: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT team FROM assignments ORDER BY team").fetch_all(&state.db.pool).await.unwrap();
    let mut scopes: Vec<(String, String)> = vec![(String::new(), String::new())];
    scopes.extend(areas.iter().map(|(a,)| (a.clone(), String::new())));
    for (team,) in &teams {
        scopes.push((String::new(), team.clone()));
        scopes.push(("T01".into(), team.clone()));
        scopes.push(("V01".into(), team.clone()));
    }
    let today = Utc::now().date_naive();
    let ranges: [(NaiveDate, NaiveDate); 4] = [
        (today - Duration::days(50), today + Duration::days(1)),
        (today - Duration::days(3), today - Duration::days(3)),
        (today - Duration::days(20), today - Duration::days(10)),
        (today - Duration::days(400), today - Duration::days(300)),
    ];
    let mut compared = 0;
    for (i, text) in OFFSETS.iter().enumerate() {
        for (j, (from, to)) in ranges.iter().enumerate() {
            // Every scope on the main offset and range; a rotating part of them elsewhere, to keep the test short.
            for (k, (area, team)) in scopes.iter().enumerate() {
                if (i, j) != (0, 0) && k % 4 != (i + j) % 4 {
                    continue;
                }
                let days = day_range(*from, *to, 400).unwrap();
                let scan = scanned(state, &days, offset(text), area, team).await.unwrap();
                let fast = counted(state, &days, offset(text), area, team).await.unwrap();
                // Offsets off the quarter hour fall back to the scan; every area here is a town or below.
                match fast {
                    Some(fast) => assert_eq!(fast, scan, "area {area:?}, team {team:?}, offset {text}, {from} to {to}"),
                    None => assert_eq!(*text, "+08:07", "only an offset off the quarter hour falls back"),
                }
                assert_eq!(progress(state, &days, offset(text), area, team).await.unwrap(), scan);
                compared += 1;
            }
        }
    }
    assert!(compared > 100, "compared {compared} series");
}

/// The changes rows that are not zero, in key order.
async fn progress_rows(state: &AppState) -> Vec<(String, String, String, i64, i64, i64)> {
    sqlx::query_as(
        "SELECT level, area_code, indicator, bucket, eligible, reached FROM area_progress \
         WHERE eligible <> 0 OR reached <> 0 ORDER BY level, area_code, indicator, bucket",
    )
    .fetch_all(&state.db.pool)
    .await
    .unwrap()
}

#[test]
fn the_daily_series_from_per_area_changes_equals_the_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let database_url = std::env::var("DOORSTEP_TEST_PG_URL").ok().map(|_| common::fresh_pg_database());
    let config = ServerConfig::with_defaults(tmp.path().to_path_buf(), database_url.clone());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let state = AppState::open(&config).await.unwrap();
        demo::populate(&state).await.unwrap().expect("an empty database");
        let mut rng = Rng(0x2021_0915);
        let now = Utc::now().timestamp_millis();
        let day = 24 * 3600 * 1000;
        // Recent visits, then earlier ones synced late (they move first reaches earlier and end gone spells).
        sync_visits(&state, &mut rng, 400, now, 10 * day).await;
        sync_visits(&state, &mut rng, 400, now - 10 * day, 40 * day).await;
        let (gone_places,): (i64,) =
            sqlx::query_as("SELECT COUNT(DISTINCT place_id) FROM visits WHERE outcome = 'gone'")
                .fetch_one(&state.db.pool)
                .await
                .unwrap();
        assert!(gone_places > 50, "places found gone: {gone_places}");
        assert_series_match_scan(&state).await;

        // Re-import: every shop becomes a household, grid V01-G1 moves to village V02, and a second town.
        let mut csv = demo::territory_csv()
            .replace(",shop,", ",household,")
            .replace(",V01-G1,龙凤村第1网格,V01,龙凤村,", ",V01-G1,龙凤村第1网格,V02,石岭村,");
        for i in 0..40 {
            let kind = ["household", "shop", "building", "led_screen"][i % 4];
            csv.push_str(&format!("N{i:03},{kind},new {i},N01-G{},新网格,N01,新村,village,T02,新镇,,,,,\n", i % 2));
        }
        let summary = territory::import(&state, csv.as_bytes(), false, "test").await.unwrap();
        assert!(summary.places_changed > 0);
        sync_visits(&state, &mut rng, 300, now, 50 * day).await;
        assert_series_match_scan(&state).await;

        // The migration fills the table from existing data with the same rows the projection keeps.
        let kept = progress_rows(&state).await;
        sqlx::query("DROP TABLE area_progress").execute(&state.db.pool).await.unwrap();
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 8").execute(&state.db.pool).await.unwrap();
        state.db.pool.close().await;
        let url = database_url.unwrap_or_else(|| db::sqlite_url(tmp.path()));
        let reopened = AppState { db: db::Db::connect(&url).await.unwrap(), ..state };
        assert_eq!(progress_rows(&reopened).await, kept);
    });
}
