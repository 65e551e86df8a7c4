//! The dashboard's people and teams pages in a real headless Chromium (tests/browser/people.test.mjs): the office
//! filters people, creates a volunteer and a viewer, moves a volunteer to another team, disables and enables an
//! account after confirming, resets a password shown once, creates a team and changes a lead, assigns grids one
//! by one and a whole village, and sees unassigned grids counted and highlighted; a lead sees their own team only
//! and is refused the rest; a viewer is refused both pages. Labels, focus and keyboard use are checked, and the
//! CLI then sees what the pages did. Screenshots go to test-artifacts/. Set DOORSTEP_SKIP_BROWSER_TESTS=1 to skip
//! on a machine without Chromium.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

/// Village V1 with grids G1 and G2, community C2 with grid G3.
const TERRITORY: &str = "\
place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name
H1,household,1组1号,G1,一网格,V1,龙凤村,village,T1,太安镇
H2,household,1组2号,G1,一网格,V1,龙凤村,village,T1,太安镇
H3,household,2组1号,G2,二网格,V1,龙凤村,village,T1,太安镇
H9,household,新街9号,G3,三网格,C2,新街社区,community,T1,太安镇
";

fn list(office: &Path, args: &[&str]) -> Vec<Value> {
    let out = ok(office, &[args, &["--format", "json"]].concat(), None);
    serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
}

fn find<'a>(rows: &'a [Value], key: &str, value: &str) -> &'a Value {
    rows.iter().find(|r| r[key] == value).unwrap_or_else(|| panic!("{key}={value} in {rows:?}"))
}

#[test]
fn people_and_teams_pages_in_headless_chromium() {
    if browser_tests_skipped() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Town { server, office, .. } = town(tmp.path(), TERRITORY);
    for team in ["east", "west"] {
        ok(&office, &["team", "create", team], None);
    }
    ok(&office, &["assign", "G1", "--team", "east"], None);
    for (user, role, team) in [
        ("lead-e", "lead", "east"),
        ("vol-a", "volunteer", "east"),
        ("lead-w", "lead", "west"),
        ("vol-b", "volunteer", "west"),
    ] {
        ok(&office, &["user", "create", user, "--role", role, "--team", team, "--password-stdin"], Some(&pw()));
    }
    ok(&office, &["user", "create", "viewer", "--role", "viewer", "--area", "V1", "--password-stdin"], Some(&pw()));

    run_browser_script(
        "people.test.mjs",
        &[("DOORSTEP_URL", server.url.as_ref()), ("DOORSTEP_PASSWORD", PASSWORD.as_ref())],
    );

    // What the pages did is what the CLI sees.
    let users = list(&office, &["user", "list"]);
    assert_eq!(find(&users, "username", "vol-a")["team"], "west", "moved on the page");
    assert_eq!(find(&users, "username", "vol-new")["team"], "east", "created by the lead");
    assert_eq!(find(&users, "username", "viewer-c2")["area"], "C2");
    assert!(find(&users, "username", "vol-b")["disabled_at"].is_null(), "disabled, then enabled again");
    assert_eq!(find(&users, "username", "vol-b")["role"], "lead", "made north's lead");
    let teams = list(&office, &["team", "list"]);
    assert_eq!(find(&teams, "name", "north")["lead"], "vol-b");
    let grids = list(&office, &["grid", "list"]);
    let team_of = |g: &str| find(&grids, "code", g)["team"].clone();
    assert_eq!((team_of("G1"), team_of("G2"), team_of("G3")), (Value::Null, "east".into(), "west".into()));
    let audit = ok(&office, &["audit", "--format", "json"], None);
    for action in
        ["user.create", "user.edit", "user.disable", "user.enable", "user.password", "team.create", "team.lead"]
    {
        assert!(audit.contains(&format!("\"{action}\"")), "{action} not audited: {audit}");
    }
    assert!(audit.contains("village C2: 1 grids -> west"), "{audit}");
    assert!(audit.contains("G1 (was east)"), "{audit}");
}
