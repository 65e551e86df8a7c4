//! One-time enrolment codes end to end, with the real binary: the office or a lead issues them, a phone enrols
//! with one (CLI `field login --code`, and through a team hub), and a code works once, for its person, until it
//! expires or is withdrawn; every refusal changes nothing and is audited.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

const TERRITORY: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name
H1,household,1 Elm,G1,g1,V1,v1,village,T1,t
H2,household,2 Elm,G1,g1,V1,v1,village,T1,t
H3,household,3 Oak,G2,g2,V1,v1,village,T1,t
";

fn json(profile: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    serde_json::from_str(&ok(profile, &all, None)).unwrap()
}

fn codes(profile: &Path) -> Vec<Value> {
    json(profile, &["enrolment", "list"]).as_array().unwrap().clone()
}

/// The state of `username`'s codes in the listing, newest first.
fn states(profile: &Path, username: &str) -> Vec<String> {
    codes(profile)
        .iter()
        .filter(|c| c["username"] == username)
        .map(|c| c["state"].as_str().unwrap().to_string())
        .collect()
}

fn setup(dir: &Path) -> Town {
    let town = town(dir, TERRITORY);
    let office = &town.office;
    ok(office, &["user", "create", "lead", "--role", "lead", "--password-stdin"], Some(&pw()));
    ok(office, &["team", "create", "east", "--lead", "lead"], None);
    ok(office, &["team", "create", "west"], None);
    ok(office, &["assign", "G1", "--team", "east"], None);
    ok(office, &["assign", "G2", "--team", "west"], None);
    for (name, team) in [("vol", "east"), ("vol2", "east"), ("wes", "west")] {
        let args = ["user", "create", name, "--role", "volunteer", "--team", team, "--password-stdin"];
        ok(office, &args, Some(&pw()));
    }
    ok(office, &["user", "create", "cadre", "--role", "viewer", "--password-stdin"], Some(&pw()));
    town
}

#[test]
fn a_phone_enrols_with_its_code_once_and_records_a_visit() {
    let tmp = tempfile::tempdir().unwrap();
    let town = setup(tmp.path());
    let office = &town.office;
    let issued = json(office, &["enrolment", "issue", "--user", "vol", "--hours", "8"]);
    let entry = &issued[0];
    let code = entry["code"].as_str().unwrap();
    assert_eq!(entry["username"], "vol");
    assert_eq!(entry["team"], "east");
    assert_eq!(entry["url"].as_str().unwrap(), format!("{}/field/#/enrol/{code}", town.server.url));
    let hours = (entry["expires_at"].as_i64().unwrap() - chrono::Utc::now().timestamp_millis()) as f64 / 3.6e6;
    assert!((7.9..=8.0).contains(&hours), "valid for 8 hours, not {hours}");
    // Only the digest is stored: the code itself is nowhere in the database.
    let stored = db_pairs(&town.data, "SELECT id, code_hash FROM enrolment_codes");
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].1.contains(code) && stored[0].1.len() == 64);

    // Typed from paper: lower case, spaces instead of dashes.
    let phone = tmp.path().join("phone");
    let typed = code.to_lowercase().replace('-', " ");
    ok(
        &phone,
        &["field", "login", "--server", &town.server.url, "--code", &typed, "--device-name", "vol's phone"],
        None,
    );
    ok(&phone, &["field", "sync"], None);
    let places: Value = serde_json::from_str(&ok(&phone, &["field", "places", "--format", "json"], None)).unwrap();
    let ids: Vec<&str> = places.as_array().unwrap().iter().map(|p| p["place_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["H1", "H2"], "the phone holds its team's grid, as with a password");
    ok(&phone, &["field", "visit", "H1", "--handbook"], None);
    ok(&phone, &["field", "sync"], None);
    assert_eq!(figure(&coverage(office, "village", None), "V1", "handbook").1, 1);

    // Once only: a second phone with the same code is refused, and enrols nothing.
    let devices_before = json(office, &["device", "list"]).as_array().unwrap().len();
    let other = tmp.path().join("other");
    let err = fails(&other, &["field", "login", "--server", &town.server.url, "--code", code], None);
    assert!(err.contains("used already"), "{err}");
    assert_eq!(json(office, &["device", "list"]).as_array().unwrap().len(), devices_before);
    assert!(!other.join("device.json").exists());
    let listed = codes(office);
    assert_eq!(listed[0]["state"], "used");
    let device: Value = serde_json::from_slice(&std::fs::read(phone.join("device.json")).unwrap()).unwrap();
    assert_eq!(listed[0]["device_id"], device["device_id"]);

    // A code nobody issued, and no code at all, are refused with words a person can act on.
    let err =
        fails(&other, &["field", "login", "--server", &town.server.url, "--code", "AAAAA-BBBBB-CCCCC-DDDDD"], None);
    assert!(err.contains("not known"), "{err}");

    let audit = ok(office, &["audit", "--action", "enrolment", "--format", "json"], None);
    assert!(audit.contains("enrolment.code.issue") && audit.contains("enrolment.code.refused"), "{audit}");
    let enrolled = ok(office, &["audit", "--action", "device.enrol", "--user", "vol", "--format", "json"], None);
    assert!(enrolled.contains("with enrolment code"), "{enrolled}");
}

#[test]
fn a_new_sheet_withdraws_the_earlier_codes_and_a_withdrawn_code_enrols_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let town = setup(tmp.path());
    let office = &town.office;
    let first = json(office, &["enrolment", "issue", "--team", "east"]);
    let names: Vec<&str> = first.as_array().unwrap().iter().map(|c| c["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["lead", "vol", "vol2"], "a team's sheet covers its active volunteers and its lead");
    let old_code = first[1]["code"].as_str().unwrap().to_string();
    let second = json(office, &["enrolment", "issue", "--user", "vol"]);
    assert_eq!(states(office, "vol"), ["unused", "revoked"]);
    let phone = tmp.path().join("phone");
    let err = fails(&phone, &["field", "login", "--server", &town.server.url, "--code", &old_code], None);
    assert!(err.contains("withdrawn"), "{err}");

    // Withdrawn by hand: the office lists the code and revokes it; it no longer enrols.
    let id = codes(office).iter().find(|c| c["username"] == "vol" && c["state"] == "unused").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(office, &["enrolment", "revoke", &id], None);
    let err = fails(office, &["enrolment", "revoke", &id], None);
    assert!(err.contains("used or withdrawn already"), "{err}");
    let new_code = second[0]["code"].as_str().unwrap();
    let err = fails(&phone, &["field", "login", "--server", &town.server.url, "--code", new_code], None);
    assert!(err.contains("withdrawn"), "{err}");

    // Expired: a code past its time is refused.
    let third = json(office, &["enrolment", "issue", "--user", "vol2", "--hours", "1"]);
    let past = chrono::Utc::now().timestamp_millis() - 1;
    db_execute(
        &town.data,
        &format!("UPDATE enrolment_codes SET expires_at = {past} WHERE used_at IS NULL AND revoked_at IS NULL"),
    );
    let err = fails(
        &phone,
        &["field", "login", "--server", &town.server.url, "--code", third[0]["code"].as_str().unwrap()],
        None,
    );
    assert!(err.contains("expired"), "{err}");
    assert_eq!(states(office, "vol2")[0], "expired");
}

#[test]
fn bad_requests_issue_nothing_and_a_lead_issues_for_their_own_team_only() {
    let tmp = tempfile::tempdir().unwrap();
    let town = setup(tmp.path());
    let office = &town.office;
    let url = &town.server.url;
    for (args, says) in [
        (vec!["--user", "vol", "--hours", "0"], "between 1 and 72"),
        (vec!["--user", "vol", "--hours", "73"], "between 1 and 72"),
        (vec!["--user", "vol", "--user", "nobody"], "no user named \"nobody\""),
        (vec!["--user", "cadre"], "for volunteers' and leads' phones"),
        (vec!["--user", "vol", "--address", "ftp://example.org"], "address must be"),
        (vec!["--user", "vol", "--address", "https://example.org/field?x=<script>"], "address must be"),
        (vec!["--team", "nosuchteam"], "nosuchteam"),
    ] {
        let mut all = vec!["enrolment", "issue"];
        all.extend(args);
        let err = fails(office, &all, None);
        assert!(err.contains(says), "{all:?}: {err}");
    }
    assert!(codes(office).is_empty(), "a refused request issues no code, not even for the names that were fine");

    let lead = tmp.path().join("lead");
    ok(&lead, &["login", "--server", url, "--username", "lead", "--password-stdin"], Some(&pw()));
    let err = fails(&lead, &["enrolment", "issue", "--user", "wes"], None);
    assert!(err.contains("own team (east)"), "{err}");
    let err = fails(&lead, &["enrolment", "issue", "--team", "west"], None);
    assert!(err.contains("own team (east)"), "{err}");
    assert!(codes(office).is_empty());
    json(&lead, &["enrolment", "issue", "--team", "east"]);
    json(office, &["enrolment", "issue", "--user", "wes"]);
    let theirs: Vec<String> = codes(&lead).iter().map(|c| c["team"].as_str().unwrap().to_string()).collect();
    assert_eq!(theirs, ["east", "east", "east"], "a lead lists their own team's codes only");
    let west = codes(office).iter().find(|c| c["username"] == "wes").unwrap()["id"].as_str().unwrap().to_string();
    let err = fails(&lead, &["enrolment", "revoke", &west], None);
    assert!(err.contains("own team"), "{err}");
    assert_eq!(states(office, "wes"), ["unused"]);

    // Volunteers and viewers issue nothing.
    let vol = tmp.path().join("vol-office");
    ok(&vol, &["login", "--server", url, "--username", "vol", "--password-stdin"], Some(&pw()));
    let err = fails(&vol, &["enrolment", "issue", "--user", "vol"], None);
    assert!(err.contains("may not"), "{err}");
    let cadre = tmp.path().join("cadre");
    ok(&cadre, &["login", "--server", url, "--username", "cadre", "--password-stdin"], Some(&pw()));
    let err = fails(&cadre, &["enrolment", "list"], None);
    assert!(err.contains("may not"), "{err}");

    // A request with both a code and a password is refused.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        let body = serde_json::json!({ "code": "X", "username": "vol", "password": PASSWORD });
        reqwest::Client::new().post(format!("{url}/api/v1/devices")).json(&body).send().await.unwrap().status()
    });
    assert_eq!(status.as_u16(), 400);
}

/// At base, the field app (served by the lead's hub) enrols at the hub, which passes the code to the server
/// unchanged: the code enrols there as it does directly, and only once.
#[test]
fn a_code_enrols_through_a_team_hub() {
    let tmp = tempfile::tempdir().unwrap();
    let town = setup(tmp.path());
    let lead = tmp.path().join("lead-phone");
    let url = &town.server.url;
    ok(&lead, &["field", "login", "--server", url, "--username", "lead", "--password-stdin"], Some(&pw()));
    ok(&lead, &["field", "sync"], None);
    let hub = Hub::start(&lead, &["--upstream-every", "0"]);
    let issued = json(&town.office, &["enrolment", "issue", "--user", "vol2", "--address", &hub.url]);
    assert_eq!(
        issued[0]["url"].as_str().unwrap(),
        format!("{}/field/#/enrol/{}", hub.url, issued[0]["code"].as_str().unwrap())
    );
    let key = client_core::sign::KeyPair::generate();
    let body =
        serde_json::json!({ "code": issued[0]["code"], "device_name": "phone", "public_key": key.public().to_hex() });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let enrol = || {
        rt.block_on(async {
            let resp =
                reqwest::Client::new().post(format!("{}/api/v1/devices", hub.url)).json(&body).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        })
    };
    // The app asks the hub what the code is for first; the hub asks the server.
    let found: Value = rt.block_on(async {
        let body = serde_json::json!({ "code": issued[0]["code"] });
        let url = format!("{}/api/v1/enrolment-codes/lookup", hub.url);
        reqwest::Client::new().post(url).json(&body).send().await.unwrap().json().await.unwrap()
    });
    assert_eq!(found["members"], serde_json::json!(["vol2"]), "{found}");
    let (status, reply) = enrol();
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["username"], "vol2");
    assert_eq!(reply["team"], "east");
    let (status, reply) = enrol();
    assert_eq!(status, 401, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("used already"), "{reply}");
    assert_eq!(reply["error"]["code"], "enrolment_code_used", "a code of its own, for the app to say it in Chinese");
    assert_eq!(states(&town.office, "vol2"), ["used"]);
}

/// After each sync a device says which app it runs and how many records it still holds unsent; the office and
/// its lead see it on the devices list. Only the device itself may say it, and only in plain words.
#[test]
fn a_device_reports_its_app_and_unsent_records_after_a_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let town = setup(tmp.path());
    let (office, url) = (&town.office, &town.server.url);
    let phone = tmp.path().join("phone");
    ok(&phone, &["field", "login", "--server", url, "--username", "vol", "--password-stdin"], Some(&pw()));
    let listed = |field: &str| json(office, &["device", "list"])[0][field].clone();
    assert_eq!(listed("app_version"), Value::Null, "nothing reported before the first sync");
    ok(&phone, &["field", "sync"], None);
    assert_eq!(listed("app_version"), format!("cli {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(listed("unsent_hint"), 0);
    assert!(listed("status_at").as_i64().is_some());

    let device: Value = serde_json::from_slice(&std::fs::read(phone.join("device.json")).unwrap()).unwrap();
    let token = device["token"].as_str().unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = |bearer: &str, body: Value| {
        rt.block_on(async {
            let resp = reqwest::Client::new()
                .post(format!("{url}/api/v1/devices/status"))
                .bearer_auth(bearer)
                .json(&body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        })
    };
    assert_eq!(report(&token, serde_json::json!({ "app_version": "web 0.1.0", "unsent": 3 })).0, 204);
    assert_eq!(listed("app_version"), "web 0.1.0");
    assert_eq!(listed("unsent_hint"), 3);
    for (body, says) in [
        (serde_json::json!({ "app_version": "<script>", "unsent": 1 }), "app_version must be"),
        (serde_json::json!({ "app_version": "x".repeat(41), "unsent": 1 }), "app_version must be"),
        (serde_json::json!({ "app_version": "web 0.1.0", "unsent": -1 }), "unsent must be"),
        (serde_json::json!({ "app_version": "web 0.1.0" }), "unsent"),
    ] {
        let (status, text) = report(&token, body);
        assert_eq!(status, 400, "{text}");
        assert!(text.contains(says), "{text}");
    }
    assert_eq!((listed("app_version"), listed("unsent_hint")), (Value::from("web 0.1.0"), Value::from(3)));
    // A person's session is not a device.
    let session: Value = serde_json::from_slice(&std::fs::read(office.join("session.json")).unwrap()).unwrap();
    let (status, _) =
        report(session["token"].as_str().unwrap(), serde_json::json!({ "app_version": "x", "unsent": 0 }));
    assert_eq!(status, 401);
    assert_eq!(listed("app_version"), "web 0.1.0");
}

/// One code a team's volunteers share, for a number of phones: the phone asks what the code is for (the team's
/// volunteers, never its lead), the volunteer names themself, and the code stops at its number of phones.
#[test]
fn a_teams_shared_code_enrols_its_volunteers_up_to_its_number_of_phones() {
    let tmp = tempfile::tempdir().unwrap();
    let town = setup(tmp.path());
    let (office, url) = (&town.office, &town.server.url);
    let err = fails(office, &["enrolment", "issue", "--team", "east", "--shared", "0"], None);
    assert!(err.contains("uses must be between 1 and 500"), "{err}");
    let issued = json(office, &["enrolment", "issue", "--team", "east", "--shared", "2"]);
    let code = issued[0]["code"].as_str().unwrap().to_string();
    assert_eq!(
        (issued[0]["username"].clone(), issued[0]["team"].clone(), issued[0]["uses"].clone()),
        (Value::Null, "east".into(), 2.into())
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let look_up = |code: &str| {
        rt.block_on(async {
            let resp = reqwest::Client::new()
                .post(format!("{url}/api/v1/enrolment-codes/lookup"))
                .json(&serde_json::json!({ "code": code }))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        })
    };
    let (status, found) = look_up(&code);
    assert_eq!(status, 200, "{found}");
    assert_eq!(found, serde_json::json!({ "kind": "team", "team": "east", "members": ["vol", "vol2"] }));

    // No name, a name of another team, the lead: refused, and no use taken.
    let phone = |name: &str| tmp.path().join(name);
    let err = fails(&phone("p0"), &["field", "login", "--server", url, "--code", &code], None);
    assert!(err.contains("choose whose phone this is"), "{err}");
    for other in ["wes", "lead"] {
        let err = fails(&phone("p0"), &["field", "login", "--server", url, "--code", &code, "--member", other], None);
        assert!(err.contains("does not enrol that person"), "{other}: {err}");
    }
    assert_eq!(codes(office)[0]["used"], 0);

    ok(&phone("p1"), &["field", "login", "--server", url, "--code", &code, "--member", "vol"], None);
    ok(&phone("p1"), &["field", "sync"], None);
    ok(&phone("p2"), &["field", "login", "--server", url, "--code", &code, "--member", "vol2"], None);
    let err = fails(&phone("p3"), &["field", "login", "--server", url, "--code", &code, "--member", "vol"], None);
    assert!(err.contains("used already"), "{err}");
    let listed = &codes(office)[0];
    assert_eq!(
        (listed["used"].clone(), listed["uses"].clone(), listed["state"].clone()),
        (2.into(), 2.into(), "used".into())
    );
    assert_eq!(look_up(&code).1["error"]["code"], "enrolment_code_used");

    // A person's code says whose it is.
    let personal = json(office, &["enrolment", "issue", "--user", "vol"]);
    let (_, found) = look_up(personal[0]["code"].as_str().unwrap());
    assert_eq!(found, serde_json::json!({ "kind": "person", "team": null, "members": ["vol"] }));
    // A new shared code withdraws the team's earlier one that had phones left.
    let first = json(office, &["enrolment", "issue", "--team", "east", "--shared", "5"]);
    json(office, &["enrolment", "issue", "--team", "east", "--shared", "5"]);
    assert_eq!(look_up(first[0]["code"].as_str().unwrap()).1["error"]["code"], "enrolment_code_withdrawn");
    // A lead issues a shared code for their own team only.
    let lead = tmp.path().join("lead");
    ok(&lead, &["login", "--server", url, "--username", "lead", "--password-stdin"], Some(&pw()));
    let err = fails(&lead, &["enrolment", "issue", "--team", "west", "--shared", "3"], None);
    assert!(err.contains("own team"), "{err}");
    json(&lead, &["enrolment", "issue", "--team", "east", "--shared", "3"]);
}
