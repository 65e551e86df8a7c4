//! A hub's HTTPS: its certificate, signed by the installation's Doorstep CA (`doorstep hub certificate`, renewed
//! by `hub sync` when due), kept with its private key in the lead's profile, and the TLS configuration
//! `hub serve` serves with.

use crate::profile::Profile;
use anyhow::{anyhow, bail, Context, Result};
use axum_server::tls_rustls::RustlsConfig;
use chrono::{DateTime, Utc};
use client_core::hub_certs::{HubCertificateReply, HubCertificateRequest};
use reqwest::Method;

/// `hub sync` renews the hub certificate once fewer days than this remain (it is valid for
/// `server::tls::ca::HUB_CERT_DAYS`, a week): a lead who syncs every day or two keeps it valid for days ahead.
pub const RENEW_WITHIN_DAYS: i64 = 5;

/// The addresses `hub certificate` asks for (its flags are `doorstep hub certificate`'s).
pub struct CertificateArgs {
    /// IP addresses phones reach the hub at on the base's network (private addresses).
    pub ips: Vec<std::net::IpAddr>,
    /// DNS names of the hub on the base's network, under .local, .lan, .home.arpa or .internal.
    pub names: Vec<String>,
}

/// The hub certificate the profile holds.
pub struct HeldCertificate {
    pub names: Vec<String>,
    pub not_after: DateTime<Utc>,
    /// The team and device it names (`None` for one issued before certificates named them).
    pub identity: Option<server::tls::ca::HubIdentity>,
}

impl HeldCertificate {
    /// Whether it names this device of its team, as devices check: one issued to an earlier enrolment, or before
    /// certificates named their hub, is replaced at the next `hub sync`.
    fn names_device(&self, device: &crate::profile::Device) -> bool {
        self.identity
            .as_ref()
            .is_some_and(|id| Some(&id.team) == device.team.as_ref() && id.device_id == device.device_id)
    }
}

/// The profile's hub certificate, if it holds one.
pub fn held(profile: &Profile) -> Result<Option<HeldCertificate>> {
    let path = profile.hub_tls_file();
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow!("cannot read {}: {e}", path.display())),
    };
    let damaged = || format!("{} is damaged; get a new one with `doorstep hub certificate`", path.display());
    let pem = x509_parser::pem::Pem::iter_from_buffer(&bytes)
        .filter_map(|block| block.ok())
        .find(|block| block.label == "CERTIFICATE")
        .with_context(damaged)?;
    let cert = pem.parse_x509().map_err(|_| anyhow!(damaged()))?;
    use x509_parser::extensions::GeneralName;
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some(dns.to_string()),
                    GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(|ip| ip.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let not_after = DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0).with_context(damaged)?;
    let identity = server::tls::ca::HubIdentity::of_certificate(&pem.contents);
    Ok(Some(HeldCertificate { names, not_after, identity }))
}

fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => Some(<[u8; 4]>::try_from(bytes).ok()?.into()),
        16 => Some(<[u8; 16]>::try_from(bytes).ok()?.into()),
        _ => None,
    }
}

/// `doorstep hub certificate`: a new hub certificate for the given addresses, or for those of the one held.
pub async fn command(profile: &Profile, args: CertificateArgs) -> Result<()> {
    let mut names: Vec<String> = args.ips.iter().map(ToString::to_string).collect();
    names.extend(args.names);
    if names.is_empty() {
        names = held(profile)?.map(|h| h.names).unwrap_or_default();
    }
    if names.is_empty() {
        bail!(
            "name the addresses phones reach the hub at: --ip 192.168.1.10 (its address on the base's network) \
             and/or --name hub.home.arpa"
        );
    }
    let issued = obtain(profile, &names).await?;
    let ca = ca_info(profile)?;
    println!("hub certificate for {}, valid until {}", issued.names.join(", "), issued.not_after.to_rfc3339());
    eprintln!(
        "`doorstep hub serve` now serves HTTPS with it, and `doorstep hub sync` renews it when fewer than \
         {RENEW_WITHIN_DAYS} days remain.\nInstall the CA certificate once on each phone (the field app's enrolment \
         screen and the office dashboard link it) and check its fingerprint:\n  {}\n  SHA-256 {}",
        ca.name, ca.sha256
    );
    Ok(())
}

/// The CA the profile trusts, as it is shown to people.
fn ca_info(profile: &Profile) -> Result<server::tls::ca::CaInfo> {
    let pem = profile.device()?.ca_certificate.context("this profile holds no Doorstep CA certificate")?;
    server::tls::ca::CaInfo::from_pem(&pem).map_err(|e| anyhow!("the profile's Doorstep CA certificate: {e}"))
}

/// Asks the server's CA for a certificate for a new key of this hub, and keeps both in the profile. The private
/// key never leaves this machine: the server signs a request made with it.
async fn obtain(profile: &Profile, names: &[String]) -> Result<HeldCertificate> {
    let mut device = profile.device()?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let params = rcgen::CertificateParams::new(names.to_vec())
        .map_err(|e| anyhow!("{} are not valid IP addresses or DNS names: {e}", names.join(", ")))?;
    let csr = params.serialize_request(&key)?.pem()?;
    let api = profile.api(&device, None)?;
    let reply: HubCertificateReply = api
        .json(api.request(Method::POST, "/api/v1/hub/certificate").json(&HubCertificateRequest { csr }))
        .await
        .context("the server gave no hub certificate")?;
    profile.save_hub_tls(&key.serialize_pem(), &reply.certificate)?;
    if device.ca_certificate.as_deref() != Some(reply.ca_certificate.as_str()) {
        device.ca_certificate = Some(reply.ca_certificate);
        profile.save_device(&device)?;
    }
    Ok(HeldCertificate {
        names: reply.names,
        not_after: reply.not_after,
        identity: Some(server::tls::ca::HubIdentity {
            team: device.team.unwrap_or_default(),
            device_id: device.device_id,
        }),
    })
}

/// Renews the profile's hub certificate (same addresses, new key) if it expires within `RENEW_WITHIN_DAYS`, or
/// does not name this device of its team (devices would refuse it).
pub async fn renew_if_due(profile: &Profile) -> Result<Option<HeldCertificate>> {
    let Some(current) = held(profile)? else { return Ok(None) };
    let device = profile.device()?;
    if current.not_after - Utc::now() > chrono::Duration::days(RENEW_WITHIN_DAYS) && current.names_device(&device) {
        return Ok(None);
    }
    obtain(profile, &current.names).await.map(Some)
}

/// How `hub serve` serves: HTTPS with given files, or with the profile's hub certificate; plain HTTP if asked or
/// if the profile holds none and HTTPS was not required.
pub struct Serving {
    pub tls: Option<RustlsConfig>,
    /// Set when the profile's certificate is served: it is loaded again after a renewal.
    pub from_profile: bool,
}

pub fn serving(
    profile: &Profile,
    files: Option<(&std::path::Path, &std::path::Path)>,
    required: bool,
) -> Result<Serving> {
    if let Some((cert, key)) = files {
        let tls = RustlsConfig::from_config(server::serving::tls_config(cert, key)?);
        return Ok(Serving { tls: Some(tls), from_profile: false });
    }
    let Some(current) = held(profile)? else {
        if required {
            bail!(
                "this profile holds no hub certificate; get one with `doorstep hub certificate --ip ADDRESS` while the \
                 server can be reached (ADDRESS: where phones reach this machine on the base's network)"
            );
        }
        return Ok(Serving { tls: None, from_profile: false });
    };
    if current.not_after <= Utc::now() {
        bail!(
            "the hub certificate (for {}) expired at {}; renew it with `doorstep hub sync` or `doorstep hub \
             certificate` while the server can be reached, or serve CLI devices only with --plain-http",
            current.names.join(", "),
            current.not_after.to_rfc3339()
        );
    }
    if !current.names_device(&profile.device()?) {
        eprintln!(
            "the hub certificate does not name this device of the team (it was issued to an earlier enrolment, or \
             before certificates named their hub): team-mates' devices refuse it; `doorstep hub sync` or `doorstep \
             hub certificate` replaces it while the server can be reached"
        );
    }
    let left = current.not_after - Utc::now();
    eprintln!(
        "HTTPS with the hub certificate for {}, valid until {}{}",
        current.names.join(", "),
        current.not_after.to_rfc3339(),
        if left < chrono::Duration::days(RENEW_WITHIN_DAYS) { " (renewed at the next `hub sync`)" } else { "" }
    );
    Ok(Serving { tls: Some(RustlsConfig::from_config(profile_tls_config(profile)?)), from_profile: true })
}

pub fn profile_tls_config(profile: &Profile) -> Result<std::sync::Arc<rustls::ServerConfig>> {
    let file = profile.hub_tls_file();
    server::serving::tls_config(&file, &file)
}
