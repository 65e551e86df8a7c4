//! The office dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core from
//! tests/browser) against the real binary serving the demo town. Screenshots go to test-artifacts/.
//! Set DOORSTEP_SKIP_BROWSER_TESTS=1 to skip on a machine without Chromium; CI never sets it.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn dashboard_in_headless_chromium() {
    if browser_tests_skipped() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // The campaign the office checks and applies on the page (the seed's "two cards" example), and a copy of it
    // with two problems: an unknown place kind and an unknown delivery.
    let two_cards = std::fs::read_to_string(root.join("docs/campaigns/two-cards.toml")).unwrap();
    let broken = two_cards.replacen(r#"kinds = ["outlet"]"#, r#"kinds = ["castle"]"#, 1).replacen(
        r#"any_of = ["two_cards_notice"]"#,
        r#"any_of = ["leaflet"]"#,
        1,
    );
    assert!(broken.contains("castle") && broken.contains("leaflet"), "docs/campaigns/two-cards.toml changed shape");
    let campaign_file = tmp.path().join("two-cards.toml");
    let broken_file = tmp.path().join("two-cards-broken.toml");
    std::fs::write(&campaign_file, &two_cards).unwrap();
    std::fs::write(&broken_file, &broken).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(database_args(&data))
        .env("DOORSTEP_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut passwords = std::collections::HashMap::new();
    let mut line = String::new();
    let url = loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "demo server exited early");
        let t = line.trim();
        if let Some(url) = t.strip_prefix("Doorstep listening on ") {
            break url.to_string();
        }
        if let [user, pw, _role] = t.split_whitespace().collect::<Vec<_>>()[..] {
            passwords.insert(user.to_string(), pw.to_string());
        }
    };
    std::thread::spawn(move || {
        let mut s = String::new();
        while reader.read_line(&mut s).map(|n| n > 0).unwrap_or(false) {
            s.clear();
        }
    });
    // The server is stopped whether the browser test passes or not.
    let ran = std::panic::catch_unwind(|| {
        run_browser_script(
            "dashboard.test.mjs",
            &[
                ("DOORSTEP_URL", url.as_ref()),
                ("DOORSTEP_OFFICE_PASSWORD", passwords["office"].as_ref()),
                ("DOORSTEP_VIEWER_PASSWORD", passwords["viewer"].as_ref()),
                ("DOORSTEP_LEAD_PASSWORD", passwords["lead-west"].as_ref()),
                ("DOORSTEP_CAMPAIGN_FILE", campaign_file.as_ref()),
                ("DOORSTEP_BROKEN_CAMPAIGN_FILE", broken_file.as_ref()),
            ],
        )
    });
    child.kill().ok();
    child.wait().ok();
    if let Err(failed) = ran {
        std::panic::resume_unwind(failed);
    }
}
