//! Proof of origin for changes that travel through a hub: Ed25519 signatures by the device that wrote a change
//! (over its hash), and the server's signature over a grid's heads ("I hold every change up to these").
//!
//! Automerge changes carry no signature of their own, so a hub relaying other devices' changes could otherwise
//! forge them. Each device signs what it writes with a key whose public half the server recorded at enrolment;
//! a hub cannot produce those signatures, and the server checks them when the changes arrive.

use crate::protocol::{hashes_from_wire, hashes_to_wire, Attestation, ChangeSignature};
use automerge::ChangeHash;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde_bytes::ByteBuf;

/// Domain tags keep a signature over a change from ever being read as one over heads, or as a token.
const CHANGE_TAG: &[u8] = b"doorstep-change-v1\0";
const HEADS_TAG: &[u8] = b"doorstep-heads-v1\0";
const HUB_TRUST_TAG: &[u8] = b"doorstep-hub-trust-v1\0";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

/// An Ed25519 key pair: a device's (it signs its changes) or the server's (it signs heads and device tokens).
#[derive(Clone)]
pub struct KeyPair(SigningKey);

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({})", self.public().to_hex())
    }
}

impl KeyPair {
    pub fn generate() -> KeyPair {
        use rand::RngCore;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        KeyPair::from_seed(seed)
    }

    pub fn from_seed(seed: [u8; 32]) -> KeyPair {
        KeyPair(SigningKey::from_bytes(&seed))
    }

    /// The secret seed as hex (what a profile stores).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    pub fn from_hex(s: &str) -> Result<KeyPair, KeyError> {
        let bytes = hex::decode(s.trim()).map_err(|_| KeyError("the signing key is not hex".into()))?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| KeyError("the signing key is not 32 bytes".into()))?;
        Ok(KeyPair::from_seed(seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The PKCS#8 document of the key, as JWT libraries take it.
    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        self.0.to_pkcs8_der().expect("an Ed25519 key always encodes").as_bytes().to_vec()
    }

    pub fn sign_change(&self, hash: &ChangeHash) -> ChangeSignature {
        ChangeSignature {
            change: ByteBuf::from(hash.0.to_vec()),
            signature: ByteBuf::from(self.0.sign(&change_message(hash)).to_bytes().to_vec()),
        }
    }

    /// The server's statement that it holds every change up to `heads` of `subject` (a grid code, or
    /// `task_subject` of a task).
    pub fn attest(&self, subject: &str, heads: &[ChangeHash], at: i64) -> Attestation {
        let signature = self.0.sign(&heads_message(subject, heads, at));
        Attestation { heads: hashes_to_wire(heads), at, signature: ByteBuf::from(signature.to_bytes().to_vec()) }
    }

    /// The server's signature (hex) of its statement (JSON text) of which hubs of a team no longer count, so that
    /// devices pass it on through hubs and every device keeps the newest.
    pub fn sign_hub_trust(&self, statement: &str) -> String {
        hex::encode(self.0.sign(&[HUB_TRUST_TAG, statement.as_bytes()].concat()).to_bytes())
    }
}

/// The public half of a key pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    pub fn from_hex(s: &str) -> Result<PublicKey, KeyError> {
        let bytes = hex::decode(s.trim()).map_err(|_| KeyError("the public key is not hex".into()))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyError("the public key is not 32 bytes".into()))?;
        VerifyingKey::from_bytes(&bytes).map(PublicKey).map_err(|_| KeyError("not an Ed25519 public key".into()))
    }

    /// Whether `sig` is this key's signature of the change `hash` (and names that change).
    pub fn verifies_change(&self, hash: &ChangeHash, sig: &ChangeSignature) -> bool {
        sig.change.as_slice() == hash.0 && self.verifies(&change_message(hash), &sig.signature)
    }

    /// The heads of a valid attestation for `subject`, or `None` if it was not signed by this key.
    pub fn attested_heads(&self, subject: &str, attestation: &Attestation) -> Option<Vec<ChangeHash>> {
        let heads = hashes_from_wire(&attestation.heads).ok()?;
        self.verifies(&heads_message(subject, &heads, attestation.at), &attestation.signature).then_some(heads)
    }

    /// Whether `signature` (hex) is this key's signature of a statement of withdrawn hubs (`sign_hub_trust`).
    pub fn verifies_hub_trust(&self, statement: &str, signature: &str) -> bool {
        hex::decode(signature).is_ok_and(|s| self.verifies(&[HUB_TRUST_TAG, statement.as_bytes()].concat(), &s))
    }

    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::from_slice(signature).is_ok_and(|s| self.0.verify(message, &s).is_ok())
    }
}

/// What the server's attestations of a task's document are about. Grid codes cannot contain `/`, so a task's
/// attestation can never be read as a grid's.
pub fn task_subject(task: &str) -> String {
    format!("task/{task}")
}

fn change_message(hash: &ChangeHash) -> Vec<u8> {
    [CHANGE_TAG, &hash.0].concat()
}

fn heads_message(subject: &str, heads: &[ChangeHash], at: i64) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    let mut m = Vec::with_capacity(HEADS_TAG.len() + 4 + subject.len() + 8 + 32 * sorted.len());
    m.extend_from_slice(HEADS_TAG);
    m.extend_from_slice(&(subject.len() as u32).to_be_bytes());
    m.extend_from_slice(subject.as_bytes());
    m.extend_from_slice(&at.to_be_bytes());
    for h in &sorted {
        m.extend_from_slice(&h.0);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_signatures_verify_only_for_their_key_and_change() {
        let key = KeyPair::generate();
        let other = KeyPair::generate();
        let hash = ChangeHash([7; 32]);
        let sig = key.sign_change(&hash);
        assert!(key.public().verifies_change(&hash, &sig));
        assert!(!other.public().verifies_change(&hash, &sig), "another device's key");
        assert!(!key.public().verifies_change(&ChangeHash([8; 32]), &sig), "another change");
        let round = KeyPair::from_hex(&key.to_hex()).unwrap();
        assert_eq!(round.public(), key.public());
        assert_eq!(PublicKey::from_hex(&key.public().to_hex()).unwrap(), key.public());
    }

    #[test]
    fn hub_trust_statements_verify_only_unchanged_and_by_their_key() {
        let server = KeyPair::generate();
        let statement = r#"{"team":"east","at_ms":1,"withdrawn":["d1"]}"#;
        let signature = server.sign_hub_trust(statement);
        assert!(server.public().verifies_hub_trust(statement, &signature));
        assert!(!server.public().verifies_hub_trust(&statement.replace("d1", "d2"), &signature));
        assert!(!KeyPair::generate().public().verifies_hub_trust(statement, &signature));
        assert!(!server.public().verifies_hub_trust(statement, "not hex"));
        // Not a change signature either way.
        let hash = ChangeHash([7; 32]);
        let change = ChangeSignature {
            change: ByteBuf::from(hash.0.to_vec()),
            signature: ByteBuf::from(hex::decode(&signature).unwrap()),
        };
        assert!(!server.public().verifies_change(&hash, &change));
    }

    #[test]
    fn attestations_bind_grid_heads_and_time() {
        let server = KeyPair::generate();
        let heads = vec![ChangeHash([1; 32]), ChangeHash([2; 32])];
        let a = server.attest("G1", &heads, 1000);
        let mut got = server.public().attested_heads("G1", &a).unwrap();
        got.sort();
        assert_eq!(got, heads);
        assert!(server.public().attested_heads("G2", &a).is_none(), "another grid");
        assert!(server.public().attested_heads("G1", &Attestation { at: 1001, ..a.clone() }).is_none());
        assert!(KeyPair::generate().public().attested_heads("G1", &a).is_none(), "another key");
    }
}
