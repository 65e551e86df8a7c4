//! Tests that devices and the server converge through the sync engine (lost replies, retries and stale
//! replays included) and that the server refuses every push a device is not allowed to make.

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, Change, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use chrono::{DateTime, Utc};
use client_core::campaign::Campaign;
use client_core::grid::coverage::{Figure, PlaceCoverage};
use client_core::grid::doc::millis_to_time;
use client_core::grid::model::{AreaKind, Deliveries, GridInfo, Outcome, Place, PlaceKind, Visit};
use client_core::protocol::{
    decode, encode, hashes_from_wire, Attestation, GridPush, ReplyKind, SyncRequest, SyncResponse, PROTOCOL_VERSION,
};
use client_core::sign::KeyPair;
use client_core::sync::Author;
use client_core::sync::{accept_push_with, apply_reply, build_push, new_reply, PushError, Trust};
use client_core::GridDoc;
use proptest::prelude::*;
use serde_bytes::ByteBuf;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

// ---------- the grids ----------

const RURAL: &str = "G-RURAL";
const URBAN: &str = "G-URBAN";
const BASE_MS: i64 = 1_700_000_000_000;

struct GridSpec {
    info: GridInfo,
    places: Vec<Place>,
}

fn place(id: &str, kind: PlaceKind, gps: Option<(f64, f64)>) -> Place {
    Place {
        id: id.into(),
        kind,
        label: format!("{kind} {id}"),
        address: Some(format!("{id} road")),
        lat: gps.map(|g| g.0),
        lon: gps.map(|g| g.1),
    }
}

fn grid_spec(code: &str) -> GridSpec {
    let (village_kind, places) = match code {
        RURAL => (
            AreaKind::Village,
            vec![
                place("R-H1", PlaceKind::Household, Some((30.1, 105.8))),
                place("R-H2", PlaceKind::Household, None),
                place("R-S1", PlaceKind::Shop, None),
                place("R-B1", PlaceKind::Building, None),
                place("R-M1", PlaceKind::Market, Some((30.2, 105.9))),
                place("R-L1", PlaceKind::LedScreen, None),
            ],
        ),
        URBAN => (
            AreaKind::Community,
            vec![
                place("U-H1", PlaceKind::Household, None),
                place("U-H2", PlaceKind::Household, None),
                place("U-S1", PlaceKind::Shop, Some((30.3, 106.0))),
                place("U-B1", PlaceKind::Building, None),
                place("U-M1", PlaceKind::Market, None),
                place("U-L1", PlaceKind::LedScreen, None),
            ],
        ),
        other => panic!("no such test grid {other}"),
    };
    GridSpec {
        info: GridInfo {
            code: code.into(),
            name: format!("grid {code}"),
            village_code: format!("V-{code}"),
            village_name: format!("village of {code}"),
            village_kind,
            town_code: "T1".into(),
            town_name: "Town one".into(),
        },
        places,
    }
}

/// The grids of a scenario: the rural grid first, then the urban one.
fn grid_codes(n: usize) -> Vec<&'static str> {
    [RURAL, URBAN][..n].to_vec()
}

// ---------- the simulated server ----------

/// An in-memory server: one document per grid, every grid assigned to every device. Like the real one, it signs
/// a statement of the heads it holds in every reply, and takes changes in the history of heads it once attested
/// as already checked.
struct Server {
    actor: ActorId,
    key: KeyPair,
    /// The time of the next statement: increases at every reply.
    clock: i64,
    grids: BTreeMap<String, GridDoc>,
    /// Every change the server stored after the grid's registry change, in storage order.
    log: BTreeMap<String, Vec<Change>>,
    /// The visits projected from `Accepted::new_visits`, as the real server projects them into SQL.
    projected: BTreeMap<String, Vec<Visit>>,
}

impl Server {
    fn new(codes: &[&str]) -> Self {
        let actor = ActorId::random();
        let grids = codes.iter().map(|code| (code.to_string(), Self::create_grid(&actor, code))).collect();
        Server { actor, key: KeyPair::generate(), clock: 0, grids, log: BTreeMap::new(), projected: BTreeMap::new() }
    }

    fn create_grid(actor: &ActorId, code: &str) -> GridDoc {
        let spec = grid_spec(code);
        let mut doc = GridDoc::genesis();
        doc.set_actor(actor.clone());
        doc.update_registry(&spec.info, &spec.places, &Default::default())
            .unwrap()
            .expect("a new grid gets its registry");
        doc
    }

    /// Loses everything stored for a grid since it was created (like a restore from an early backup).
    fn rebuild(&mut self, code: &str) {
        self.grids.insert(code.into(), Self::create_grid(&self.actor, code));
        self.log.remove(code);
        self.projected.remove(code);
    }

    fn doc(&self, code: &str) -> &GridDoc {
        &self.grids[code]
    }

    /// One sync exchange. Like the real endpoint, every pushed grid is checked first and a refusal of any
    /// of them stores nothing.
    fn sync(&mut self, author: &Author, request: &[u8]) -> Result<Vec<u8>, PushError> {
        let req: SyncRequest = decode(request).expect("the device's request decodes");
        assert_eq!(req.protocol, PROTOCOL_VERSION);
        // Checked on copies, so that a refusal of any grid leaves every stored grid as it was.
        let mut accepted = Vec::new();
        let public = self.key.public();
        let trust = Trust { pusher: author, pusher_key: None, signers: None, server_key: Some(&public) };
        for push in &req.grids {
            let mut next = self.grids.get(&push.grid).expect("pushed grid exists").fork();
            let acc = accept_push_with(&mut next, push, &trust)?;
            accepted.push((acc, next));
        }
        let mut replies: Vec<_> = self
            .grids
            .iter()
            .filter(|(code, _)| !req.grids.iter().any(|p| &p.grid == *code))
            .map(|(code, doc)| new_reply(code, doc))
            .collect();
        for (acc, doc) in accepted {
            let code = acc.reply.grid.clone();
            assert_eq!(acc.reply.stored as usize, acc.new_changes.len());
            if acc.new_changes.is_empty() {
                assert!(acc.records.visits.is_empty());
                assert_eq!(doc.heads(), self.grids[&code].heads(), "nothing new leaves the copy as it was");
            } else {
                assert_eq!(acc.reply.kind, ReplyKind::Synced);
                self.grids.insert(code.clone(), doc);
                self.log.entry(code.clone()).or_default().extend(acc.new_changes);
                self.projected.entry(code).or_default().extend(acc.records.visits);
            }
            replies.push(acc.reply);
        }
        for reply in replies.iter_mut().filter(|r| r.kind != ReplyKind::ResendAll) {
            self.clock += 1;
            let heads = hashes_from_wire(&reply.heads).unwrap();
            reply.attestation = Some(self.key.attest(&reply.grid, &heads, self.clock));
        }
        Ok(encode(&SyncResponse { grids: replies, tasks: vec![], relay: None, docs: Default::default() }))
    }

    /// Checks a single grid push on its own, storing it if accepted.
    fn push(&mut self, author: &Author, push: &GridPush) -> Result<ReplyKind, PushError> {
        let req = encode(&SyncRequest {
            protocol: PROTOCOL_VERSION,
            grids: vec![push.clone()],
            tasks: None,
            docs: Default::default(),
        });
        let resp: SyncResponse = decode(&self.sync(author, &req)?).unwrap();
        Ok(resp.grids.iter().find(|r| r.grid == push.grid).expect("a reply for the pushed grid").kind)
    }
}

// ---------- the simulated device ----------

struct Held {
    doc: GridDoc,
    /// Heads the server is known to hold; `None` = the next push sends the whole history.
    confirmed: Option<Vec<ChangeHash>>,
}

struct Device {
    author: Author,
    grids: BTreeMap<String, Held>,
    /// Every visit this device recorded, with its grid.
    recorded: Vec<(String, Visit)>,
    /// The last request sent, for replays.
    last_request: Option<Vec<u8>>,
    /// The newest statement of the server for each grid, sent with every push as the field client does.
    attestations: BTreeMap<String, Attestation>,
}

impl Device {
    fn new(n: usize) -> Self {
        Device {
            author: Author {
                actor: ActorId::random(),
                username: format!("volunteer{n}"),
                device: format!("device-{n}"),
            },
            grids: BTreeMap::new(),
            recorded: Vec::new(),
            last_request: None,
            attestations: BTreeMap::new(),
        }
    }

    fn doc(&self, code: &str) -> &GridDoc {
        &self.grids[code].doc
    }

    fn request(&mut self) -> Vec<u8> {
        let grids = self
            .grids
            .iter()
            .map(|(code, held)| {
                let mut push = build_push(code, &held.doc, held.confirmed.as_deref());
                push.attestation = self.attestations.get(code).cloned();
                push
            })
            .collect();
        let bytes = encode(&SyncRequest { protocol: PROTOCOL_VERSION, grids, tasks: None, docs: Default::default() });
        self.last_request = Some(bytes.clone());
        bytes
    }

    /// Applies a response, returning what the server said about each grid.
    fn receive(&mut self, response: &[u8]) -> BTreeMap<String, ReplyKind> {
        let resp: SyncResponse = decode(response).expect("the server's response decodes");
        let mut kinds = BTreeMap::new();
        for reply in resp.grids {
            kinds.insert(reply.grid.clone(), reply.kind);
            if let Some(statement) = &reply.attestation {
                if self.attestations.get(&reply.grid).is_none_or(|held| held.at < statement.at) {
                    self.attestations.insert(reply.grid.clone(), statement.clone());
                }
            }
            match reply.kind {
                ReplyKind::New => {
                    let snapshot = reply.snapshot.as_ref().expect("a new grid has a snapshot");
                    let mut doc = GridDoc::load(snapshot).unwrap();
                    doc.set_actor(self.author.actor.clone());
                    // As the field client does: keep whatever was already held for this grid.
                    if let Some(old) = self.grids.get(&reply.grid) {
                        doc.apply_changes(old.doc.changes_since(&[])).unwrap();
                    }
                    let confirmed = Some(hashes_from_wire(&reply.heads).unwrap());
                    self.grids.insert(reply.grid, Held { doc, confirmed });
                }
                ReplyKind::Synced => {
                    let held = self.grids.get_mut(&reply.grid).expect("a reply for a grid this device pushed");
                    let applied = apply_reply(&mut held.doc, &reply).unwrap();
                    held.confirmed = Some(applied.confirmed);
                }
                ReplyKind::ResendAll => {
                    self.grids.get_mut(&reply.grid).expect("a reply for a grid this device pushed").confirmed = None;
                }
                ReplyKind::Unassigned => panic!("every grid stays assigned here"),
            }
        }
        kinds
    }

    fn sync(&mut self, server: &mut Server) -> BTreeMap<String, ReplyKind> {
        let req = self.request();
        let resp = server.sync(&self.author, &req).expect("an honest device's push is accepted");
        self.receive(&resp)
    }

    fn visit(&self, place_id: &str, id: Uuid, at: DateTime<Utc>) -> Visit {
        Visit {
            id,
            place_id: place_id.into(),
            volunteer: self.author.username.clone(),
            device: self.author.device.clone(),
            at,
            outcome: Outcome::Completed,
            deliveries: Deliveries::of(["handbook"]),
            note: None,
            gps: None,
            photos: Vec::new(),
        }
    }

    /// Records a visit; `false` when the device does not hold the grid yet.
    fn record(&mut self, code: &str, visit: Visit) -> bool {
        let Some(held) = self.grids.get_mut(code) else {
            return false;
        };
        let change = held.doc.add_visit(&visit).unwrap();
        assert_eq!(change.actor_id(), &self.author.actor);
        self.recorded.push((code.into(), visit));
        true
    }
}

/// Deterministic UUID v7 keys, unique within a test.
struct Ids(u64);

impl Ids {
    fn next(&mut self, at: DateTime<Utc>) -> Uuid {
        self.0 += 1;
        let mut rand = [0u8; 10];
        rand[2..].copy_from_slice(&self.0.to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis() as u64, &rand).into_uuid()
    }
}

// ---------- what every replica must agree on ----------

fn sorted_visits(doc: &GridDoc) -> Vec<Visit> {
    let mut visits = doc.visits().unwrap();
    visits.sort_by_key(|v| v.id);
    visits
}

fn coverage(doc: &GridDoc) -> (Vec<PlaceCoverage>, Vec<Figure>) {
    let rural = doc.grid_info().unwrap().expect("grid info").is_rural();
    let visits = doc.visits().unwrap();
    let places = doc.places().unwrap();
    let per_place: Vec<(PlaceKind, PlaceCoverage)> = places
        .iter()
        .map(|p| {
            let cov = Campaign::default_campaign().place_coverage(
                p.kind,
                rural,
                visits.iter().filter(|v| v.place_id == p.id),
            );
            (p.kind, cov)
        })
        .collect();
    let figures = Campaign::default_campaign().summarize(per_place.iter().map(|(k, c)| (*k, rural, c)));
    (per_place.into_iter().map(|(_, c)| c).collect(), figures)
}

fn sorted_heads(doc: &GridDoc) -> Vec<ChangeHash> {
    let mut heads = doc.heads();
    heads.sort();
    heads
}

fn assert_converged(server: &Server, devices: &[Device]) {
    for (code, server_doc) in &server.grids {
        let heads = sorted_heads(server_doc);
        let visits = sorted_visits(server_doc);
        let cov = coverage(server_doc);

        // Exactly the visits that were recorded, each once and unaltered.
        let mut recorded: Vec<Visit> =
            devices.iter().flat_map(|d| d.recorded.iter()).filter(|(g, _)| g == code).map(|(_, v)| v.clone()).collect();
        recorded.sort_by_key(|v| v.id);
        assert_eq!(visits, recorded, "grid {code}: server visits vs recorded");
        let mut by_id: HashMap<Uuid, usize> = HashMap::new();
        for v in &visits {
            *by_id.entry(v.id).or_default() += 1;
        }
        assert!(by_id.values().all(|&n| n == 1), "grid {code}: a visit twice");

        // The projection built from `new_visits` and the stored log match the document.
        let mut projected = server.projected.get(code).cloned().unwrap_or_default();
        projected.sort_by_key(|v| v.id);
        assert_eq!(projected, visits, "grid {code}: projection vs document");
        let mut replayed = Server::create_grid(&server.actor, code);
        replayed.apply_changes(server.log.get(code).cloned().unwrap_or_default()).unwrap();
        assert_eq!(sorted_heads(&replayed), heads, "grid {code}: stored log replays to the document");

        for d in devices {
            let doc = d.doc(code);
            let who = &d.author.device;
            assert_eq!(sorted_heads(doc), heads, "grid {code}: heads of {who}");
            assert_eq!(sorted_visits(doc), visits, "grid {code}: visits of {who}");
            assert_eq!(coverage(doc), cov, "grid {code}: coverage on {who}");
        }
    }
}

// ---------- the property ----------

#[derive(Debug, Clone)]
enum Op {
    Record {
        device: usize,
        grid: usize,
        place: usize,
        outcome: Outcome,
        deliveries: Deliveries,
        minute: i64,
        gps: bool,
        note: bool,
    },
    Sync {
        device: usize,
    },
    /// The server stores the push but the device never sees the reply.
    LostReply {
        device: usize,
    },
    /// The same request arrives twice; the device sees the second reply, and the first one too if `both`.
    Duplicate {
        device: usize,
        both: bool,
    },
    /// The device's last request (possibly long stale) arrives again and its reply is applied.
    Replay {
        device: usize,
    },
}

#[derive(Debug, Clone)]
struct Scenario {
    devices: usize,
    grids: usize,
    /// Devices that sync once before anything else happens.
    enrolled: Vec<bool>,
    ops: Vec<Op>,
}

fn op_strategy(devices: usize, grids: usize) -> impl Strategy<Value = Op> {
    let deliveries = any::<[bool; 5]>().prop_map(|b| Deliveries::of_flags([b[0], b[1], b[2], b[3], b[4]]));
    let record = (
        0..devices,
        0..grids,
        0usize..6,
        prop::sample::select(Outcome::ALL.to_vec()),
        deliveries,
        0i64..8,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(device, grid, place, outcome, deliveries, minute, gps, note)| Op::Record {
            device,
            grid,
            place,
            outcome,
            deliveries,
            minute,
            gps,
            note,
        });
    prop_oneof![
        6 => record,
        3 => (0..devices).prop_map(|device| Op::Sync { device }),
        1 => (0..devices).prop_map(|device| Op::LostReply { device }),
        1 => (0..devices, any::<bool>()).prop_map(|(device, both)| Op::Duplicate { device, both }),
        1 => (0..devices).prop_map(|device| Op::Replay { device }),
    ]
}

fn scenario_strategy() -> impl Strategy<Value = Scenario> {
    (2usize..=4, 1usize..=2).prop_flat_map(|(devices, grids)| {
        (prop::collection::vec(any::<bool>(), devices), prop::collection::vec(op_strategy(devices, grids), 0..=40))
            .prop_map(move |(enrolled, ops)| Scenario { devices, grids, enrolled, ops })
    })
}

fn run(scenario: &Scenario) {
    let codes = grid_codes(scenario.grids);
    let mut server = Server::new(&codes);
    let mut devices: Vec<Device> = (0..scenario.devices).map(Device::new).collect();
    let mut ids = Ids(0);
    for (d, enrolled) in devices.iter_mut().zip(&scenario.enrolled) {
        if *enrolled {
            d.sync(&mut server);
        }
    }
    for op in &scenario.ops {
        match *op {
            Op::Record { device, grid, place, outcome, ref deliveries, minute, gps, note } => {
                let code = codes[grid];
                let spec = grid_spec(code);
                let at = millis_to_time(BASE_MS + minute * 60_000);
                let d = &mut devices[device];
                let mut visit = d.visit(&spec.places[place].id, ids.next(at), at);
                visit.outcome = outcome;
                visit.deliveries = deliveries.clone();
                visit.gps = gps.then_some((30.0 + minute as f64 / 100.0, 105.5));
                visit.note = note.then(|| format!("note {minute}"));
                d.record(code, visit);
            }
            Op::Sync { device } => {
                devices[device].sync(&mut server);
            }
            Op::LostReply { device } => {
                let d = &mut devices[device];
                let req = d.request();
                server.sync(&d.author, &req).expect("accepted");
            }
            Op::Duplicate { device, both } => {
                let d = &mut devices[device];
                let req = d.request();
                let first = server.sync(&d.author, &req).expect("accepted");
                let second = server.sync(&d.author, &req).expect("a retry is accepted");
                if both {
                    d.receive(&first);
                }
                d.receive(&second);
            }
            Op::Replay { device } => {
                let d = &mut devices[device];
                let req = match d.last_request.clone() {
                    Some(req) => req,
                    None => d.request(),
                };
                let resp = server.sync(&d.author, &req).expect("a stale replay is accepted");
                d.receive(&resp);
            }
        }
    }
    for _ in 0..2 {
        for d in devices.iter_mut() {
            d.sync(&mut server);
        }
    }
    assert_converged(&server, &devices);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn devices_and_server_converge(scenario in scenario_strategy()) {
        run(&scenario);
    }
}

/// The property's machinery itself: a fixed run with a lost reply, a retry and a stale replay.
#[test]
fn fixed_scenario_converges_with_visits_everywhere() {
    let codes = grid_codes(2);
    let mut server = Server::new(&codes);
    let mut a = Device::new(0);
    let mut b = Device::new(1);
    let mut ids = Ids(0);
    let at = millis_to_time(BASE_MS);
    assert_eq!(a.sync(&mut server).values().collect::<Vec<_>>(), [&ReplyKind::New, &ReplyKind::New]);
    let v = a.visit("R-H1", ids.next(at), at);
    assert!(a.record(RURAL, v));
    let stale = a.request();
    let v = a.visit("U-M1", ids.next(at), at);
    assert!(a.record(URBAN, v));
    let lost = a.request();
    server.sync(&a.author, &lost).unwrap();
    b.sync(&mut server);
    assert_eq!(b.doc(RURAL).visit_count(), 1);
    assert_eq!(b.doc(URBAN).visit_count(), 1);
    let v = b.visit("R-H1", ids.next(at), at);
    assert!(b.record(RURAL, v));
    b.sync(&mut server);
    let resp = server.sync(&a.author, &stale).unwrap();
    a.receive(&resp);
    a.sync(&mut server);
    b.sync(&mut server);
    assert_eq!(server.doc(RURAL).visit_count(), 2);
    assert_converged(&server, &[a, b]);
}

// ---------- refusals and recovery ----------

/// A server with one rural grid and two enrolled devices holding it.
fn setup() -> (Server, Device, Device, Ids) {
    let mut server = Server::new(&[RURAL]);
    let mut a = Device::new(0);
    let mut b = Device::new(1);
    a.sync(&mut server);
    b.sync(&mut server);
    (server, a, b, Ids(0))
}

fn at(minute: i64) -> DateTime<Utc> {
    millis_to_time(BASE_MS + minute * 60_000)
}

/// The server's state of a grid, to show a refused push changed nothing.
fn fingerprint(server: &Server, code: &str) -> (Vec<ChangeHash>, Vec<Visit>, usize) {
    let doc = server.doc(code);
    (sorted_heads(doc), sorted_visits(doc), server.log.get(code).map_or(0, Vec::len))
}

/// Pushes `changes` for the rural grid as `author`, expecting a `Forbidden` refusal mentioning `why`.
fn assert_forbidden(server: &mut Server, author: &Author, have: Vec<ChangeHash>, changes: Vec<Change>, why: &str) {
    let before = fingerprint(server, RURAL);
    let push = GridPush {
        grid: RURAL.into(),
        have: client_core::protocol::hashes_to_wire(&have),
        changes: changes.iter().map(|c| ByteBuf::from(c.raw_bytes().to_vec())).collect(),
        ..Default::default()
    };
    match server.push(author, &push) {
        Err(PushError::Forbidden { doc, violation }) => {
            assert_eq!(doc.id, RURAL);
            assert!(violation.0.contains(why), "refused, but for {violation:?} rather than {why:?}");
        }
        other => panic!("expected Forbidden ({why}), got {other:?}"),
    }
    assert_eq!(fingerprint(server, RURAL), before, "a refused push stores nothing");
}

/// Runs `edit` in one transaction on a copy of `doc` written by `actor` and returns the change it made.
fn craft(doc: &GridDoc, actor: &ActorId, edit: impl FnOnce(&mut Transaction<'_>, &ObjId)) -> (Vec<ChangeHash>, Change) {
    let mut am = doc.automerge().fork().with_actor(actor.clone());
    let visits = match am.get(ROOT, "visits").unwrap() {
        Some((Value::Object(ObjType::Map), id)) => id,
        other => panic!("no visits map: {other:?}"),
    };
    let mut tx = am.transaction();
    edit(&mut tx, &visits);
    let (hash, _) = tx.commit_with(CommitOptions::default().with_time(BASE_MS));
    let change = am.get_change_by_hash(&hash.expect("the edit made a change")).unwrap();
    (am.get_heads(), change)
}

/// Writes a complete, valid visit for `author` at `place` into a new map under `visits`.
fn put_valid_visit(tx: &mut Transaction<'_>, visits: &ObjId, key: &str, author: &Author) {
    let obj = tx.put_object(visits, key, ObjType::Map).unwrap();
    tx.put(&obj, "place", "R-H1").unwrap();
    tx.put(&obj, "volunteer", author.username.as_str()).unwrap();
    tx.put(&obj, "device", author.device.as_str()).unwrap();
    tx.put(&obj, "at", ScalarValue::Timestamp(BASE_MS)).unwrap();
    tx.put(&obj, "outcome", "completed").unwrap();
    for flag in ["handbook", "briefed", "poster", "banner", "led_playing"] {
        tx.put(&obj, flag, true).unwrap();
    }
}

#[test]
fn unknown_confirmed_heads_get_resend_all_then_the_visits_arrive() {
    let (mut server, mut a, _b, mut ids) = setup();
    let created = sorted_heads(server.doc(RURAL));
    for m in 0..2 {
        let v = a.visit("R-H1", ids.next(at(m)), at(m));
        assert!(a.record(RURAL, v));
    }
    assert_eq!(a.sync(&mut server)[RURAL], ReplyKind::Synced);
    assert_eq!(server.doc(RURAL).visit_count(), 2);

    // The server loses everything since the grid was created; the device's confirmed heads are now unknown.
    server.rebuild(RURAL);
    assert_eq!(sorted_heads(server.doc(RURAL)), created);
    assert_eq!(server.doc(RURAL).visit_count(), 0);
    let v = a.visit("R-S1", ids.next(at(3)), at(3));
    assert!(a.record(RURAL, v));

    assert_eq!(a.sync(&mut server)[RURAL], ReplyKind::ResendAll);
    assert_eq!(server.doc(RURAL).visit_count(), 0, "nothing is stored from a push the server cannot place");
    assert_eq!(a.grids[RURAL].confirmed, None);

    assert_eq!(a.sync(&mut server)[RURAL], ReplyKind::Synced);
    assert_eq!(server.doc(RURAL).visit_count(), 3);
    assert_converged(&server, &[a]);
}

#[test]
fn a_change_by_another_actor_is_forbidden() {
    let (mut server, mut a, b, mut ids) = setup();
    // `a` records a visit in `b`'s name; `b` then tries to push `a`'s change as its own.
    let mut v = a.visit("R-H1", ids.next(at(0)), at(0));
    v.volunteer = b.author.username.clone();
    v.device = b.author.device.clone();
    let held = a.grids.get_mut(RURAL).unwrap();
    let change = held.doc.add_visit(&v).unwrap();
    let have = held.doc.heads();
    assert_forbidden(&mut server, &b.author, have, vec![change], "was written by actor");
}

#[test]
fn overwriting_or_deleting_another_volunteers_visit_is_forbidden() {
    let (mut server, mut a, mut b, mut ids) = setup();
    let v = a.visit("R-H1", ids.next(at(0)), at(0));
    let key = v.id.to_string();
    assert!(a.record(RURAL, v));
    a.sync(&mut server);
    b.sync(&mut server);
    let doc = b.doc(RURAL).clone();
    let visit_obj = |tx: &Transaction<'_>, visits: &ObjId| match tx.get(visits, key.as_str()).unwrap() {
        Some((Value::Object(ObjType::Map), id)) => id,
        other => panic!("visit missing: {other:?}"),
    };
    let actor = b.author.actor.clone();

    let (have, overwrite) = craft(&doc, &actor, |tx, visits| {
        let obj = visit_obj(tx, visits);
        tx.put(&obj, "outcome", "refused").unwrap();
    });
    assert_forbidden(&mut server, &b.author, have, vec![overwrite], "overwrites or deletes");

    let (have, delete_field) = craft(&doc, &actor, |tx, visits| {
        let obj = visit_obj(tx, visits);
        tx.delete(&obj, "handbook").unwrap();
    });
    assert_forbidden(&mut server, &b.author, have, vec![delete_field], "overwrites or deletes");

    let (have, delete_visit) = craft(&doc, &actor, |tx, visits| {
        tx.delete(visits, key.as_str()).unwrap();
    });
    assert_forbidden(&mut server, &b.author, have, vec![delete_visit], "overwrites or deletes");
    assert_eq!(server.doc(RURAL).visit_count(), 1);
}

#[test]
fn a_visit_in_another_volunteers_name_is_forbidden() {
    let (mut server, _a, mut b, mut ids) = setup();
    let synced = b.doc(RURAL).clone();
    let mut v = b.visit("R-H1", ids.next(at(0)), at(0));
    v.volunteer = "volunteer0".into();
    let held = b.grids.get_mut(RURAL).unwrap();
    let change = held.doc.add_visit(&v).unwrap();
    let have = held.doc.heads();
    assert_forbidden(&mut server, &b.author, have, vec![change], "claims volunteer");

    // The same from the synced state (the refused change is not a dependency), in another device's name.
    let mut doc = synced;
    let mut v = b.visit("R-H1", ids.next(at(1)), at(1));
    v.device = "device-0".into();
    let change = doc.add_visit(&v).unwrap();
    assert_forbidden(&mut server, &b.author, doc.heads(), vec![change], "claims device");
}

#[test]
fn a_visit_for_a_place_outside_the_grid_is_forbidden() {
    let (mut server, _a, mut b, mut ids) = setup();
    // A place of the urban grid, not of this one.
    let v = b.visit("U-H1", ids.next(at(0)), at(0));
    let held = b.grids.get_mut(RURAL).unwrap();
    let change = held.doc.add_visit(&v).unwrap();
    let have = held.doc.heads();
    assert_forbidden(&mut server, &b.author, have, vec![change], "not in this grid");
}

#[test]
fn an_unknown_field_in_a_new_visit_is_forbidden() {
    let (mut server, _a, b, mut ids) = setup();
    let doc = b.doc(RURAL).clone();
    let key = ids.next(at(0)).to_string();
    let (have, change) = craft(&doc, &b.author.actor, |tx, visits| {
        put_valid_visit(tx, visits, &key, &b.author);
        let obj = match tx.get(visits, key.as_str()).unwrap() {
            Some((_, id)) => id,
            None => unreachable!(),
        };
        tx.put(&obj, "phone", "13800000000").unwrap();
    });
    assert_forbidden(&mut server, &b.author, have, vec![change], "not part of the schema");

    // Control: the same crafted visit without the extra field is accepted, so the refusal above is the field's.
    let (have, change) = craft(&doc, &b.author.actor, |tx, visits| {
        put_valid_visit(tx, visits, &key, &b.author);
    });
    let push = GridPush {
        grid: RURAL.into(),
        have: client_core::protocol::hashes_to_wire(&have),
        changes: vec![ByteBuf::from(change.raw_bytes().to_vec())],
        ..Default::default()
    };
    assert_eq!(server.push(&b.author, &push).unwrap(), ReplyKind::Synced);
    assert_eq!(server.doc(RURAL).visit_count(), 1);
}

#[test]
fn garbage_change_bytes_are_malformed() {
    let (mut server, _a, b, _ids) = setup();
    let before = fingerprint(&server, RURAL);
    let mut garbage = vec![0x85, 0x6f, 0x4a, 0x83];
    garbage.extend((0u8..200).map(|i| i.wrapping_mul(37)));
    for bytes in [garbage, b"not an automerge change".to_vec(), Vec::new()] {
        let push = GridPush {
            grid: RURAL.into(),
            have: client_core::protocol::hashes_to_wire(&b.doc(RURAL).heads()),
            changes: vec![ByteBuf::from(bytes)],
            ..Default::default()
        };
        match server.push(&b.author, &push) {
            Err(PushError::Malformed { doc, index, .. }) => {
                assert_eq!((doc.id.as_str(), index), (RURAL, 0));
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }
    assert_eq!(fingerprint(&server, RURAL), before);
}

/// After the server loses changes (restore from an old backup), each device's whole-history resend also carries
/// the lost changes of *other* devices, which it may not write. They are in the history of heads the server
/// attested to the device before the loss, so the server takes them as already checked and counts their visits
/// again; interleaved histories of two volunteers come back whole.
#[test]
fn devices_recover_after_the_server_loses_interleaved_visits() {
    let (mut server, mut a, mut b, mut ids) = setup();
    let v = a.visit("R-H1", ids.next(at(0)), at(0));
    assert!(a.record(RURAL, v));
    a.sync(&mut server);
    b.sync(&mut server);
    let v = b.visit("R-H2", ids.next(at(1)), at(1));
    assert!(b.record(RURAL, v)); // depends on a's first visit
    b.sync(&mut server);
    a.sync(&mut server);
    let v = a.visit("R-S1", ids.next(at(2)), at(2));
    assert!(a.record(RURAL, v)); // depends on b's visit
    a.sync(&mut server);

    server.rebuild(RURAL);
    for _ in 0..3 {
        for d in [&mut a, &mut b] {
            let req = d.request();
            if let Ok(resp) = server.sync(&d.author, &req) {
                d.receive(&resp);
            }
        }
    }
    assert_eq!(server.doc(RURAL).visit_count(), 3);
    assert_converged(&server, &[a, b]);
}
