//! A grid's appended changes are folded into a new snapshot once there are more than 500 of them, and the
//! compacted document holds exactly what the log held.

use client_core::grid::model::{Deliveries, Outcome, Visit};
use client_core::protocol::{ReplyKind, SyncRequest, PROTOCOL_VERSION};
use client_core::sync::build_push;
use client_core::GridDoc;
use server::accounts::people::{self, NewUser};
use server::accounts::tokens::{Claims, Role, DEVICE_AUDIENCE};
use server::http::auth::DeviceAuth;
use server::{sync as sync_work, territory, AppState, ServerConfig};

#[tokio::test]
async fn many_changes_fold_into_a_snapshot_without_losing_any() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig::with_defaults(dir.path().to_path_buf(), None);
    let state = AppState::open(&config).await.unwrap();
    let csv = "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
               P1,household,1,G1,g,V1,v,village,T1,t\n";
    territory::import(&state, csv.as_bytes(), false, "test").await.unwrap();
    people::create_team(&state.db, "t", None).await.unwrap();
    people::assign_grid(&state.db, "G1", "t").await.unwrap();
    let password = "long enough password".to_string();
    let user = NewUser { username: "amy".into(), password, role: Role::Volunteer, team: Some("t".into()), area: None };
    let user_id = people::create_user(&state.db, user).await.unwrap();
    let (device_id, actor) = people::enrol_device(&state.db, &user_id, "phone", None).await.unwrap();
    let actor = automerge::ActorId::try_from(actor.as_str()).unwrap();
    let claims = Claims {
        sub: user_id,
        usr: "amy".into(),
        role: Role::Volunteer,
        team: Some("t".into()),
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
    let mut doc = GridDoc::load(first.grids[0].snapshot.as_ref().unwrap()).unwrap();
    doc.set_actor(actor);
    // Three syncs of 200 visits: the third pushes the log past 500 changes.
    for round in 0..3 {
        let confirmed = doc.heads();
        for i in 0..200 {
            let visit = Visit {
                id: uuid::Uuid::now_v7(),
                place_id: "P1".into(),
                volunteer: "amy".into(),
                device: device_id.clone(),
                at: client_core::grid::doc::millis_to_time(1_700_000_000_000 + round * 1000 + i),
                outcome: Outcome::Completed,
                deliveries: Deliveries::of(["handbook"]),
                note: None,
                gps: None,
                photos: Vec::new(),
            };
            doc.add_visit(&visit).unwrap();
        }
        let reply = sync(vec![build_push("G1", &doc, Some(&confirmed))]).await.unwrap();
        assert_eq!(reply.grids[0].kind, ReplyKind::Synced);
        assert_eq!(reply.grids[0].stored, 200);
    }
    let (log_count, version): (i64, i64) =
        sqlx::query_as("SELECT log_count, version FROM grid_docs WHERE grid_code = 'G1'")
            .fetch_one(&state.db.pool)
            .await
            .unwrap();
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM grid_changes").fetch_one(&state.db.pool).await.unwrap();
    assert_eq!((log_count, rows), (0, 0), "the log was folded into the snapshot");
    assert_eq!(version, 4, "import, then three syncs");
    // A fresh server process (no cache) reads the compacted grid back whole.
    drop(state);
    let state = AppState::open(&config).await.unwrap();
    let heads = state.grids.load_for_check("G1").await.unwrap();
    assert_eq!(heads, doc.heads());
    let (visits,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM visits").fetch_one(&state.db.pool).await.unwrap();
    assert_eq!(visits, 600);
}
