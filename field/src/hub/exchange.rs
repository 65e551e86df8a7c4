//! One sync exchange at a team hub: a volunteer's device pushes to the lead's copy of the team's grids (and urgent
//! tasks, `hub_tasks`) and receives what it lacks, exactly as with the server, while the server is out of reach.
//!
//! The hub checks what the server would: the device token (offline, with the server's public key), the team,
//! the roster's revocations, and every change with the same validator; besides, each change must carry its
//! writer's signature (or be in the history the server attested), so that the server can check its origin when
//! the hub forwards it.

use super::error::ApiError;
use crate::hub::tasks as hub_tasks;
use crate::profile::{Device, Profile};
use automerge::ActorId;
use client_core::docs::{self, DocsError, Registry, Relayed, Writer};
use client_core::limits::SyncBudget;
use client_core::protocol::{self, ReplyKind, SyncRequest, SyncResponse, PROTOCOL_VERSION};
use client_core::roster::{Roster, RosterDevice};
use client_core::sign::{KeyPair, PublicKey};
use client_core::store::GridStore;
use client_core::sync::Author;
use client_core::sync::{PushError, Signer, Trust};
use client_core::GridDoc;
use std::collections::HashMap;
use std::path::PathBuf;

/// What a hub serves from: the lead's enrolled profile.
pub struct Hub {
    pub profile_dir: PathBuf,
    pub device: Device,
    pub actor: ActorId,
    pub key: KeyPair,
    pub server_key: PublicKey,
    /// The kinds of document the hub relays besides grids and tasks.
    pub kinds: std::sync::Arc<Registry>,
}

impl Hub {
    pub fn team(&self) -> &str {
        self.device.team.as_deref().unwrap_or_default()
    }
}

/// Checks the token and the pushes, stores what is new, and answers. Blocking: it takes the profile's lock, so
/// exchanges, upstream syncs and the lead's own commands take turns.
pub fn exchange(hub: &Hub, token: &str, body: &[u8]) -> Result<SyncResponse, ApiError> {
    let claims =
        server::accounts::tokens::verify_device_token(&hub.server_key, token).map_err(ApiError::unauthorized)?;
    let device_id = claims.dev.clone().ok_or_else(|| ApiError::unauthorized("device token without device"))?;
    if device_id == hub.device.device_id {
        // Its visits are the hub's own copy already; and the caller holds the profile this exchange would wait for.
        return Err(ApiError::conflict("this is the hub's own profile: its visits are on the hub already"));
    }
    if claims.team.as_deref() != Some(hub.team()) {
        return Err(ApiError::forbidden(format!(
            "this hub serves team {}; this device belongs to team {}",
            hub.team(),
            claims.team.as_deref().unwrap_or("none")
        )));
    }
    let (Some(actor), Some(key)) = (claims.act.as_deref(), claims.key.as_deref()) else {
        return Err(ApiError::unauthorized(
            "this device was enrolled before devices signed their visits; enrol it again with `doorstep field login` \
             to sync through a hub",
        ));
    };
    let actor: ActorId = actor.parse().map_err(|_| ApiError::unauthorized("the token's actor is not hex"))?;
    let key = PublicKey::from_hex(key).map_err(|e| ApiError::unauthorized(format!("the token's key: {e}")))?;
    let req: SyncRequest = protocol::decode(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if req.protocol != PROTOCOL_VERSION {
        return Err(ApiError::bad_request(format!(
            "sync protocol {} is not supported (this hub speaks {PROTOCOL_VERSION}); update doorstep",
            req.protocol
        )));
    }
    client_core::limits::check_task_changes(req.tasks.as_deref()).map_err(|e| too_large(&e))?;

    let profile = Profile::new(hub.profile_dir.clone());
    // What the devices' changes may name is what the newest campaign the hub received names.
    client_core::campaign::doc::held(&profile.docs_dir().map_err(ApiError::internal)?);
    let store = profile.grids().map_err(ApiError::internal)?;
    let mut roster = profile.roster().map_err(ApiError::internal)?.unwrap_or_else(|| Roster {
        team: hub.team().to_string(),
        server_key: hub.server_key.to_hex(),
        devices: Vec::new(),
        at_ms: None,
    });
    match roster.devices.iter().find(|d| d.device_id == device_id) {
        Some(d) if d.revoked => return Err(ApiError::unauthorized("this device has been revoked by the office")),
        Some(_) => {}
        None if left_the_team(&roster, &claims) => {
            return Err(ApiError::forbidden(format!(
                "this device is not in team {} according to the roster the hub last read from the server; sync with the server instead",
                hub.team()
            )))
        }
        // Enrolled after the hub last read the roster: the server-signed token vouches for it.
        None => {
            roster.devices.push(RosterDevice {
                device_id: device_id.clone(),
                username: claims.usr.clone(),
                actor: actor.to_hex_string(),
                public_key: key.to_hex(),
                revoked: false,
            });
            profile.save_roster(&roster).map_err(ApiError::internal)?;
        }
    }
    let signers = signers(&roster);
    let pusher = Author { actor, username: claims.usr.clone(), device: device_id.clone() };
    let trust =
        Trust { pusher: &pusher, pusher_key: Some(&key), signers: Some(&signers), server_key: Some(&hub.server_key) };

    // Check everything first: a refused change anywhere stores nothing of the request.
    let writer = Writer { actor: &hub.actor, key: Some(&hub.key), server_key: Some(&hub.server_key) };
    let mut budget = SyncBudget::default();
    let grids = docs::relay_check(&store, &writer, &req.grids, &trust, &mut budget).map_err(|e| docs_error(&e))?;
    // The hub's own clock: a phone whose clock is far ahead hears so here already.
    let now = chrono::Utc::now();
    for grid in &grids.relayed {
        grid.accepted.check_not_ahead(now, "this hub").map_err(|e| push_error(&e))?;
    }
    check_found_place_ids(&store, &grids.relayed)?;
    let skipped = grids.skipped.clone();
    // Tasks only for clients that handle them (they send the `tasks` key), as at the server.
    let tasks = req.tasks.as_deref().map(|pushes| hub_tasks::check(&profile, &writer, pushes, &trust)).transpose()?;
    // Documents of further kinds, checked like the rest before anything is stored.
    let docs_dir = profile.docs_dir().map_err(ApiError::internal)?;
    let mut doc_batches = Vec::new();
    for (name, pushes) in &req.docs {
        if let Some(kind) = hub.kinds.get(name) {
            let batch =
                kind.relay_check(&docs_dir, &writer, pushes, &trust, &mut budget).map_err(|e| docs_error(&e))?;
            doc_batches.push((name.clone(), batch));
        }
    }

    let (mut replies, stored) = grids.store_and_answer(&store, &writer).map_err(|e| docs_error(&e))?;
    // The contacts the lead holds go with every grid the device may keep.
    for reply in replies.iter_mut().filter(|r| r.kind != ReplyKind::ResendAll) {
        let contacts = store.contacts(&reply.grid).map_err(ApiError::internal)?;
        reply.contacts = (!contacts.is_empty()).then_some(contacts);
    }
    let mut doc_replies = std::collections::BTreeMap::new();
    let mut doc_changes = 0;
    for (name, batch) in doc_batches {
        let (replies, stored) = batch.store_and_answer(&docs_dir, &writer).map_err(|e| docs_error(&e))?;
        doc_replies.insert(name, replies);
        doc_changes += stored;
    }
    let (task_replies, task_changes, skipped_tasks) = match tasks {
        Some(tasks) => {
            let skipped = tasks.skipped.clone();
            let (replies, stored) = tasks.store_and_answer(&writer)?;
            (replies, stored, skipped)
        }
        None => Default::default(),
    };
    tracing::info!(
        device = %device_id, user = %claims.usr, changes = stored, task_changes, doc_changes, ?skipped, ?skipped_tasks,
        "hub sync stored changes"
    );
    Ok(SyncResponse {
        grids: replies,
        tasks: task_replies,
        relay: Some(hub.device.device_id.clone()),
        docs: doc_replies,
    })
}

/// Whether a device the roster does not list was enrolled before the server read the roster, and so has left
/// the team since; otherwise it enrolled later and its server-signed token vouches for it. A token from before
/// enrolment times were in milliseconds counts from the start of its second, so the doubt goes to refusal.
fn left_the_team(roster: &Roster, claims: &server::accounts::tokens::Claims) -> bool {
    let enrolled_ms = claims.enrolled_ms.unwrap_or(claims.iat.saturating_mul(1000));
    roster.at_ms.is_some_and(|at_ms| enrolled_ms < at_ms)
}

/// The team's devices whose signed changes the hub accepts: every one the roster lists, unless revoked.
fn signers(roster: &Roster) -> HashMap<ActorId, Signer> {
    roster
        .devices
        .iter()
        .filter(|d| !d.revoked)
        .filter_map(|d| {
            let actor: ActorId = d.actor.parse().ok()?;
            let key = PublicKey::from_hex(&d.public_key).ok()?;
            let author = Author { actor: actor.clone(), username: d.username.clone(), device: d.device_id.clone() };
            Some((actor, Signer { author, key }))
        })
        .collect()
}

/// A place id is unique in the whole territory. The hub holds only its team's grids, so it refuses a found place
/// whose id a place of another of those grids holds (or another grid of the same request adds); the server,
/// which holds every grid, checks the rest.
fn check_found_place_ids(store: &GridStore, checked: &[Relayed<GridDoc>]) -> Result<(), ApiError> {
    let found: Vec<(&str, &str)> = checked
        .iter()
        .flat_map(|c| c.accepted.records.places.iter().map(|p| (p.place.id.as_str(), c.id.as_str())))
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    let pushed: HashMap<&str, &GridDoc> = checked.iter().map(|c| (c.id.as_str(), &c.doc)).collect();
    for grid in store.grids().map_err(ApiError::internal)? {
        let loaded;
        let doc = match pushed.get(grid.as_str()) {
            Some(doc) => *doc,
            None => {
                loaded = store.load(&grid).map_err(ApiError::internal)?;
                &loaded
            }
        };
        for (id, found_in) in &found {
            if *found_in != grid && doc.has_place(id).map_err(ApiError::internal)? {
                tracing::warn!(place = id, grid = found_in, other = %grid, "hub refused a found place's id");
                return Err(ApiError::unprocessable(
                    "place_id_taken",
                    format!(
                        "grid {found_in}: place {id} already belongs to another grid; a place id is unique in the \
                         whole territory, and a place found in the field gets a new random one when it is recorded"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A refused push of any kind, as the server answers it.
pub(crate) fn docs_error(e: &DocsError) -> ApiError {
    match e {
        DocsError::Push(e) => push_error(e),
        DocsError::Invalid(message) => ApiError::bad_request(message.clone()),
        DocsError::Wire(e) => ApiError::bad_request(e.to_string()),
        DocsError::Apply(_) | DocsError::Store(_) => ApiError::internal(e),
    }
}

/// A refused push (of any kind of document) becomes a 4xx with the reason, as at the server.
pub(crate) fn push_error(e: &PushError) -> ApiError {
    tracing::warn!(error = %e, "hub refused a sync");
    match e {
        PushError::Forbidden { .. } => ApiError::unprocessable("change_rejected", e.to_string()),
        PushError::FromTheFuture { .. } => ApiError::unprocessable("clock_ahead", e.to_string()),
        PushError::TooLarge { .. } => too_large(e),
        PushError::Malformed { .. } | PushError::Wire { .. } => ApiError::bad_request(e.to_string()),
    }
}

fn too_large(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(axum::http::StatusCode::PAYLOAD_TOO_LARGE, "sync_too_large", e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(iat: i64, enrolled_ms: Option<i64>) -> server::accounts::tokens::Claims {
        server::accounts::tokens::Claims {
            sub: "u".into(),
            usr: "v2".into(),
            role: server::accounts::tokens::Role::Volunteer,
            team: Some("east".into()),
            dev: Some("d".into()),
            act: None,
            key: None,
            enrolled_ms,
            aud: server::accounts::tokens::DEVICE_AUDIENCE.into(),
            iat,
            exp: iat + 1,
        }
    }

    /// Within one second the roster's time decides: the same second no longer means "enrolled afterwards".
    #[test]
    fn a_device_missing_from_the_roster_is_judged_by_milliseconds() {
        let roster = |at_ms| Roster { team: "east".into(), server_key: String::new(), devices: Vec::new(), at_ms };
        let second = 1_800_000_000;
        let read_at = roster(Some(second * 1000 + 600));
        assert!(left_the_team(&read_at, &token(second, Some(second * 1000 + 200))), "enrolled before the read");
        assert!(!left_the_team(&read_at, &token(second, Some(second * 1000 + 700))), "enrolled after the read");
        assert!(left_the_team(&read_at, &token(second, None)), "an old token's second is taken at its start");
        assert!(!left_the_team(&read_at, &token(second + 1, None)));
        assert!(!left_the_team(&roster(None), &token(second, Some(0))), "no roster read yet: the token vouches");
    }
}
