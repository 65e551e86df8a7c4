//! Territory import: bad files are rejected with line numbers and change nothing; valid re-imports are no-ops.

mod common;
use common::*;

const HEADER: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n";
const GOOD: &str =
    "H1,household,1号,G1,一网格,V1,龙凤村,village,T1,太安镇\nH2,shop,店,G1,一网格,V1,龙凤村,village,T1,太安镇\n";

fn setup() -> (tempfile::TempDir, Server, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    (tmp, server, office)
}

fn import(office: &std::path::Path, dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::process::Output {
    let f = write_file(dir, name, bytes);
    run(office, &["territory", "import", f.to_str().unwrap()], None)
}

#[test]
fn bad_files_are_rejected_by_line_and_apply_nothing() {
    let (tmp, _server, office) = setup();
    let good = format!("{HEADER}{GOOD}");
    assert!(import(&office, tmp.path(), "good.csv", good.as_bytes()).status.success());
    let before = coverage(&office, "grid", None);
    assert_eq!(figure(&before, "G1", "handbook"), (2, 0, 0));

    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "unknown kind on line 3",
            format!("{HEADER}H3,household,3号,G1,一网格,V1,龙凤村,village,T1,太安镇\nH4,castle,堡,G1,一网格,V1,龙凤村,village,T1,太安镇\n").into_bytes(),
            &["line 3", "castle"],
        ),
        (
            "missing column",
            "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code\nH3,household,3号,G1,一网格,V1,龙凤村,village,T1\n".as_bytes().to_vec(),
            &["line 1", "town_name"],
        ),
        (
            "duplicate place_id with different data",
            format!("{HEADER}H3,household,3号,G1,一网格,V1,龙凤村,village,T1,太安镇\nH3,shop,3号,G1,一网格,V1,龙凤村,village,T1,太安镇\n").into_bytes(),
            &["line 3", "line 2"],
        ),
        (
            "invalid UTF-8 on line 3",
            {
                let mut b = format!("{HEADER}H3,household,3号,G1,一网格,V1,龙凤村,village,T1,太安镇\n").into_bytes();
                b.extend_from_slice(b"H4,household,\xc4\xe3\xba\xc3,G1,g,V1,v,village,T1,t\n");
                b
            },
            &["line 3", "UTF-8"],
        ),
        (
            "a place moving to another grid",
            format!("{HEADER}H1,household,1号,G9,九网格,V1,龙凤村,village,T1,太安镇\n").into_bytes(),
            &["line 2", "already belongs to grid G1"],
        ),
    ];
    for (what, bytes, expected) in cases {
        let out = import(&office, tmp.path(), "bad.csv", &bytes);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: should fail");
        for e in expected {
            assert!(err.contains(e), "{what}: expected {e:?} in {err}");
        }
        assert!(err.contains("not imported"), "{what}: {err}");
        assert_eq!(coverage(&office, "grid", None), before, "{what}: nothing applied");
    }
}

#[test]
fn reimport_changes_nothing_and_edits_apply() {
    let (tmp, _server, office) = setup();
    let good = format!("{HEADER}{GOOD}");
    let first = import(&office, tmp.path(), "good.csv", good.as_bytes());
    assert!(String::from_utf8_lossy(&first.stdout).contains("2 places added"));
    let again = import(&office, tmp.path(), "good.csv", good.as_bytes());
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("0 places added, 0 changed, 2 unchanged") && text.contains("0 grids updated"), "{text}");
    // The shop becomes a household: eligibility follows.
    let edited = good.replace("H2,shop,店", "H2,household,2号");
    let out = import(&office, tmp.path(), "edited.csv", edited.as_bytes());
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 changed"));
    let grid = coverage(&office, "grid", None);
    assert_eq!(figure(&grid, "G1", "poster"), (2, 0, 0), "both rural households now need a poster");
}
