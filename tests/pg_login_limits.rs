//! Two server instances on one PostgreSQL database share the login limits: guesses sent at once to both are
//! counted together. Runs in the PostgreSQL pass of the test suite only.

mod common;
use common::*;

#[test]
fn two_instances_count_the_same_login_failures() {
    assert!(
        std::env::var("DOORSTEP_TEST_PG_URL").is_ok(),
        "this test needs PostgreSQL: run it through ./scripts/test, which starts one"
    );
    let tmp = tempfile::tempdir().unwrap();
    let data_a = tmp.path().join("a");
    let data_b = tmp.path().join("b");
    bootstrap_office(&data_a, &tmp.path().join("office"));
    let limits = ["--login-max-failures", "6"];
    let a = Server::start_with(&data_a, "127.0.0.1:0", &limits);
    share_installation(&data_a, &data_b);
    let b = Server::start_with(&data_b, "127.0.0.1:0", &limits);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let sent: Vec<_> = (0..200)
        .map(|i| {
            let url = if i % 2 == 0 { a.url.clone() } else { b.url.clone() };
            let http = http.clone();
            rt.spawn(async move {
                let body = serde_json::json!({ "username": "office", "password": format!("guess {i}") });
                let resp = http.post(format!("{url}/api/v1/auth/login")).json(&body).send().await.unwrap();
                resp.status().as_u16()
            })
        })
        .collect();
    let statuses: Vec<u16> = rt.block_on(async {
        let mut out = Vec::new();
        for s in sent {
            out.push(s.await.unwrap());
        }
        out
    });
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (6, 194), "{statuses:?}");
    // Both instances refuse the next one, even with the right password.
    for url in [&a.url, &b.url] {
        let body = serde_json::json!({ "username": "office", "password": PASSWORD });
        let status = rt.block_on(async {
            http.post(format!("{url}/api/v1/auth/login")).json(&body).send().await.unwrap().status().as_u16()
        });
        assert_eq!(status, 429);
    }
}
