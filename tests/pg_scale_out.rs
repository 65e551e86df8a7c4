//! Two server instances on one PostgreSQL database: devices syncing the same grid through either instance, at
//! the same time, converge with nothing lost, and a campaign version applied through one is in force at the other,
//! even for a sync that reaches the other before it looks for new versions; a bulletin's attachment uploaded
//! through one is served by the other, from the store's directory or S3 bucket they share. Runs in the PostgreSQL
//! pass of the test suite only.

mod common;
use common::*;
use std::fmt::Write;

#[test]
fn two_instances_on_one_database_lose_nothing() {
    assert!(
        std::env::var("DOORSTEP_TEST_PG_URL").is_ok(),
        "this test needs PostgreSQL: run it through ./scripts/test, which starts one"
    );
    let tmp = tempfile::tempdir().unwrap();
    let data_a = tmp.path().join("a");
    let data_b = tmp.path().join("b");
    let office = tmp.path().join("office");
    bootstrap_office(&data_a, &office);
    let a = Server::start(&data_a);
    share_installation(&data_a, &data_b);
    let b = Server::start(&data_b);

    ok(&office, &["login", "--server", &a.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let mut csv = String::from(
        "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n",
    );
    for i in 0..200 {
        writeln!(csv, "P{i:03},household,{i},G1,g,V1,v,village,T1,t").unwrap();
    }
    let f = write_file(tmp.path(), "t.csv", csv.as_bytes());
    ok(&office, &["territory", "import", f.to_str().unwrap()], None);
    ok(&office, &["team", "create", "t"], None);
    ok(&office, &["assign", "G1", "--team", "t"], None);
    let devices: Vec<_> = (0..4)
        .map(|d| {
            let name = format!("v{d}");
            ok(
                &office,
                &["user", "create", &name, "--role", "volunteer", "--team", "t", "--password-stdin"],
                Some(&pw()),
            );
            let p = tmp.path().join(&name);
            ok(&p, &["field", "login", "--server", &a.url, "--username", &name, "--password-stdin"], Some(&pw()));
            p
        })
        .collect();

    // Each device records 5 visits, then syncs, 10 times; even devices use instance A, odd ones B, all at once.
    let urls = [a.url.clone(), b.url.clone()];
    std::thread::scope(|s| {
        for (d, profile) in devices.iter().enumerate() {
            let url = urls[d % 2].clone();
            s.spawn(move || {
                ok(profile, &["field", "sync", "--via", &url], None);
                for round in 0..10 {
                    for k in 0..5 {
                        let place = format!("P{:03}", (d * 50 + round * 5 + k) % 200);
                        ok(profile, &["field", "visit", &place, "--handbook"], None);
                    }
                    ok(profile, &["field", "sync", "--via", &url], None);
                }
            });
        }
    });
    for _ in 0..2 {
        for (d, profile) in devices.iter().enumerate() {
            ok(profile, &["field", "sync", "--via", &urls[(d + 1) % 2]], None);
        }
    }
    let total = 4 * 10 * 5;
    for profile in &devices {
        let places: Vec<serde_json::Value> =
            serde_json::from_str(&ok(profile, &["field", "places", "--format", "json"], None)).unwrap();
        let visits: u64 = places.iter().map(|p| p["visits"].as_u64().unwrap()).sum();
        assert_eq!(visits, total, "every device holds every visit exactly once");
    }
    for url in &urls {
        ok(&office, &["login", "--server", url, "--username", "office", "--password-stdin"], Some(&pw()));
        let town = coverage(&office, "town", None);
        assert_eq!(figure(&town, "T1", "handbook"), (200, 200, 0), "both instances report the same figures");
    }

    // A campaign version applied through A is in force at B within seconds: B takes the new kind in an import.
    ok(&office, &["login", "--server", &a.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let campaign = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/campaigns/two-cards.toml");
    ok(&office, &["campaign", "apply", campaign], None);
    ok(&office, &["login", "--server", &b.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !ok(&office, &["campaign", "show"], None).starts_with("# campaign version 1") {
        assert!(std::time::Instant::now() < deadline, "instance B still counts with version 0");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let outlets =
        "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
                   O1,营业网点,银行,G1,g,V1,v,village,T1,t\n";
    let f = write_file(tmp.path(), "outlets.csv", outlets.as_bytes());
    ok(&office, &["territory", "import", f.to_str().unwrap()], None);
    assert_eq!(figure(&coverage(&office, "town", None), "T1", "two_cards"), (1, 0, 0));
}

/// Instance B serves (in this process, so that it never looks for new versions on its own, as an instance does
/// every 2 seconds) while A applies a version adding an indicator that households count toward, reached by a
/// briefing. A visit that briefed residents, synced through B right after, counts for it at once.
#[test]
fn a_sync_through_another_instance_counts_with_a_version_applied_a_moment_before() {
    assert!(
        std::env::var("DOORSTEP_TEST_PG_URL").is_ok(),
        "this test needs PostgreSQL: run it through ./scripts/test, which starts one"
    );
    let tmp = tempfile::tempdir().unwrap();
    let (data_a, data_b, office) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("office"));
    bootstrap_office(&data_a, &office);
    let a = Server::start(&data_a);
    share_installation(&data_a, &data_b);
    let database_url = std::fs::read_to_string(data_b.join("test-database-url")).unwrap();
    let config = server::ServerConfig::with_defaults(data_b.clone(), Some(database_url));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (b_state, b_url) = rt.block_on(async {
        let state = server::AppState::open(&config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = server::http::app(state.clone());
        let limits = server::http::listen::ConnectionLimits::default();
        tokio::spawn(server::http::listen::serve_app_with(app, listener, None, limits, std::future::pending()));
        (state, url)
    });

    ok(&office, &["login", "--server", &a.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let csv = "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
               P1,household,1,G1,g,V1,v,village,T1,t\n";
    let f = write_file(tmp.path(), "t.csv", csv.as_bytes());
    ok(&office, &["territory", "import", f.to_str().unwrap()], None);
    ok(&office, &["team", "create", "t"], None);
    ok(&office, &["assign", "G1", "--team", "t"], None);
    ok(&office, &["user", "create", "v", "--role", "volunteer", "--team", "t", "--password-stdin"], Some(&pw()));
    let phone = tmp.path().join("phone");
    ok(&phone, &["field", "login", "--server", &b_url, "--username", "v", "--password-stdin"], Some(&pw()));
    ok(&phone, &["field", "sync"], None);

    let talk = format!(
        "{}\n[[indicator]]\nid = \"talk\"\nzh = \"入户宣讲\"\nen = \"Talk given\"\n\
         counts = [{{ kinds = [\"household\"] }}]\nreached_by = {{ any_of = [\"briefed\"] }}\n",
        client_core::campaign::DEFAULT_TOML
    );
    let file = write_file(tmp.path(), "talk.toml", talk.as_bytes());
    ok(&office, &["campaign", "apply", file.to_str().unwrap()], None);
    assert_eq!(b_state.campaigns.current().version, 0, "B has not looked for new versions");
    ok(&phone, &["field", "visit", "P1", "--briefed"], None);
    ok(&phone, &["field", "sync"], None);
    assert_eq!(figure(&coverage(&office, "town", None), "T1", "talk"), (1, 1, 0), "the briefing counts");
    assert_eq!(b_state.campaigns.current().version, 1, "the sync put the new version in force at B");
    drop(a);
}

#[test]
fn an_attachment_uploaded_through_one_instance_is_served_by_the_other() {
    assert!(
        std::env::var("DOORSTEP_TEST_PG_URL").is_ok(),
        "this test needs PostgreSQL: run it through ./scripts/test, which starts one"
    );
    let tmp = tempfile::tempdir().unwrap();
    let (data_a, data_b, shared) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("shared-blobs"));
    let office = tmp.path().join("office");
    bootstrap_office(&data_a, &office);
    let blobs = ["--blobs-dir", shared.to_str().unwrap()];
    let a = Server::start_with(&data_a, "127.0.0.1:0", &blobs);
    share_installation(&data_a, &data_b);
    let b = Server::start_with(&data_b, "127.0.0.1:0", &blobs);

    ok(&office, &["login", "--server", &a.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let csv = "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
               P1,household,1,G1,g,V1,v,village,T1,t\n";
    let f = write_file(tmp.path(), "t.csv", csv.as_bytes());
    ok(&office, &["territory", "import", f.to_str().unwrap()], None);
    ok(&office, &["team", "create", "t"], None);
    ok(&office, &["assign", "G1", "--team", "t"], None);
    ok(&office, &["user", "create", "v", "--role", "volunteer", "--team", "t", "--password-stdin"], Some(&pw()));
    let body = write_file(tmp.path(), "body.txt", "提醒".as_bytes());
    // A PDF: its header is what the store judges by.
    let pdf = write_file(tmp.path(), "leaflet.pdf", b"%PDF-1.4\n% Doorstep leaflet\n%%EOF\n");
    let publish = ["bulletin", "publish", "--title", "提醒", "--body-file", body.to_str().unwrap(), "--kind"];
    ok(&office, &[&publish[..], &["reminder", "--everyone", "--attach", pdf.to_str().unwrap()]].concat(), None);
    assert!(!data_a.join("blobs").exists() && !data_b.join("blobs").exists(), "nothing in the data dirs");

    // The volunteer's phone syncs with instance B only, and gets the file instance A stored.
    let v = tmp.path().join("v");
    ok(&v, &["field", "login", "--server", &b.url, "--username", "v", "--password-stdin"], Some(&pw()));
    let out = ok(&v, &["field", "sync"], None);
    assert!(out.contains("attachments: 1 downloaded"), "{out}");
    let held: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&v, &["field", "bulletins", "--format", "json"], None)).unwrap();
    assert_eq!(held[0]["attachments_here"], 1);
}

/// As above, with the files in an S3-compatible bucket (moto's) that both instances use instead of a directory.
#[test]
fn an_attachment_uploaded_through_one_instance_is_served_by_the_other_from_a_bucket() {
    assert!(
        std::env::var("DOORSTEP_TEST_PG_URL").is_ok(),
        "this test needs PostgreSQL: run it through ./scripts/test, which starts one"
    );
    let s3 = common::s3::S3Server::start("doorstep-scale-out");
    let tmp = tempfile::tempdir().unwrap();
    let (data_a, data_b, office) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("office"));
    bootstrap_office(&data_a, &office);
    let bucket = s3.serve_args(Some("doorstep"));
    let bucket: Vec<&str> = bucket.iter().map(String::as_str).collect();
    let a = Server::start_with(&data_a, "127.0.0.1:0", &bucket);
    share_installation(&data_a, &data_b);
    let b = Server::start_with(&data_b, "127.0.0.1:0", &bucket);

    ok(&office, &["login", "--server", &a.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let csv = "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
               P1,household,1,G1,g,V1,v,village,T1,t\n";
    let f = write_file(tmp.path(), "t.csv", csv.as_bytes());
    ok(&office, &["territory", "import", f.to_str().unwrap()], None);
    ok(&office, &["team", "create", "t"], None);
    ok(&office, &["assign", "G1", "--team", "t"], None);
    ok(&office, &["user", "create", "v", "--role", "volunteer", "--team", "t", "--password-stdin"], Some(&pw()));
    let body = write_file(tmp.path(), "body.txt", "提醒".as_bytes());
    let leaflet = b"%PDF-1.4\n% Doorstep leaflet in a bucket\n%%EOF\n";
    let pdf = write_file(tmp.path(), "leaflet.pdf", leaflet);
    let publish = ["bulletin", "publish", "--title", "提醒", "--body-file", body.to_str().unwrap(), "--kind"];
    ok(&office, &[&publish[..], &["reminder", "--everyone", "--attach", pdf.to_str().unwrap()]].concat(), None);
    let sha = server::blobs::sha256_hex(leaflet);
    assert_eq!(s3.objects(), vec![(format!("doorstep/{}/{sha}", &sha[..2]), leaflet.len() as u64)]);
    assert!(!data_a.join("blobs").exists() && !data_b.join("blobs").exists(), "nothing in the data dirs");

    // The volunteer's phone syncs with instance B only, and gets the file instance A stored.
    let v = tmp.path().join("v");
    ok(&v, &["field", "login", "--server", &b.url, "--username", "v", "--password-stdin"], Some(&pw()));
    let out = ok(&v, &["field", "sync"], None);
    assert!(out.contains("attachments: 1 downloaded"), "{out}");
    let held: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&v, &["field", "bulletins", "--format", "json"], None)).unwrap();
    assert_eq!(held[0]["attachments_here"], 1);
}
