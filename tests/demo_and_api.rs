//! `serve --demo` gives a newcomer a live town; the API answers errors with one JSON shape; XLSX exports read back.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Starts `serve --demo` and returns the server with the printed accounts.
fn start_demo(data: &std::path::Path) -> (std::process::Child, String, Vec<(String, String, String)>) {
    let mut child = Command::new(BIN)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(database_args(data))
        .env("DOORSTEP_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut accounts = Vec::new();
    let mut line = String::new();
    let url = loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "demo server exited early");
        let t = line.trim();
        if let Some(url) = t.strip_prefix("Doorstep listening on ") {
            break url.to_string();
        }
        let parts: Vec<&str> = t.split_whitespace().collect();
        if parts.len() == 3 && !t.ends_with(':') {
            accounts.push((parts[0].to_string(), parts[1].to_string(), parts[2].to_string()));
        }
    };
    std::thread::spawn(move || {
        let mut s = String::new();
        while reader.read_line(&mut s).map(|n| n > 0).unwrap_or(false) {
            s.clear();
        }
    });
    (child, url, accounts)
}

#[test]
fn demo_town_shows_real_figures_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (mut child, url, accounts) = start_demo(&data);
    let roles: Vec<&str> = accounts.iter().map(|a| a.2.as_str()).collect();
    for role in ["office", "lead", "volunteer", "viewer"] {
        assert!(roles.contains(&role), "demo prints a {role} account: {accounts:?}");
    }
    let office = tmp.path().join("office");
    let (_, office_pw, _) = accounts.iter().find(|a| a.2 == "office").unwrap();
    ok(
        &office,
        &["login", "--server", &url, "--username", "office", "--password-stdin"],
        Some(&format!("{office_pw}\n")),
    );
    let grids = coverage(&office, "grid", None);
    let grid_codes: std::collections::BTreeSet<&str> = grids.iter().map(|r| r["area"].as_str().unwrap()).collect();
    assert!((15..=25).contains(&grid_codes.len()), "about 20 grids: {}", grid_codes.len());
    let town = coverage(&office, "town", None);
    assert_eq!(town.len(), 5, "all five indicators have places");
    let places: u64 = ["handbook", "poster", "banner", "led"]
        .iter()
        .map(|i| {
            let (e, _, x) = figure(&town, "T01", i);
            e + x
        })
        .sum();
    assert!(places > 1500, "about 2,000 places: {places}");
    let (_, reached, _) = figure(&town, "T01", "handbook");
    assert!(reached > 0, "the demo has visits");
    let teams = coverage(&office, "team", None);
    assert!(teams.iter().any(|r| r["area"] == "team-east") && teams.iter().any(|r| r["area"] == "team-west"));

    // A demo volunteer can enrol and download the team's grids.
    let (vol, vol_pw, _) = accounts.iter().find(|a| a.2 == "volunteer").unwrap();
    let phone = tmp.path().join("phone");
    ok(
        &phone,
        &["field", "login", "--server", &url, "--username", vol, "--password-stdin"],
        Some(&format!("{vol_pw}\n")),
    );
    assert!(ok(&phone, &["field", "sync"], None).contains("new grids"));

    // A second start with --demo leaves existing data alone.
    child.kill().ok();
    child.wait().ok();
    let (mut again, _, accounts) = start_demo(&data);
    assert!(accounts.is_empty(), "no new accounts on a filled data dir");
    again.kill().ok();
    again.wait().ok();
}

#[test]
fn api_errors_share_one_json_body_and_xlsx_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut req = client.get(format!("{}{path}", server.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        rt.block_on(async {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<serde_json::Value>().await.unwrap())
        })
    };
    let (status, body) = get("/api/v1/reports/coverage", None);
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(body["error"]["message"].as_str().unwrap().contains("log in"));
    let (status, body) = get("/api/v1/reports/coverage", Some("not.a.jwt"));
    assert_eq!(status, 401, "{body}");
    let (status, body) = get("/api/v1/nothing-here", None);
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));

    let (status, body) = rt.block_on(async {
        let resp = client
            .post(format!("{}/api/v1/auth/login", server.url))
            .header("content-type", "application/json")
            .body("{\"username\": 3}")
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<serde_json::Value>().await.unwrap())
    });
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")));

    // The CLI turns API errors into plain words and a non-zero exit.
    let err = fails(
        &office,
        &["login", "--server", &server.url, "--username", "office", "--password-stdin"],
        Some("wrong password\n"),
    );
    assert!(err.contains("wrong username or password"), "{err}");
    let err = fails(&office, &["report", "coverage"], None);
    assert!(err.contains("not logged in"), "{err}");

    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let csv = "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\nH1,household,1号,G1,一网格,V1,龙凤村,village,T1,太安镇\nM1,market,市场,G1,一网格,V1,龙凤村,village,T1,太安镇\n";
    let f = write_file(tmp.path(), "t.csv", csv.as_bytes());
    ok(&office, &["territory", "import", f.to_str().unwrap()], None);
    let err = fails(&office, &["report", "coverage", "--format", "xlsx"], None);
    assert!(err.contains("--output"), "{err}");
    let xlsx = tmp.path().join("coverage.xlsx");
    ok(
        &office,
        &["report", "coverage", "--by", "village", "--format", "xlsx", "--output", xlsx.to_str().unwrap()],
        None,
    );
    use calamine::{open_workbook, Data, Reader, Xlsx};
    let mut wb: Xlsx<_> = open_workbook(&xlsx).unwrap();
    let sheet = wb.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<Vec<Data>> = sheet.rows().map(|r| r.to_vec()).collect();
    assert_eq!(rows[0][0], Data::String("area".into()));
    assert_eq!(rows.len(), 1 + 4, "header + handbook, awareness, poster, banner");
    let banner = rows.iter().find(|r| r[2] == Data::String("banner".into())).unwrap();
    assert_eq!(banner[0], Data::String("V1".into()));
    assert_eq!(banner[1], Data::String("龙凤村".into()));
    assert_eq!(banner[3], Data::Float(1.0));
    assert_eq!(banner[4], Data::Float(0.0));
    assert_eq!(banner[6], Data::Float(0.0));
}
