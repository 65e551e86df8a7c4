//! HTTPS at base: the server's Doorstep CA signs a lead's hub certificate (never a volunteer's, never for an
//! address outside local networks), `hub serve --tls` serves HTTPS with it, and a CLI volunteer syncs through it
//! trusting the CA saved at enrolment. A hub with a certificate the CA did not sign, or for another address, is
//! refused with a plain reason and nothing is lost; the server serves HTTPS with `--tls-cert/--tls-key` too.

mod common;
use common::*;
use std::path::{Path, PathBuf};

const TERRITORY: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
H1,household,1号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
H2,household,2号,G1,一网格,V1,龙凤村,village,T1,太安镇\n";

struct Base {
    tmp: tempfile::TempDir,
    data: PathBuf,
    server: Server,
    office: PathBuf,
    lead: PathBuf,
    volunteer: PathBuf,
}

/// A server, its office, a team of a lead and a volunteer, both enrolled and synced.
fn base() -> Base {
    let tmp = tempfile::tempdir().unwrap();
    let Town { server, data, office } = town(tmp.path(), TERRITORY);
    let url = server.url.clone();
    ok(&office, &["user", "create", "lead", "--role", "lead", "--password-stdin"], Some(&pw()));
    ok(&office, &["team", "create", "east", "--lead", "lead"], None);
    ok(&office, &["assign", "G1", "--team", "east"], None);
    ok(&office, &["user", "create", "amy", "--role", "volunteer", "--team", "east", "--password-stdin"], Some(&pw()));
    let lead = tmp.path().join("lead");
    let volunteer = tmp.path().join("amy");
    for (profile, name) in [(&lead, "lead"), (&volunteer, "amy")] {
        ok(profile, &["field", "login", "--server", &url, "--username", name, "--password-stdin"], Some(&pw()));
        ok(profile, &["field", "sync"], None);
    }
    Base { tmp, data, server, office, lead, volunteer }
}

/// GET with a client that trusts `ca` (PEM) besides the public roots: the content type and the body.
fn get(url: &str, ca: Option<&str>) -> (String, String) {
    let mut client = reqwest::Client::builder();
    if let Some(pem) = ca {
        client = client.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
    }
    let client = client.build().unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let resp = client.get(url).send().await.unwrap();
        assert!(resp.status().is_success(), "{url}: {}", resp.status());
        let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
        (kind, resp.text().await.unwrap())
    })
}

fn ca_of(url: &str) -> serde_json::Value {
    serde_json::from_str(&get(&format!("{url}/api/v1/ca"), None).1).unwrap()
}

fn visits_on(profile: &Path, place: &str) -> u64 {
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&ok(profile, &["field", "places", "--format", "json"], None)).unwrap();
    rows.iter().find(|r| r["place_id"] == place).unwrap()["visits"].as_u64().unwrap()
}

#[test]
fn a_volunteer_syncs_through_a_hub_over_https_with_the_doorstep_ca() {
    let base = base();
    // The CA is public, with the fingerprint phones show for an installed certificate.
    let ca = ca_of(&base.server.url);
    let pem = ca["certificate"].as_str().unwrap();
    assert!(ca["name"].as_str().unwrap().starts_with("Doorstep CA "), "{ca}");
    let sha256 = ca["sha256"].as_str().unwrap();
    assert_eq!((sha256.len(), sha256.matches(':').count()), (95, 31), "{sha256}");
    let (kind, file) = get(&format!("{}/api/v1/ca.pem", base.server.url), None);
    assert_eq!((kind.as_str(), file.as_str()), ("application/x-x509-ca-cert", pem));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base.volunteer.join("device.json")).unwrap()).unwrap();
    assert_eq!(saved["ca_certificate"], pem, "enrolment saved the CA in the profile");

    // A volunteer gets no hub certificate; a lead gets none for an address outside local networks.
    let refused = fails(&base.volunteer, &["hub", "certificate", "--ip", "127.0.0.1"], None);
    assert!(refused.contains("only a team lead's (or the office's) device may obtain a hub certificate"), "{refused}");
    let refused = fails(&base.lead, &["hub", "certificate", "--ip", "8.8.8.8"], None);
    assert!(refused.contains("8.8.8.8 is not an address of a local network"), "{refused}");
    let refused = fails(&base.lead, &["hub", "serve", "--tls"], None);
    assert!(refused.contains("holds no hub certificate"), "{refused}");

    let issued = ok(&base.lead, &["hub", "certificate", "--ip", "127.0.0.1", "--name", "hub.home.arpa"], None);
    assert!(issued.starts_with("hub certificate for 127.0.0.1, hub.home.arpa, valid until "), "{issued}");
    let audit = ok(&base.office, &["audit", "--format", "json"], None);
    assert!(audit.contains("hub.certificate") && audit.contains("team east"), "{audit}");

    let hub = Hub::start(&base.lead, &["--upstream-every", "0", "--tls"]);
    assert!(hub.url.starts_with("https://127.0.0.1:"), "{}", hub.url);
    // The hub hands phones the same CA certificate, over HTTPS it signed.
    assert_eq!(get(&format!("{}/api/v1/ca.pem", hub.url), Some(pem)).1, pem);

    ok(&base.volunteer, &["field", "visit", "H1", "--handbook", "--briefed"], None);
    let synced = ok(&base.volunteer, &["field", "sync", "--via", &hub.url], None);
    assert!(synced.contains(&format!("through the hub at {}", hub.url)), "{synced}");
    assert_eq!(visits_on(&base.lead, "H1"), 1, "the hub holds the visit");

    // The certificate is for 127.0.0.1 and hub.home.arpa: the same hub as `localhost` is refused.
    let port = hub.url.rsplit(':').next().unwrap();
    let other = format!("https://localhost:{port}");
    ok(&base.volunteer, &["field", "visit", "H2", "--handbook"], None);
    let refused = fails(&base.volunteer, &["field", "sync", "--via", &other], None);
    assert!(refused.contains("its certificate is for another address (127.0.0.1, hub.home.arpa)"), "{refused}");
    // H1 waits for the server too: the hub has it, the server not yet.
    assert!(refused.contains("nothing was lost: 2 unsynced visits stay on this device"), "{refused}");

    // Forwarded upstream as usual.
    ok(&base.lead, &["hub", "sync"], None);
    assert_eq!(figure(&coverage(&base.office, "grid", None), "G1", "handbook"), (2, 1, 0));
    drop(hub);
}

#[test]
fn a_hub_whose_certificate_the_doorstep_ca_did_not_sign_is_refused() {
    let base = base();
    // A certificate made on the hub itself, for the right address, signed by nobody the volunteer trusts.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().self_signed(&key).unwrap();
    let cert_file = write_file(base.tmp.path(), "self-made.crt", cert.pem().as_bytes());
    let key_file = write_file(base.tmp.path(), "self-made.key", key.serialize_pem().as_bytes());
    let args =
        ["--upstream-every", "0", "--tls-cert", cert_file.to_str().unwrap(), "--tls-key", key_file.to_str().unwrap()];
    let hub = Hub::start(&base.lead, &args);
    assert!(hub.url.starts_with("https://"), "{}", hub.url);
    ok(&base.volunteer, &["field", "visit", "H1", "--handbook"], None);
    let refused = fails(&base.volunteer, &["field", "sync", "--via", &hub.url], None);
    assert!(refused.contains(&format!("refused {}", hub.url)), "{refused}");
    assert!(refused.contains("signed neither by this installation's Doorstep CA"), "{refused}");
    assert!(refused.contains("nothing was lost: 1 unsynced visits stay on this device"), "{refused}");
    assert_eq!(visits_on(&base.lead, "H1"), 0, "nothing reached the hub");

    // Files that are not a certificate and its key stop the hub before it listens, saying which.
    let wrong = fails(
        &base.lead,
        &["hub", "serve", "--tls-cert", key_file.to_str().unwrap(), "--tls-key", key_file.to_str().unwrap()],
        None,
    );
    assert!(wrong.contains("holds no certificate"), "{wrong}");
    let other = rcgen::KeyPair::generate().unwrap();
    let other_file = write_file(base.tmp.path(), "other.key", other.serialize_pem().as_bytes());
    let args = ["hub", "serve", "--tls-cert", cert_file.to_str().unwrap(), "--tls-key", other_file.to_str().unwrap()];
    let mismatch = fails(&base.lead, &args, None);
    assert!(mismatch.contains("do not make a usable pair"), "{mismatch}");

    // The volunteer still syncs with the server.
    ok(&base.volunteer, &["field", "sync"], None);
    assert_eq!(figure(&coverage(&base.office, "grid", None), "G1", "handbook"), (2, 1, 0));
}

#[test]
fn the_server_serves_https_with_a_certificate_the_ca_signed() {
    let base = base();
    ok(&base.lead, &["hub", "certificate", "--ip", "127.0.0.1"], None);
    // A certificate the installation's CA signed for a hub of the volunteer's team is one the volunteer's device
    // trusts, wherever it is served: here the lead's, for 127.0.0.1.
    let tls = base.lead.join("hub-tls.pem");
    let tls = tls.to_str().unwrap();
    let https = Server::start_with(&base.data, "127.0.0.1:0", &["--tls-cert", tls, "--tls-key", tls]);
    assert!(https.url.starts_with("https://127.0.0.1:"), "{}", https.url);
    ok(&base.volunteer, &["field", "visit", "H2", "--briefed"], None);
    let synced = ok(&base.volunteer, &["field", "sync", "--via", &https.url], None);
    assert!(synced.contains("1 new to the server"), "{synced}");
    assert_eq!(figure(&coverage(&base.office, "grid", None), "G1", "awareness"), (2, 1, 0));
    let missing = base.tmp.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let out = run(
        &base.office,
        &[
            "serve",
            "--data-dir",
            base.data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            missing,
            "--tls-key",
            missing,
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the certificate"), "{out:?}");
}

/// A hub certificate for 127.0.0.1 expiring `days` from now, made and signed by the test (as an old certificate
/// whose signer no longer matters: what counts is when it expires and which addresses it names).
fn plant_certificate(profile: &Path, days: i64) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(40);
    params.not_after = now + time::Duration::days(days);
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(profile.join("hub-tls.pem"), format!("{}{}", key.serialize_pem(), cert.pem())).unwrap();
}

/// A hub certificate for 127.0.0.1 signed by the installation's CA for the lead's device, issued `days_ago` days
/// ago (so valid for a week less that).
fn plant_ca_certificate(base: &Base, days_ago: i64) {
    let ca = server::tls::ca::CertificateAuthority::from_secret(&std::fs::read(base.data.join("jwt-secret")).unwrap());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let device: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base.lead.join("device.json")).unwrap()).unwrap();
    let hub = server::tls::ca::HubIdentity {
        team: "east".into(),
        device_id: device["device_id"].as_str().unwrap().to_string(),
    };
    let issued_at = chrono::Utc::now() - chrono::Duration::days(days_ago);
    let issued = ca.issue_hub_certificate(&params.serialize_request(&key).unwrap().pem().unwrap(), &hub, issued_at);
    let pem = format!("{}{}", key.serialize_pem(), issued.unwrap().certificate_pem);
    std::fs::write(base.lead.join("hub-tls.pem"), pem).unwrap();
}

#[test]
fn a_serving_hub_renews_its_certificate_when_due_and_serves_the_new_one() {
    let base = base();
    // Expired: the hub does not start with it, and says how to renew.
    plant_certificate(&base.lead, -1);
    let refused = fails(&base.lead, &["hub", "serve", "--listen", "127.0.0.1:0"], None);
    assert!(refused.contains("expired at") && refused.contains("`doorstep hub sync`"), "{refused}");

    // Five days left: the hub serves it, and its first upstream sync renews it and serves the renewal.
    plant_certificate(&base.lead, 5);
    let hub = Hub::start(&base.lead, &["--upstream-every", "1"]);
    ok(&base.volunteer, &["field", "visit", "H1", "--handbook"], None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = run(&base.volunteer, &["field", "sync", "--via", &hub.url], None);
        if out.status.success() {
            break;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("signed neither by this installation's Doorstep CA"), "{err}");
        assert!(std::time::Instant::now() < deadline, "the hub never served a renewed certificate: {err}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(visits_on(&base.lead, "H1"), 1);
    drop(hub);

    // `hub sync` leaves a certificate that is not due alone, and renews one that is, for the same addresses: one
    // with five days or fewer left, or one that names no device of the team (devices refuse it).
    let before = std::fs::read(base.lead.join("hub-tls.pem")).unwrap();
    ok(&base.lead, &["hub", "sync"], None);
    assert_eq!(std::fs::read(base.lead.join("hub-tls.pem")).unwrap(), before, "a week left: not renewed");
    plant_ca_certificate(&base, 1);
    let before = std::fs::read(base.lead.join("hub-tls.pem")).unwrap();
    ok(&base.lead, &["hub", "sync"], None);
    assert_eq!(std::fs::read(base.lead.join("hub-tls.pem")).unwrap(), before, "six days left: not renewed");
    for days_ago in [3, -100] {
        if days_ago > 0 {
            plant_ca_certificate(&base, days_ago);
        } else {
            plant_certificate(&base.lead, 14);
        }
        let out = run(&base.lead, &["hub", "sync"], None);
        assert!(String::from_utf8_lossy(&out.stderr).contains("renewed the hub certificate for 127.0.0.1"), "{out:?}");
    }
    // Without addresses, `hub certificate` renews at once for those held.
    let renewed = ok(&base.lead, &["hub", "certificate"], None);
    assert!(renewed.starts_with("hub certificate for 127.0.0.1, valid until"), "{renewed}");
}
