//! What the server and devices say to each other about team hubs' certificates: the certificate a lead's device
//! asks for and receives, and the server-signed list of a team's hub devices whose certificates no longer count,
//! which hubs pass on to the team's devices.

use crate::sign::{KeyPair, PublicKey};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct HubCertificateRequest {
    /// A PKCS#10 certificate request (PEM) for the hub's ECDSA P-256 key, naming the hub's addresses.
    pub csr: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct HubCertificateReply {
    /// The hub's certificate (PEM), signed by the Doorstep CA.
    pub certificate: String,
    /// The CA's certificate (PEM).
    pub ca_certificate: String,
    pub names: Vec<String>,
    pub not_after: chrono::DateTime<chrono::Utc>,
}

/// The server's statement of which hub devices of a team no longer count: each held a hub certificate of the
/// team that has not expired, and its device was revoked, its account disabled, or is no longer a lead (or the
/// office) of the team. A device refuses a hub whose certificate names such a device.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HubTrust {
    pub team: String,
    /// When the server read it (milliseconds since the epoch): a device keeps the newest it received.
    pub at_ms: i64,
    /// Device ids, sorted.
    pub withdrawn: Vec<String>,
}

/// A `HubTrust` as the server signed it, so that hubs can pass it on to the team's devices.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignedHubTrust {
    /// The `HubTrust` as JSON text: exactly what was signed.
    pub statement: String,
    /// The server's Ed25519 signature (hex).
    pub signature: String,
}

impl SignedHubTrust {
    pub fn sign(trust: &HubTrust, key: &KeyPair) -> SignedHubTrust {
        let statement = serde_json::to_string(trust).expect("plain data serialises");
        SignedHubTrust { signature: key.sign_hub_trust(&statement), statement }
    }

    /// The statement, if the server's key signed it.
    pub fn verify(&self, server: &PublicKey) -> Result<HubTrust, String> {
        if !server.verifies_hub_trust(&self.statement, &self.signature) {
            return Err("the list of withdrawn hubs is not signed by the server".into());
        }
        serde_json::from_str(&self.statement).map_err(|e| format!("the list of withdrawn hubs is damaged: {e}"))
    }
}
