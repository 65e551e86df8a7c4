//! The sync wire format: one CBOR request carrying every document a device holds (its grids, its urgent tasks,
//! and those of every further kind under `docs`), one CBOR response.
//!
//! See `docs/sync-protocol.md` for the exchange, its states and its failure cases.

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;

/// Bumped on any incompatible change; the server refuses versions it does not speak.
pub const PROTOCOL_VERSION: u32 = 1;
pub const CONTENT_TYPE: &str = "application/cbor";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub protocol: u32,
    pub grids: Vec<GridPush>,
    /// The urgent tasks the device holds. `None` (the key absent): a client that does not handle urgent tasks;
    /// the server then sends it none, so no task's personal data goes where it would not be deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<TaskPush>>,
    /// The documents of every further kind the device handles, by kind (`DocKind::NOUN`). A kind absent here is
    /// one the client does not handle: the receiver sends it nothing of that kind. Grids and tasks keep their own
    /// keys above, as the protocol had them first.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub docs: BTreeMap<String, Vec<DocPush>>,
}

/// What a device sends for one grid it holds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GridPush {
    pub grid: String,
    /// The device's heads for this grid after its changes below are applied.
    pub have: Vec<ByteBuf>,
    /// Raw automerge changes the server may lack: everything after the last heads the server confirmed,
    /// or the whole history when the server asked for it.
    pub changes: Vec<ByteBuf>,
    /// Signatures by the devices that wrote changes above: the sender's own, and those it relays for others
    /// (received from a hub). A receiver accepts another device's change only with its signature.
    #[serde(default)]
    pub signatures: Vec<ChangeSignature>,
    /// The server's latest signed statement of the heads it holds, so that a hub accepts changes the server
    /// already has without their writers' signatures.
    #[serde(default)]
    pub attestation: Option<Attestation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub grids: Vec<GridReply>,
    /// Replies for the tasks pushed and the team's open tasks the device does not hold yet.
    #[serde(default)]
    pub tasks: Vec<TaskReply>,
    /// Replies for the documents of further kinds, by kind: one for each pushed and each the device should hold
    /// but lacks.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub docs: BTreeMap<String, Vec<DocReply>>,
    /// Set by a hub (its device id): the answer comes from a team hub, not the server, so the heads in it are
    /// not the server's and nothing in it is confirmed by the server.
    #[serde(default)]
    pub relay: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// The push is stored; `changes` are what the device lacks; `heads` are the server's heads.
    Synced,
    /// A grid newly assigned to the device's team: `snapshot` is the whole document.
    New,
    /// The server could not place the device's history (it lacks a dependency, e.g. after a restore
    /// from backup); nothing was stored; the device sends its whole history for this grid again.
    ResendAll,
    /// The grid is no longer assigned to the device's team. The push, if any, was stored; once the device
    /// has nothing unsent for it, it drops its copy.
    Unassigned,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridReply {
    pub grid: String,
    pub kind: ReplyKind,
    pub heads: Vec<ByteBuf>,
    pub changes: Vec<ByteBuf>,
    #[serde(default)]
    pub snapshot: Option<ByteBuf>,
    /// Changes of the push that were new to the server and are now durably stored.
    #[serde(default)]
    pub stored: u32,
    /// Contact details of the grid's places, kept beside the document (never inside it, so they can be truly
    /// removed). `Some(empty)` tells the device to hold none; `None` leaves what it holds unchanged.
    #[serde(default)]
    pub contacts: Option<Vec<Contact>>,
    /// Writers' signatures of the changes above that the receiver may have to pass on (sent by hubs).
    #[serde(default)]
    pub signatures: Vec<ChangeSignature>,
    /// The server's signed statement of the heads it holds (from the server, or forwarded by a hub).
    #[serde(default)]
    pub attestation: Option<Attestation>,
}

/// A device's Ed25519 signature of one change it wrote (see `sign`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSignature {
    /// The change's hash (32 bytes).
    pub change: ByteBuf,
    /// 64 bytes.
    pub signature: ByteBuf,
}

/// The server's Ed25519 signature over a grid's heads at a time: every change in their history is stored on the
/// server (see `sign`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub heads: Vec<ByteBuf>,
    /// Milliseconds since the epoch; a device keeps the latest it has seen.
    pub at: i64,
    pub signature: ByteBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub place_id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
}

/// What a device sends for one urgent task it holds: the same exchange as for a grid, signatures and the
/// server's attestation included, so that sign-fors and outcomes can travel through a hub.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskPush {
    pub task: String,
    pub have: Vec<ByteBuf>,
    pub changes: Vec<ByteBuf>,
    /// Writers' signatures of the changes above (the sender's own, and team-mates' it relays).
    #[serde(default)]
    pub signatures: Vec<ChangeSignature>,
    /// The server's latest signed statement of the task's changes it holds (subject `sign::task_subject`).
    #[serde(default)]
    pub attestation: Option<Attestation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskReplyKind {
    /// The push is stored; `changes` are what the device lacks; `heads` are the server's heads.
    Synced,
    /// A task newly issued to the device's team: `snapshot` is the whole document.
    New,
    /// The server could not place the device's history; nothing was stored; send the whole history again.
    ResendAll,
    /// The task is closed (or no longer the team's). The push, if any, was stored (`stored`); once the device
    /// has nothing of its own unconfirmed, it deletes every file of the task.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReply {
    pub task: String,
    pub kind: TaskReplyKind,
    pub heads: Vec<ByteBuf>,
    pub changes: Vec<ByteBuf>,
    #[serde(default)]
    pub snapshot: Option<ByteBuf>,
    #[serde(default)]
    pub stored: u32,
    /// Writers' signatures of the changes above that the receiver may have to pass on (sent by hubs).
    #[serde(default)]
    pub signatures: Vec<ChangeSignature>,
    /// The server's signed statement of the task's changes it holds: its heads, or, in a `closed` reply, every
    /// change of the task (so that a device told by a hub can check that nothing it holds is missing upstream).
    #[serde(default)]
    pub attestation: Option<Attestation>,
}

/// What a device sends for one document of a further kind (`SyncRequest::docs`): the same exchange as for a
/// grid or a task.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DocPush {
    pub id: String,
    pub have: Vec<ByteBuf>,
    pub changes: Vec<ByteBuf>,
    #[serde(default)]
    pub signatures: Vec<ChangeSignature>,
    /// The server's latest signed statement of the heads it holds (subject `DocKind::subject`).
    #[serde(default)]
    pub attestation: Option<Attestation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocAnswer {
    /// The push is stored; `changes` are what the device lacks; `heads` are the receiver's heads.
    Synced,
    /// A document the device should hold and lacks: `snapshot` is the whole of it.
    New,
    /// The receiver could not place the device's history; nothing was stored; send the whole history again.
    ResendAll,
    /// The document is withdrawn, or no longer meant for this device. The push, if any, was stored; once the
    /// device has nothing of its own unconfirmed, it deletes the document.
    Gone,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocReply {
    pub id: String,
    pub answer: DocAnswer,
    pub heads: Vec<ByteBuf>,
    pub changes: Vec<ByteBuf>,
    #[serde(default)]
    pub snapshot: Option<ByteBuf>,
    #[serde(default)]
    pub stored: u32,
    /// Writers' signatures of the changes above that the receiver may have to pass on (sent by hubs).
    #[serde(default)]
    pub signatures: Vec<ChangeSignature>,
    #[serde(default)]
    pub attestation: Option<Attestation>,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("the sync message is not valid CBOR for this protocol: {0}")]
    Decode(String),
    #[error("a change hash must be 32 bytes, got {0}")]
    BadHash(usize),
}

/// Sync bodies travel gzip-compressed: one automerge change per visit is ~350 bytes, but consecutive changes
/// share most of their bytes (actor, keys, device), and gzip brings a 60-visit push to ~75 bytes per visit.
pub const CONTENT_ENCODING: &str = "gzip";

pub fn compress(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("writing CBOR to memory cannot fail");
    out
}

pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, WireError> {
    ciborium::from_reader(bytes).map_err(|e| WireError::Decode(e.to_string()))
}

pub fn hashes_to_wire(hashes: &[ChangeHash]) -> Vec<ByteBuf> {
    hashes.iter().map(|h| ByteBuf::from(h.0.to_vec())).collect()
}

pub fn hashes_from_wire(hashes: &[ByteBuf]) -> Result<Vec<ChangeHash>, WireError> {
    hashes
        .iter()
        .map(|b| <[u8; 32]>::try_from(b.as_slice()).map(ChangeHash).map_err(|_| WireError::BadHash(b.len())))
        .collect()
}

pub fn hex_heads(hashes: &[ChangeHash]) -> String {
    hashes.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",")
}

pub fn parse_hex_heads(s: &str) -> Vec<ChangeHash> {
    s.split(',').filter(|p| !p.is_empty()).filter_map(|p| p.parse().ok()).collect()
}
