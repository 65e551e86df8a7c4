//! The office console's people, teams and grids through the real server and CLI (on SQLite, and on PostgreSQL
//! when DOORSTEP_TEST_PG_URL is set): the lists and their filters and pages, editing, enabling, password resets
//! (which end sessions), a team's lead, bulk assignment and unassignment, what each role is refused, bad input
//! changing nothing, every change in the audit log, and a moved volunteer's phone following its new team at its
//! next sync.

mod common;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Two villages of a town: V1 with two grids, V2 with one; places P1–P5.
const TERRITORY: &str = "\
place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name
P1,household,1,V1-G1,g1,V1,Upper,village,T1,Town
P2,household,2,V1-G1,g1,V1,Upper,village,T1,Town
P3,household,3,V1-G2,g2,V1,Upper,village,T1,Town
P4,household,4,V2-G1,g3,V2,Lower,community,T1,Town
P5,household,5,V2-G1,g3,V2,Lower,community,T1,Town
";

struct World {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    town: Town,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

/// A town with teams east and west, a lead and a volunteer in each, another volunteer in east and a viewer of V1.
fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let town = town(&dir, TERRITORY);
    let office = &town.office;
    for team in ["east", "west"] {
        ok(office, &["team", "create", team], None);
    }
    for (user, role, team) in [
        ("lead-e", "lead", "east"),
        ("vol-a", "volunteer", "east"),
        ("vol-c", "volunteer", "east"),
        ("lead-w", "lead", "west"),
        ("vol-b", "volunteer", "west"),
    ] {
        ok(office, &["user", "create", user, "--role", role, "--team", team, "--password-stdin"], Some(&pw()));
    }
    ok(office, &["user", "create", "viewer", "--role", "viewer", "--area", "V1", "--password-stdin"], Some(&pw()));
    World { _tmp: tmp, dir, town, rt: tokio::runtime::Runtime::new().unwrap(), http: reqwest::Client::new() }
}

impl World {
    fn office(&self) -> &Path {
        &self.town.office
    }

    fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        self.rt.block_on(async {
            let mut req = self.http.request(method, format!("{}{path}", self.town.server.url)).bearer_auth(token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        })
    }

    /// A session of `username`: access token and refresh token.
    fn login(&self, username: &str, password: &str) -> (String, String) {
        let (status, body) = self.rt.block_on(async {
            let resp = self
                .http
                .post(format!("{}/api/v1/auth/login", self.town.server.url))
                .json(&json!({ "username": username, "password": password }))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        });
        assert_eq!(status, 200, "login of {username}: {body}");
        (body["token"].as_str().unwrap().into(), body["refresh_token"].as_str().unwrap().into())
    }

    fn refresh(&self, refresh_token: &str) -> u16 {
        self.rt.block_on(async {
            self.http
                .post(format!("{}/api/v1/auth/refresh", self.town.server.url))
                .json(&json!({ "refresh_token": refresh_token }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&ok(self.office(), args, None)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn users(&self) -> Value {
        self.json(&["user", "list", "--format", "json"])
    }

    fn grids(&self) -> Value {
        self.json(&["grid", "list", "--format", "json"])
    }

    fn audit(&self) -> String {
        ok(self.office(), &["audit", "--format", "json"], None)
    }
}

fn user<'a>(users: &'a Value, name: &str) -> &'a Value {
    users.as_array().unwrap().iter().find(|u| u["username"] == name).unwrap_or_else(|| panic!("{name} in {users}"))
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array().unwrap().iter().map(|u| u[key].as_str().unwrap().to_string()).collect()
}

fn team_of_grid(grids: &Value, code: &str) -> Value {
    grids.as_array().unwrap().iter().find(|g| g["code"] == code).unwrap()["team"].clone()
}

#[test]
fn the_office_lists_filters_and_pages_people_teams_and_grids() {
    let w = world();
    let users = w.users();
    assert_eq!(names(&users, "username"), ["lead-e", "lead-w", "office", "viewer", "vol-a", "vol-b", "vol-c"]);
    let viewer = user(&users, "viewer");
    assert_eq!((viewer["role"].as_str(), viewer["area"].as_str()), (Some("viewer"), Some("V1")));
    assert_eq!(viewer["area_name"], "Upper");
    assert_eq!(user(&users, "vol-a")["team"], "east");
    assert_eq!(user(&users, "vol-a")["active_devices"], 0);
    assert!(user(&users, "vol-a")["last_sync_at"].is_null());

    // A phone enrolled and synced shows in the list.
    let phone = w.dir.join("vol-a-phone");
    let url = &w.town.server.url;
    ok(&phone, &["field", "login", "--server", url, "--username", "vol-a", "--password-stdin"], Some(&pw()));
    ok(&phone, &["field", "sync"], None);
    let vol_a = user(&w.users(), "vol-a").clone();
    assert_eq!(vol_a["active_devices"], 1);
    assert!(vol_a["last_sync_at"].as_i64().unwrap() > 0);

    // Filters: team, role, a part of the name in any case; together.
    let east = w.json(&["user", "list", "--team", "east", "--format", "json"]);
    assert_eq!(names(&east, "username"), ["lead-e", "vol-a", "vol-c"]);
    let volunteers = w.json(&["user", "list", "--role", "volunteer", "--format", "json"]);
    assert_eq!(names(&volunteers, "username"), ["vol-a", "vol-b", "vol-c"]);
    let found = w.json(&["user", "list", "--search", "VOL-", "--team", "west", "--format", "json"]);
    assert_eq!(names(&found, "username"), ["vol-b"]);
    // LIKE's wildcards are taken as they are.
    assert_eq!(w.json(&["user", "list", "--search", "%", "--format", "json"]), json!([]));
    let csv = ok(w.office(), &["user", "list", "--format", "csv"], None);
    assert!(csv.starts_with("username,role,team,area,") && csv.contains("\nviewer,viewer,,V1,"), "{csv}");

    // Pages by cursor: the total over every page, and the next page's cursor.
    let (token, _) = w.login("office", PASSWORD);
    let (status, first) = w.call(Method::GET, "/api/v1/users?limit=3", &token, None);
    assert_eq!(status, 200);
    assert_eq!((names(&first["users"], "username").len(), first["total"].as_i64()), (3, Some(7)));
    assert_eq!(first["next"], "office");
    let (_, second) = w.call(Method::GET, "/api/v1/users?limit=3&after=office", &token, None);
    assert_eq!(names(&second["users"], "username"), ["viewer", "vol-a", "vol-b"]);
    let (_, last) = w.call(Method::GET, "/api/v1/users?limit=3&after=vol-b", &token, None);
    assert_eq!((names(&last["users"], "username"), &last["next"]), (vec!["vol-c".to_string()], &Value::Null));
    for bad in
        ["/api/v1/users?limit=0", "/api/v1/users?limit=5000", "/api/v1/users?role=captain", "/api/v1/users?limit=x"]
    {
        let (status, body) = w.call(Method::GET, bad, &token, None);
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }

    // Teams: the lead (a member with the lead role, none being named), members, volunteers and grids.
    let teams = w.json(&["team", "list", "--format", "json"]);
    assert_eq!(names(&teams, "name"), ["east", "west"]);
    assert_eq!((teams[0]["lead"].as_str(), teams[0]["members"].as_i64()), (Some("lead-e"), Some(3)));
    assert_eq!((teams[0]["volunteers"].as_i64(), teams[0]["grids"].as_i64()), (Some(2), Some(0)));

    // Grids: village, town, team, places; every grid unassigned at first.
    let grids = w.grids();
    assert_eq!(names(&grids, "code"), ["V1-G1", "V1-G2", "V2-G1"]);
    assert_eq!(grids[0]["village"], "V1");
    assert_eq!(grids[0]["village_name"], "Upper");
    assert_eq!((grids[0]["town"].as_str(), grids[0]["town_name"].as_str()), (Some("T1"), Some("Town")));
    assert_eq!(grids.as_array().unwrap().iter().map(|g| g["places"].as_i64().unwrap()).collect::<Vec<_>>(), [2, 1, 2]);
    assert!(grids.as_array().unwrap().iter().all(|g| g["team"].is_null()));
    let table = ok(w.office(), &["grid", "list"], None);
    assert!(table.contains("3 without a team"), "{table}");

    // A whole village to a team; then the filters.
    ok(w.office(), &["assign", "--village", "V1", "--team", "east"], None);
    let unassigned = w.json(&["grid", "list", "--unassigned", "--format", "json"]);
    assert_eq!(names(&unassigned, "code"), ["V2-G1"]);
    let of_east = w.json(&["grid", "list", "--team", "east", "--format", "json"]);
    assert_eq!(names(&of_east, "code"), ["V1-G1", "V1-G2"]);
    let of_v2 = w.json(&["grid", "list", "--village", "V2", "--format", "json"]);
    assert_eq!(names(&of_v2, "code"), ["V2-G1"]);
    let (_, page) = w.call(Method::GET, "/api/v1/grids?village=V1", &token, None);
    assert_eq!((page["total"].as_i64(), page["unassigned"].as_i64()), (Some(2), Some(0)));
    let (_, page) = w.call(Method::GET, "/api/v1/grids?limit=2", &token, None);
    assert_eq!(
        (page["total"].as_i64(), page["unassigned"].as_i64(), page["next"].as_str()),
        (Some(3), Some(1), Some("V1-G2"))
    );
    let (_, villages) = w.call(Method::GET, "/api/v1/villages", &token, None);
    assert_eq!(villages, {
        json!([
            {"code": "V1", "name": "Upper", "kind": "village", "town": "T1", "town_name": "Town", "grids": 2, "unassigned": 0},
            {"code": "V2", "name": "Lower", "kind": "community", "town": "T1", "town_name": "Town", "grids": 1, "unassigned": 1},
        ])
    });
    let teams = w.json(&["team", "list", "--format", "json"]);
    assert_eq!(teams[0]["grids"], 2);
}

#[test]
fn the_office_edits_enables_resets_and_reassigns_and_bad_input_changes_nothing() {
    let w = world();
    let office = w.office();

    // Editing: a move to another team, a viewer's area, the role rules, all audited.
    ok(office, &["user", "edit", "vol-a", "--team", "west"], None);
    assert_eq!(user(&w.users(), "vol-a")["team"], "west");
    ok(office, &["user", "edit", "viewer", "--area", "V2"], None);
    assert_eq!(user(&w.users(), "viewer")["area"], "V2");
    ok(office, &["user", "edit", "vol-c", "--role", "viewer", "--area", "T1"], None);
    let vol_c = user(&w.users(), "vol-c").clone();
    assert_eq!(
        (vol_c["role"].as_str(), vol_c["team"].as_str(), vol_c["area"].as_str()),
        (Some("viewer"), None, Some("T1"))
    );
    ok(office, &["user", "edit", "vol-c", "--role", "volunteer", "--team", "east"], None);
    let vol_c = user(&w.users(), "vol-c").clone();
    assert_eq!(
        (vol_c["role"].as_str(), vol_c["team"].as_str(), vol_c["area"].as_str()),
        (Some("volunteer"), Some("east"), None)
    );
    let audit = w.audit();
    for line in [
        "vol-a: team east -> west",
        "viewer: area V1 -> V2",
        "vol-c: role volunteer -> viewer, team east -> none, area none -> T1",
    ] {
        assert!(audit.contains(line), "{line} not in {audit}");
    }

    // Bad edits are refused with a reason, and nothing changes.
    let before = w.users();
    for (args, reason) in [
        (vec!["vol-b", "--team", "north"], "no team named \"north\""),
        (vec!["vol-b", "--role", "viewer"], "a viewer needs an area"),
        (vec!["vol-b", "--role", "viewer", "--area", "X9"], "no area with code \"X9\""),
        (vec!["vol-b", "--area", "V1"], "only viewers have an area"),
        (vec!["vol-b", "--role", "lead", "--no-team"], "a lead needs a team"),
        (vec!["nobody", "--team", "east"], "no user named \"nobody\""),
        (vec!["office", "--role", "viewer", "--area", "T1"], "you cannot change your own role"),
    ] {
        let mut all = vec!["user", "edit"];
        all.extend(args.iter());
        let err = fails(office, &all, None);
        assert!(err.contains(reason), "{all:?}: {err}");
    }
    let (token, _) = w.login("office", PASSWORD);
    for (body, reason) in [
        (json!({"role": "captain"}), "unknown variant"),
        (json!({"teem": "east"}), "unknown field"),
        (json!({"role": "viewer", "area": "V1"}), "a viewer is in no team"),
    ] {
        let (status, reply) = w.call(Method::PATCH, "/api/v1/users/vol-b", &token, Some(body.clone()));
        assert_eq!(status, 400, "{body}: {reply}");
        assert!(reply["error"]["message"].as_str().unwrap().contains(reason), "{body}: {reply}");
    }
    assert_eq!(w.users(), before, "refused edits changed nothing");

    // Disable, enable (once), with the audit log.
    ok(office, &["user", "disable", "vol-b"], None);
    assert!(user(&w.users(), "vol-b")["disabled_at"].as_i64().is_some());
    ok(office, &["user", "enable", "vol-b"], None);
    assert!(user(&w.users(), "vol-b")["disabled_at"].is_null());
    assert!(fails(office, &["user", "enable", "vol-b"], None).contains("vol-b is not disabled"));
    assert!(fails(office, &["user", "enable", "nobody"], None).contains("no user named"));
    w.login("vol-b", PASSWORD);

    // A password the server chooses, printed once; the old one stops working, the new one works.
    let new = ok(office, &["user", "password", "vol-b"], None).trim().to_string();
    assert_eq!(new.len(), 12, "{new}");
    let old = run(
        &w.dir.join("vol-b"),
        &["login", "--server", &w.town.server.url, "--username", "vol-b", "--password-stdin"],
        Some(&pw()),
    );
    assert!(!old.status.success());
    w.login("vol-b", &new);
    // Or one the office gives; too short a one is refused and changes nothing.
    assert!(fails(office, &["user", "password", "vol-b", "--password-stdin"], Some("short\n")).contains("at least 8"));
    w.login("vol-b", &new);
    ok(office, &["user", "password", "vol-b", "--password-stdin"], Some(&pw()));
    w.login("vol-b", PASSWORD);
    assert!(!w.audit().contains(&new), "the audit log never holds a password");

    // A team's lead: the new lead joins as lead, the former lead becomes a volunteer.
    ok(office, &["team", "lead", "east", "vol-c"], None);
    let users = w.users();
    assert_eq!(
        (user(&users, "vol-c")["role"].as_str(), user(&users, "lead-e")["role"].as_str()),
        (Some("lead"), Some("volunteer"))
    );
    let teams = w.json(&["team", "list", "--format", "json"]);
    assert_eq!(teams[0]["lead"], "vol-c");
    // Moving the named lead to another team leaves their old team with no named lead.
    ok(office, &["team", "lead", "west", "vol-c"], None);
    let teams = w.json(&["team", "list", "--format", "json"]);
    assert_eq!((teams[0]["lead"].as_str(), teams[1]["lead"].as_str()), (None, Some("vol-c")));
    assert_eq!(user(&w.users(), "lead-w")["role"], "volunteer");
    for (args, reason) in [
        (vec!["team", "lead", "south", "vol-b"], "no team named \"south\""),
        (vec!["team", "lead", "east", "nobody"], "no user named \"nobody\""),
        (vec!["team", "lead", "east", "viewer"], "a viewer cannot lead a team"),
    ] {
        assert!(fails(office, &args, None).contains(reason), "{args:?}");
    }
    let audit = w.audit();
    assert!(
        audit.contains("team east: lead none -> vol-c (vol-c moved from team east)")
            || audit.contains("team east: lead none -> vol-c"),
        "{audit}"
    );
    assert!(audit.contains("now volunteers: lead-e"), "{audit}");
    for action in ["user.enable", "user.password", "team.lead", "user.edit"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }

    // Bulk assignment: all or nothing.
    ok(office, &["assign", "V1-G1", "--team", "east"], None);
    let before = w.grids();
    for (args, reason) in [
        (vec!["assign", "V1-G2", "V2-G1", "X-G9", "--team", "west"], "no grid with code X-G9; nothing was assigned"),
        (vec!["assign", "--village", "V9", "--team", "west"], "no village or community with code \"V9\""),
        (vec!["assign", "--village", "V1-G1", "--team", "west"], "V1-G1 is a grid"),
        (vec!["assign", "--village", "V1", "--team", "south"], "no team named \"south\""),
    ] {
        assert!(fails(office, &args, None).contains(reason), "{args:?}");
    }
    for body in [
        json!({"team": "west"}),
        json!({"team": "west", "grids": []}),
        json!({"team": "west", "village": "V1", "grids": ["V1-G1"]}),
    ] {
        let (status, reply) = w.call(Method::PUT, "/api/v1/assignments", &token, Some(body.clone()));
        assert_eq!(status, 400, "{body}: {reply}");
    }
    assert_eq!(w.grids(), before, "refused assignments changed nothing");
    ok(office, &["assign", "V1-G1", "V2-G1", "--team", "west"], None);
    let grids = w.grids();
    assert_eq!((team_of_grid(&grids, "V1-G1"), team_of_grid(&grids, "V2-G1")), (json!("west"), json!("west")));
    assert!(w.audit().contains("grids: 2 grids -> west; 2 changed: V1-G1 (was east), V2-G1 (was none)"));
    let (status, done) =
        w.call(Method::PUT, "/api/v1/assignments", &token, Some(json!({"team": "east", "village": "V1"})));
    assert_eq!(status, 200);
    assert_eq!(
        (done["grids"].clone(), done["changed"].clone()),
        (json!(["V1-G1", "V1-G2"]), json!(["V1-G1", "V1-G2"]))
    );
    // Unassigning, once.
    ok(office, &["unassign", "V1-G2"], None);
    assert!(team_of_grid(&w.grids(), "V1-G2").is_null());
    assert!(fails(office, &["unassign", "V1-G2"], None).contains("grid V1-G2 has no team"));
    assert!(fails(office, &["unassign", "X-G9"], None).contains("no grid with code"));
    assert!(w.audit().contains("V1-G2 (was east)"));
}

#[test]
fn each_role_is_refused_what_it_may_not_do_and_changes_apply_at_the_next_request() {
    let w = world();
    ok(w.office(), &["assign", "--village", "V1", "--team", "east"], None);
    ok(w.office(), &["assign", "V2-G1", "--team", "west"], None);
    let (viewer, _) = w.login("viewer", PASSWORD);
    let (volunteer, _) = w.login("vol-a", PASSWORD);
    let (lead, _) = w.login("lead-e", PASSWORD);

    // Viewers and volunteers: nothing of the console, with a reason.
    let everything: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/api/v1/users", None),
        (Method::GET, "/api/v1/teams", None),
        (Method::GET, "/api/v1/grids", None),
        (Method::GET, "/api/v1/villages", None),
        (Method::PATCH, "/api/v1/users/vol-b", Some(json!({"team": "east"}))),
        (Method::POST, "/api/v1/users/vol-b/enable", None),
        (Method::POST, "/api/v1/users/vol-b/password", Some(json!({}))),
        (Method::PATCH, "/api/v1/teams/east", Some(json!({"lead": "vol-a"}))),
        (Method::PUT, "/api/v1/assignments", Some(json!({"team": "east", "village": "V2"}))),
        (Method::DELETE, "/api/v1/assignments/V2-G1", None),
    ];
    for (who, token) in [("viewer", &viewer), ("volunteer", &volunteer)] {
        for (method, path, body) in &everything {
            let (status, reply) = w.call(method.clone(), path, token, body.clone());
            assert_eq!(status, 403, "{who} {method} {path}: {reply}");
            assert!(!reply["error"]["message"].as_str().unwrap().is_empty());
        }
    }

    // A lead reads their own team, and may reset its volunteers' passwords only.
    let (_, page) = w.call(Method::GET, "/api/v1/users", &lead, None);
    assert_eq!(names(&page["users"], "username"), ["lead-e", "vol-a", "vol-c"]);
    let (status, reply) = w.call(Method::GET, "/api/v1/users?team=west", &lead, None);
    assert_eq!(status, 403, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("own team (east)"));
    let (_, teams) = w.call(Method::GET, "/api/v1/teams", &lead, None);
    assert_eq!(names(&teams, "name"), ["east"]);
    let (_, grids) = w.call(Method::GET, "/api/v1/grids", &lead, None);
    assert_eq!(
        (names(&grids["grids"], "code"), &grids["unassigned"]),
        (vec!["V1-G1".to_string(), "V1-G2".into()], &Value::Null)
    );
    assert_eq!(w.call(Method::GET, "/api/v1/grids?unassigned=true", &lead, None).0, 403);
    assert_eq!(w.call(Method::GET, "/api/v1/grids?team=west", &lead, None).0, 403);
    let (_, villages) = w.call(Method::GET, "/api/v1/villages", &lead, None);
    assert_eq!(names(&villages, "code"), ["V1"]);
    let (status, reset) = w.call(Method::POST, "/api/v1/users/vol-a/password", &lead, Some(json!({})));
    assert_eq!(status, 200, "{reset}");
    w.login("vol-a", reset["password"].as_str().unwrap());
    for other in ["vol-b", "lead-w", "office", "viewer", "nobody"] {
        let (status, reply) = w.call(Method::POST, &format!("/api/v1/users/{other}/password"), &lead, Some(json!({})));
        assert_eq!(status, 403, "{other}: {reply}");
        assert!(reply["error"]["message"].as_str().unwrap().contains("own team's volunteers only"), "{reply}");
    }
    w.login("vol-b", PASSWORD);
    for (method, path, body) in &everything[4..] {
        if !path.ends_with("/password") {
            assert_eq!(w.call(method.clone(), path, &lead, body.clone()).0, 403, "lead {method} {path}");
        }
    }
    assert_eq!(team_of_grid(&w.grids(), "V2-G1"), "west", "nothing the lead was refused happened");

    // A role the office changes applies at the lead's next request, not when the token expires.
    ok(w.office(), &["user", "edit", "lead-e", "--role", "volunteer"], None);
    let (status, _) = w.call(Method::GET, "/api/v1/users", &lead, None);
    assert_eq!(status, 403, "a former lead's token no longer lists the team");

    // A password reset ends the sessions opened before it: the access token and the refresh token.
    let (session, refresh) = w.login("lead-w", PASSWORD);
    assert_eq!(w.call(Method::GET, "/api/v1/teams", &session, None).0, 200);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ok(w.office(), &["user", "password", "lead-w", "--password-stdin"], Some("a brand new password\n"));
    let (status, reply) = w.call(Method::GET, "/api/v1/teams", &session, None);
    assert_eq!(status, 401, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("password was reset"), "{reply}");
    assert_eq!(w.refresh(&refresh), 401);
    let (fresh, _) = w.login("lead-w", "a brand new password");
    assert_eq!(w.call(Method::GET, "/api/v1/teams", &fresh, None).0, 200);
}

/// The grids a field profile holds, from `field places`.
fn grids_on_phone(phone: &Path) -> Vec<String> {
    let places: Value = serde_json::from_str(&ok(phone, &["field", "places", "--format", "json"], None)).unwrap();
    let mut grids: Vec<String> =
        places.as_array().unwrap().iter().map(|p| p["grid"].as_str().unwrap().into()).collect();
    grids.dedup();
    grids
}

#[test]
fn a_moved_volunteers_phone_gets_the_new_teams_grids_at_its_next_sync() {
    let w = world();
    ok(w.office(), &["assign", "--village", "V1", "--team", "east"], None);
    ok(w.office(), &["assign", "V2-G1", "--team", "west"], None);
    let phone = w.dir.join("vol-a-phone");
    let url = &w.town.server.url;
    ok(&phone, &["field", "login", "--server", url, "--username", "vol-a", "--password-stdin"], Some(&pw()));
    ok(&phone, &["field", "sync"], None);
    assert_eq!(grids_on_phone(&phone), ["V1-G1", "V1-G2"]);
    // A visit recorded before the move, not yet synced: the device token still says team east.
    ok(&phone, &["field", "visit", "P1", "--handbook"], None);

    ok(w.office(), &["user", "edit", "vol-a", "--team", "west"], None);
    let out = ok(&phone, &["field", "sync"], None);
    assert!(out.contains("new grids: V2-G1"), "{out}");
    assert!(out.contains("grids no longer assigned, removed: V1-G1, V1-G2"), "{out}");
    assert_eq!(grids_on_phone(&phone), ["V2-G1"]);
    // The visit made before the move is the old team's grid's, counted there.
    let visits = db_pairs(&w.town.data, "SELECT place_id, volunteer FROM visits");
    assert_eq!(visits, [("P1".to_string(), "vol-a".to_string())]);
    let told = db_pairs(
        &w.town.data,
        "SELECT grid_code, CASE WHEN removal_told_at IS NULL THEN 'no' ELSE 'yes' END FROM device_grids ORDER BY grid_code",
    );
    assert_eq!(
        told,
        [("V1-G1".into(), "yes".into()), ("V1-G2".into(), "yes".into()), ("V2-G1".to_string(), "no".to_string())]
    );
    // It now works in the new team's grid, and syncs it.
    ok(&phone, &["field", "visit", "P4", "--handbook"], None);
    let out = ok(&phone, &["field", "sync"], None);
    assert!(out.contains("0 visits unsynced"), "{out}");
    let west = coverage(w.office(), "team", None);
    assert_eq!(figure(&west, "west", "handbook").1, 1, "{west:#?}");

    // Its old team's grid given back to its new team (a bulk assignment): the phone gets it at the next sync.
    ok(w.office(), &["assign", "--village", "V1", "--team", "west"], None);
    ok(&phone, &["field", "sync"], None);
    assert_eq!(grids_on_phone(&phone), ["V1-G1", "V1-G2", "V2-G1"]);
    // A grid unassigned is told to the phone that held it, which drops it.
    ok(w.office(), &["unassign", "V2-G1"], None);
    let out = ok(&phone, &["field", "sync"], None);
    assert!(out.contains("grids no longer assigned, removed: V2-G1"), "{out}");
    assert_eq!(grids_on_phone(&phone), ["V1-G1", "V1-G2"]);
}
