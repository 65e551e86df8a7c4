//! End to end with the real binary: the office changes what counts with a definition file (the seed's "two cards"
//! notice at bank and telecom outlets), every surface follows (territory import, the volunteers' devices directly
//! and through a team's hub, coverage, the monthly report), and the old indicators' figures do not move.

mod common;
use common::*;

const TERRITORY: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
H1,household,1号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
H2,household,2号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
S1,shop,小卖部,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
B1,building,3栋,G2,二网格,C1,新街社区,community,T1,太安镇\n";

const OUTLETS: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
O1,营业网点,农商银行龙凤分理处,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
O2,通信营业厅,移动营业厅,G2,二网格,C1,新街社区,community,T1,太安镇\n";

/// A photo of a notice on a counter, as a phone's camera takes it.
fn notice_photo(dir: &std::path::Path) -> String {
    let img = image::RgbImage::from_fn(1200, 900, |x, y| image::Rgb([(x / 5) as u8, (y / 4) as u8, 128]));
    let path = dir.join("notice.jpg");
    img.save_with_format(&path, image::ImageFormat::Jpeg).unwrap();
    path.to_str().unwrap().to_string()
}

fn two_cards() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/campaigns/two-cards.toml")).unwrap()
}

#[test]
fn the_two_cards_campaign_goes_through_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let Town { server, office, .. } = town(tmp.path(), TERRITORY);
    let url = server.url.clone();
    ok(&office, &["user", "create", "lead", "--role", "lead", "--password-stdin"], Some(&pw()));
    ok(&office, &["team", "create", "east", "--lead", "lead"], None);
    ok(&office, &["assign", "G1", "--team", "east"], None);
    ok(&office, &["assign", "G2", "--team", "east"], None);
    ok(&office, &["user", "create", "vol", "--role", "volunteer", "--team", "east", "--password-stdin"], Some(&pw()));
    let (vol, lead) = (tmp.path().join("vol"), tmp.path().join("lead"));
    for (profile, name) in [(&vol, "vol"), (&lead, "lead")] {
        ok(profile, &["field", "login", "--server", &url, "--username", name, "--password-stdin"], Some(&pw()));
        ok(profile, &["field", "sync"], None);
    }
    ok(&vol, &["field", "visit", "H1", "--handbook", "--briefed", "--poster"], None);
    ok(&vol, &["field", "visit", "B1", "--deliver", "poster"], None);
    let last_month = (chrono::Utc::now() - chrono::Duration::days(40)).format("%Y-%m").to_string();
    let a_day_last_month = format!("{last_month}-15T10:00:00+08:00");
    ok(&vol, &["field", "visit", "H2", "--handbook", "--at", &a_day_last_month], None);
    ok(&vol, &["field", "sync"], None);
    let last_month_before = ok(&office, &["report", "monthly", "--month", &last_month, "--format", "json"], None);
    let before = coverage(&office, "town", None);
    assert_eq!(figure(&before, "T1", "handbook"), (3, 2, 0));
    assert_eq!(figure(&before, "T1", "poster"), (3, 2, 0), "H1 H2 (village households) and B1");

    // Version 0 is the default campaign; outlets are not a kind of it yet.
    let shown = ok(&office, &["campaign", "show"], None);
    assert!(shown.starts_with("# campaign version 0: the default campaign") && shown.contains("[[indicator]]"));
    let outlets = write_file(tmp.path(), "outlets.csv", OUTLETS.as_bytes());
    let err = fails(&office, &["territory", "import", outlets.to_str().unwrap(), "--dry-run"], None);
    assert!(err.contains("unknown place kind \"营业网点\""), "{err}");
    let err = fails(&vol, &["field", "visit", "H2", "--deliver", "two_cards_notice"], None);
    assert!(err.contains("\"two_cards_notice\" is not a delivery of the campaign this device holds"), "{err}");

    // A broken copy is refused with its lines, on this machine and at the server alike; nothing changes.
    let broken = two_cards().replace("kinds = [\"outlet\"]", "kinds = [\"outlets\"]");
    let broken = write_file(tmp.path(), "broken.toml", broken.as_bytes());
    let err = fails(&office, &["campaign", "check", broken.to_str().unwrap()], None);
    assert!(err.contains("counts[0].kinds: unknown place kind \"outlets\""), "{err}");
    assert!(err.contains("line "), "{err}");
    let err = fails(&office, &["campaign", "apply", broken.to_str().unwrap()], None);
    assert!(err.contains("unknown place kind \"outlets\""), "{err}");

    // The dry run says what would change and changes nothing.
    let file = write_file(tmp.path(), "two-cards.toml", two_cards().as_bytes());
    let out = ok(&office, &["campaign", "check", file.to_str().unwrap()], None);
    assert!(out.contains("10 place kinds, 6 deliveries, 6 indicators"), "{out}");
    let dry = ok(&office, &["campaign", "apply", file.to_str().unwrap(), "--dry-run"], None);
    assert!(dry.contains("campaign version 0 → 1: would change (dry run, nothing changed)"), "{dry}");
    assert!(dry.contains("indicators added: two_cards (两卡通告张贴)"), "{dry}");
    assert!(dry.contains("place kinds added: outlet (营业网点)"), "{dry}");
    assert!(dry.contains("places whose indicators change: 0"), "no outlet yet: {dry}");
    assert!(ok(&office, &["campaign", "show"], None).starts_with("# campaign version 0"));

    let applied = ok(&office, &["campaign", "apply", file.to_str().unwrap()], None);
    assert!(applied.contains("campaign version 0 → 1: applied"), "{applied}");
    assert!(ok(&office, &["campaign", "show"], None).starts_with("# campaign version 1, applied "));
    let audit = ok(&office, &["audit", "--format", "json"], None);
    assert!(audit.contains("campaign.apply"), "{audit}");
    // The audit log searched: by the family of actions, the newest first; by person; by dates.
    let events = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["audit", "--format", "json"];
        all.extend(args);
        serde_json::from_str(&ok(&office, &all, None)).unwrap()
    };
    let applied = events(&["--action", "campaign", "--newest"]);
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert_eq!(
        (applied[0]["action"].as_str(), applied[0]["username"].as_str()),
        (Some("campaign.apply"), Some("office"))
    );
    assert_eq!(events(&["--action", "campaign.apply"]), applied, "an action, or its family");
    assert!(events(&["--action", "campaig"]).is_empty(), "a family is a whole word before the dot");
    let newest = events(&["--newest", "--limit", "2"]);
    assert_eq!(newest.len(), 2);
    assert_eq!(newest[0]["action"], "campaign.apply", "the newest first: {newest:?}");
    let oldest = events(&[]);
    assert!(oldest.len() > 2 && oldest.last() == Some(&newest[0]), "the oldest first by default");
    assert!(events(&["--user", "office"]).iter().all(|e| e["username"] == "office"));
    assert!(events(&["--user", "nobody"]).is_empty());
    assert!(events(&["--until", "2000-01-01T00:00:00Z"]).is_empty());
    assert_eq!(events(&["--since", "2000-01-01T00:00:00Z", "--until", "2999-01-01T00:00:00Z"]), oldest);
    let refused = fails(&office, &["audit", "--until", "yesterday"], None);
    assert!(refused.contains("until=\"yesterday\" is not an RFC 3339 time"), "{refused}");
    // Applying the same file again is a new version that changes nothing that counts.
    let again = ok(&office, &["campaign", "apply", file.to_str().unwrap(), "--dry-run"], None);
    assert!(again.contains("nothing that counts changes"), "{again}");

    // The territory file's words for the new kind are accepted now.
    let imported = ok(&office, &["territory", "import", outlets.to_str().unwrap()], None);
    assert!(imported.contains("2 places added"), "{imported}");
    let after = coverage(&office, "town", None);
    for ind in ["handbook", "awareness", "poster", "banner", "led"] {
        let old = before.iter().find(|r| r["area"] == "T1" && r["indicator"] == ind);
        let new = after.iter().find(|r| r["area"] == "T1" && r["indicator"] == ind);
        assert_eq!(old, new, "{ind} does not move");
    }
    assert_eq!(figure(&after, "T1", "two_cards"), (2, 0, 0));

    // The volunteer's device receives the new version at its next sync and offers the new delivery.
    ok(&vol, &["field", "sync"], None);
    // The notice counts only with a photo of it (`photo_required` in the example).
    ok(&vol, &["field", "visit", "O1", "--deliver", "two_cards_notice"], None);
    let o1_reached = || {
        let places: Vec<serde_json::Value> =
            serde_json::from_str(&ok(&vol, &["field", "places", "--format", "json"], None)).unwrap();
        places.iter().find(|p| p["place_id"] == "O1").unwrap()["reached"].clone()
    };
    assert_eq!(o1_reached(), serde_json::json!([]), "no photo yet");
    let photo = notice_photo(tmp.path());
    ok(&vol, &["field", "visit", "O1", "--deliver", "two_cards_notice", "--photo", &photo], None);
    assert_eq!(o1_reached(), serde_json::json!(["two_cards"]));
    ok(&vol, &["field", "sync"], None);
    assert_eq!(figure(&coverage(&office, "town", None), "T1", "two_cards"), (2, 1, 0));

    // Through the team's hub: the lead's hub receives the version, and a device at base with it records O2.
    let hub = Hub::start(&lead, &[]);
    ok(&lead, &["hub", "sync"], None);
    ok(&vol, &["field", "sync", "--via", &hub.url], None);
    ok(&vol, &["field", "visit", "O2", "--deliver", "two_cards_notice", "--photo", &photo], None);
    ok(&vol, &["field", "sync", "--via", &hub.url], None);
    ok(&lead, &["hub", "sync"], None);
    let last = coverage(&office, "town", None);
    assert_eq!(figure(&last, "T1", "two_cards"), (2, 2, 0), "O2's visit came up through the hub");
    assert_eq!(figure(&last, "T1", "handbook"), figure(&before, "T1", "handbook"));

    // The month is counted with the version in force at its end, and says which.
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let table = ok(&office, &["report", "monthly", "--month", &month], None);
    assert!(table.contains("campaign version 1") && table.contains("two_cards"), "{table}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&office, &["report", "monthly", "--month", &month, "--format", "json"], None))
            .unwrap();
    let outlets_village = rows.iter().find(|r| r["area"] == "C1").unwrap();
    let two_cards_rate = outlets_village["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["indicator"] == "two_cards")
        .map(|i| i["rate"].clone());
    assert_eq!(two_cards_rate, Some(serde_json::json!(1.0)), "{outlets_village}");
    // Last month is counted as it was, with the default campaign then in force.
    let table = ok(&office, &["report", "monthly", "--month", &last_month], None);
    assert!(table.contains("campaign version 0") && !table.contains("two_cards"), "{table}");
    let last_month_after = ok(&office, &["report", "monthly", "--month", &last_month, "--format", "json"], None);
    let rows = |json: &str| -> Vec<serde_json::Value> { serde_json::from_str(json).unwrap() };
    let old_figures = |json: &str| {
        rows(json)
            .into_iter()
            .filter(|r| r["area"] == "V1")
            .map(|r| (r["rank"].clone(), r["score"].clone(), r["indicators"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(old_figures(&last_month_after), old_figures(&last_month_before), "last month's ranking does not move");
    drop(hub);
    drop(server);
}
