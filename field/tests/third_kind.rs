//! A kind of synced document defined only in a test (`client-core/tests/support/board.rs`, a team's notice
//! board), registered once on each side, travels device → hub → server → other device through the same paths
//! as grids and tasks: the volunteer's note goes to the team's hub at base, the hub forwards it, and a team-mate
//! who syncs with the server receives it.

#[path = "../../client-core/tests/support/board.rs"]
mod board;
mod common;

use board::Board;
use client_core::docs::Registry;
use client_core::store::DocStore;
use client_core::sync::DocKind;
use common::*;
use server::sync::documents::{publish, ServerKinds};
use std::sync::Arc;

fn boards() -> Registry {
    Registry::default().register::<Board>()
}

fn board_of(profile: &field::profile::Profile) -> DocStore<Board> {
    DocStore::open(&profile.docs_dir().unwrap().join(Board::NOUN)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kind_defined_in_a_test_goes_device_hub_server_device() {
    let installation = Installation::start_with(ServerKinds::default().register::<Board>()).await;
    publish(&installation.state, "east-board", &Board::genesis(), &["east"]).await.unwrap();
    let lead = installation.enrolled("lead").await;
    field::hub::sync(&lead, &boards()).await.unwrap();
    assert_eq!(board_of(&lead).ids().unwrap(), ["east-board"], "the hub holds the team's board");
    let v1 = installation.enrolled("v1").await;
    field::device::sync(&v1, None, &boards()).await.unwrap();

    // At base, v1's note goes to the hub, not to the server.
    {
        let store = board_of(&v1);
        let mut board = store.load("east-board").unwrap();
        board.set_actor(v1.device().unwrap().actor.parse().unwrap());
        store.append("east-board", &[board.add("n1", "v1", "the bridge is closed")]).unwrap();
    }
    let mut hub = field::hub::hub_of(&lead).unwrap();
    hub.kinds = Arc::new(boards());
    let hub_url = serve_on_loopback(field::hub::router(Arc::new(hub))).await;
    field::device::sync(&v1, Some(&hub_url), &boards()).await.unwrap();
    let v2 = installation.enrolled("v2").await;
    field::device::sync(&v2, None, &boards()).await.unwrap();
    assert_eq!(board_of(&v2).load("east-board").unwrap().field("n1", "text"), None, "not at the server yet");
    assert_eq!(board_of(&lead).load("east-board").unwrap().field("n1", "by").as_deref(), Some("v1"));

    // The hub forwards it; v2, syncing with the server, receives it.
    field::hub::sync(&lead, &boards()).await.unwrap();
    field::device::sync(&v2, None, &boards()).await.unwrap();
    let received = board_of(&v2).load("east-board").unwrap();
    assert_eq!(received.field("n1", "text").as_deref(), Some("the bridge is closed"));
    assert_eq!(received.field("n1", "by").as_deref(), Some("v1"));
}
