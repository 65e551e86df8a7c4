//! The volunteers' web app (`/field/`) in a real headless Chromium (Debian's `chromium`, driven by playwright-core
//! from tests/browser) against the real binary and a CLI field client of the same team: enrol and sync online;
//! with the server stopped and the browser offline, record visits and kill the browser; open it again offline
//! and find them; start the server again and sync. The office report and the CLI client see the web app's visits,
//! the app sees the CLI's, both agree on every place, re-enrolling carries unsynced visits and task records over,
//! and a full disk loses nothing. A second test loads the app from a team hub and syncs through it; another has the
//! office apply a new campaign after the phone enrolled, and the app count with it. Screenshots go to test-artifacts/.
//! Set DOORSTEP_SKIP_BROWSER_TESTS=1 to skip on a machine without Chromium; CI never sets it.

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const TERRITORY: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name,address\n\
H1,household,1组1号,G1,一网格,V1,龙凤村,village,T1,太安镇,龙凤村1组1号\n\
H2,household,1组2号,G1,一网格,V1,龙凤村,village,T1,太安镇,龙凤村1组2号\n\
H3,household,1组3号,G1,一网格,V1,龙凤村,village,T1,太安镇,\n\
S1,shop,小卖部,G1,一网格,V1,龙凤村,village,T1,太安镇,\n\
M1,market,龙凤市场,G1,一网格,V1,龙凤村,village,T1,太安镇,\n\
B1,building,3栋,G2,二网格,C1,新街社区,community,T1,太安镇,\n\
H4,household,3栋201,G2,二网格,C1,新街社区,community,T1,太安镇,\n";

fn skip() -> bool {
    let skip = std::env::var("DOORSTEP_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("skipped: DOORSTEP_SKIP_BROWSER_TESTS=1");
    }
    skip
}

/// Runs one step of tests/browser/field_app.test.mjs and returns its result.
fn browser_step(step: &str, url: &str, browser_profile: &Path, task: &str) -> Value {
    browser_step_with(step, url, browser_profile, &[("DOORSTEP_TASK", task)])
}

fn browser_step_with(step: &str, url: &str, browser_profile: &Path, env: &[(&str, &str)]) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci` in tests/browser first (./scripts/test does), or set DOORSTEP_SKIP_BROWSER_TESTS=1"
    );
    let started = std::time::Instant::now();
    let out = Command::new("node")
        .args(["field_app.test.mjs", step])
        .current_dir(&dir)
        .env("DOORSTEP_URL", url)
        .env("DOORSTEP_BROWSER_PROFILE", browser_profile)
        .env("DOORSTEP_USERNAME", "amy")
        .env("DOORSTEP_PASSWORD", PASSWORD)
        .env("DOORSTEP_ARTIFACTS", root.join("test-artifacts"))
        .envs(env.iter().copied())
        .output()
        .expect("run node (install Node.js)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser step {step} failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("browser step {step}: {:.1} s", started.elapsed().as_secs_f64());
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).expect("the step prints its result");
    serde_json::from_str(line).unwrap()
}

fn task_show(office: &Path, id: &str) -> Value {
    serde_json::from_str(&ok(office, &["task", "show", id, "--format", "json"], None)).unwrap()
}

/// Per place, what the CLI client says: reached, missing, excluded, needs a revisit, number of visits.
fn cli_places(profile: &Path) -> BTreeMap<String, Value> {
    let rows: Vec<Value> = serde_json::from_str(&ok(profile, &["field", "places", "--format", "json"], None)).unwrap();
    rows.into_iter()
        .map(|r| {
            let state = serde_json::json!({
                "reached": r["reached"], "missing": r["missing"], "excluded": r["excluded"],
                "needs_revisit": r["needs_revisit"], "visits": r["visits"],
            });
            (r["place_id"].as_str().unwrap().to_string(), state)
        })
        .collect()
}

/// Per place, what the web app's list says, in the same shape.
fn app_places(result: &Value) -> BTreeMap<String, Value> {
    result["places"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|rows| rows.as_array().unwrap().iter())
        .map(|r| {
            let state = serde_json::json!({
                "reached": r["reached"], "missing": r["missing"], "excluded": r["excluded"],
                "needs_revisit": r["needs_revisit"], "visits": r["visits"],
            });
            (r["place"].as_str().unwrap().to_string(), state)
        })
        .collect()
}

/// The app's progress figures for each grid equal the office's coverage report by grid.
fn assert_figures_match_report(result: &Value, office: &Path) {
    let report = coverage(office, "grid", None);
    let figures = result["figures"].as_object().unwrap();
    assert_eq!(figures.len(), 2, "{figures:?}");
    for (grid, list) in figures {
        let list = list.as_array().unwrap();
        let rows: Vec<&Value> = report.iter().filter(|r| r["area"] == grid.as_str()).collect();
        assert_eq!(list.len(), rows.len(), "{grid}: {list:?} vs {rows:?}");
        for f in list {
            let ind = f["indicator"].as_str().unwrap();
            let expected = figure(&report, grid, ind);
            let shown =
                (f["eligible"].as_u64().unwrap(), f["reached"].as_u64().unwrap(), f["excluded"].as_u64().unwrap());
            assert_eq!(shown, expected, "{grid}/{ind}");
        }
    }
}

#[test]
fn a_day_offline_in_the_field_app() {
    if skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    let bob = tmp.path().join("bob");
    let browser = tmp.path().join("chromium-profile");
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    let url = server.url.clone();
    let listen = url.trim_start_matches("http://").to_string();

    ok(&office, &["login", "--server", &url, "--username", "office", "--password-stdin"], Some(&pw()));
    let file = write_file(tmp.path(), "territory.csv", TERRITORY.as_bytes());
    ok(&office, &["territory", "import", file.to_str().unwrap()], None);
    ok(&office, &["team", "create", "team-a"], None);
    for v in ["amy", "bob"] {
        ok(&office, &["user", "create", v, "--role", "volunteer", "--team", "team-a", "--password-stdin"], Some(&pw()));
    }
    ok(&office, &["assign", "G1", "--team", "team-a"], None);
    ok(&office, &["assign", "G2", "--team", "team-a"], None);
    ok(&bob, &["field", "login", "--server", &url, "--username", "bob", "--password-stdin"], Some(&pw()));
    ok(&bob, &["field", "sync"], None);
    ok(&bob, &["field", "visit", "H3", "--handbook", "--briefed", "--poster"], None);
    ok(&bob, &["field", "visit", "B1", "--poster"], None);
    ok(&bob, &["field", "sync"], None);
    let task = ok(
        &office,
        &[
            "task",
            "create",
            "--place",
            "H2",
            "--person",
            "李四, 68",
            "--phone",
            "13912345678",
            "--fraud-type",
            "impersonation",
            "--within",
            "2h",
            "--instructions",
            "自称法院来电要求转账，请立即联系劝阻",
        ],
        None,
    )
    .trim()
    .to_string();

    // At base: enrol in the browser; the first sync brings both grids with bob's visits; the app's figures and
    // place states equal the server's report and the CLI client's, computed from the same rules table.
    let enrolled = browser_step("enrol", &url, &browser, &task);
    assert_eq!(enrolled["tasks"], serde_json::json!([{"id": task, "state": "new", "priority": "urgent"}]));
    let shown = task_show(&office, &task);
    assert!(
        shown["signs"].as_array().unwrap().iter().any(|s| s["kind"] == "received" && s["volunteer"] == "amy"),
        "the phone signed for the task on receipt: {shown}"
    );
    assert_figures_match_report(&enrolled, &office);
    assert_eq!(app_places(&enrolled), cli_places(&bob));

    // In the field: no server at all. Bob records offline too, at two of the same places.
    server.kill();
    ok(&bob, &["field", "visit", "H1", "--outcome", "nobody-home"], None);
    ok(&bob, &["field", "visit", "M1", "--banner"], None);
    let offline = browser_step("offline", &url, &browser, &task);
    assert_eq!(offline["todo"], serde_json::json!(["H1", "H2", "M1", "S1"]), "not yet reached: {offline}");
    assert_eq!(offline["revisit"], serde_json::json!([]), "{offline}");
    eprintln!("visit durable in ms: {}", offline["durable_ms"]);

    // The browser was killed; it opens again with no network and every visit is there.
    let reopened = browser_step("reload-offline", &url, &browser, &task);
    assert_eq!(reopened["s1_visit"], offline["visits"]["S1"]);
    assert_eq!(app_places(&reopened), app_places(&offline), "the cached view shows what the document holds");

    // Back at base: the server runs again on the same address; bob syncs first, then the app syncs by itself.
    let server = Server::start_with(&data, &listen, &[]);
    ok(&bob, &["field", "sync"], None);
    // Bob found two places; the office confirms one and merges the other (a duplicate he visited) into S1. The
    // app must count them as the server does: the confirmed one as a place, the merged one's visit for S1.
    let add = |args: &[&str]| {
        let mut all = vec!["field", "add-place", "--grid", "G1"];
        all.extend_from_slice(args);
        ok(&bob, &all, None).trim().to_string()
    };
    let found = add(&["--kind", "household", "--label", "1组9号（新建）"]);
    let duplicate = add(&["--kind", "shop", "--label", "小卖部（重复）"]);
    ok(&bob, &["field", "visit", &duplicate, "--handbook", "--briefed"], None);
    ok(&bob, &["field", "sync"], None);
    ok(&office, &["place", "confirm", &found], None);
    ok(&office, &["place", "merge", &duplicate, "--into", "S1"], None);
    ok(&bob, &["field", "sync"], None);
    let online = browser_step("online", &url, &browser, &task);
    let h1: Vec<&str> = online["h1"].as_array().unwrap().iter().map(|v| v["outcome"].as_str().unwrap()).collect();
    let mut h1_sorted = h1.clone();
    h1_sorted.sort();
    assert_eq!(h1_sorted, ["completed", "nobody-home"], "both concurrent visits to H1 are kept: {h1:?}");

    // The office report counts the app's visits; bob's CLI reads them after its own sync; all agree.
    assert_figures_match_report(&online, &office);
    let report = coverage(&office, "grid", None);
    assert_eq!(figure(&report, "G1", "handbook"), (5, 3, 0), "H1 and S1 from the app, H3 from bob; the found house");
    assert_eq!(figure(&report, "G1", "awareness"), (5, 3, 0), "S1 briefed through the merged duplicate");
    assert_eq!(figure(&report, "G1", "poster"), (4, 2, 0));
    assert_eq!(figure(&report, "G1", "banner"), (1, 1, 0));
    ok(&bob, &["field", "sync"], None);
    let cli = cli_places(&bob);
    assert_eq!(app_places(&online), cli, "the app and the CLI client converge");
    assert_eq!(cli["H1"]["visits"], 2);
    assert_eq!(cli["S1"]["visits"], 2, "the app's visit and the merged duplicate's");
    assert!(cli.contains_key(&found) && !cli.contains_key(&duplicate));
    let status: Value = serde_json::from_str(&ok(&bob, &["field", "status", "--format", "json"], None)).unwrap();
    assert_eq!(status["unsynced_visits"], 0);

    // The task's opening and outcome, recorded offline in the browser, reached the office.
    let shown = task_show(&office, &task);
    assert!(
        shown["signs"].as_array().unwrap().iter().any(|s| s["kind"] == "opened" && s["volunteer"] == "amy"),
        "{shown}"
    );
    let outcomes = shown["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 1, "{shown}");
    assert_eq!(outcomes[0]["method"], "phone");
    assert_eq!(outcomes[0]["reached"], true);
    assert_eq!(outcomes[0]["dissuaded"], true);
    assert_eq!(outcomes[0]["feedback"], "电话联系上，已劝阻转账");

    // Enrolled again while visits, a found place, a correction and a task outcome wait to sync: all are carried
    // over and arrive under the new enrolment.
    let reenrolled = browser_step("reenrol", &url, &browser, &task);
    let new_device = reenrolled["after"].as_str().unwrap();
    assert_ne!(reenrolled["before"], reenrolled["after"]);
    let visits: BTreeMap<String, String> =
        db_pairs(&data, "SELECT visit_id, device_id FROM visits").into_iter().collect();
    for carried in ["visit", "found_visit"] {
        let id = reenrolled[carried].as_str().unwrap();
        assert_eq!(visits[id], new_device, "the carried {carried}, under the new enrolment");
    }
    let review: Value = serde_json::from_str(&ok(&office, &["place", "review", "--format", "json"], None)).unwrap();
    let found = review["places"].as_array().unwrap().iter().find(|p| p["place_id"] == reenrolled["found"]);
    let found = found.unwrap_or_else(|| panic!("the carried found place awaits review: {review}"));
    assert_eq!((found["label"].as_str(), found["visits"].as_i64()), (Some("1组10号（新建）"), Some(1)), "{found}");
    let corrections = review["corrections"].as_array().unwrap();
    assert!(corrections.iter().any(|c| c["place_id"] == "H1" && c["address"] == "龙凤村1组1号（桥边）"), "{review}");
    let outcomes: BTreeMap<String, String> =
        db_pairs(&data, "SELECT feedback, device_id FROM task_outcomes").into_iter().collect();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert_eq!(outcomes["回访：本人确认未再转账"], new_device, "the carried outcome, under the new enrolment");
    assert_eq!(outcomes["电话联系上，已劝阻转账"], reenrolled["before"].as_str().unwrap());

    // A full disk: the app says so, records nothing, keeps everything; with space again it records and syncs.
    let full = browser_step("quota", &url, &browser, &task);
    assert!(full["message"].as_str().unwrap().contains("之前记录的"), "{full}");
    ok(&bob, &["field", "sync"], None);
    assert_eq!(cli_places(&bob)["H2"]["visits"], full["before"].as_u64().unwrap() + 1);
    drop(server);
}

/// The office changes what counts while the app is open on the phone: it applies docs/campaigns/two-cards.toml (the
/// default campaign plus outlets, 营业网点, and the two-cards notice they post) and imports an outlet into G1. After
/// its next sync the app counts with the new rules: the outlet is listed by its kind and offers the new delivery, a household does
/// not, and the visit recorded with it offline reaches the new indicator in the office's report once synced.
#[test]
fn the_app_counts_with_the_campaign_the_office_applied() {
    if skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Town { server, office, .. } = town(tmp.path(), TERRITORY);
    let browser = tmp.path().join("chromium-profile");
    let url = server.url.clone();
    ok(&office, &["team", "create", "team-a"], None);
    ok(&office, &["user", "create", "amy", "--role", "volunteer", "--team", "team-a", "--password-stdin"], Some(&pw()));
    ok(&office, &["assign", "G1", "--team", "team-a"], None);
    ok(&office, &["assign", "G2", "--team", "team-a"], None);
    browser_step("enrol", &url, &browser, "");

    // The office applies the campaign and imports an outlet while the app is open on the phone.
    let markers = tmp.path().join("markers");
    std::fs::create_dir(&markers).unwrap();
    let app = std::thread::scope(|s| {
        s.spawn(|| {
            while !markers.join("app-open").exists() {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let campaign = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/campaigns/two-cards.toml");
            ok(&office, &["campaign", "apply", campaign.to_str().unwrap()], None);
            let outlet =
                "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
                 O1,营业网点,农商银行龙凤分理处,G1,一网格,V1,龙凤村,village,T1,太安镇\n";
            let file = write_file(tmp.path(), "outlets.csv", outlet.as_bytes());
            ok(&office, &["territory", "import", file.to_str().unwrap()], None);
            assert_eq!(figure(&coverage(&office, "grid", None), "G1", "two_cards"), (1, 0, 0));
            std::fs::write(markers.join("applied"), "").unwrap();
        });
        let markers = markers.to_str().unwrap();
        browser_step_with("two-cards", &url, &browser, &[("DOORSTEP_MARKERS", markers)])
    });
    assert_eq!(app["unknown"], "新类型：同步后显示要做的事", "an outlet before the app has the new rules: {app}");
    assert_eq!(app["kind"], "营业网点", "{app}");
    assert_eq!(app["offered"]["O1"], serde_json::json!(["张贴两卡通告"]), "the outlet's buttons: {app}");
    assert_eq!(
        app["offered"]["H1"],
        serde_json::json!(["发放宣传手册", "入户宣讲", "张贴海报"]),
        "a household's: {app}"
    );
    assert_eq!(app["o1"]["reached"], serde_json::json!(["two_cards"]), "counted by the app offline: {app}");
    assert_eq!(figure(&coverage(&office, "grid", None), "G1", "two_cards"), (1, 1, 0));
    assert_figures_match_report(&app, &office);
    drop(server);
}

/// A plain HTTP/1.1 GET: the status line and headers (lower-cased), and the body.
fn http_get(base: &str, path: &str) -> (String, Vec<u8>) {
    http_get_with(base, path, "")
}

fn http_get_with(base: &str, path: &str, extra_headers: &str) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra_headers}Connection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete answer") + 4;
    (String::from_utf8_lossy(&raw[..split]).to_lowercase(), raw[split..].to_vec())
}

#[test]
fn the_app_is_served_with_its_manifest_worker_and_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(&data);
    let url = server.url.clone();
    let (head, page) = http_get(&url, "/field/");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-security-policy: default-src 'self'"), "same origin only, no CDN: {head}");
    assert!(String::from_utf8_lossy(&page).contains("rel=\"manifest\""));
    assert!(http_get(&url, "/field").0.contains("location: /field/"));
    let (head, worker) = http_get(&url, "/field/sw.js");
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(!String::from_utf8_lossy(&worker).contains("__DOORSTEP_FIELD_VERSION__"));
    let (head, rules) = http_get(&url, "/field/rules.json");
    assert!(head.contains("content-type: application/json"), "{head}");
    let served: Value = serde_json::from_slice(&rules).unwrap();
    assert_eq!(
        served,
        serde_json::to_value(client_core::grid::rules_table::rules_table(
            client_core::campaign::Campaign::default_campaign(),
            0
        ))
        .unwrap()
    );
    assert!(http_get(&url, "/field/automerge.wasm").0.contains("content-type: application/wasm"));
    assert!(http_get(&url, "/field/manifest.webmanifest").0.contains("content-type: application/manifest+json"));
    assert!(http_get(&url, "/field/nope.js").0.starts_with("http/1.1 404"));
}

/// Figures for docs/benchmarks.md (run by scripts/bench-field-app.sh; ignored in the test suite): the app's size as a
/// phone downloads it, and, offline in Chromium, opening a 500-place grid holding 1,000 visits and recording visits
/// until they are on disk.
#[test]
#[ignore = "benchmark figures (scripts/bench-field-app.sh); scripts/test runs it once with the browser tests"]
fn field_app_figures() {
    let places: usize = std::env::var("DOORSTEP_BENCH_PLACES").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let visits: usize = std::env::var("DOORSTEP_BENCH_CLI_VISITS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    let bob = tmp.path().join("bob");
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    let url = server.url.clone();

    // The app shell as served (gzip, as the phone's browser asks for it), without and with the automerge core.
    let mut shell = 0;
    for file in ["", "app.js", "app.css", "sw.js", "manifest.webmanifest", "icon.svg", "rules.json", "automerge.wasm"] {
        let (head, body) = http_get_with(&url, &format!("/field/{file}"), "Accept-Encoding: gzip\r\n");
        assert!(head.contains("content-encoding: gzip") || body.len() < 1024, "{file}: {head}");
        println!("served gzip: /field/{file:<22} {:>9} B", body.len());
        if file != "automerge.wasm" {
            shell += body.len();
        }
    }
    println!("app shell without the automerge core, gzip as served: {shell} B");

    ok(&office, &["login", "--server", &url, "--username", "office", "--password-stdin"], Some(&pw()));
    let mut csv = String::from(
        "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name,address\n",
    );
    for i in 0..places {
        let kind = if i % 25 == 0 { "shop" } else { "household" };
        csv += &format!(
            "P{i:04},{kind},{}组{}号,G1,一网格,V1,龙凤村,village,T1,太安镇,龙凤村{}组{}号\n",
            i / 50 + 1,
            i % 50 + 1,
            i / 50 + 1,
            i % 50 + 1
        );
    }
    let file = write_file(tmp.path(), "territory.csv", csv.as_bytes());
    ok(&office, &["territory", "import", file.to_str().unwrap()], None);
    ok(&office, &["team", "create", "team-a"], None);
    for v in ["amy", "bob"] {
        ok(&office, &["user", "create", v, "--role", "volunteer", "--team", "team-a", "--password-stdin"], Some(&pw()));
    }
    ok(&office, &["assign", "G1", "--team", "team-a"], None);
    ok(&bob, &["field", "login", "--server", &url, "--username", "bob", "--password-stdin"], Some(&pw()));
    ok(&bob, &["field", "sync"], None);
    for i in 0..visits {
        let place = format!("P{:04}", (i * 7) % places);
        let flags: &[&str] = match i % 4 {
            0 => &["--handbook", "--briefed", "--poster"],
            1 => &["--outcome", "nobody-home"],
            2 => &["--handbook", "--note", "留了手册，下次再讲解"],
            _ => &["--poster", "--gps", "30.18,105.83"],
        };
        let mut args = vec!["field", "visit", place.as_str()];
        args.extend_from_slice(flags);
        ok(&bob, &args, None);
    }
    ok(&bob, &["field", "sync"], None);

    let artifacts = tmp.path().join("artifacts");
    let env = [("DOORSTEP_ARTIFACTS", artifacts.to_str().unwrap())];
    let browser = tmp.path().join("chromium-profile");
    browser_step_with("enrol", &url, &browser, &env);
    server.kill();
    let figures = browser_step_with("figures", &url, &browser, &env);
    println!("places in the grid: {}, visits in its document: {visits}", figures["places"]);
    println!("grid open offline, ms (first after the browser started, then reloads): {}", figures["grid_open_ms"]);
    println!("visit until durable, ms: {}", figures["visit_durable_ms"]);
    assert_eq!(figures["places"].as_u64().unwrap() as usize, places);
}

/// The app loaded from a team hub at base. It enrols there (the hub passes enrolment on to the server) and
/// syncs with the hub; with the server down, it records visits, a place found in the field and a correction,
/// and syncs them with the hub, which refuses a push whose signatures were removed or altered. `hub sync` then
/// delivers everything upstream, attributed to the app's device; the office's review comes back the same way,
/// and the server's statement of what it holds tells the app that nothing waits any more. An urgent task goes
/// out through the hub, its outcome comes back signed by the phone, and once closed it leaves the phone.
#[test]
fn the_app_syncs_through_a_team_hub() {
    if skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    let lead = tmp.path().join("lead");
    let browser = tmp.path().join("chromium-profile");
    bootstrap_office(&data, &office);
    let listen = format!("127.0.0.1:{}", free_port());
    let server = Server::start_with(&data, &listen, &[]);
    let url = server.url.clone();
    ok(&office, &["login", "--server", &url, "--username", "office", "--password-stdin"], Some(&pw()));
    let file = write_file(tmp.path(), "territory.csv", TERRITORY.as_bytes());
    ok(&office, &["territory", "import", file.to_str().unwrap()], None);
    ok(&office, &["user", "create", "lead", "--role", "lead", "--password-stdin"], Some(&pw()));
    ok(&office, &["team", "create", "team-a", "--lead", "lead"], None);
    ok(&office, &["user", "create", "amy", "--role", "volunteer", "--team", "team-a", "--password-stdin"], Some(&pw()));
    ok(&office, &["assign", "G1", "--team", "team-a"], None);
    ok(&office, &["assign", "G2", "--team", "team-a"], None);
    ok(&lead, &["field", "login", "--server", &url, "--username", "lead", "--password-stdin"], Some(&pw()));
    ok(&lead, &["field", "sync"], None);
    let hub = Hub::start(&lead, &["--upstream-every", "0"]);

    // At base with the server reachable: the phone opens the app at the hub and enrols there.
    let enrolled = browser_step("enrol", &hub.url, &browser, "");
    assert_figures_match_report(&enrolled, &office);
    assert_eq!(app_places(&enrolled), cli_places(&lead));

    // The server is gone; the hub is all the phone reaches.
    server.kill();
    let field = browser_step("hub-field", &hub.url, &browser, "");
    for refused in [&field["unsigned"], &field["forged"]] {
        assert!(refused.as_str().unwrap().contains("carries no valid signature"), "the hub refused: {field}");
    }
    let found = field["found"].as_str().unwrap();
    let held = cli_places(&lead);
    assert_eq!(held[found]["visits"], 1, "the hub holds the found place and its visit: {held:?}");
    assert_eq!(held["H1"]["visits"], 1);

    // Back online, the lead forwards everything; the server attributes each visit to the app's device.
    let server = Server::start_with(&data, &listen, &[]);
    ok(&lead, &["hub", "sync"], None);
    let device = field["device"].as_str().unwrap();
    let visits: BTreeMap<String, String> =
        db_pairs(&data, "SELECT visit_id, device_id FROM visits").into_iter().collect();
    for (place, visit) in field["visits"].as_object().unwrap() {
        assert_eq!(visits.get(visit.as_str().unwrap()).map(String::as_str), Some(device), "the visit to {place}");
    }
    let report = coverage(&office, "grid", None);
    assert_eq!(figure(&report, "G1", "handbook"), (5, 2, 0), "H1 and the found house, of five with it");

    // The office finds the new place and the correction in its review queue, and confirms both.
    let review: Value = serde_json::from_str(&ok(&office, &["place", "review", "--format", "json"], None)).unwrap();
    let place = &review["places"].as_array().unwrap()[0];
    assert_eq!((place["place_id"].as_str(), place["added_by"].as_str()), (Some(found), Some("amy")), "{review}");
    assert_eq!(place["label"], "1组9号（新建）");
    assert!(place["lat"].as_f64().is_some_and(|lat| (lat - 30.181).abs() < 1e-9), "{place}");
    let correction = &review["corrections"].as_array().unwrap()[0];
    assert_eq!((correction["place_id"].as_str(), correction["label"].as_str()), (Some("H3"), Some("1组3号（张家）")));
    ok(&office, &["place", "confirm", found], None);
    ok(&office, &["place", "confirm", correction["correction_id"].as_str().unwrap()], None);
    // An urgent task, issued now, reaches the phone through the hub; its sign-fors and outcome come back signed.
    let args = ["--place", "H1", "--person", "赵某", "--phone", "13911112222", "--fraud-type", "investment"];
    let mut create = vec!["task", "create", "--within", "2h"];
    create.extend_from_slice(&args);
    let task = ok(&office, &create, None).trim().to_string();
    ok(&lead, &["hub", "sync"], None);
    let tasked = browser_step("hub-task", &hub.url, &browser, &task);
    assert_eq!(tasked["pending"], 3, "received, opened and the outcome wait for the server: {tasked}");
    assert!(task_show(&office, &task)["outcomes"].as_array().unwrap().is_empty(), "not at the server yet");
    ok(&lead, &["hub", "sync"], None);
    let shown = task_show(&office, &task);
    let outcomes = shown["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 1, "{shown}");
    assert_eq!(
        (outcomes[0]["device_id"].as_str(), outcomes[0]["feedback"].as_str()),
        (Some(device), Some("上门劝阻成功"))
    );
    let kinds: Vec<&str> = shown["signs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["device_id"] == device)
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 2, "received and opened, signed by the phone: {shown}");
    // Closed by the office: the hub forgets it, and tells the phone, which deletes it.
    ok(&office, &["task", "evaluate", &task, "--result", "effective"], None);
    ok(&lead, &["hub", "sync"], None);

    let forwarded = browser_step_with("hub-forwarded", &hub.url, &browser, &[("DOORSTEP_FOUND", found)]);
    assert_eq!(forwarded["tasks"], serde_json::json!([]), "the closed task left the phone: {forwarded}");
    assert_eq!(forwarded["provisional"], "false", "confirmed by the office: {forwarded}");
    assert_eq!(forwarded["h3"], "1组3号（张家）");
    assert_figures_match_report(&forwarded, &office);
    assert_eq!(app_places(&forwarded), cli_places(&lead));
    drop(hub);
    drop(server);
}

/// The app from a team hub over HTTPS, at a name that is not localhost (`hub.home.arpa`, which the browser maps to
/// the loopback address), on a phone that installed the installation's Doorstep CA: Chromium trusts the hub's
/// certificate through the CA in its certificate store (NSS), exactly as for a CA a person installed, so the page
/// is a secure context with its service worker and Ed25519 signing key; it enrols through the hub and syncs a visit
/// with it, which the hub then forwards. Without the CA installed, Chromium refuses the hub.
#[test]
fn the_app_runs_from_a_hub_over_https_once_the_phone_trusts_the_doorstep_ca() {
    if skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Town { server, data, office } = town(tmp.path(), TERRITORY);
    let lead = tmp.path().join("lead");
    let url = server.url.clone();
    ok(&office, &["user", "create", "lead", "--role", "lead", "--password-stdin"], Some(&pw()));
    ok(&office, &["team", "create", "team-a", "--lead", "lead"], None);
    ok(&office, &["user", "create", "amy", "--role", "volunteer", "--team", "team-a", "--password-stdin"], Some(&pw()));
    ok(&office, &["assign", "G1", "--team", "team-a"], None);
    ok(&lead, &["field", "login", "--server", &url, "--username", "lead", "--password-stdin"], Some(&pw()));
    ok(&lead, &["field", "sync"], None);
    ok(&lead, &["hub", "certificate", "--ip", "127.0.0.1", "--name", "hub.home.arpa"], None);
    let hub = Hub::start(&lead, &["--upstream-every", "0", "--tls"]);
    let port = hub.url.rsplit(':').next().unwrap();
    let hub_url = format!("https://hub.home.arpa:{port}");
    let rules = "MAP hub.home.arpa 127.0.0.1";

    // The phone's certificate store, with the CA installed from the server as the office hands it out.
    let ca: Value = serde_json::from_slice(&http_get(&url, "/api/v1/ca").1).unwrap();
    let ca_file = write_file(tmp.path(), "doorstep-ca.crt", ca["certificate"].as_str().unwrap().as_bytes());
    let phone_home = tmp.path().join("phone-home");
    let nssdb = phone_home.join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    let db = format!("sql:{}", nssdb.display());
    certutil(&["-N", "-d", &db, "--empty-password"]);
    certutil(&["-A", "-d", &db, "-t", "C,,", "-n", ca["name"].as_str().unwrap(), "-i", ca_file.to_str().unwrap()]);

    let home = phone_home.to_str().unwrap();
    let env = [("DOORSTEP_HOST_RULES", rules), ("DOORSTEP_BROWSER_HOME", home)];
    let app = browser_step_with("https-hub", &hub_url, &tmp.path().join("chromium-profile"), &env);
    assert_eq!(app["host"], "hub.home.arpa", "{app}");
    assert_eq!(app["protocol"], "https:");
    assert_eq!(app["secure"], true, "a secure context by HTTPS, not by localhost: {app}");
    assert_eq!(app["ed25519"], true, "WebCrypto Ed25519: {app}");
    assert_eq!(app["worker"], true, "the service worker controls the page: {app}");
    assert_eq!(
        (&app["ca"]["name"], &app["ca"]["sha256"]),
        (&ca["name"], &ca["sha256"]),
        "the enrolment screen shows the CA"
    );
    assert_eq!(app["download"], ca["certificate"]);
    assert!(app["synced"].as_str().unwrap().contains("已与中转设备同步"), "{app}");
    assert_eq!(cli_places(&lead)["H1"]["visits"], 1, "the hub holds the app's visit");

    // Forwarded by the hub, attributed to the phone.
    ok(&lead, &["hub", "sync"], None);
    let visits: BTreeMap<String, String> =
        db_pairs(&data, "SELECT visit_id, device_id FROM visits").into_iter().collect();
    assert_eq!(visits.get(app["visit"].as_str().unwrap()), app["device"].as_str().map(str::to_string).as_ref());

    // A phone that has not installed the CA is refused by its own browser.
    let bare_home = tmp.path().join("bare-home");
    std::fs::create_dir_all(&bare_home).unwrap();
    let env = [("DOORSTEP_HOST_RULES", rules), ("DOORSTEP_BROWSER_HOME", bare_home.to_str().unwrap())];
    let refused = browser_step_with("https-untrusted", &hub_url, &tmp.path().join("other-profile"), &env);
    assert!(refused["error"].as_str().is_some_and(|e| e.contains("ERR_CERT_AUTHORITY_INVALID")), "{refused}");
    drop(hub);
    drop(server);
}

/// NSS's certutil (Debian's libnss3-tools, which scripts/browser-deps.sh installs).
fn certutil(args: &[&str]) {
    let out = Command::new("certutil").args(args).output().expect("run certutil (apt-get install libnss3-tools)");
    assert!(out.status.success(), "certutil {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}
