//! A volunteer's device against a real server in the same process: enrol, receive the team's grids, record a
//! visit offline, sync, and find it in the server's coverage, attributed to the device.

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_visit_recorded_offline_reaches_the_servers_coverage() {
    let installation = Installation::start().await;
    let v1 = installation.enrolled("v1").await;
    let grids = v1.grids().unwrap().grids().unwrap();
    assert_eq!(grids, ["G1", "G2"], "the device holds its team's grids, and only those");
    assert_eq!(installation.reached_in("G1").await, 0);

    visit(&v1, "H1");
    assert!(installation.visits().await.is_empty(), "recorded offline: nothing reaches the server before a sync");
    field::device::sync(&v1, None, &Default::default()).await.unwrap();

    assert_eq!(installation.visits().await, [("H1".to_string(), device_id(&v1))]);
    assert!(installation.reached_in("G1").await > 0, "the visit counts in the grid's coverage");
    assert_eq!(installation.reached_in("G2").await, 0);
    // Synced again, nothing is stored twice.
    field::device::sync(&v1, None, &Default::default()).await.unwrap();
    assert_eq!(installation.visits().await.len(), 1);
}
