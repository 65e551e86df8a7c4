//! The monthly report, progress series, gap lists and activity, checked against an independent computation
//! (written here from the campaign's rules, not with the server's code) on a generated town with visits spread
//! over three months, month-boundary visits, same-time ties and places found gone and found again.

mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const IND: [&str; 5] = ["handbook", "awareness", "poster", "banner", "led"];
const KINDS: [&str; 9] = [
    "household",
    "shop",
    "household",
    "building",
    "market",
    "household",
    "street_block",
    "led_screen",
    "residential_complex",
];
/// (village code, name, kind, grids)
const UNITS: [(&str, &str, &str, u32); 4] = [
    ("V1", "龙凤村", "village", 2),
    ("V2", "石岭村", "village", 1),
    ("C1", "新街社区", "community", 1),
    ("C2", "滨江社区", "community", 1),
];

/// Which indicators a place counts for, written out from the campaign's table.
fn eligible(kind: &str, rural: bool) -> [bool; 5] {
    let home = kind == "household" || kind == "shop";
    [
        home,
        home,
        kind == "building" || kind == "street_block" || (kind == "household" && rural),
        matches!(kind, "market" | "pedestrian_street" | "scenic_spot" | "residential_complex"),
        kind == "led_screen",
    ]
}

struct Place {
    id: String,
    kind: &'static str,
    grid: String,
    unit: &'static str,
    rural: bool,
}

#[derive(Clone)]
struct V {
    id: String,
    place: String,
    at: i64,
    outcome: &'static str,
    d: [bool; 5],
    volunteer: &'static str,
}

/// xorshift: a small deterministic generator so the dataset is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn ms(rfc: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc).unwrap().timestamp_millis()
}

fn rfc(ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
    t.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// (eligible, reached, excluded) per (unit, indicator) as things stood just before `t`.
fn expected_at(places: &[Place], visits: &[V], t: i64) -> BTreeMap<(String, String), (u64, u64, u64)> {
    let mut out: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
    for p in places {
        let before: Vec<&V> = visits.iter().filter(|v| v.place == p.id && v.at < t).collect();
        let last = before.iter().max_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        let gone = last.is_some_and(|v| v.outcome == "gone");
        for (i, ok) in eligible(p.kind, p.rural).iter().enumerate() {
            if !ok {
                continue;
            }
            let e = out.entry((p.unit.to_string(), IND[i].to_string())).or_default();
            if gone {
                e.2 += 1;
            } else {
                e.0 += 1;
                e.1 += u64::from(before.iter().any(|v| v.d[i]));
            }
        }
    }
    out
}

fn rate(e: u64, r: u64) -> f64 {
    if e == 0 {
        1.0
    } else {
        r as f64 / e as f64
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

struct Town {
    places: Vec<Place>,
    visits: Vec<V>,
}

fn territory() -> (String, Vec<Place>) {
    let mut csv = String::from("place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name,address,contact_name,contact_phone\n");
    let mut places = Vec::new();
    let mut n = 0;
    for (code, name, kind, grids) in UNITS {
        for g in 1..=grids {
            let grid = format!("{code}-G{g}");
            for i in 0..12 {
                n += 1;
                let k = KINDS[(i + n) % KINDS.len()];
                let id = format!("P{n:03}");
                csv.push_str(&format!(
                    "{id},{k},{k}{i},{grid},{name}{g}网格,{code},{name},{kind},T1,太安镇,{name}{i}号,张三{n},1380000{n:04}\n"
                ));
                places.push(Place { id, kind: k, grid: grid.clone(), unit: code, rural: kind == "village" });
            }
        }
    }
    (csv, places)
}

/// Records the generated visits through two volunteers' offline field clients and syncs them.
fn record_visits(amy: &std::path::Path, bob: &std::path::Path, places: &[Place]) -> Vec<V> {
    let mut rng = Rng(0x2021_0901);
    let start = ms("2026-10-20T08:00:00+08:00");
    let span = ms("2026-12-06T00:00:00+08:00") - start;
    let mut plan: Vec<(String, i64, &'static str, [bool; 5])> = Vec::new();
    for _ in 0..110 {
        let p = &places[rng.next(places.len() as u64) as usize];
        let at = start + (rng.next(span as u64 / 60_000) as i64) * 60_000;
        let outcome = match rng.next(10) {
            0 => "gone",
            1 => "nobody-home",
            2 => "refused",
            _ => "completed",
        };
        let mut d = [false; 5];
        if outcome == "completed" {
            for f in d.iter_mut() {
                *f = rng.next(3) > 0;
            }
        }
        plan.push((p.id.clone(), at, outcome, d));
    }
    // Special cases go to places the random visits left alone, so nothing later hides their effect.
    let touched: BTreeSet<String> = plan.iter().map(|p| p.0.clone()).collect();
    let quiet: Vec<String> = places.iter().map(|p| p.id.clone()).filter(|id| !touched.contains(id)).collect();
    assert!(quiet.len() >= 5, "enough untouched places: {}", quiet.len());
    // Boundaries: the first instant of December belongs to December; the last millisecond of November does not.
    let dec = ms("2026-12-01T00:00:00+08:00");
    let nov = ms("2026-11-01T00:00:00+08:00");
    let all = [true; 5];
    plan.push((quiet[0].clone(), dec, "completed", all));
    plan.push((quiet[1].clone(), dec - 1, "completed", all));
    plan.push((quiet[2].clone(), nov, "completed", all));
    plan.push((quiet[2].clone(), nov - 1, "nobody-home", [false; 5]));
    // Gone in October, found again in November; gone at the very same time as a completed visit (ties: the
    // visit with the greater id, recorded later, is the last).
    plan.push((quiet[3].clone(), ms("2026-10-25T10:00:00+08:00"), "gone", [false; 5]));
    plan.push((quiet[3].clone(), ms("2026-11-10T10:00:00+08:00"), "refused", [false; 5]));
    plan.push((quiet[4].clone(), ms("2026-11-12T10:00:00+08:00"), "completed", all));
    plan.push((quiet[4].clone(), ms("2026-11-12T10:00:00+08:00"), "gone", [false; 5]));
    let mut visits = Vec::new();
    for (i, (place, at, outcome, d)) in plan.into_iter().enumerate() {
        let (profile, volunteer) = if i % 3 == 0 { (bob, "bob") } else { (amy, "amy") };
        let at_text = rfc(at);
        let mut args = vec!["field", "visit", place.as_str(), "--outcome", outcome, "--at", at_text.as_str()];
        for (flag, on) in ["--handbook", "--briefed", "--poster", "--banner", "--led-playing"].iter().zip(d) {
            if on {
                args.push(flag);
            }
        }
        let id = ok(profile, &args, None).trim().to_string();
        visits.push(V { id, place, at, outcome, d, volunteer });
    }
    for p in [amy, bob, amy] {
        ok(p, &["field", "sync"], None);
    }
    visits
}

fn setup(tmp: &std::path::Path) -> (Server, Town, std::path::PathBuf) {
    let data = tmp.join("data");
    let office = tmp.join("office");
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    let url = server.url.clone();
    ok(&office, &["login", "--server", &url, "--username", "office", "--password-stdin"], Some(&pw()));
    let (csv, places) = territory();
    let file = write_file(tmp, "town.csv", csv.as_bytes());
    ok(&office, &["territory", "import", file.to_str().unwrap()], None);
    ok(&office, &["team", "create", "t"], None);
    for v in ["amy", "bob"] {
        ok(&office, &["user", "create", v, "--role", "volunteer", "--team", "t", "--password-stdin"], Some(&pw()));
    }
    ok(&office, &["user", "create", "cadre", "--role", "viewer", "--area", "C1", "--password-stdin"], Some(&pw()));
    for (code, _, _, grids) in UNITS {
        for g in 1..=grids {
            ok(&office, &["assign", &format!("{code}-G{g}"), "--team", "t"], None);
        }
    }
    let (amy, bob) = (tmp.join("amy"), tmp.join("bob"));
    for (p, name) in [(&amy, "amy"), (&bob, "bob")] {
        ok(p, &["field", "login", "--server", &url, "--username", name, "--password-stdin"], Some(&pw()));
        ok(p, &["field", "sync"], None);
    }
    let visits = record_visits(&amy, &bob, &places);
    (server, Town { places, visits }, office)
}

/// The expected monthly rows for the month `[start, end)`: (unit, rank, score, visits, places, indicators).
fn check_monthly(rows: &[Value], town: &Town, start: i64, end: i64, threshold: f64) {
    let now = expected_at(&town.places, &town.visits, end);
    let before = expected_at(&town.places, &town.visits, start);
    let units: BTreeSet<&str> = town.places.iter().map(|p| p.unit).collect();
    assert_eq!(rows.len(), units.len(), "one row per unit: {rows:#?}");
    let mut scores = Vec::new();
    for unit in &units {
        let row = rows.iter().find(|r| r["area"] == *unit).unwrap_or_else(|| panic!("no row for {unit}"));
        let mut rates = Vec::new();
        let mut prev_rates = Vec::new();
        let inds = row["indicators"].as_array().unwrap();
        let expected_inds: Vec<&str> =
            IND.iter().copied().filter(|i| now.contains_key(&(unit.to_string(), i.to_string()))).collect();
        let got_inds: Vec<&str> = inds.iter().map(|i| i["indicator"].as_str().unwrap()).collect();
        assert_eq!(got_inds, expected_inds, "{unit}");
        for ind in &expected_inds {
            let key = (unit.to_string(), ind.to_string());
            let (e, r, x) = now[&key];
            let (pe, pr, _) = before[&key];
            let got = inds.iter().find(|i| i["indicator"] == *ind).unwrap();
            assert_eq!(
                (
                    got["eligible"].as_u64().unwrap(),
                    got["reached"].as_u64().unwrap(),
                    got["excluded"].as_u64().unwrap()
                ),
                (e, r, x),
                "{unit}/{ind} at month end"
            );
            assert!(close(got["rate"].as_f64().unwrap(), rate(e, r)), "{unit}/{ind}");
            assert!(close(got["previous_rate"].as_f64().unwrap(), rate(pe, pr)), "{unit}/{ind} previous");
            assert!(close(got["change"].as_f64().unwrap(), rate(e, r) - rate(pe, pr)), "{unit}/{ind} change");
            rates.push(rate(e, r));
            prev_rates.push(rate(pe, pr));
        }
        let score = rates.iter().sum::<f64>() / rates.len() as f64;
        let prev = prev_rates.iter().sum::<f64>() / prev_rates.len() as f64;
        assert!(close(row["score"].as_f64().unwrap(), score), "{unit} score");
        assert!(close(row["score_change"].as_f64().unwrap(), score - prev), "{unit} change");
        assert_eq!(row["laggard"], score < threshold, "{unit} laggard");
        let in_month: Vec<&V> = town
            .visits
            .iter()
            .filter(|v| v.at >= start && v.at < end && town.places.iter().any(|p| p.id == v.place && p.unit == *unit))
            .collect();
        assert_eq!(row["visits"].as_u64().unwrap(), in_month.len() as u64, "{unit} visits");
        let distinct: BTreeSet<&str> = in_month.iter().map(|v| v.place.as_str()).collect();
        assert_eq!(row["places_visited"].as_u64().unwrap(), distinct.len() as u64, "{unit} places");
        scores.push((unit.to_string(), score));
    }
    // Rank: by score (to four decimals) descending, then code; equal scores share a rank.
    let key = |s: f64| (s * 10_000.0).round() as i64;
    scores.sort_by(|a, b| key(b.1).cmp(&key(a.1)).then(a.0.cmp(&b.0)));
    let order: Vec<&str> = rows.iter().map(|r| r["area"].as_str().unwrap()).collect();
    assert_eq!(order, scores.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), "rows in rank order");
    for (i, (unit, s)) in scores.iter().enumerate() {
        let expected = scores.iter().position(|(_, o)| key(*o) == key(*s)).unwrap() + 1;
        let row = rows.iter().find(|r| r["area"] == *unit).unwrap();
        assert_eq!(row["rank"].as_u64().unwrap() as usize, expected, "rank of {unit} (position {i})");
    }
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> (u16, Value) {
    let resp = client.get(url).bearer_auth(token).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn token(client: &reqwest::Client, base: &str, user: &str) -> String {
    let reply: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": user, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["token"].as_str().unwrap().to_string()
}

#[test]
fn monthly_report_and_report_api_match_an_independent_computation() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, town, office) = setup(tmp.path());

    // November in China Standard Time (the default offset).
    let json = ok(&office, &["report", "monthly", "--month", "2026-11", "--area", "T1", "--format", "json"], None);
    let rows: Vec<Value> = serde_json::from_str(&json).unwrap();
    check_monthly(&rows, &town, ms("2026-11-01T00:00:00+08:00"), ms("2026-12-01T00:00:00+08:00"), 0.8);
    assert!(rows.iter().all(|r| r["rank"].is_u64() && r["month"] == "2026-11"));
    assert!(!json.contains("张三") && !json.contains("1380000"), "no contact details in reports");
    // October in UTC, with another threshold: the month's bounds follow the offset.
    let json = ok(
        &office,
        &[
            "report",
            "monthly",
            "--month",
            "2026-10",
            "--utc-offset",
            "+00:00",
            "--threshold",
            "0.3",
            "--format",
            "json",
        ],
        None,
    );
    let rows: Vec<Value> = serde_json::from_str(&json).unwrap();
    check_monthly(&rows, &town, ms("2026-10-01T00:00:00Z"), ms("2026-11-01T00:00:00Z"), 0.3);
    let dec: Vec<Value> =
        serde_json::from_str(&ok(&office, &["report", "monthly", "--month", "2026-12", "--format", "json"], None))
            .unwrap();
    check_monthly(&dec, &town, ms("2026-12-01T00:00:00+08:00"), ms("2027-01-01T00:00:00+08:00"), 0.8);

    // Table, CSV and XLSX carry the same ranking.
    let table = ok(&office, &["report", "monthly", "--month", "2026-11", "--area", "T1"], None);
    assert!(table.contains("太安镇 (T1)") && table.contains("2026-11"), "{table}");
    let csv = ok(&office, &["report", "monthly", "--month", "2026-11", "--format", "csv"], None);
    assert!(
        csv.starts_with(
            "rank,area,name,visits,score,change,handbook,awareness,poster,banner,led,laggard,\
             tasks,tasks done,tasks overdue,median response (min),bulletins read\n"
        ),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + UNITS.len());
    let xlsx = tmp.path().join("monthly.xlsx");
    ok(
        &office,
        &["report", "monthly", "--month", "2026-11", "--format", "xlsx", "--output", xlsx.to_str().unwrap()],
        None,
    );
    {
        use calamine::{Reader, Xlsx};
        let mut wb: Xlsx<_> = calamine::open_workbook(&xlsx).unwrap();
        let sheet = wb.worksheet_range_at(0).unwrap().unwrap();
        let nov: Vec<Value> =
            serde_json::from_str(&ok(&office, &["report", "monthly", "--month", "2026-11", "--format", "json"], None))
                .unwrap();
        assert_eq!(sheet.get_size().0, 1 + nov.len());
        for (i, row) in nov.iter().enumerate() {
            let cells: Vec<String> = (0..4).map(|c| sheet.get((i + 1, c)).unwrap().to_string()).collect();
            assert_eq!(cells[0], row["rank"].to_string());
            assert_eq!(cells[1], row["area"].as_str().unwrap());
            assert_eq!(cells[3], row["visits"].to_string());
        }
    }

    // Bad input: a clear error, non-zero exit.
    let err = fails(&office, &["report", "monthly", "--month", "2026-13"], None);
    assert!(err.contains("not a month such as 2026-11"), "{err}");
    let err = fails(&office, &["report", "monthly", "--month", "2026-11", "--threshold", "2"], None);
    assert!(err.contains("threshold"), "{err}");
    let err = fails(&office, &["report", "monthly", "--month", "2026-11", "--area", "NOPE"], None);
    assert!(err.contains("no area with code"), "{err}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(api_checks(&server.url, &town));
}

async fn api_checks(base: &str, town: &Town) {
    let client = reqwest::Client::new();
    let office = token(&client, base, "office").await;

    // Daily progress: each day's figure is coverage at that day's end (China Standard Time).
    let (status, progress) =
        get(&client, &format!("{base}/api/v1/reports/progress?area=T1&from=2026-10-28&to=2026-12-02"), &office).await;
    assert_eq!(status, 200, "{progress}");
    let series = progress["series"].as_array().unwrap();
    assert_eq!(series.len(), 5);
    for s in series {
        let ind = s["indicator"].as_str().unwrap();
        let points = s["points"].as_array().unwrap();
        assert_eq!(points.len(), 36);
        for p in points {
            let day = chrono::NaiveDate::parse_from_str(p["date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
            let end = ms(&format!("{}T00:00:00+08:00", day.succ_opt().unwrap()));
            let exp = expected_at(&town.places, &town.visits, end);
            let (e, r) =
                exp.iter().filter(|((_, i), _)| i == ind).fold((0, 0), |(e, r), (_, (pe, pr, _))| (e + pe, r + pr));
            assert_eq!((p["eligible"].as_u64().unwrap(), p["reached"].as_u64().unwrap()), (e, r), "{ind} on {day}");
        }
    }

    // Gap lists of a grid, now: missing indicators and revisits.
    let grid = "V1-G1";
    let (status, gaps) = get(&client, &format!("{base}/api/v1/reports/gaps?grid={grid}"), &office).await;
    assert_eq!(status, 200, "{gaps}");
    let (_, revisits) = get(&client, &format!("{base}/api/v1/reports/gaps?grid={grid}&revisit=true"), &office).await;
    let (_, poster) = get(&client, &format!("{base}/api/v1/reports/gaps?grid={grid}&indicator=poster"), &office).await;
    let mut expected_gaps = Vec::new();
    let mut expected_revisits = Vec::new();
    let mut expected_poster = Vec::new();
    for p in town.places.iter().filter(|p| p.grid == grid) {
        let vs: Vec<&V> = town.visits.iter().filter(|v| v.place == p.id).collect();
        let last = vs.iter().max_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        if last.is_some_and(|v| v.outcome == "gone") {
            continue;
        }
        let missing: Vec<&str> =
            (0..5).filter(|&i| eligible(p.kind, p.rural)[i] && !vs.iter().any(|v| v.d[i])).map(|i| IND[i]).collect();
        if missing.is_empty() {
            continue;
        }
        expected_gaps.push((p.id.clone(), missing.clone()));
        if last.is_some_and(|v| v.outcome == "nobody-home" || v.outcome == "refused") {
            expected_revisits.push(p.id.clone());
        }
        if missing.contains(&"poster") {
            expected_poster.push(p.id.clone());
        }
    }
    let got: Vec<(String, Vec<&str>)> = gaps
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["place_id"].as_str().unwrap().to_string(),
                g["missing"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect(),
            )
        })
        .collect();
    assert_eq!(got, expected_gaps);
    let ids = |v: &Value| {
        v.as_array().unwrap().iter().map(|g| g["place_id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&revisits), expected_revisits);
    assert_eq!(ids(&poster), expected_poster);
    assert!(!gaps.to_string().contains("张三"), "no contact names in gap lists");

    // The whole town's gap list, streamed as CSV: every grid's places still to reach, in place order.
    let csv =
        client.get(format!("{base}/api/v1/reports/gaps?area=T1&format=csv")).bearer_auth(&office).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(!csv.contains("张三"), "no contact names in exports");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("place,grid,kind,label,address,missing,reached,excluded,revisit,last visit,last outcome")
    );
    let mut expected_town: Vec<String> = Vec::new();
    for p in &town.places {
        let vs: Vec<&V> = town.visits.iter().filter(|v| v.place == p.id).collect();
        let last = vs.iter().max_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        let missing: Vec<&str> =
            (0..5).filter(|&i| eligible(p.kind, p.rural)[i] && !vs.iter().any(|v| v.d[i])).map(|i| IND[i]).collect();
        if last.is_none_or(|v| v.outcome != "gone") && !missing.is_empty() {
            expected_town.push(format!("{},{},{},", p.id, p.grid, p.kind));
        }
    }
    expected_town.sort();
    let got: Vec<String> = lines.map(|l| l.splitn(4, ',').take(3).collect::<Vec<_>>().join(",") + ",").collect();
    assert_eq!(got, expected_town);

    // Activity per volunteer in November.
    let (status, activity) =
        get(&client, &format!("{base}/api/v1/reports/activity?by=volunteer&from=2026-11-01&to=2026-11-30"), &office)
            .await;
    assert_eq!(status, 200, "{activity}");
    let (start, end) = (ms("2026-11-01T00:00:00+08:00"), ms("2026-12-01T00:00:00+08:00"));
    for who in ["amy", "bob"] {
        let mine: Vec<&V> = town.visits.iter().filter(|v| v.volunteer == who && v.at >= start && v.at < end).collect();
        let row = activity.as_array().unwrap().iter().find(|r| r["key"] == who).unwrap();
        assert_eq!(row["visits"].as_u64().unwrap(), mine.len() as u64, "{who}");
        assert_eq!(row["gone"].as_u64().unwrap(), mine.iter().filter(|v| v.outcome == "gone").count() as u64);
        assert_eq!(row["team"], "t");
    }
    let (_, teams) =
        get(&client, &format!("{base}/api/v1/reports/activity?from=2026-11-01&to=2026-11-30"), &office).await;
    let in_nov = town.visits.iter().filter(|v| v.at >= start && v.at < end).count() as u64;
    assert_eq!(teams[0]["key"], "t");
    assert_eq!(teams[0]["visits"].as_u64().unwrap(), in_nov);

    // A viewer of C1 sees C1 only, and nothing outside it.
    let cadre = token(&client, base, "cadre").await;
    let (status, mine) = get(&client, &format!("{base}/api/v1/reports/monthly?month=2026-11"), &cadre).await;
    assert_eq!(status, 200, "{mine}");
    let areas: Vec<&str> = mine["rows"].as_array().unwrap().iter().map(|r| r["area"].as_str().unwrap()).collect();
    assert_eq!(areas, ["C1"]);
    for url in [
        "/api/v1/reports/monthly?month=2026-11&area=T1",
        "/api/v1/reports/gaps?grid=V1-G1",
        "/api/v1/reports/progress?area=V2",
        "/api/v1/reports/activity?area=T1",
    ] {
        let (status, body) = get(&client, &format!("{base}{url}"), &cadre).await;
        assert_eq!(status, 403, "{url}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    // Bad parameters: one JSON error body.
    for (url, code) in [
        ("/api/v1/reports/monthly", 400),
        ("/api/v1/reports/monthly?month=11-2026", 400),
        ("/api/v1/reports/monthly?month=2026-11&utc_offset=8", 400),
        ("/api/v1/reports/gaps?grid=NOPE", 404),
        ("/api/v1/reports/gaps?grid=V1", 400),
        ("/api/v1/reports/gaps?grid=V1-G1&indicator=flyer", 400),
        ("/api/v1/reports/progress?from=2026-12-01&to=2026-11-01", 400),
        ("/api/v1/reports/progress?from=2020-01-01&to=2026-11-01", 400),
        ("/api/v1/reports/activity?by=town", 400),
    ] {
        let (status, body) = get(&client, &format!("{base}{url}"), &office).await;
        assert_eq!(status, code, "{url}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{url}: {body}");
    }
}
