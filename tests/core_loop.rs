//! End to end: bootstrap, import, teams, two volunteers recording offline, sync, and every report figure
//! checked against a hand-computed expectation.

mod common;
use common::*;

const TERRITORY: &str = "\u{feff}place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name,address\n\
H1,household,1组1号,G1,一网格,V1,龙凤村,village,T1,太安镇,龙凤村1组1号\n\
H2,户,1组2号,G1,一网格,V1,龙凤村,村,T1,太安镇,\n\
S1,shop,小卖部,G1,一网格,V1,龙凤村,village,T1,太安镇,\n\
M1,集贸市场,龙凤市场,G1,一网格,V1,龙凤村,village,T1,太安镇,\n\
L1,led_screen,村口LED屏,G1,一网格,V1,龙凤村,village,T1,太安镇,\n\
H3,household,3栋201,G2,二网格,C1,新街社区,community,T1,太安镇,\n\
B1,building,3栋,G2,二网格,C1,新街社区,社区,T1,太安镇,\n";

#[test]
fn record_offline_sync_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    let vol1 = tmp.path().join("vol1");
    let vol2 = tmp.path().join("vol2");
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    let url = server.url.clone();

    ok(&office, &["login", "--server", &url, "--username", "office", "--password-stdin"], Some(&pw()));
    let file = write_file(tmp.path(), "territory.csv", TERRITORY.as_bytes());
    let dry = ok(&office, &["territory", "import", file.to_str().unwrap(), "--dry-run"], None);
    assert!(dry.contains("7 places added"), "{dry}");
    assert!(coverage(&office, "town", None).is_empty(), "a dry run changes nothing");
    let first = ok(&office, &["territory", "import", file.to_str().unwrap()], None);
    assert!(first.contains("7 places added"), "{first}");
    let again = ok(&office, &["territory", "import", file.to_str().unwrap()], None);
    assert!(again.contains("0 places added, 0 changed, 7 unchanged") && again.contains("0 grids updated"), "{again}");

    ok(&office, &["team", "create", "team-a"], None);
    for v in ["vol1", "vol2"] {
        ok(&office, &["user", "create", v, "--role", "volunteer", "--team", "team-a", "--password-stdin"], Some(&pw()));
    }
    ok(&office, &["assign", "G1", "--team", "team-a"], None);
    ok(&office, &["assign", "G2", "--team", "team-a"], None);

    for (profile, name) in [(&vol1, "vol1"), (&vol2, "vol2")] {
        ok(profile, &["field", "login", "--server", &url, "--username", name, "--password-stdin"], Some(&pw()));
        let out = ok(profile, &["field", "sync"], None);
        assert!(out.contains("new grids: G1, G2"), "{out}");
    }
    let todo: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&vol1, &["field", "places", "--todo", "--format", "json"], None)).unwrap();
    assert_eq!(todo.len(), 7, "everything is still to do");

    // The network goes away: the server stops.
    server.kill();
    let visit = |p: &std::path::Path, args: &[&str]| {
        let mut all = vec!["field", "visit"];
        all.extend_from_slice(args);
        let id = ok(p, &all, None);
        assert!(uuid::Uuid::parse_str(id.trim()).is_ok(), "visit prints its id: {id}");
    };
    visit(&vol1, &["H1", "--handbook", "--briefed", "--poster", "--at", "2026-11-01T09:00:00+08:00"]);
    visit(&vol2, &["H1", "--handbook", "--at", "2026-11-01T10:00:00+08:00"]); // overlapping offline visit
    visit(&vol1, &["H2", "--handbook", "--at", "2026-11-01T09:10:00+08:00"]);
    visit(&vol1, &["H2", "--outcome", "nobody-home", "--at", "2026-11-03T09:10:00+08:00"]); // later: still reached
    visit(&vol2, &["S1", "--outcome", "gone", "--note", "shop closed for good"]);
    visit(&vol1, &["M1", "--banner", "--gps", "30.18,105.83"]);
    visit(&vol2, &["L1", "--led-playing"]);
    visit(&vol1, &["H3", "--handbook", "--poster"]); // community household: poster not counted
    visit(&vol1, &["B1", "--poster"]);

    let err = fails(&vol1, &["field", "sync"], None);
    assert!(err.contains("cannot reach the server") && err.contains("6 unsynced visits"), "{err}");
    let status: serde_json::Value =
        serde_json::from_str(&ok(&vol1, &["field", "status", "--format", "json"], None)).unwrap();
    assert_eq!(status["unsynced_visits"], 6);
    let err = fails(&vol1, &["field", "visit", "NOPE", "--handbook"], None);
    assert!(err.contains("place NOPE is not in this device's grids"), "{err}");

    // Back at base: the server runs again on the same data.
    let server = Server::start(&data);
    let url2 = server.url.clone();
    // The port changed; sync through the new address.
    ok(&vol1, &["field", "sync", "--via", &url2], None);
    ok(&vol2, &["field", "sync", "--via", &url2], None);
    ok(&vol1, &["field", "sync", "--via", &url2], None);
    let status: serde_json::Value =
        serde_json::from_str(&ok(&vol1, &["field", "status", "--format", "json"], None)).unwrap();
    assert_eq!(status["unsynced_visits"], 0);

    // Both devices now hold both volunteers' visits.
    for p in [&vol1, &vol2] {
        let places: Vec<serde_json::Value> =
            serde_json::from_str(&ok(p, &["field", "places", "--format", "json"], None)).unwrap();
        let h1 = places.iter().find(|x| x["place_id"] == "H1").unwrap();
        assert_eq!(h1["visits"], 2, "both visits to H1 kept");
        let s1 = places.iter().find(|x| x["place_id"] == "S1").unwrap();
        assert_eq!(s1["excluded"], true);
        let todo: Vec<serde_json::Value> =
            serde_json::from_str(&ok(p, &["field", "places", "--todo", "--format", "json"], None)).unwrap();
        let todo_ids: Vec<&str> = todo.iter().map(|x| x["place_id"].as_str().unwrap()).collect();
        assert_eq!(todo_ids, ["H2", "H3"], "H2 lacks awareness and poster, H3 lacks awareness");
    }

    ok(&office, &["login", "--server", &url2, "--username", "office", "--password-stdin"], Some(&pw()));
    // Town: (eligible, reached, excluded) per indicator, computed by hand from the visits above.
    let town = coverage(&office, "town", None);
    assert_eq!(figure(&town, "T1", "handbook"), (3, 3, 1)); // H1 H2 H3 reached; S1 gone
    assert_eq!(figure(&town, "T1", "awareness"), (3, 1, 1)); // only H1 briefed
    assert_eq!(figure(&town, "T1", "poster"), (3, 2, 0)); // H1 H2 rural + B1; H1 and B1 posted
    assert_eq!(figure(&town, "T1", "banner"), (1, 1, 0));
    assert_eq!(figure(&town, "T1", "led"), (1, 1, 0));
    assert_eq!(town.len(), 5);
    let handbook = town.iter().find(|r| r["indicator"] == "handbook").unwrap();
    assert_eq!(handbook["name"], "太安镇");
    assert_eq!(handbook["rate"], 1.0);
    let awareness = town.iter().find(|r| r["indicator"] == "awareness").unwrap();
    assert!((awareness["rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);

    let village = coverage(&office, "village", None);
    assert_eq!(figure(&village, "V1", "handbook"), (2, 2, 1));
    assert_eq!(figure(&village, "V1", "awareness"), (2, 1, 1));
    assert_eq!(figure(&village, "V1", "poster"), (2, 1, 0));
    assert_eq!(figure(&village, "C1", "handbook"), (1, 1, 0));
    assert_eq!(figure(&village, "C1", "awareness"), (1, 0, 0));
    assert_eq!(figure(&village, "C1", "poster"), (1, 1, 0)); // B1 only: H3 is urban
    assert_eq!(village.len(), 3 + 2 + 3);

    let grid = coverage(&office, "grid", Some("C1"));
    assert_eq!(figure(&grid, "G2", "poster"), (1, 1, 0));
    assert!(grid.iter().all(|r| r["area"] == "G2"), "area filter keeps the subtree only");

    let team = coverage(&office, "team", None);
    assert_eq!(figure(&team, "team-a", "handbook"), (3, 3, 1));
    assert_eq!(figure(&team, "team-a", "poster"), (3, 2, 0));

    let vol = coverage(&office, "volunteer", None);
    assert_eq!(figure(&vol, "vol1", "handbook"), (3, 3, 1));
    assert_eq!(figure(&vol, "vol2", "handbook"), (3, 1, 1));
    assert_eq!(figure(&vol, "vol1", "awareness"), (3, 1, 1));
    assert_eq!(figure(&vol, "vol2", "awareness"), (3, 0, 1));
    assert_eq!(figure(&vol, "vol1", "poster"), (3, 2, 0));
    assert_eq!(figure(&vol, "vol1", "led"), (1, 0, 0));
    assert_eq!(figure(&vol, "vol2", "led"), (1, 1, 0));

    // What is left in G1, and who did what.
    let gaps: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&office, &["report", "gaps", "--grid", "G1", "--format", "json"], None)).unwrap();
    let gap_ids: Vec<&str> = gaps.iter().map(|g| g["place_id"].as_str().unwrap()).collect();
    assert_eq!(gap_ids, ["H2"], "{gaps:?}");
    assert_eq!(gaps[0]["missing"], serde_json::json!(["awareness", "poster"]));
    let revisit = ok(&office, &["report", "gaps", "--grid", "G1", "--revisit", "--format", "csv"], None);
    assert_eq!(revisit.lines().count(), 2, "header and H2: {revisit}");
    assert!(revisit.lines().nth(1).unwrap().starts_with("H2,G1,household,"), "{revisit}");
    // The longest range a report takes, ending tomorrow: today's visits are always in it, the dated ones of
    // November 2026 while they are less than 400 days old.
    let to = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
    let from = to - chrono::Duration::days(399);
    let dated_in_range = from <= chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let (from, to) = (from.to_string(), to.to_string());
    let activity: Vec<serde_json::Value> = serde_json::from_str(&ok(
        &office,
        &["report", "activity", "--by", "volunteer", "--from", &from, "--to", &to, "--format", "json"],
        None,
    ))
    .unwrap();
    let visits_of = |u: &str| activity.iter().find(|r| r["key"] == u).map(|r| r["visits"].as_u64().unwrap());
    let dated = |n: u64| if dated_in_range { n } else { 0 };
    assert_eq!((visits_of("vol1"), visits_of("vol2")), (Some(3 + dated(3)), Some(2 + dated(1))));
    let progress =
        ok(&office, &["report", "progress", "--from", "2026-11-01", "--to", "2026-11-03", "--format", "csv"], None);
    assert!(
        progress.starts_with(
            "date,indicator,eligible,reached,rate
"
        ),
        "{progress}"
    );
    let handbook_nov3 = progress.lines().find(|l| l.starts_with("2026-11-03,handbook,")).unwrap();
    assert_eq!(handbook_nov3.split(',').nth(3), Some("2"), "H1 and H2 by the end of 3 November: {progress}");

    // The same report as CSV and as a table.
    let csv = ok(&office, &["report", "coverage", "--by", "town", "--format", "csv"], None);
    assert!(csv.starts_with("area,name,indicator,eligible,reached,excluded,rate\n"), "{csv}");
    assert!(csv.contains("T1,太安镇,awareness,3,1,1,0.3333"), "{csv}");
    let table = ok(&office, &["report", "coverage", "--by", "town"], None);
    assert!(table.contains("33.3%"), "{table}");
}
