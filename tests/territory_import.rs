//! Territory import of a file larger than one chunk of work: imported, visited, then imported again with changes
//! of every kind (kinds, labels, addresses, coordinates, contacts, new places, a grid moved to a village of the
//! other kind, a village renamed). The coverage counts per grid, village and town equal a recomputation from the
//! file and the visits with the coverage rules, a device sees exactly the imported places, visits synced during
//! the import are all counted, and a dry run or a file with an error in its last grid changes nothing.

mod common;
use client_core::campaign::Campaign;
use client_core::grid::model::{Deliveries, Outcome, PlaceKind, Visit};
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// More places than the import applies in one chunk, so that the file is applied in several.
const GRIDS: usize = 250;
const PLACES_PER_GRID: usize = 100;
const VILLAGES_PER_TOWN: usize = 5;
const GRIDS_PER_VILLAGE: usize = 25;

#[derive(Clone, Debug)]
struct Row {
    id: String,
    kind: PlaceKind,
    label: String,
    grid: String,
    village: String,
    village_name: String,
    rural: bool,
    town: String,
    address: Option<String>,
    contact_phone: Option<String>,
    coordinates: Option<(f64, f64)>,
}

const HEADER: &str = "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,\
                      town_name,address,contact_name,contact_phone,lat,lon\n";

fn kind_at(i: usize, rural: bool) -> PlaceKind {
    match i {
        _ if i.is_multiple_of(50) => {
            if rural {
                PlaceKind::Market
            } else {
                PlaceKind::ResidentialComplex
            }
        }
        _ if i % 25 == 1 => PlaceKind::Shop,
        _ if i % 40 == 2 => PlaceKind::LedScreen,
        _ if !rural && i % 10 == 3 => PlaceKind::Building,
        _ if !rural && i % 30 == 4 => PlaceKind::StreetBlock,
        _ if i % 60 == 5 => PlaceKind::ScenicSpot,
        _ if i % 60 == 6 => PlaceKind::PedestrianStreet,
        _ => PlaceKind::Household,
    }
}

fn grid_code(g: usize) -> String {
    format!("G{g:03}")
}

/// Villages V1, V2, … : the first three of each town's five rural, the other two urban communities.
fn village(v: usize) -> (String, String, bool) {
    let rural = v % VILLAGES_PER_TOWN < 3;
    (format!("V{}", v + 1), format!("{}{}", if rural { "村" } else { "社区" }, v + 1), rural)
}

fn territory() -> Vec<Row> {
    let mut rows = Vec::new();
    for g in 0..GRIDS {
        let v = g / GRIDS_PER_VILLAGE;
        let (village, village_name, rural) = village(v);
        for i in 0..PLACES_PER_GRID {
            let n = rows.len();
            rows.push(Row {
                id: format!("{}-P{i:03}", grid_code(g)),
                kind: kind_at(i, rural),
                label: format!("{}号", i + 1),
                grid: grid_code(g),
                village: village.clone(),
                village_name: village_name.clone(),
                rural,
                town: format!("T{}", v / VILLAGES_PER_TOWN + 1),
                address: Some(format!("{village_name}{}号", i + 1)),
                contact_phone: (n % 7 == 0).then(|| format!("139{n:08}")),
                coordinates: Some((30.0 + n as f64 / 1e5, 105.0 + i as f64 / 1e4)),
            });
        }
    }
    rows
}

fn csv(rows: &[Row]) -> String {
    let mut out = String::from(HEADER);
    for r in rows {
        let (lat, lon) = r.coordinates.map_or((String::new(), String::new()), |(a, b)| (a.to_string(), b.to_string()));
        let kind = if r.rural { "village" } else { "community" };
        out.push_str(&format!(
            "{},{},{},{},网格{},{},{},{kind},{},镇{},{},{},{},{lat},{lon}\n",
            r.id,
            r.kind.id(),
            r.label,
            r.grid,
            r.grid,
            r.village,
            r.village_name,
            r.town,
            r.town,
            r.address.as_deref().unwrap_or(""),
            if r.contact_phone.is_some() { "联系人" } else { "" },
            r.contact_phone.as_deref().unwrap_or(""),
        ));
    }
    out
}

/// The grid moved to a village of the other kind, and the grid whose visited places change kind.
const MOVED: &str = "G001";
const RECOUNTED: &str = "G080";

/// The second file and how many places in it are new or changed.
fn changed(rows: &[Row]) -> (Vec<Row>, usize, usize) {
    let (mut added, mut changed) = (0, 0);
    let mut out = Vec::new();
    // Rural V1's grid G001 moves to urban V4 (of the same town); village V2 is renamed.
    let (to, to_name, to_rural) = village(3);
    for (n, r) in rows.iter().enumerate() {
        let mut r = r.clone();
        let before = (r.kind, r.label.clone(), r.address.clone(), r.coordinates);
        if r.grid == MOVED {
            (r.village, r.village_name, r.rural) = (to.clone(), to_name.clone(), to_rural);
        }
        if r.village == "V2" {
            r.village_name.push('新');
        }
        if r.grid == RECOUNTED && r.kind != PlaceKind::Household {
            r.kind = PlaceKind::Household;
        }
        if n % 97 == 0 {
            r.label.push('改');
        }
        if n % 89 == 0 {
            r.address = None;
        }
        if n % 101 == 0 {
            r.coordinates = None;
        }
        if n % 11 == 0 {
            r.contact_phone = if r.contact_phone.is_some() { None } else { Some(format!("137{n:08}")) };
        }
        changed += usize::from(before != (r.kind, r.label.clone(), r.address.clone(), r.coordinates));
        let last_of_grid = rows.get(n + 1).is_none_or(|next| next.grid != r.grid);
        let grid = r.grid.clone();
        out.push(r.clone());
        if last_of_grid && (grid == MOVED || grid == RECOUNTED || grid == "G200") {
            added += 1;
            out.push(Row { id: format!("{grid}-NEW"), kind: PlaceKind::Household, label: "新户".into(), ..r });
        }
    }
    (out, added, changed)
}

/// A visit as the test records it with the CLI, and as the coverage rules see it.
struct Recorded {
    place: &'static str,
    flags: &'static [&'static str],
    outcome: Outcome,
}

const VISITS: &[Recorded] = &[
    // In the grid that moves from a village to a community: households lose the poster.
    Recorded { place: "G001-P007", flags: &["--handbook", "--briefed", "--poster"], outcome: Outcome::Completed },
    Recorded { place: "G001-P008", flags: &["--poster"], outcome: Outcome::Completed },
    Recorded { place: "G001-P009", flags: &[], outcome: Outcome::Gone },
    Recorded { place: "G001-P000", flags: &["--banner"], outcome: Outcome::Completed },
    // In the grid whose shops, buildings and other places become households.
    Recorded { place: "G080-P001", flags: &["--handbook", "--briefed"], outcome: Outcome::Completed },
    Recorded { place: "G080-P003", flags: &["--poster", "--handbook"], outcome: Outcome::Completed },
    Recorded { place: "G080-P002", flags: &["--led-playing"], outcome: Outcome::Completed },
    Recorded { place: "G080-P026", flags: &[], outcome: Outcome::Gone },
    Recorded { place: "G080-P013", flags: &["--poster"], outcome: Outcome::NobodyHome },
];

fn as_visits(recorded: &[Recorded]) -> BTreeMap<&'static str, Visit> {
    recorded
        .iter()
        .map(|r| {
            let has = |f: &str| r.flags.contains(&f);
            let deliveries = Deliveries::of_flags([
                has("--handbook"),
                has("--briefed"),
                has("--poster"),
                has("--banner"),
                has("--led-playing"),
            ]);
            let visit = Visit {
                id: uuid::Uuid::now_v7(),
                place_id: r.place.into(),
                volunteer: "vol".into(),
                device: String::new(),
                at: chrono::Utc::now(),
                outcome: r.outcome,
                deliveries,
                note: None,
                gps: None,
                photos: Vec::new(),
            };
            (r.place, visit)
        })
        .collect()
}

/// `(area, indicator) -> (eligible, reached, excluded)` recomputed from the rows and the visits with the rules.
fn expected(rows: &[Row], recorded: &[Recorded], by: &str) -> BTreeMap<(String, String), (u64, u64, u64)> {
    let visits = as_visits(recorded);
    let mut areas: BTreeMap<String, Vec<(PlaceKind, bool, client_core::grid::coverage::PlaceCoverage)>> =
        BTreeMap::new();
    for r in rows {
        let area = match by {
            "grid" => r.grid.clone(),
            "village" => r.village.clone(),
            _ => r.town.clone(),
        };
        let cov = Campaign::default_campaign().place_coverage(r.kind, r.rural, visits.get(r.id.as_str()));
        areas.entry(area).or_default().push((r.kind, r.rural, cov));
    }
    let mut out = BTreeMap::new();
    for (area, places) in areas {
        for f in Campaign::default_campaign().summarize(places.iter().map(|(k, r, c)| (*k, *r, c))) {
            out.insert((area.clone(), f.indicator.to_string()), (f.eligible, f.reached, f.excluded));
        }
    }
    out
}

fn reported(office: &Path, by: &str) -> BTreeMap<(String, String), (u64, u64, u64)> {
    coverage(office, by, None)
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap();
            let key = (r["area"].as_str().unwrap().to_string(), r["indicator"].as_str().unwrap().to_string());
            (key, (n("eligible"), n("reached"), n("excluded")))
        })
        .filter(|(_, figures)| *figures != (0, 0, 0))
        .collect()
}

fn assert_counts(office: &Path, rows: &[Row], recorded: &[Recorded], when: &str) {
    for by in ["grid", "village", "town"] {
        let (expected, reported) = (expected(rows, recorded, by), reported(office, by));
        if expected != reported {
            let wrong: Vec<_> = expected
                .iter()
                .filter(|(k, v)| reported.get(*k) != Some(*v))
                .map(|(k, v)| format!("{k:?}: expected {v:?}, reported {:?}", reported.get(k)))
                .chain(reported.keys().filter(|k| !expected.contains_key(*k)).map(|k| format!("{k:?}: unexpected")))
                .take(10)
                .collect();
            panic!("{when}: coverage by {by} differs from the file and the visits: {wrong:#?}");
        }
    }
}

/// What the device shows for its grids: `place_id -> (grid, kind, label, address, reached, missing, excluded)`.
type DevicePlace = (String, String, String, Option<String>, Vec<String>, Vec<String>, bool);

fn device_places(vol: &Path) -> BTreeMap<String, DevicePlace> {
    let json = ok(vol, &["field", "places", "--format", "json"], None);
    let lines: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
    };
    lines
        .iter()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap().to_string();
            let place = (
                s("grid"),
                s("kind"),
                s("label"),
                l["address"].as_str().map(str::to_string),
                strings(&l["reached"]),
                strings(&l["missing"]),
                l["excluded"].as_bool().unwrap(),
            );
            (s("place_id"), place)
        })
        .collect()
}

fn expected_device_places(rows: &[Row]) -> BTreeMap<String, DevicePlace> {
    let visits = as_visits(VISITS);
    rows.iter()
        .filter(|r| r.grid == MOVED || r.grid == RECOUNTED)
        .map(|r| {
            let cov = Campaign::default_campaign().place_coverage(r.kind, r.rural, visits.get(r.id.as_str()));
            let names = |v: &[String]| v.to_vec();
            let place = (
                r.grid.clone(),
                r.kind.id().to_string(),
                r.label.clone(),
                r.address.clone(),
                names(&cov.reached),
                names(&cov.missing),
                cov.excluded,
            );
            (r.id.clone(), place)
        })
        .collect()
}

fn contacts(data_dir: &Path) -> BTreeSet<(String, String)> {
    db_pairs(data_dir, "SELECT place_id, contact_phone FROM place_contacts").into_iter().collect()
}

fn expected_contacts(rows: &[Row]) -> BTreeSet<(String, String)> {
    rows.iter().filter_map(|r| Some((r.id.clone(), r.contact_phone.clone()?))).collect()
}

fn record(vol: &Path, visits: &[Recorded]) {
    for visit in visits {
        let mut args = vec!["field", "visit", visit.place, "--outcome", visit.outcome.id()];
        args.extend(visit.flags);
        ok(vol, &args, None);
    }
}

fn import(office: &Path, dir: &Path, name: &str, text: &str, extra: &[&str]) -> std::process::Output {
    let file = write_file(dir, name, text.as_bytes());
    let mut args = vec!["territory", "import", file.to_str().unwrap()];
    args.extend(extra);
    run(office, &args, None)
}

fn stdout_of(out: &std::process::Output) -> String {
    assert!(out.status.success(), "import failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn import_and_reimport_keep_counts_and_devices_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, office, vol) = (tmp.path().join("data"), tmp.path().join("office"), tmp.path().join("vol"));
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));

    let first = territory();
    let text = stdout_of(&import(&office, tmp.path(), "first.csv", &csv(&first), &[]));
    let places = GRIDS * PLACES_PER_GRID;
    assert!(
        text.contains(&format!("{places} places added, 0 changed")) && text.contains("250 grids updated"),
        "{text}"
    );
    assert_eq!(contacts(&data), expected_contacts(&first));

    ok(&office, &["team", "create", "t"], None);
    for grid in [MOVED, RECOUNTED] {
        ok(&office, &["assign", grid, "--team", "t"], None);
    }
    ok(&office, &["user", "create", "vol", "--role", "volunteer", "--team", "t", "--password-stdin"], Some(&pw()));
    ok(&vol, &["field", "login", "--server", &server.url, "--username", "vol", "--password-stdin"], Some(&pw()));
    ok(&vol, &["field", "sync"], None);
    assert_eq!(device_places(&vol).keys().len(), 2 * PLACES_PER_GRID);
    // Some visits are synced now; the others are recorded now and synced while the second file is imported.
    let (early, late) = VISITS.split_at(VISITS.len() - 3);
    record(&vol, early);
    ok(&vol, &["field", "sync"], None);
    assert_counts(&office, &first, early, "after the first import and the visits");

    let (second, added, changed) = changed(&first);
    assert!(changed > 200 && added == 3, "{changed} changed, {added} added");
    // A dry run reports the changes and applies none.
    let dry = stdout_of(&import(&office, tmp.path(), "second.csv", &csv(&second), &["--dry-run"]));
    assert!(dry.contains(&format!("{added} places added, {changed} changed")), "{dry}");
    assert_counts(&office, &first, early, "after a dry run");
    // A place of the first grid moved to the last one, on the file's last line: it is found after the other
    // grids were applied inside the transaction, and the whole file is refused.
    let mut moving = second.clone();
    let moved = moving.remove(0);
    moving.push(Row { id: moved.id.clone(), ..moving.last().unwrap().clone() });
    let refused = import(&office, tmp.path(), "moving.csv", &csv(&moving), &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a place moving to another grid must be refused");
    let line = moving.len() + 1;
    assert!(err.contains(&format!("line {line}: place {} already belongs to grid G000", moved.id)), "{err}");
    assert_counts(&office, &first, early, "after a refused file");
    assert_eq!(contacts(&data), expected_contacts(&first));

    record(&vol, late);
    let importing = {
        let (office, dir, text) = (office.clone(), tmp.path().to_path_buf(), csv(&second));
        std::thread::spawn(move || import(&office, &dir, "second.csv", &text, &[]))
    };
    // Syncing the device's grids while they are being imported: the sync waits for the import or goes first.
    std::thread::sleep(std::time::Duration::from_millis(300));
    ok(&vol, &["field", "sync"], None);
    let text = stdout_of(&importing.join().unwrap());
    assert!(text.contains(&format!("{added} places added, {changed} changed")), "{text}");
    assert_counts(&office, &second, VISITS, "after the re-import");
    assert_eq!(contacts(&data), expected_contacts(&second));

    // The device receives the registry as imported: places, kinds, labels, and the grid's new village kind in
    // what it counts.
    ok(&vol, &["field", "sync"], None);
    assert_eq!(device_places(&vol), expected_device_places(&second));

    let again = stdout_of(&import(&office, tmp.path(), "second.csv", &csv(&second), &[]));
    assert!(again.contains("0 places added, 0 changed") && again.contains("0 grids updated"), "{again}");
    assert_counts(&office, &second, VISITS, "after importing the same file again");
}
