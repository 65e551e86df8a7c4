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

/// A server in `dir` holding the demo town: ~2,000 places, two teams, ~1,200 visits with every outcome, stored
/// through the sync path.
async fn demo_town(dir: &std::path::Path) -> AppState {
    let state = AppState::open(&ServerConfig::with_defaults(dir.to_path_buf(), None)).await.unwrap();
    demo::populate(&state).await.unwrap().expect("an empty data dir");
    state
}

#[tokio::test]
async fn counts_agree_with_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_town(dir.path()).await;
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

/// Recomputes, from the stored visit rows and the coverage rules, what the projection should hold for every
/// place (first-reached time per eligible indicator, last visit, exclusion) and compares.
async fn assert_projection_matches_visit_rows(state: &AppState) {
    use client_core::campaign::Campaign;
    use client_core::grid::coverage::later_visit;
    use client_core::grid::model::{Deliveries, PlaceKind, Visit};
    use std::collections::{BTreeMap, HashMap};
    type VisitRow = (String, String, i64, String, i64, i64, i64, i64, i64);
    let rows: Vec<VisitRow> = sqlx::query_as(
        "SELECT visit_id, place_id, at, outcome, handbook, briefed, poster, banner, led_playing FROM visits",
    )
    .fetch_all(&state.db.pool)
    .await
    .unwrap();
    let mut by_place: HashMap<String, Vec<Visit>> = HashMap::new();
    for (id, place_id, at, outcome, hb, br, po, ba, led) in rows {
        by_place.entry(place_id.clone()).or_default().push(Visit {
            id: id.parse().unwrap(),
            place_id,
            volunteer: String::new(),
            device: String::new(),
            at: client_core::grid::doc::millis_to_time(at),
            outcome: outcome.parse().unwrap(),
            deliveries: Deliveries::of_flags([hb != 0, br != 0, po != 0, ba != 0, led != 0]),
            note: None,
            gps: None,
            photos: Vec::new(),
        });
    }
    let places: Vec<(String, String, i64, i64, Option<String>, String)> =
        sqlx::query_as("SELECT place_id, kind, rural, excluded, last_visit_id, status FROM places")
            .fetch_all(&state.db.pool)
            .await
            .unwrap();
    let mut indicators: HashMap<String, BTreeMap<String, Option<i64>>> = HashMap::new();
    let rows: Vec<(String, String, Option<i64>)> =
        sqlx::query_as("SELECT place_id, indicator, reached_at FROM place_indicators")
            .fetch_all(&state.db.pool)
            .await
            .unwrap();
    for (place_id, indicator, reached_at) in rows {
        indicators.entry(place_id).or_default().insert(indicator, reached_at);
    }
    for (place_id, kind, rural, excluded, last_visit_id, status) in places {
        let kind: PlaceKind = kind.parse().unwrap();
        let visits = by_place.remove(&place_id).unwrap_or_default();
        // A rejected place keeps its visits but counts for nothing; a merged one's visits moved to its target.
        if status == "rejected" || status == "merged" {
            assert_eq!(indicators.remove(&place_id), None, "indicators of {status} {place_id}");
            assert!(status == "rejected" || visits.is_empty(), "visits left at merged {place_id}");
            continue;
        }
        let last = visits.iter().reduce(later_visit);
        assert_eq!(last_visit_id, last.map(|v| v.id.to_string()), "last visit of {place_id}");
        let gone = last.is_some_and(|v| v.outcome == client_core::grid::model::Outcome::Gone);
        assert_eq!(excluded != 0, gone, "exclusion of {place_id}");
        let expected: BTreeMap<String, Option<i64>> = Campaign::default_campaign()
            .eligible_indicators(kind, rural != 0)
            .map(|ind| {
                let first = visits
                    .iter()
                    .filter(|v| Campaign::is_reached_by(ind, &v.deliveries))
                    .map(|v| v.at.timestamp_millis())
                    .min();
                (ind.id.to_string(), first)
            })
            .collect();
        assert_eq!(indicators.remove(&place_id).unwrap_or_default(), expected, "indicators of {place_id}");
    }
    assert!(by_place.is_empty(), "visits of unknown places: {:?}", by_place.keys());
}

/// Projects visits as a sync does: worked out on a connection of its own, then written in a transaction.
async fn project(
    state: &AppState,
    rows: &[(&str, &client_core::grid::model::Visit)],
) -> Result<(), server::http::error::ApiError> {
    use server::store::projection::{apply_visits, plan_visits, AreaDeltas};
    let mut deltas = AreaDeltas::default();
    let mut conn = state.db.pool.acquire().await.unwrap();
    let plan = plan_visits(&mut conn, client_core::campaign::Campaign::default_campaign(), rows, &mut deltas).await?;
    drop(conn);
    let mut tx = state.db.pool.begin().await.unwrap();
    apply_visits(&mut tx, &plan).await?;
    deltas.flush(&mut tx).await?;
    tx.commit().await.unwrap();
    Ok(())
}

/// Several visits to one place in one sync, in any order of time, and the same visits again, end up as the
/// coverage rules say; the counts follow. A later visit to a place a stored visit found gone, too.
#[tokio::test]
async fn batched_visits_project_like_the_rules() {
    use client_core::grid::model::{Deliveries, Outcome, Visit};
    let dir = tempfile::tempdir().unwrap();
    let state = demo_town(dir.path()).await;
    assert_projection_matches_visit_rows(&state).await;

    let households: Vec<(String, String)> = sqlx::query_as(
        "SELECT place_id, grid_code FROM places WHERE kind = 'household' AND last_visit_id IS NULL \
         ORDER BY place_id LIMIT 2",
    )
    .fetch_all(&state.db.pool)
    .await
    .unwrap();
    let now = chrono::Utc::now();
    let visit = |place: &str, hours_ago: i64, outcome: Outcome, handbook: bool| Visit {
        id: uuid::Uuid::now_v7(),
        place_id: place.into(),
        volunteer: "test".into(),
        device: "test-device".into(),
        at: now - chrono::Duration::hours(hours_ago),
        outcome,
        deliveries: Deliveries::of_flags([handbook, false, false, false, false]),
        note: None,
        gps: None,
        photos: Vec::new(),
    };
    let (p, q) = (&households[0], &households[1]);
    let batch = [
        // p: the latest visit delivers; an earlier one found it gone: p counts, reached at the latest time.
        visit(&p.0, 1, Outcome::Completed, true),
        visit(&p.0, 120, Outcome::Gone, false),
        visit(&p.0, 48, Outcome::NobodyHome, false),
        // q: the latest visit found it gone after an earlier delivery: q is excluded.
        visit(&q.0, 2, Outcome::Gone, false),
        visit(&q.0, 72, Outcome::Completed, true),
        visit(&q.0, 96, Outcome::Completed, true),
    ];
    for attempt in 0..2 {
        let rows: Vec<(&str, &Visit)> =
            batch.iter().map(|v| (if v.place_id == p.0 { p.1.as_str() } else { q.1.as_str() }, v)).collect();
        project(&state, &rows).await.unwrap();
        let states: Vec<(i64, Option<String>)> =
            sqlx::query_as("SELECT excluded, last_visit_id FROM places WHERE place_id IN ($1, $2) ORDER BY place_id")
                .bind(&p.0)
                .bind(&q.0)
                .fetch_all(&state.db.pool)
                .await
                .unwrap();
        assert_eq!(states[0], (0, Some(batch[0].id.to_string())), "attempt {attempt}");
        assert_eq!(states[1], (1, Some(batch[3].id.to_string())), "attempt {attempt}");
        let (reached_at,): (Option<i64>,) =
            sqlx::query_as("SELECT reached_at FROM place_indicators WHERE place_id = $1 AND indicator = 'handbook'")
                .bind(&q.0)
                .fetch_one(&state.db.pool)
                .await
                .unwrap();
        assert_eq!(reached_at, Some(batch[5].at.timestamp_millis()));
        assert_projection_matches_visit_rows(&state).await;
        assert_counts_match_scan(&state).await;
    }
    // q was found gone by its last visit; a visit after it finds it again and delivers: it counts again.
    let again = visit(&q.0, 0, Outcome::Completed, true);
    project(&state, &[(q.1.as_str(), &again)]).await.unwrap();
    let (excluded, last): (i64, Option<String>) =
        sqlx::query_as("SELECT excluded, last_visit_id FROM places WHERE place_id = $1")
            .bind(&q.0)
            .fetch_one(&state.db.pool)
            .await
            .unwrap();
    assert_eq!((excluded, last), (0, Some(again.id.to_string())));
    assert_projection_matches_visit_rows(&state).await;
    assert_counts_match_scan(&state).await;
}

/// A plan made against stored visits that changed before it was written is refused whole: nothing of it is
/// written, and the counts stay those of a full scan.
#[tokio::test]
async fn a_plan_outdated_by_a_concurrent_write_is_refused() {
    use client_core::grid::model::{Deliveries, Outcome, Visit};
    use server::store::projection::{apply_visits, plan_visits, AreaDeltas};
    let dir = tempfile::tempdir().unwrap();
    let state = demo_town(dir.path()).await;
    let (place, grid): (String, String) = sqlx::query_as(
        "SELECT place_id, grid_code FROM places WHERE kind = 'household' AND last_visit_id IS NULL ORDER BY place_id LIMIT 1",
    )
    .fetch_one(&state.db.pool)
    .await
    .unwrap();
    let visit = |outcome: Outcome| Visit {
        id: uuid::Uuid::now_v7(),
        place_id: place.clone(),
        volunteer: "test".into(),
        device: "test-device".into(),
        at: chrono::Utc::now(),
        outcome,
        deliveries: Deliveries::of(["handbook"]),
        note: None,
        gps: None,
        photos: Vec::new(),
    };
    let (first, second) = (visit(Outcome::Completed), visit(Outcome::Completed));
    let mut deltas = AreaDeltas::default();
    let mut conn = state.db.pool.acquire().await.unwrap();
    let plan = plan_visits(
        &mut conn,
        client_core::campaign::Campaign::default_campaign(),
        &[(grid.as_str(), &first), (grid.as_str(), &second)],
        &mut deltas,
    )
    .await
    .unwrap();
    drop(conn);
    // Meanwhile the second visit is stored by another writer.
    project(&state, &[(grid.as_str(), &second)]).await.unwrap();
    let mut tx = state.db.pool.begin().await.unwrap();
    let refused = apply_visits(&mut tx, &plan).await.expect_err("an outdated plan was written");
    // Storage says what happened; the HTTP layer alone turns it into the 409 a device retries on.
    let message = "visits of these grids were stored concurrently while this request wrote them; retry";
    assert!(matches!(&refused, server::store::StoreError::Conflict(m) if m == message), "{refused:?}");
    let answered = server::http::error::ApiError::from(refused);
    assert_eq!((answered.status, answered.code), (axum::http::StatusCode::CONFLICT, "conflict"));
    assert_eq!(answered.message, message);
    drop(tx);
    let (stored,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM visits WHERE place_id = $1")
        .bind(&place)
        .fetch_one(&state.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "only the concurrent write's visit is stored");
    assert_projection_matches_visit_rows(&state).await;
    assert_counts_match_scan(&state).await;
}

/// Places found in the field count once synced; confirming, merging (into a registry place, moving the
/// visits) and rejecting keep the per-area counts equal to a full scan and the projection equal to the rules.
#[tokio::test]
async fn review_decisions_keep_the_counts() {
    use client_core::grid::found::{new_found_place_id, FoundPlace};
    use client_core::grid::model::{Deliveries, Outcome, Place, PlaceKind, Visit};
    use client_core::protocol::{ReplyKind, SyncRequest, PROTOCOL_VERSION};
    use client_core::sync::build_push;
    use client_core::GridDoc;
    use server::accounts::people;
    use server::accounts::tokens::{Claims, Role, DEVICE_AUDIENCE};
    use server::http::auth::DeviceAuth;
    use server::places::{decide_place, PlaceDecision};
    use server::sync as sync_work;
    let dir = tempfile::tempdir().unwrap();
    let state = demo_town(dir.path()).await;
    let (user_id, username, team): (String, String, String) = sqlx::query_as(
        "SELECT id, username, team FROM users WHERE role = 'volunteer' AND team IS NOT NULL ORDER BY username LIMIT 1",
    )
    .fetch_one(&state.db.pool)
    .await
    .unwrap();
    let (device_id, actor) = people::enrol_device(&state.db, &user_id, "phone", None).await.unwrap();
    let actor: automerge::ActorId = actor.parse().unwrap();
    let claims = Claims {
        sub: user_id,
        usr: username.clone(),
        role: Role::Volunteer,
        team: Some(team),
        dev: Some(device_id.clone()),
        act: None,
        key: None,
        enrolled_ms: None,
        aud: DEVICE_AUDIENCE.into(),
        iat: 0,
        exp: 0,
    };
    let device = DeviceAuth { claims, device_id: device_id.clone(), actor: actor.clone() };
    let sync = |grids| {
        sync_work::sync(
            &state,
            &device,
            SyncRequest { protocol: PROTOCOL_VERSION, grids, tasks: None, docs: Default::default() },
        )
    };
    let first = sync(vec![]).await.unwrap();
    let reply = first.grids.iter().find(|r| r.kind == ReplyKind::New).unwrap();
    let mut doc = GridDoc::load(reply.snapshot.as_ref().unwrap()).unwrap();
    doc.set_actor(actor);
    let confirmed = doc.heads();
    let target = doc.places().unwrap().into_iter().find(|p| p.kind == PlaceKind::Household).unwrap().id;

    let now = chrono::Utc::now();
    let mut found = Vec::new();
    for (i, outcome) in [Outcome::Completed, Outcome::Completed, Outcome::Gone].into_iter().enumerate() {
        let id = new_found_place_id();
        let place = Place {
            id: id.clone(),
            kind: PlaceKind::Household,
            label: format!("found {i}"),
            address: None,
            lat: None,
            lon: None,
        };
        doc.add_found_place(&FoundPlace {
            place,
            added_by: username.clone(),
            device: device_id.clone(),
            added_at: now,
            review: None,
        })
        .unwrap();
        let handbook = outcome == Outcome::Completed;
        doc.add_visit(&Visit {
            id: uuid::Uuid::now_v7(),
            place_id: id.clone(),
            volunteer: username.clone(),
            device: device_id.clone(),
            at: now - chrono::Duration::hours(i as i64),
            outcome,
            deliveries: Deliveries::of_flags([handbook, handbook, false, false, false]),
            note: None,
            gps: None,
            photos: Vec::new(),
        })
        .unwrap();
        found.push(id);
    }
    sync(vec![build_push(&reply.grid, &doc, Some(&confirmed))]).await.unwrap();
    let (provisional,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM places WHERE status = 'provisional'")
        .fetch_one(&state.db.pool)
        .await
        .unwrap();
    assert_eq!(provisional, 3);
    assert_counts_match_scan(&state).await;
    assert_projection_matches_visit_rows(&state).await;

    decide_place(&state, &found[0], &PlaceDecision::Confirm, "office").await.unwrap();
    decide_place(&state, &found[1], &PlaceDecision::Merge { into: target.clone() }, "office").await.unwrap();
    decide_place(&state, &found[2], &PlaceDecision::Reject, "office").await.unwrap();
    assert_counts_match_scan(&state).await;
    assert_projection_matches_visit_rows(&state).await;
    let (reached,): (Option<i64>,) =
        sqlx::query_as("SELECT reached_at FROM place_indicators WHERE place_id = $1 AND indicator = 'handbook'")
            .bind(&target)
            .fetch_one(&state.db.pool)
            .await
            .unwrap();
    assert!(reached.is_some(), "the merged duplicate's delivery reaches {target}");
}

/// A visit earlier than a place's last one (a late sync, a relayed old visit) counts, and leaves the place's
/// row unwritten: its last visit, outcome and exclusion stay. A later visit writes it.
#[tokio::test]
async fn an_earlier_visit_leaves_the_places_row_unwritten() {
    use client_core::grid::model::{Deliveries, Outcome, Visit};
    let dir = tempfile::tempdir().unwrap();
    let state = demo_town(dir.path()).await;
    let (place, grid, last_at): (String, String, i64) = sqlx::query_as(
        "SELECT place_id, grid_code, last_visit_at FROM places \
         WHERE kind = 'household' AND last_outcome = 'completed' ORDER BY place_id LIMIT 1",
    )
    .fetch_one(&state.db.pool)
    .await
    .unwrap();
    for statement in [
        "CREATE TABLE place_row_writes (n BIGINT NOT NULL)",
        "INSERT INTO place_row_writes (n) VALUES (0)",
        "CREATE TRIGGER count_place_row_writes AFTER UPDATE ON places BEGIN \
         UPDATE place_row_writes SET n = n + 1; END",
    ] {
        sqlx::query(statement).execute(&state.db.pool).await.unwrap();
    }
    let writes = || async {
        let (n,): (i64,) = sqlx::query_as("SELECT n FROM place_row_writes").fetch_one(&state.db.pool).await.unwrap();
        n
    };
    let visit_at = |at_ms: i64| Visit {
        id: uuid::Uuid::now_v7(),
        place_id: place.clone(),
        volunteer: "test".into(),
        device: "test-device".into(),
        at: chrono::DateTime::from_timestamp_millis(at_ms).unwrap(),
        outcome: Outcome::NobodyHome,
        deliveries: Deliveries::default(),
        note: None,
        gps: None,
        photos: Vec::new(),
    };
    let earlier = visit_at(last_at - 3_600_000);
    project(&state, &[(grid.as_str(), &earlier)]).await.unwrap();
    assert_eq!(writes().await, 0, "an earlier visit rewrote the place's row");
    let (outcome,): (String,) = sqlx::query_as("SELECT last_outcome FROM places WHERE place_id = $1")
        .bind(&place)
        .fetch_one(&state.db.pool)
        .await
        .unwrap();
    assert_eq!(outcome, "completed", "the last visit is still the later one");
    let later = visit_at(last_at + 3_600_000);
    project(&state, &[(grid.as_str(), &later)]).await.unwrap();
    assert_eq!(writes().await, 1, "a later visit is the place's new last visit");
    assert_projection_matches_visit_rows(&state).await;
    assert_counts_match_scan(&state).await;
}
