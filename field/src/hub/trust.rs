//! Which team hubs a device accepts. A certificate from the installation's Doorstep CA is taken only if it was
//! issued to a hub of the device's own team, for a device the server had not withdrawn (revoked, or no longer a
//! lead of the team) as of the newest list of withdrawn hubs the device holds. The check runs inside the TLS
//! handshake, so a refused hub receives nothing: no token, no visit.
//!
//! The list (`hub-trust.json` in the profile) is signed by the server. A device gets it from the server at
//! enrolment and after each sync, and from a hub after syncing through it (a hub passes on the newest it
//! received), and keeps the newest: a revoked hub can withhold the list, not undo what a device learnt.

use crate::api::Api;
use crate::profile::{Device, Profile};
use anyhow::{anyhow, bail, Context, Result};
use client_core::hub_certs::{HubTrust, SignedHubTrust};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use server::tls::ca::HubIdentity;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Why a hub certified by the Doorstep CA is refused, in words a volunteer can act on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HubRefusal(String);

/// What a device accepts of hubs the Doorstep CA certified.
#[derive(Debug, Clone)]
pub struct HubCheck {
    team: Option<String>,
    withdrawn: BTreeSet<String>,
    /// When the server made the list of withdrawn hubs the device holds (milliseconds).
    as_of: Option<i64>,
}

impl HubCheck {
    /// The check for a device: its team, and the list of withdrawn hubs its profile holds (checked when saved).
    pub fn for_device(profile: &Profile, device: &Device) -> HubCheck {
        let trust = held(profile).filter(|t| device.team.as_ref() == Some(&t.team));
        HubCheck {
            team: device.team.clone(),
            withdrawn: trust.as_ref().map(|t| t.withdrawn.iter().cloned().collect()).unwrap_or_default(),
            as_of: trust.map(|t| t.at_ms),
        }
    }

    /// Whether a certificate the Doorstep CA signed (DER) is a hub this device may talk to.
    fn accepts(&self, certificate: &[u8]) -> Result<(), HubRefusal> {
        let Some(hub) = HubIdentity::of_certificate(certificate) else {
            return Err(HubRefusal(
                "its certificate, from this installation's Doorstep CA, names no team (it was issued before hub \
                 certificates named their team), so it may not be your team's hub; nothing was sent. The team lead \
                 gets a new one with `doorstep hub certificate`"
                    .into(),
            ));
        };
        let Some(team) = &self.team else {
            return Err(HubRefusal(format!(
                "its certificate was issued to a hub of team {}, and this device is in no team; nothing was sent",
                hub.team
            )));
        };
        if &hub.team != team {
            return Err(HubRefusal(format!(
                "its certificate was issued to a hub of team {}, not of your team ({team}): it is not your team's \
                 hub, and nothing was sent. Check the address with your team lead",
                hub.team
            )));
        }
        if self.withdrawn.contains(&hub.device_id) {
            let when = self
                .as_of
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map_or_else(String::new, |t| format!(" (as of {})", t.format("%Y-%m-%d %H:%M UTC")));
            return Err(HubRefusal(format!(
                "its certificate was issued to device {} of team {team}, which the office has revoked or which no \
                 longer leads the team{when}; nothing was sent. Ask your team lead or the office which hub to use",
                hub.device_id
            )));
        }
        Ok(())
    }
}

/// The list of withdrawn hubs the profile holds, as the server stated it.
fn held(profile: &Profile) -> Option<HubTrust> {
    let signed = profile.hub_trust().ok().flatten()?;
    serde_json::from_str(&signed.statement).ok()
}

/// A TLS client configuration that trusts the public certificate authorities, and the Doorstep CA (PEM) for
/// hubs that `check` accepts.
pub fn client_config(doorstep_ca: &str, check: HubCheck) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let damaged = || "the profile's Doorstep CA certificate is damaged; enrol again with `doorstep field login`";
    let mut doorstep_roots = RootCertStore::empty();
    doorstep_roots
        .add(CertificateDer::from_pem_slice(doorstep_ca.as_bytes()).with_context(damaged)?)
        .with_context(damaged)?;
    let doorstep = WebPkiServerVerifier::builder_with_provider(Arc::new(doorstep_roots), provider.clone()).build()?;
    let public_roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let public = WebPkiServerVerifier::builder_with_provider(Arc::new(public_roots), provider.clone()).build()?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(HubVerifier { doorstep, public, check }))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Checks a peer's certificate as the public certificate authorities and the Doorstep CA vouch for it, and a
/// Doorstep CA certificate further with `HubCheck`.
#[derive(Debug)]
struct HubVerifier {
    doorstep: Arc<WebPkiServerVerifier>,
    public: Arc<WebPkiServerVerifier>,
    check: HubCheck,
}

impl ServerCertVerifier for HubVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.doorstep.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(verified) => match self.check.accepts(end_entity) {
                Ok(()) => Ok(verified),
                Err(refusal) => {
                    Err(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(refusal)))))
                }
            },
            // Not the Doorstep CA's: a server with a public certificate, or nobody this device trusts.
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
                self.public.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            // The Doorstep CA's, but expired, for another address…: that is the reason to give.
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.public.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.public.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.public.supported_verify_schemes()
    }
}

/// Asks `api` (the server, or a hub passing on the server's) for the team's list of withdrawn hubs, and keeps
/// it if the server signed it, it is for the device's team and it is newer than the one held. An address that
/// has none to give (a hub that never received one) changes nothing.
pub async fn refresh(profile: &Profile, device: &Device, api: &Api) -> Result<()> {
    // A device in no team accepts no hub, and has no list to keep.
    let (Some(server_key), Some(team)) = (device.server_key.as_deref(), device.team.as_deref()) else { return Ok(()) };
    let server_key = client_core::sign::PublicKey::from_hex(server_key)?;
    let signed: SignedHubTrust = match api.send(api.request(reqwest::Method::GET, "/api/v1/hub/trust")).await {
        Ok(resp) => resp.json().await?,
        Err(crate::api::CallError::Refused { status: 404, .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let trust = signed.verify(&server_key).map_err(|e| anyhow!(e))?;
    if trust.team != team {
        bail!(
            "this device was enrolled in team {team}, and its account is now in team {}: enrol it again with \
             `doorstep field login` to sync with the new team's hubs",
            trust.team
        );
    }
    if held(profile).is_some_and(|t| t.team == trust.team && t.at_ms >= trust.at_ms) {
        return Ok(());
    }
    profile.save_hub_trust(&signed)
}
