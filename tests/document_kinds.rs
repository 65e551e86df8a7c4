//! A third kind of synced document, defined only in a test (`client-core/tests/support/board.rs`, a notice board),
//! registered once on a real server started in this process: the office publishes a board to a team, one
//! volunteer's phone adds a note, another's receives it, the other team sees nothing, a forged note is refused,
//! and a withdrawn board is deleted from the phones. No code of the kind is in any sync path.

#[path = "../client-core/tests/support/board.rs"]
mod board;
mod common;

use automerge::ActorId;
use board::Board;
use client_core::docs::{device_apply, device_pushes, Tally, Writer};
use client_core::protocol::{self, SyncRequest, SyncResponse, PROTOCOL_VERSION};
use client_core::sign::KeyPair;
use client_core::store::DocStore;
use client_core::sync::DocKind;
use server::store::documents::EVERYONE;
use server::sync::documents::{publish, withdraw, ServerKinds};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A phone: its enrolment and its folder of boards.
struct Phone {
    token: String,
    actor: ActorId,
    key: KeyPair,
    store: DocStore<Board>,
    resend: BTreeSet<String>,
    _dir: tempfile::TempDir,
}

impl Phone {
    fn writer(&self) -> Writer<'_> {
        Writer { actor: &self.actor, key: Some(&self.key), server_key: None }
    }
}

async fn enrol(http: &reqwest::Client, url: &str, username: &str, password: &str) -> Phone {
    let key = KeyPair::generate();
    let body = serde_json::json!({"username": username, "password": password, "device_name": "phone",
        "public_key": key.public().to_hex()});
    let reply: serde_json::Value =
        http.post(format!("{url}/api/v1/devices")).json(&body).send().await.unwrap().json().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    Phone {
        token: reply["token"].as_str().unwrap().into(),
        actor: reply["actor"].as_str().unwrap().parse().unwrap(),
        key,
        store: DocStore::open(dir.path()).unwrap(),
        resend: BTreeSet::new(),
        _dir: dir,
    }
}

/// One sync of the phone's boards; the status, and what applying the reply did.
async fn sync(http: &reqwest::Client, url: &str, phone: &mut Phone) -> (u16, Tally) {
    let pushes =
        device_pushes(&phone.store, &phone.writer(), &phone.resend).unwrap().into_iter().map(|(p, _)| p).collect();
    let docs = BTreeMap::from([(Board::NOUN.to_string(), pushes)]);
    let request = SyncRequest { protocol: PROTOCOL_VERSION, grids: vec![], tasks: None, docs };
    let resp = http
        .post(format!("{url}/api/v1/sync"))
        .bearer_auth(&phone.token)
        .header("content-type", protocol::CONTENT_TYPE)
        .body(protocol::encode(&request))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    if status != 200 {
        return (status, Tally::default());
    }
    let reply: SyncResponse = protocol::decode(&resp.bytes().await.unwrap()).unwrap();
    let replies = reply.docs.get(Board::NOUN).cloned().unwrap_or_default();
    let writer = Writer { actor: &phone.actor, key: Some(&phone.key), server_key: None };
    (200, device_apply(&phone.store, &writer, false, &replies, &mut phone.resend).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_defined_in_a_test_syncs_through_the_real_server() {
    let data = tempfile::tempdir().unwrap();
    // The helper makes a PostgreSQL database when the suite runs on one; it blocks, so off the runtime.
    let dir = data.path().to_path_buf();
    let url = tokio::task::spawn_blocking(move || common::database_args(&dir).get(1).cloned()).await.unwrap();
    let mut state =
        server::AppState::open(&server::ServerConfig::with_defaults(data.path().into(), url)).await.unwrap();
    state.kinds = Arc::new(ServerKinds::default().register::<Board>());
    let accounts = server::demo::populate(&state).await.unwrap().unwrap();
    let password = |name: &str| accounts.iter().find(|a| a.username == name).unwrap().password.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(server::serve(state.clone(), listener, None, Default::default(), async {
        stopped.await.ok();
    }));
    let http = reqwest::Client::new();

    publish(&state, "east-board", &Board::genesis(), &["team-east"]).await.unwrap();
    publish(&state, "town-board", &Board::genesis(), &[EVERYONE]).await.unwrap();
    let mut amy = enrol(&http, &url, "vol-east-1", &password("vol-east-1")).await;
    let mut bob = enrol(&http, &url, "vol-east-2", &password("vol-east-2")).await;
    let mut wes = enrol(&http, &url, "vol-west-1", &password("vol-west-1")).await;

    // Each phone receives the boards meant for it, and only those.
    assert_eq!(sync(&http, &url, &mut amy).await, (200, Tally { new: 2, ..Default::default() }));
    assert_eq!(sync(&http, &url, &mut wes).await.1.new, 1);
    assert_eq!(wes.store.ids().unwrap(), ["town-board"]);

    // Amy's note reaches the server, then Bob's phone.
    let mut board = amy.store.load("east-board").unwrap();
    board.set_actor(amy.actor.clone());
    let note = board.add("n1", "vol-east-1", "market day: bring posters");
    amy.store.append("east-board", &[note]).unwrap();
    assert_eq!(sync(&http, &url, &mut amy).await.0, 200);
    assert_eq!(sync(&http, &url, &mut bob).await.1.new, 2);
    let bobs = bob.store.load("east-board").unwrap();
    assert_eq!(bobs.field("n1", "text").as_deref(), Some("market day: bring posters"));

    // A note in Amy's name from Bob's phone is refused by the kind's check; nothing of the sync is stored.
    let mut forged = bob.store.load("east-board").unwrap();
    forged.set_actor(bob.actor.clone());
    bob.store.append("east-board", &[forged.add("n2", "vol-east-1", "not amy")]).unwrap();
    let (status, _) = sync(&http, &url, &mut bob).await;
    assert_eq!(status, 422, "a forged note must be refused");
    assert_eq!(sync(&http, &url, &mut amy).await.1, Tally::default(), "nothing new reached the server");
    assert!(amy.store.load("east-board").unwrap().field("n2", "by").is_none());

    // A phone of another team that makes up a copy of the board hears nothing of it, and stores nothing in it.
    let mut made_up = Board::genesis();
    made_up.set_actor(wes.actor.clone());
    wes.store.replace("east-board", &made_up).unwrap();
    wes.store.append("east-board", &[made_up.add("n9", "vol-west-1", "west was here")]).unwrap();
    assert_eq!(sync(&http, &url, &mut wes).await, (200, Tally::default()));
    assert_eq!(sync(&http, &url, &mut amy).await.1, Tally::default(), "nothing of it reached the server");

    // A withdrawn board is deleted from the phones that hold it, once their notes are confirmed.
    withdraw::<Board>(&state, "east-board").await.unwrap();
    assert_eq!(sync(&http, &url, &mut amy).await.1.deleted, 1);
    assert_eq!(amy.store.ids().unwrap(), ["town-board"]);
    assert_eq!(sync(&http, &url, &mut amy).await.1, Tally::default());

    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}
