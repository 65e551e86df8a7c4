//! Places found in the field: volunteers add places the registry lacks and propose corrections offline; the
//! places count in coverage once synced; the office confirms, rejects or merges a duplicate into the place it
//! duplicates (its visits move with it and coverage follows), on the server and on every device.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

const TERRITORY: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name,address\n\
H1,household,1组1号,G1,一网格,V1,龙凤村,village,T1,太安镇,龙凤村1组1号\n\
H2,household,1组2号,G1,一网格,V1,龙凤村,village,T1,太安镇,\n\
S1,shop,小卖部,G1,一网格,V1,龙凤村,village,T1,太安镇,\n\
H9,household,9号,G2,二网格,V1,龙凤村,village,T1,太安镇,\n";

fn places(profile: &Path) -> Vec<Value> {
    serde_json::from_str(&ok(profile, &["field", "places", "--format", "json"], None)).unwrap()
}

fn place<'a>(list: &'a [Value], id: &str) -> Option<&'a Value> {
    list.iter().find(|p| p["place_id"] == id)
}

#[test]
fn found_places_count_once_synced_and_a_merge_moves_their_visits() {
    let tmp = tempfile::tempdir().unwrap();
    let Town { server, data, office } = town(tmp.path(), TERRITORY);
    let url = server.url.clone();
    ok(&office, &["team", "create", "east"], None);
    ok(&office, &["assign", "G1", "--team", "east"], None);
    ok(&office, &["assign", "G2", "--team", "east"], None);
    let (v1, v2) = (tmp.path().join("v1"), tmp.path().join("v2"));
    for (profile, name) in [(&v1, "v1"), (&v2, "v2")] {
        ok(
            &office,
            &["user", "create", name, "--role", "volunteer", "--team", "east", "--password-stdin"],
            Some(&pw()),
        );
        ok(profile, &["field", "login", "--server", &url, "--username", name, "--password-stdin"], Some(&pw()));
        ok(profile, &["field", "sync"], None);
    }
    let before = coverage(&office, "town", None);
    assert_eq!(figure(&before, "T1", "handbook"), (4, 0, 0));

    // Bad input is refused in plain words and records nothing.
    let add = |p: &Path, args: &[&str]| {
        let mut all = vec!["field", "add-place"];
        all.extend_from_slice(args);
        ok(p, &all, None).trim().to_string()
    };
    let err = fails(&v1, &["field", "add-place", "--grid", "G1", "--kind", "castle", "--label", "x"], None);
    assert!(err.contains("unknown place kind \"castle\"") && err.contains("household (户)"), "{err}");
    let err = fails(&v1, &["field", "add-place", "--grid", "G1", "--kind", "户", "--label", "  "], None);
    assert!(err.contains("--label is empty"), "{err}");
    let err = fails(&v1, &["field", "add-place", "--grid", "G7", "--kind", "shop", "--label", "x"], None);
    assert!(err.contains("grid G7 is not on this device"), "{err}");
    let err =
        fails(&v1, &["field", "add-place", "--grid", "G1", "--kind", "shop", "--label", "x", "--gps", "95,1"], None);
    assert!(err.contains("outside the valid range"), "{err}");
    let err = fails(&v2, &["field", "correct", "H2"], None);
    assert!(err.contains("give the corrected --label, --address or both"), "{err}");

    // Offline: a new house, a duplicate of H1 under another name, and something that is not a place.
    let new_house = add(&v1, &["--grid", "G1", "--kind", "household", "--label", "桥边新房", "--gps", "30.18,105.83"]);
    assert!(new_house.starts_with("F-"), "{new_house}");
    let duplicate = add(&v2, &["--grid", "G1", "--kind", "户", "--label", "张家 (1组)", "--address", "龙凤村1组"]);
    let shed = add(&v1, &["--grid", "G1", "--kind", "household", "--label", "猪圈"]);
    ok(&v1, &["field", "visit", &new_house, "--handbook"], None);
    ok(&v1, &["field", "visit", &shed, "--handbook"], None);
    ok(&v2, &["field", "visit", &duplicate, "--handbook", "--briefed", "--poster"], None);
    let correction = ok(&v2, &["field", "correct", "H2", "--label", "1组2号 王家"], None).trim().to_string();
    let on_device = places(&v1);
    assert_eq!(place(&on_device, &new_house).unwrap()["awaiting_review"], true);
    assert!(ok(&v1, &["field", "places"], None).contains("(new, awaiting review)"));
    for p in [&v1, &v2] {
        ok(p, &["field", "sync"], None);
    }

    // Once synced they count: three more households, each reached.
    let town = coverage(&office, "town", None);
    assert_eq!(figure(&town, "T1", "handbook"), (7, 3, 0));
    assert_eq!(figure(&town, "T1", "poster"), (6, 1, 0), "rural households: H1 H2 H9 and the three found");
    let review: Value = serde_json::from_str(&ok(&office, &["place", "review", "--format", "json"], None)).unwrap();
    let pending: Vec<&str> =
        review["places"].as_array().unwrap().iter().map(|p| p["place_id"].as_str().unwrap()).collect();
    assert_eq!(pending.len(), 3, "{review}");
    assert!([&new_house, &duplicate, &shed].iter().all(|id| pending.contains(&id.as_str())), "{review}");
    let found = review["places"].as_array().unwrap().iter().find(|p| p["place_id"] == new_house.as_str()).unwrap();
    assert_eq!(
        (found["added_by"].as_str(), found["lat"].as_f64(), found["visits"].as_i64()),
        (Some("v1"), Some(30.18), Some(1))
    );
    assert_eq!(review["corrections"][0]["correction_id"], correction.as_str());
    assert_eq!(review["corrections"][0]["current_label"], "1组2号");
    let table = ok(&office, &["place", "review"], None);
    assert!(table.contains("桥边新房") && table.contains("1组2号 王家"), "{table}");

    // Decisions that cannot be made are refused and change nothing.
    let err = fails(&office, &["place", "merge", &duplicate, "--into", "H9"], None);
    assert!(err.contains("merge only within a grid"), "{err}");
    let err = fails(&office, &["place", "merge", &duplicate, "--into", "NOPE"], None);
    assert!(err.contains("no place NOPE"), "{err}");
    let err = fails(&office, &["place", "confirm", "H1"], None);
    assert!(err.contains("neither a place found in the field"), "{err}");
    assert_eq!(coverage(&office, "town", None), town);

    ok(&office, &["place", "confirm", &new_house], None);
    ok(&office, &["place", "merge", &duplicate, "--into", "H1"], None);
    ok(&office, &["place", "reject", &shed], None);
    ok(&office, &["place", "confirm", &correction], None);
    let err = fails(&office, &["place", "reject", &new_house], None);
    assert!(err.contains("already reviewed"), "{err}");

    // Coverage follows: the duplicate's visit now reaches H1; the shed left the denominator.
    let town = coverage(&office, "town", None);
    assert_eq!(figure(&town, "T1", "handbook"), (5, 2, 0), "H1 (by the merged visit) and the new house");
    assert_eq!(figure(&town, "T1", "awareness"), (5, 1, 0));
    assert_eq!(figure(&town, "T1", "poster"), (4, 1, 0));
    let gaps = ok(&office, &["report", "gaps", "--grid", "G1", "--format", "json"], None);
    assert!(!gaps.contains(&shed) && !gaps.contains(&duplicate) && !gaps.contains("\"H1\""), "{gaps}");
    let review: Value = serde_json::from_str(&ok(&office, &["place", "review", "--format", "json"], None)).unwrap();
    assert_eq!((review["places"].as_array().unwrap().len(), review["corrections"].as_array().unwrap().len()), (0, 0));
    let visits = db_pairs(&data, "SELECT visit_id, place_id FROM visits ORDER BY visit_id");
    assert_eq!(visits.len(), 3, "every visit is kept: {visits:?}");
    let audit = ok(&office, &["audit", "--format", "json"], None);
    assert!(audit.contains("place.review") && audit.contains(&format!("{duplicate} merged into H1")), "{audit}");
    assert!(audit.contains("correction.review"), "{audit}");

    // v2 has not heard of the merge yet and visits the duplicate again: the visit counts for H1.
    ok(&v2, &["field", "visit", &duplicate, "--outcome", "gone"], None);
    ok(&v2, &["field", "sync"], None);
    let town = coverage(&office, "town", None);
    assert_eq!(figure(&town, "T1", "handbook"), (4, 1, 1), "H1 is now gone: its last visit, made at the duplicate");
    let moved = db_pairs(&data, "SELECT recorded_place_id, place_id FROM visits WHERE recorded_place_id IS NOT NULL");
    assert_eq!(moved, vec![(duplicate.clone(), "H1".to_string()); 2], "recorded at the duplicate, counted for H1");

    // Every device follows the office's decisions.
    ok(&v1, &["field", "sync"], None);
    for p in [&v1, &v2] {
        let list = places(p);
        assert!(place(&list, &duplicate).is_none() && place(&list, &shed).is_none(), "{list:?}");
        let h1 = place(&list, "H1").unwrap();
        assert_eq!((h1["visits"].as_u64(), h1["excluded"].as_bool()), (Some(2), Some(true)));
        assert_eq!(place(&list, &new_house).unwrap()["awaiting_review"], false);
        assert_eq!(place(&list, "H2").unwrap()["label"], "1组2号 王家");
    }
    // A later visit typed for the duplicate is recorded for the place it duplicates; the rejected one is refused.
    let err = fails(&v1, &["field", "visit", &shed, "--handbook"], None);
    assert!(err.contains("is not a place"), "{err}");
    let out = run(&v1, &["field", "visit", &duplicate, "--briefed"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("duplicate of H1"));
    assert_eq!(place(&places(&v1), "H1").unwrap()["visits"], 3);
}

/// A volunteer who enrols the device again before syncing keeps everything recorded under the earlier
/// enrolment: found places, corrections (also of a found place) and visits (also to a found place) are written
/// again under the new enrolment, reach the server once, and the device syncs cleanly afterwards.
#[test]
fn re_enrolment_carries_unsynced_found_places_corrections_and_visits() {
    let tmp = tempfile::tempdir().unwrap();
    let Town { server, data, office } = town(tmp.path(), TERRITORY);
    let url = server.url.clone();
    ok(&office, &["team", "create", "east"], None);
    ok(&office, &["assign", "G1", "--team", "east"], None);
    ok(&office, &["user", "create", "v1", "--role", "volunteer", "--team", "east", "--password-stdin"], Some(&pw()));
    let v1 = tmp.path().join("v1");
    let login = ["field", "login", "--server", &url, "--username", "v1", "--password-stdin"];
    ok(&v1, &login, Some(&pw()));
    ok(&v1, &["field", "sync"], None);
    let first_device = device_id(&v1);

    // Offline, then the phone is enrolled again before any of it was synced.
    let found = ok(&v1, &["field", "add-place", "--grid", "G1", "--kind", "household", "--label", "新房"], None);
    let found = found.trim().to_string();
    ok(&v1, &["field", "visit", &found, "--handbook", "--briefed"], None);
    ok(&v1, &["field", "visit", "H1", "--handbook"], None);
    ok(&v1, &["field", "correct", "H2", "--label", "1组2号 王家"], None);
    ok(&v1, &["field", "correct", &found, "--address", "龙凤村1组"], None);
    let out = run(&v1, &login, Some(&pw()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("5 unsynced records"), "{out:?}");
    let second_device = device_id(&v1);
    assert_ne!(first_device, second_device);

    ok(&v1, &["field", "sync"], None);
    let town = coverage(&office, "town", None);
    assert_eq!(figure(&town, "T1", "handbook"), (5, 2, 0), "H1, H2, S1, H9 and the found place; H1 and it reached");
    let review: Value = serde_json::from_str(&ok(&office, &["place", "review", "--format", "json"], None)).unwrap();
    let places_pending: Vec<&Value> = review["places"].as_array().unwrap().iter().collect();
    assert_eq!(places_pending.len(), 1, "{review}");
    assert_eq!(places_pending[0]["place_id"], found.as_str());
    assert_eq!(places_pending[0]["visits"], 1);
    let corrections = review["corrections"].as_array().unwrap();
    let mut corrected: Vec<&str> = corrections.iter().map(|c| c["place_id"].as_str().unwrap()).collect();
    corrected.sort();
    let mut expected = vec!["H2", found.as_str()];
    expected.sort();
    assert_eq!(corrected, expected, "{review}");
    // Every record is the new enrolment's; nothing came twice.
    let visits = db_pairs(&data, "SELECT place_id, device_id FROM visits ORDER BY place_id");
    let mut want = vec![(found.clone(), second_device.clone()), ("H1".to_string(), second_device.clone())];
    want.sort();
    assert_eq!(visits, want);
    let status = ok(&v1, &["field", "sync"], None);
    assert!(status.contains("sent 0 changes"), "{status}");
}

fn device_id(profile: &Path) -> String {
    let device: Value = serde_json::from_slice(&std::fs::read(profile.join("device.json")).unwrap()).unwrap();
    device["device_id"].as_str().unwrap().to_string()
}
