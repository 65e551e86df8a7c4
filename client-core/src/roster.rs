//! The team roster, as the server sends it to a lead's device serving as the team's hub: the team's devices with
//! their actors and public keys, and which are revoked, so that the hub checks team-mates' tokens and signed
//! changes while the server is out of reach.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Roster {
    pub team: String,
    /// The server's Ed25519 public key (hex): device tokens and attested heads are signed with it.
    pub server_key: String,
    pub devices: Vec<RosterDevice>,
    /// When the server read the roster (milliseconds since the epoch): a device enrolled earlier that the
    /// roster does not list has left the team, and a hub refuses it. Milliseconds, because a device enrolled
    /// in the same second as the roster was read may be on either side of it.
    #[serde(default)]
    pub at_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RosterDevice {
    pub device_id: String,
    pub username: String,
    /// Automerge actor (hex).
    pub actor: String,
    /// Ed25519 public key (hex).
    pub public_key: String,
    /// Revoked, or its account disabled: a hub refuses it.
    pub revoked: bool,
}
