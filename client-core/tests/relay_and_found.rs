//! The receiving side's rules for relayed changes (writers' signatures, the server's attested heads) and for
//! places found in the field and corrections, checked on the sync engine itself.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Change, ObjType, ReadDoc, ScalarValue, ROOT};
use client_core::grid::doc::millis_to_time;
use client_core::grid::found::{new_found_place_id, Correction, FoundPlace};
use client_core::grid::model::{AreaKind, Deliveries, GridInfo, Outcome, Place, PlaceKind, Visit};
use client_core::protocol::{hashes_to_wire, GridPush, ReplyKind};
use client_core::sign::KeyPair;
use client_core::sync::Author;
use client_core::sync::{accept_push, accept_push_with, Accepted, PushError, Signer, Trust};
use client_core::GridDoc;
use serde_bytes::ByteBuf;
use std::collections::HashMap;

struct Device {
    author: Author,
    key: KeyPair,
}

fn device(name: &str, n: u8) -> Device {
    let author = Author { actor: ActorId::from(&[n; 16][..]), username: name.into(), device: format!("dev-{name}") };
    Device { author, key: KeyPair::generate() }
}

fn grid() -> GridDoc {
    grid_from(GridDoc::genesis())
}

fn grid_from(mut doc: GridDoc) -> GridDoc {
    doc.set_actor(ActorId::from(&[99u8; 16][..]));
    let info = GridInfo {
        code: "G1".into(),
        name: "grid".into(),
        village_code: "V1".into(),
        village_name: "village".into(),
        village_kind: AreaKind::Village,
        town_code: "T1".into(),
        town_name: "town".into(),
    };
    let place =
        Place { id: "P1".into(), kind: PlaceKind::Household, label: "1".into(), address: None, lat: None, lon: None };
    doc.update_registry(&info, &[place], &Default::default()).unwrap();
    doc
}

fn visit(d: &Device, place: &str) -> Visit {
    Visit {
        id: uuid::Uuid::now_v7(),
        place_id: place.into(),
        volunteer: d.author.username.clone(),
        device: d.author.device.clone(),
        at: millis_to_time(1_700_000_000_000),
        outcome: Outcome::Completed,
        deliveries: Deliveries::of(["handbook"]),
        note: None,
        gps: None,
        photos: Vec::new(),
    }
}

/// `d`'s copy of `base` with its actor set.
fn copy(base: &GridDoc, d: &Device) -> GridDoc {
    let mut doc = base.fork();
    doc.set_actor(d.author.actor.clone());
    doc
}

fn push(doc: &GridDoc, changes: &[Change], signed_by: &[(&KeyPair, &Change)]) -> GridPush {
    GridPush {
        grid: "G1".into(),
        have: hashes_to_wire(&doc.heads()),
        changes: changes.iter().map(|c| ByteBuf::from(c.raw_bytes().to_vec())).collect(),
        signatures: signed_by.iter().map(|(k, c)| k.sign_change(&c.hash())).collect(),
        attestation: None,
    }
}

fn signers(devices: &[&Device]) -> HashMap<ActorId, Signer> {
    devices.iter().map(|d| (d.author.actor.clone(), Signer { author: d.author.clone(), key: d.key.public() })).collect()
}

fn refused(result: Result<Accepted, PushError>, reason: &str) {
    match result {
        Err(PushError::Forbidden { violation, .. }) => {
            assert!(violation.0.contains(reason), "expected {reason:?} in {:?}", violation.0)
        }
        other => panic!("expected a refusal for {reason:?}, got {other:?}"),
    }
}

#[test]
fn a_relayed_change_needs_its_writers_signature_and_stays_attributed_to_it() {
    let server = grid();
    let (a, b, outsider) = (device("amy", 1), device("bo", 2), device("eve", 3));
    let mut at_a = copy(&server, &a);
    let change = at_a.add_visit(&visit(&a, "P1")).unwrap();
    let team = signers(&[&a, &b]);
    let trust = Trust { pusher: &b.author, pusher_key: None, signers: Some(&team), server_key: None };

    let accepted =
        accept_push_with(&mut server.fork(), &push(&at_a, std::slice::from_ref(&change), &[(&a.key, &change)]), &trust)
            .expect("bo relays amy's signed visit");
    assert_eq!(accepted.records.visits[0].device, "dev-amy", "attributed to the writer, not the relay");
    assert_eq!(accepted.signatures.len(), 1, "the verified signature is kept for passing on");

    refused(
        accept_push_with(&mut server.fork(), &push(&at_a, std::slice::from_ref(&change), &[]), &trust),
        "relayed without that device's signature",
    );
    refused(
        accept_push_with(&mut server.fork(), &push(&at_a, std::slice::from_ref(&change), &[(&b.key, &change)]), &trust),
        "its signature is not that device's",
    );
    let strangers = signers(&[&b]);
    let trust = Trust { signers: Some(&strangers), ..trust };
    refused(
        accept_push_with(&mut server.fork(), &push(&at_a, std::slice::from_ref(&change), &[(&a.key, &change)]), &trust),
        "was written by actor",
    );
    // Signed by its writer, but the writer claims someone else's name: the signer's name is what counts.
    let mut forged = copy(&server, &outsider);
    let change = forged.add_visit(&Visit { volunteer: "amy".into(), ..visit(&outsider, "P1") }).unwrap();
    let team = signers(&[&outsider, &b]);
    let trust = Trust { pusher: &b.author, pusher_key: None, signers: Some(&team), server_key: None };
    refused(
        accept_push_with(
            &mut server.fork(),
            &push(&forged, std::slice::from_ref(&change), &[(&outsider.key, &change)]),
            &trust,
        ),
        "claims volunteer",
    );
}

#[test]
fn a_hub_requires_signatures_on_the_pushers_own_changes_and_takes_attested_history_as_it_is() {
    let server_key = KeyPair::generate();
    let mut server = grid();
    let (a, c) = (device("amy", 1), device("cai", 3));
    let hub_copy = server.fork();
    // cai synced with the server after the hub last did; amy then received cai's visit from the server.
    let mut at_c = copy(&server, &c);
    let from_c = at_c.add_visit(&visit(&c, "P1")).unwrap();
    accept_push(&mut server, &push(&at_c, std::slice::from_ref(&from_c), &[]), &c.author).unwrap();
    let mut at_a = copy(&server, &a);
    let own = at_a.add_visit(&visit(&a, "P1")).unwrap();
    let attestation = server_key.attest("G1", &server.heads(), 1);

    let team = signers(&[&a]);
    let pusher_key = a.key.public();
    let server_public = server_key.public();
    let trust = Trust {
        pusher: &a.author,
        pusher_key: Some(&pusher_key),
        signers: Some(&team),
        server_key: Some(&server_public),
    };
    let both = [from_c.clone(), own.clone()];
    refused(
        accept_push_with(&mut hub_copy.fork(), &push(&at_a, &both, &[(&a.key, &own)]), &trust),
        "was written by actor",
    );
    let mut with_attestation = push(&at_a, &both, &[(&a.key, &own)]);
    with_attestation.attestation = Some(attestation.clone());
    let accepted = accept_push_with(&mut hub_copy.fork(), &with_attestation, &trust).expect("cai's visit is vouched");
    // amy's visit is checked; cai's, vouched for, is read back as it was stored (a restored server counts it).
    let mut writers: Vec<&str> = accepted.records.visits.iter().map(|v| v.volunteer.as_str()).collect();
    writers.sort();
    assert_eq!((accepted.new_changes.len(), writers), (2, vec!["amy", "cai"]));
    assert_eq!(accepted.reply.kind, ReplyKind::Synced);

    let mut unsigned = push(&at_a, &both, &[]);
    unsigned.attestation = Some(attestation.clone());
    refused(accept_push_with(&mut hub_copy.fork(), &unsigned, &trust), "carries no valid signature");
    // An attestation by another key vouches for nothing.
    let mut foreign = push(&at_a, &both, &[(&a.key, &own)]);
    foreign.attestation = Some(KeyPair::generate().attest("G1", &server.heads(), 1));
    refused(accept_push_with(&mut hub_copy.fork(), &foreign, &trust), "was written by actor");
}

fn found(d: &Device) -> FoundPlace {
    FoundPlace {
        place: Place {
            id: new_found_place_id(),
            kind: PlaceKind::Shop,
            label: "new shop".into(),
            address: None,
            lat: Some(30.1),
            lon: Some(105.8),
        },
        added_by: d.author.username.clone(),
        device: d.author.device.clone(),
        added_at: millis_to_time(1_700_000_000_000),
        review: None,
    }
}

#[test]
fn devices_add_found_places_and_corrections_but_never_review_or_overwrite() {
    let server = grid();
    let a = device("amy", 1);
    let mut doc = copy(&server, &a);
    let place = found(&a);
    let add = doc.add_found_place(&place).unwrap();
    let visit_it = doc.add_visit(&visit(&a, &place.place.id)).unwrap();
    let correction = Correction {
        id: uuid::Uuid::now_v7(),
        place_id: "P1".into(),
        label: Some("1 (Wang)".into()),
        address: None,
        volunteer: "amy".into(),
        device: "dev-amy".into(),
        at: millis_to_time(1_700_000_000_000),
        review: None,
    };
    let correct = doc.add_correction(&correction).unwrap();
    let mut all = vec![add, visit_it];
    all.extend(correct);
    let accepted = accept_push(&mut server.fork(), &push(&doc, &all, &[]), &a.author).unwrap();
    assert_eq!(
        (accepted.records.places.len(), accepted.records.visits.len(), accepted.records.corrections.len()),
        (1, 1, 1)
    );
    assert_eq!(accepted.records.places[0], place);

    // Crafted changes a device may not make.
    let craft = |write: &dyn Fn(&mut automerge::transaction::Transaction<'_>, &automerge::ObjId)| {
        let mut am = server.automerge().fork().with_actor(a.author.actor.clone());
        let places = am.get(ROOT, "places").unwrap().unwrap().1;
        let mut tx = am.transaction();
        write(&mut tx, &places);
        tx.commit_with(CommitOptions::default().with_time(0));
        let change = am.get_last_local_change().unwrap().clone();
        (GridDoc::from_automerge(am), change)
    };
    let full_place = |tx: &mut automerge::transaction::Transaction<'_>, places: &automerge::ObjId, key: &str| {
        let obj = tx.put_object(places, key, ObjType::Map).unwrap();
        tx.put(&obj, "kind", "shop").unwrap();
        tx.put(&obj, "label", "x").unwrap();
        tx.put(&obj, "added_by", "amy").unwrap();
        tx.put(&obj, "device", "dev-amy").unwrap();
        tx.put(&obj, "added_at", ScalarValue::Timestamp(0)).unwrap();
        obj
    };
    let key = new_found_place_id();
    let (doc, change) = craft(&|tx, places| {
        let obj = full_place(tx, places, &key);
        tx.put(&obj, "review", "confirmed").unwrap();
    });
    refused(accept_push(&mut server.fork(), &push(&doc, &[change], &[]), &a.author), "field `review` is not part of");
    let (doc, change) = craft(&|tx, places| {
        full_place(tx, places, "P2");
    });
    refused(accept_push(&mut server.fork(), &push(&doc, &[change], &[]), &a.author), "needs a key F-<uuid>");
    let (doc, change) = craft(&|tx, places| {
        let p1 = tx.get(places, "P1").unwrap().unwrap().1;
        tx.put(&p1, "label", "mine now").unwrap();
    });
    refused(accept_push(&mut server.fork(), &push(&doc, &[change], &[]), &a.author), "overwrites or deletes");
    let (doc, change) = craft(&|tx, places| {
        let obj = full_place(tx, places, &key);
        tx.put(&obj, "kind", "castle").unwrap();
    });
    refused(accept_push(&mut server.fork(), &push(&doc, &[change], &[]), &a.author), "overwrites or deletes");
    let (doc, change) = craft(&|tx, places| {
        let obj = tx.put_object(places, key.as_str(), ObjType::Map).unwrap();
        tx.put(&obj, "kind", "castle").unwrap();
    });
    refused(accept_push(&mut server.fork(), &push(&doc, &[change], &[]), &a.author), "wrong type or size");
    // A place in another volunteer's name, and a correction for a place not in the grid.
    let mut doc = copy(&server, &a);
    let change = doc.add_found_place(&FoundPlace { added_by: "bo".into(), ..found(&a) }).unwrap();
    refused(accept_push(&mut server.fork(), &push(&doc, &[change], &[]), &a.author), "claims volunteer");
    let mut doc = copy(&server, &a);
    let changes = doc.add_correction(&Correction { place_id: "NOPE".into(), ..correction }).unwrap();
    refused(accept_push(&mut server.fork(), &push(&doc, &changes, &[]), &a.author), "not in this grid");
}

#[test]
fn a_correction_reaches_a_grid_created_before_corrections_existed() {
    let old = grid_from(GridDoc::genesis_without_corrections());
    let a = device("amy", 1);
    let mut doc = copy(&old, &a);
    let correction = Correction {
        id: uuid::Uuid::now_v7(),
        place_id: "P1".into(),
        label: None,
        address: Some("Bridge Rd 1".into()),
        volunteer: "amy".into(),
        device: "dev-amy".into(),
        at: millis_to_time(1_700_000_000_000),
        review: None,
    };
    let changes = doc.add_correction(&correction).unwrap();
    assert_eq!(changes.len(), 2, "the constant change creating the map comes first");
    let mut server = old.fork();
    let accepted = accept_push(&mut server, &push(&doc, &changes, &[]), &a.author).unwrap();
    assert_eq!((accepted.new_changes.len(), accepted.records.corrections.len()), (2, 1));
    assert_eq!(server.corrections().unwrap(), vec![correction]);
}

/// Figures for docs/benchmarks.md (ignored in the suite): what checking 300 visits costs the receiving side when
/// their writer pushes them, when a team-mate relays them with their signatures (the server), and at a hub (which
/// checks the pusher's own signatures too). Best of 9 interleaved runs each.
#[test]
#[ignore = "benchmark figures; scripts/test runs it once (its assertions checked, its timings not)"]
fn relay_cost_figures() {
    let server = grid();
    let (a, b) = (device("amy", 1), device("bo", 2));
    let mut doc = copy(&server, &a);
    let changes: Vec<Change> = (0..300).map(|_| doc.add_visit(&visit(&a, "P1")).unwrap()).collect();
    let signed: Vec<(&KeyPair, &Change)> = changes.iter().map(|c| (&a.key, c)).collect();
    let own = push(&doc, &changes, &[]);
    let relayed = push(&doc, &changes, &signed);
    let team = signers(&[&a, &b]);
    let a_key = a.key.public();
    let run = |trust: &Trust<'_>, push: &GridPush| {
        let mut copy = server.fork();
        let started = std::time::Instant::now();
        let accepted = accept_push_with(&mut copy, push, trust).unwrap();
        let took = started.elapsed();
        assert_eq!(accepted.records.visits.len(), 300);
        took
    };
    let server_trust = Trust { pusher: &b.author, pusher_key: None, signers: Some(&team), server_key: None };
    let hub_trust = Trust { pusher: &a.author, pusher_key: Some(&a_key), signers: Some(&team), server_key: None };
    // Interleaved rounds, so that a busy moment of the shared machine hits every variant alike.
    let mut best = [std::time::Duration::MAX; 3];
    for _ in 0..9 {
        best[0] = best[0].min(run(&Trust::own(&a.author), &own));
        best[1] = best[1].min(run(&server_trust, &relayed));
        best[2] = best[2].min(run(&hub_trust, &relayed));
    }
    let [base, server_relay, hub] = best;
    let signatures = relayed.signatures.clone();
    let checks = (0..9)
        .map(|_| {
            let started = std::time::Instant::now();
            assert!(changes.iter().zip(&signatures).all(|(c, s)| a_key.verifies_change(&c.hash(), s)));
            started.elapsed()
        })
        .min()
        .unwrap();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!("300 signature checks alone:                   {:.1} ms", ms(checks));
    println!("300 visits pushed by their writer:            {:.1} ms", ms(base));
    println!(
        "300 visits relayed with signatures (server):  {:.1} ms ({:.2}x)",
        ms(server_relay),
        ms(server_relay) / ms(base)
    );
    println!("300 visits, signatures required (hub):        {:.1} ms ({:.2}x)", ms(hub), ms(hub) / ms(base));
}
