//! Streamed exports: a town's gap list written by `doorstep report gaps` as CSV, JSON and XLSX agrees across
//! formats and with the coverage report's counts (which are not streamed); an export whose transfer breaks
//! midway makes the command fail and leaves no file under the output's name (an older file stays as it was).

mod common;
use common::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;

const GRIDS: usize = 8;
const PLACES_PER_GRID: usize = 300;

/// Two villages of four grids; labels are pseudo-random so the list compresses no better than real ones.
fn territory() -> String {
    let mut csv = String::from(
        "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name,address\n",
    );
    let mut x: u64 = 0x5eed;
    for g in 0..GRIDS {
        let village = if g < GRIDS / 2 { ("V1", "龙凤村", "village") } else { ("V2", "新街社区", "community") };
        for i in 0..PLACES_PER_GRID {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let kind = ["household", "household", "shop", "building", "market"][i % 5];
            csv.push_str(&format!(
                "P{g}{i:04},{kind},{x:016x},G{g},网格{g},{},{},{},T1,太安镇,{i}号\n",
                village.0, village.1, village.2
            ));
        }
    }
    csv
}

/// A proxy that passes requests on but ends every response after `limit` bytes, as a dropped connection would.
fn cutting_proxy(upstream: &str, limit: usize) -> String {
    let upstream = upstream.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut server) = TcpStream::connect(&upstream) else { continue };
            let (mut client_in, mut server_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut client_in, &mut server_out));
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut sent = 0;
                while sent < limit {
                    let n = match server.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n.min(limit - sent),
                    };
                    if client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n;
                }
                client.shutdown(Shutdown::Both).ok();
                server.shutdown(Shutdown::Both).ok();
            });
        }
    });
    url
}

/// Asks for a long export over a raw connection and shuts it down as soon as the answer starts, as an impatient
/// client or a proxy giving up does: the server's next writes meet a closed connection.
fn abandon_export(base: &str, token: &str) {
    let mut s = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    let request = format!(
        "GET /api/v1/reports/gaps?area=T1&all=true&format=json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut head = [0u8; 1024];
    let n = s.read(&mut head).unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head[..n]));
    s.shutdown(Shutdown::Both).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
}

/// An access token, from a login over a raw connection.
fn token(base: &str) -> String {
    let mut s = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    let body = format!(r#"{{"username":"office","password":"{PASSWORD}"}}"#);
    let request = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (_, json) = reply.split_once("\r\n\r\n").unwrap();
    let json: serde_json::Value = serde_json::from_str(json).unwrap();
    json["token"].as_str().unwrap().to_string()
}

fn read_csv(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    reader.records().map(|r| header.iter().cloned().zip(r.unwrap().iter().map(str::to_string)).collect()).collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn exports_stream_agree_with_the_counts_and_never_leave_a_partial_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, office) = (tmp.path().join("data"), tmp.path().join("office"));
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let file = write_file(tmp.path(), "town.csv", territory().as_bytes());
    ok(&office, &["territory", "import", file.to_str().unwrap()], None);
    ok(&office, &["team", "create", "t"], None);
    ok(&office, &["user", "create", "amy", "--role", "volunteer", "--team", "t", "--password-stdin"], Some(&pw()));
    for g in 0..GRIDS {
        ok(&office, &["assign", &format!("G{g}"), "--team", "t"], None);
    }
    let amy = tmp.path().join("amy");
    ok(&amy, &["field", "login", "--server", &server.url, "--username", "amy", "--password-stdin"], Some(&pw()));
    ok(&amy, &["field", "sync"], None);
    for (i, outcome) in
        ["completed", "gone", "nobody-home", "refused", "completed", "completed"].iter().cycle().take(18).enumerate()
    {
        let place = format!("P{}{:04}", i % GRIDS, i * 7);
        let mut args = vec!["field", "visit", place.as_str(), "--outcome", outcome];
        if *outcome == "completed" {
            args.extend(["--handbook", "--poster", "--banner"]);
        }
        ok(&amy, &args, None);
    }
    ok(&amy, &["field", "sync"], None);

    // Every place, as CSV into a file: its figures are the coverage report's.
    let out = tmp.path().join("exports");
    std::fs::create_dir(&out).unwrap();
    let all_csv = out.join("all.csv");
    ok(
        &office,
        &["report", "gaps", "--area", "T1", "--all", "--format", "csv", "--output", all_csv.to_str().unwrap()],
        None,
    );
    let all = read_csv(&std::fs::read_to_string(&all_csv).unwrap());
    assert_eq!(all.len(), GRIDS * PLACES_PER_GRID);
    let mut figures: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
    for row in &all {
        let excluded = row["excluded"] == "true";
        for (column, reached) in [("missing", false), ("reached", true)] {
            for indicator in row[column].split_whitespace() {
                let f = figures.entry((row["grid"].clone(), indicator.to_string())).or_default();
                if excluded {
                    f.2 += 1;
                } else {
                    f.0 += 1;
                    f.1 += u64::from(reached);
                }
            }
        }
    }
    let counted: BTreeMap<(String, String), (u64, u64, u64)> = coverage(&office, "grid", Some("T1"))
        .iter()
        .map(|r| {
            let key = (r["area"].as_str().unwrap().to_string(), r["indicator"].as_str().unwrap().to_string());
            (key, (r["eligible"].as_u64().unwrap(), r["reached"].as_u64().unwrap(), r["excluded"].as_u64().unwrap()))
        })
        .collect();
    assert_eq!(figures, counted);
    assert!(counted.values().any(|f| f.1 > 0) && counted.values().any(|f| f.2 > 0), "reached and gone places");

    // The gap list proper (places with something missing), to stdout, to JSON and to XLSX: the same places.
    let gaps = read_csv(&ok(&office, &["report", "gaps", "--area", "T1", "--format", "csv"], None));
    let expected: Vec<(String, String)> = all
        .iter()
        .filter(|r| r["excluded"] == "false" && !r["missing"].is_empty())
        .map(|r| (r["place"].clone(), r["missing"].clone()))
        .collect();
    assert_eq!(gaps.iter().map(|r| (r["place"].clone(), r["missing"].clone())).collect::<Vec<_>>(), expected);
    let json_file = out.join("gaps.json");
    ok(&office, &["report", "gaps", "--area", "T1", "--format", "json", "--output", json_file.to_str().unwrap()], None);
    let json: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&json_file).unwrap()).unwrap();
    let from_json: Vec<(String, String)> = json
        .iter()
        .map(|g| {
            let missing: Vec<&str> = g["missing"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
            (g["place_id"].as_str().unwrap().to_string(), missing.join(" "))
        })
        .collect();
    assert_eq!(from_json, expected);
    let xlsx = out.join("gaps.xlsx");
    ok(&office, &["report", "gaps", "--area", "T1", "--format", "xlsx", "--output", xlsx.to_str().unwrap()], None);
    {
        use calamine::{Reader, Xlsx};
        let mut wb: Xlsx<_> = calamine::open_workbook(&xlsx).unwrap();
        let sheet = wb.worksheet_range_at(0).unwrap().unwrap();
        assert_eq!(sheet.get_size().0, 1 + expected.len());
        assert_eq!(sheet.get((0, 0)).unwrap().to_string(), "place");
        for (i, (place, missing)) in expected.iter().enumerate() {
            assert_eq!(&sheet.get((i + 1, 0)).unwrap().to_string(), place);
            assert_eq!(&sheet.get((i + 1, 5)).unwrap().to_string(), missing);
        }
    }
    assert_eq!(files_in(&out), ["all.csv", "gaps.json", "gaps.xlsx"]);

    // Clients that go away in the middle of an export do not take the server down: the server ignores SIGPIPE
    // (the CLI does not, to stop quietly when its output is piped into `head`), and survives abandoned exports.
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let ignored = status.lines().find_map(|l| l.strip_prefix("SigIgn:")).unwrap().trim();
    let sigpipe = 1u64 << (13 - 1);
    assert_ne!(u64::from_str_radix(ignored, 16).unwrap() & sigpipe, 0, "SIGPIPE is ignored by the server: {ignored}");
    let token = token(&server.url);
    for _ in 0..3 {
        abandon_export(&server.url, &token);
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(coverage(&office, "grid", Some("T1")).len(), counted.len(), "the server still answers");

    // The same exports through a connection that drops partway through the response.
    let proxy = cutting_proxy(&server.url, 4096);
    let cut = tmp.path().join("cut");
    ok(&cut, &["login", "--server", &proxy, "--username", "office", "--password-stdin"], Some(&pw()));
    std::fs::write(out.join("all.csv"), "an older export\n").unwrap();
    for (format, name) in [("csv", "all.csv"), ("json", "gaps.json"), ("xlsx", "new.xlsx")] {
        let target = out.join(name);
        let args =
            ["report", "gaps", "--area", "T1", "--all", "--format", format, "--output", target.to_str().unwrap()];
        let err = fails(&cut, &args, None);
        assert!(err.contains("broke off before it was complete"), "{format}: {err}");
    }
    assert_eq!(std::fs::read_to_string(out.join("all.csv")).unwrap(), "an older export\n");
    assert_eq!(files_in(&out), ["all.csv", "gaps.json", "gaps.xlsx"], "no partial or new file");
    let out = run(&cut, &["report", "gaps", "--area", "T1", "--all", "--format", "csv"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("what was written above is incomplete"));
}
