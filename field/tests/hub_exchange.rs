//! The team hub in-process: the lead's profile serves the team's sync on a loopback port, a volunteer's device
//! syncs its visit through it, and the hub forwards it upstream, where the server counts it once, attributed to
//! the device that recorded it. The hub's refusals are the server's JSON error body.

mod common;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;
use std::sync::Arc;
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread")]
async fn a_visit_synced_through_the_hub_reaches_the_server_once() {
    let installation = Installation::start().await;
    let lead = installation.enrolled("lead").await;
    // The lead's upstream sync also fetches the team roster the hub checks devices against.
    field::hub::sync(&lead, &Default::default()).await.unwrap();
    let v2 = installation.enrolled("v2").await;

    let hub = Arc::new(field::hub::hub_of(&lead).unwrap());
    let hub_url = serve_on_loopback(field::hub::router(hub)).await;
    visit(&v2, "H2");
    field::device::sync(&v2, Some(&hub_url), &Default::default()).await.unwrap();
    assert!(installation.visits().await.is_empty(), "the visit went to the hub, not to the server");
    assert_eq!(installation.reached_in("G1").await, 0);

    // The hub holds it now: the lead's copy has the visit, written by v2's device.
    let lead_copy = lead.grids().unwrap().load("G1").unwrap();
    let visits = lead_copy.visits().unwrap();
    assert_eq!(
        visits.iter().map(|v| (v.place_id.as_str(), v.device.as_str())).collect::<Vec<_>>(),
        [("H2", device_id(&v2).as_str())]
    );

    field::hub::sync(&lead, &Default::default()).await.unwrap();
    assert_eq!(installation.visits().await, [("H2".to_string(), device_id(&v2))]);
    assert!(installation.reached_in("G1").await > 0, "the forwarded visit counts in the grid's coverage");

    // v2 then syncs with the server directly: the visit it relayed through the hub is not stored twice.
    field::device::sync(&v2, None, &Default::default()).await.unwrap();
    assert_eq!(installation.visits().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hub_refuses_in_the_servers_words() {
    let installation = Installation::start().await;
    let lead = installation.enrolled("lead").await;
    let router = field::hub::router(Arc::new(field::hub::hub_of(&lead).unwrap()));

    let health = Request::get("/healthz").body(Body::empty()).unwrap();
    let response = router.clone().oneshot(health).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let not_cbor = Request::post("/api/v1/sync").header(header::CONTENT_TYPE, "application/json").body(Body::empty());
    let response = router.clone().oneshot(not_cbor.unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        r#"{"error":{"code":"unsupported_media_type","message":"sync requests are application/cbor"}}"#
    );

    let no_token = Request::post("/api/v1/sync")
        .header(header::CONTENT_TYPE, client_core::protocol::CONTENT_TYPE)
        .body(Body::empty());
    let response = router.oneshot(no_token.unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
}
