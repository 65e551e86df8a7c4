//! Passwords (argon2) and tokens: session tokens for people, device tokens for enrolled field devices. The
//! request extractors that check them on every call live in `http::auth`.
//!
//! Session tokens are HS256 JWTs with a secret kept in the data dir. Device tokens are EdDSA JWTs signed with the
//! server's Ed25519 key (derived from the same secret), so that a team hub holding only the public key can check
//! them offline; device tokens issued before were HS256 and are still accepted by the server. The Doorstep CA's
//! key (`tls_ca`) is derived from the same secret.

use crate::refusal::Refusal;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use client_core::sign::{KeyPair, PublicKey};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const SESSION_AUDIENCE: &str = "doorstep-session";
pub const DEVICE_AUDIENCE: &str = "doorstep-device";
/// Access tokens of office, lead and viewer sessions are short-lived; a refresh token renews them.
pub const SESSION_TTL_SECS: i64 = 15 * 60;
/// Refresh tokens last a month and are revocable (they are stored, as digests).
pub const REFRESH_TTL_SECS: i64 = 30 * 24 * 3600;
/// Device tokens are long-lived because devices sync rarely and offline; revocation is checked per request.
pub const DEVICE_TTL_SECS: i64 = 365 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Volunteer,
    Lead,
    Office,
    Viewer,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "volunteer" => Ok(Role::Volunteer),
            "lead" => Ok(Role::Lead),
            "office" => Ok(Role::Office),
            "viewer" => Ok(Role::Viewer),
            _ => Err(format!("unknown role {s:?}; expected volunteer, lead, office or viewer")),
        }
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Volunteer => "volunteer",
            Role::Lead => "lead",
            Role::Office => "office",
            Role::Viewer => "viewer",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    pub usr: String,
    pub role: Role,
    #[serde(default)]
    pub team: Option<String>,
    /// Device id, on device tokens only.
    #[serde(default)]
    pub dev: Option<String>,
    /// The device's automerge actor (hex), on device tokens: a hub learns from it whose changes these are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<String>,
    /// The device's Ed25519 public key (hex), on device tokens of devices that sign their changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// When the device was enrolled (milliseconds since the epoch), on device tokens: a hub compares it with
    /// the time of its roster.
    #[serde(default, rename = "enr", skip_serializing_if = "Option::is_none")]
    pub enrolled_ms: Option<i64>,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Signs device tokens and the heads the server attests to holding.
    server_key: KeyPair,
    device_encoding: EncodingKey,
    device_decoding: DecodingKey,
    /// Signs team hubs' HTTPS certificates.
    ca: crate::tls::ca::CertificateAuthority,
}

impl Keys {
    pub fn from_secret(secret: &[u8]) -> Keys {
        // One secret file serves every instance of an installation; the Ed25519 key is derived from it.
        use sha2::{Digest, Sha256};
        let seed: [u8; 32] =
            Sha256::new().chain_update(b"doorstep-ed25519-v1\0").chain_update(secret).finalize().into();
        let server_key = KeyPair::from_seed(seed);
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            device_encoding: EncodingKey::from_ed_der(&server_key.to_pkcs8_der()),
            device_decoding: device_decoding_key(&server_key.public()),
            server_key,
            ca: crate::tls::ca::CertificateAuthority::from_secret(secret),
        }
    }

    /// The server's Ed25519 key pair.
    pub fn server_key(&self) -> &KeyPair {
        &self.server_key
    }

    /// The installation's certificate authority for hub certificates.
    pub fn ca(&self) -> &crate::tls::ca::CertificateAuthority {
        &self.ca
    }

    /// Reads the data dir's secret, creating a random one (owner-only permissions) on first start.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Keys> {
        let path = data_dir.join("jwt-secret");
        let secret = match std::fs::read(&path) {
            Ok(s) if s.len() >= 32 => s,
            Ok(_) => anyhow::bail!("{} is shorter than 32 bytes; delete it to generate a new one", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use rand::RngCore;
                let mut s = vec![0u8; 64];
                rand::rngs::OsRng.fill_bytes(&mut s);
                let hex: String = s.iter().map(|b| format!("{b:02x}")).collect();
                write_private(&path, hex.as_bytes())?;
                hex.into_bytes()
            }
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        };
        Ok(Keys::from_secret(&secret))
    }

    /// A session token (HS256).
    pub fn issue(&self, claims: &Claims) -> String {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).expect("HS256 signing cannot fail")
    }

    /// A device token (EdDSA), checkable offline with the server's public key.
    pub fn issue_device(&self, claims: &Claims) -> String {
        encode(&Header::new(Algorithm::EdDSA), claims, &self.device_encoding).expect("EdDSA signing cannot fail")
    }

    /// Checks signature, expiry and audience: HS256 only for sessions; for devices EdDSA, or HS256 for tokens
    /// issued before device tokens were EdDSA.
    pub fn verify(&self, token: &str, audience: &str) -> Result<Claims, Refusal> {
        let invalid = |e: jsonwebtoken::errors::Error| Refusal::unauthorized(format!("invalid token: {e}"));
        let alg = jsonwebtoken::decode_header(token).map_err(invalid)?.alg;
        if audience == DEVICE_AUDIENCE && alg == Algorithm::EdDSA {
            return check(token, &self.device_decoding, Algorithm::EdDSA, audience).map_err(invalid);
        }
        check(token, &self.decoding, Algorithm::HS256, audience).map_err(invalid)
    }
}

fn check(token: &str, key: &DecodingKey, alg: Algorithm, audience: &str) -> jsonwebtoken::errors::Result<Claims> {
    let mut validation = Validation::new(alg);
    validation.set_audience(&[audience]);
    validation.leeway = 30;
    decode::<Claims>(token, key, &validation).map(|d| d.claims)
}

fn device_decoding_key(server: &PublicKey) -> DecodingKey {
    DecodingKey::from_ed_der(server.as_bytes())
}

/// Checks a device token offline, as a team hub does: EdDSA signature by the server's key, audience, expiry.
/// (Revocation and the account's state are checked by the server at the device's next request to it.)
pub fn verify_device_token(server: &PublicKey, token: &str) -> Result<Claims, String> {
    check(token, &device_decoding_key(server), Algorithm::EdDSA, DEVICE_AUDIENCE).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
            "this device's token predates sync through a hub; enrol it again with `doorstep field login`".to_string()
        }
        _ => format!("invalid device token: {e}"),
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await?
}

pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A new opaque refresh token and the digest under which it is stored.
pub fn new_refresh_token() -> (String, String) {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let digest = token_digest(&token);
    (token, digest)
}

pub fn token_digest(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn check_password_rules(password: &str) -> Result<(), String> {
    if password.chars().count() < 8 {
        return Err("passwords need at least 8 characters".into());
    }
    Ok(())
}
