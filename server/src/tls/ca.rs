//! The Doorstep certificate authority: a private CA that signs team hubs' HTTPS certificates, so that phones at a
//! base without internet reach a hub over HTTPS (the only way browsers give the field app its service worker,
//! WebCrypto and geolocation) once they have installed the CA's certificate.
//!
//! Its P-256 key is derived from the installation's secret, like the server's Ed25519 key, and its certificate is
//! built from that key deterministically (fixed dates, deterministic ECDSA), so every instance of an installation
//! has the same CA and the same fingerprint. The certificate's name constraints confine it to private networks'
//! addresses and local names: a phone that trusts it trusts it for no site on the internet.
//!
//! A hub certificate names its team and the lead's device in its subject (`HubIdentity`), so that a CLI device
//! checks, in the TLS handshake, that a hub is its own team's and that the server has not withdrawn its device.

use p256::ecdsa::signature::Signer;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyUsagePurpose, NameConstraints, SanType, SerialNumber,
    PKCS_ECDSA_P256_SHA256,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// How long a hub certificate is valid: a week, so that one a lead no longer may hold stops working soon; a lead
/// renews it at `hub sync` when it is due (`RENEW_WITHIN_DAYS` in the CLI).
pub const HUB_CERT_DAYS: i64 = 7;
/// A hub certificate names at most this many addresses (an IP address and a name or two are what a base needs).
pub const MAX_HUB_NAMES: usize = 4;
/// The attribute type of the subject's device id: LDAP's `uid` (0.9.2342.19200300.100.1.1).
const UID_OID: [u64; 7] = [0, 9, 2342, 19200300, 100, 1, 1];
const UID_OID_TEXT: &str = "0.9.2342.19200300.100.1.1";
/// The subject's team: its organizational unit (2.5.4.11).
const OU_OID_TEXT: &str = "2.5.4.11";
/// DNS names a hub certificate may carry end in one of these (names that only mean something on a local network).
pub const LOCAL_DNS_SUFFIXES: [&str; 4] = ["local", "lan", "home.arpa", "internal"];
/// Addresses a hub certificate may carry: private, shared (carrier-grade NAT, phone hotspots), link-local and
/// loopback networks, IPv4 and IPv6.
pub const PRIVATE_NETWORKS: [(&str, u8); 9] = [
    ("10.0.0.0", 8),
    ("172.16.0.0", 12),
    ("192.168.0.0", 16),
    ("100.64.0.0", 10),
    ("169.254.0.0", 16),
    ("127.0.0.0", 8),
    ("fc00::", 7),
    ("fe80::", 10),
    ("::1", 128),
];

/// The CA's signing key: deterministic ECDSA (RFC 6979), so the self-signed certificate is the same bytes on
/// every instance and at every start.
struct CaKey {
    signing: p256::ecdsa::SigningKey,
    /// Uncompressed SEC1 point, as X.509 carries it.
    public: Vec<u8>,
}

impl rcgen::PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let signature: p256::ecdsa::Signature = self.signing.sign(msg);
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

pub struct CertificateAuthority {
    issuer: Issuer<'static, CaKey>,
    certificate_pem: String,
}

/// Whose hub a certificate is: the team, and the device of its lead that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubIdentity {
    pub team: String,
    pub device_id: String,
}

impl HubIdentity {
    /// The identity a hub certificate (DER) carries in its subject; `None` for a certificate that names none
    /// (one issued before hub certificates named their hub, or the CA's own). Whether the Doorstep CA signed the
    /// certificate is for the caller to check first.
    pub fn of_certificate(der: &[u8]) -> Option<HubIdentity> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let attribute = |oid: &str| {
            cert.subject()
                .iter_attributes()
                .find(|a| a.attr_type().to_id_string() == oid)
                .and_then(|a| a.as_str().ok())
                .map(str::to_string)
        };
        Some(HubIdentity { team: attribute(OU_OID_TEXT)?, device_id: attribute(UID_OID_TEXT)? })
    }
}

/// A hub certificate just signed.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub certificate_pem: String,
    /// The addresses it is valid for, as text (`192.168.1.10`, `hub.home.arpa`).
    pub names: Vec<String>,
    pub not_after: chrono::DateTime<chrono::Utc>,
    pub serial: String,
}

/// What phones and people are shown of the CA: its certificate, name and SHA-256 fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaInfo {
    /// The certificate's common name, as a phone lists it among installed certificates.
    pub name: String,
    /// SHA-256 of the certificate (DER), upper-case hex pairs joined by colons, as Android and iOS show it.
    pub sha256: String,
    /// The certificate, PEM.
    pub certificate: String,
}

impl CaInfo {
    /// Reads a CA certificate (PEM): the server's own, or the copy a lead's hub holds.
    pub fn from_pem(pem: &str) -> Result<CaInfo, String> {
        let (_, parsed) =
            x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| format!("not a PEM certificate: {e}"))?;
        let cert = parsed.parse_x509().map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("Doorstep CA")
            .to_string();
        Ok(CaInfo { name, sha256: fingerprint(&parsed.contents), certificate: pem.to_string() })
    }
}

/// SHA-256 of DER bytes as `AB:CD:…`.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

impl CertificateAuthority {
    /// The installation's CA, derived from its secret (the `jwt-secret` file every instance shares).
    pub fn from_secret(secret: &[u8]) -> CertificateAuthority {
        let signing = derive_key(secret);
        let public = signing.verifying_key().to_encoded_point(false).as_bytes().to_vec();
        let key = CaKey { signing, public };
        let id: String = Sha256::digest(&key.public)[..4].iter().map(|b| format!("{b:02x}")).collect();
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "Doorstep");
        // The key's id in the name tells installations apart on a phone that holds more than one.
        name.push(DnType::CommonName, format!("Doorstep CA {id}"));
        params.distinguished_name = name;
        // Path length 0: it signs hub certificates, never another CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        params.serial_number = Some(positive_serial(&Sha256::digest(&key.public)[..16]));
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: LOCAL_DNS_SUFFIXES
                .iter()
                .map(|s| GeneralSubtree::DnsName(s.to_string()))
                .chain(
                    private_networks()
                        .map(|(net, prefix)| GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(net, prefix))),
                )
                .collect(),
            excluded_subtrees: Vec::new(),
        });
        let certificate_pem = params.self_signed(&key).expect("the CA's own certificate").pem();
        CertificateAuthority { issuer: Issuer::new(params, key), certificate_pem }
    }

    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    pub fn info(&self) -> CaInfo {
        CaInfo::from_pem(&self.certificate_pem).expect("the CA's own certificate parses")
    }

    /// Signs a hub certificate for the key and addresses of a certificate request (PEM), valid `HUB_CERT_DAYS`
    /// from `now`, naming the hub's team and device. The request's signature proves the lead's machine holds the
    /// key; everything else in the certificate is the CA's choice. Refuses (with a reason a person can act on)
    /// names the CA may not vouch for, wildcards, and more than `MAX_HUB_NAMES` names.
    pub fn issue_hub_certificate(
        &self,
        request_pem: &str,
        hub: &HubIdentity,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<IssuedCertificate, String> {
        let mut request = CertificateSigningRequestParams::from_pem(request_pem)
            .map_err(|e| format!("the certificate request is not a valid signed PEM request ({e})"))?;
        if request.public_key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            return Err("a hub's key must be ECDSA P-256 (the key phones' browsers all accept)".into());
        }
        let mut names = Vec::new();
        let mut kept = Vec::new();
        for name in std::mem::take(&mut request.params.subject_alt_names) {
            let text = permitted_name(&name)?;
            // The same name twice (in any letter case) counts once.
            if !names.contains(&text) {
                names.push(text);
                kept.push(name);
            }
        }
        if names.is_empty() {
            return Err("name at least one address of the hub: --ip 192.168.1.10 or --name hub.home.arpa".into());
        }
        if names.len() > MAX_HUB_NAMES {
            return Err(format!("a hub certificate names at most {MAX_HUB_NAMES} addresses; {} asked", names.len()));
        }
        let not_after = now + chrono::Duration::days(HUB_CERT_DAYS);
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::OrganizationName, "Doorstep");
        subject.push(DnType::OrganizationalUnitName, hub.team.as_str());
        subject.push(DnType::CommonName, format!("Doorstep hub of team {}", hub.team));
        subject.push(DnType::CustomDnType(UID_OID.to_vec()), hub.device_id.as_str());
        params.distinguished_name = subject;
        params.subject_alt_names = kept;
        // An hour of slack for phones whose clock runs a little behind.
        params.not_before = to_time(now - chrono::Duration::hours(1));
        params.not_after = to_time(not_after);
        let serial = positive_serial(&rand::random::<[u8; 16]>());
        params.serial_number = Some(serial.clone());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        request.params = params;
        let certificate = request.signed_by(&self.issuer).map_err(|e| format!("cannot sign the certificate: {e}"))?;
        Ok(IssuedCertificate {
            certificate_pem: certificate.pem(),
            names,
            not_after: chrono::DateTime::from_timestamp(not_after.timestamp(), 0).expect("a valid time"),
            serial: serial.to_string(),
        })
    }
}

/// The name as text if the CA may vouch for it: an address in a private network or a local DNS name.
fn permitted_name(name: &SanType) -> Result<String, String> {
    match name {
        SanType::IpAddress(ip) if private_networks().any(|(net, prefix)| in_network(*ip, net, prefix)) => {
            Ok(ip.to_string())
        }
        SanType::IpAddress(ip) => Err(format!(
            "{ip} is not an address of a local network; a hub certificate names only private addresses ({})",
            PRIVATE_NETWORKS.iter().map(|(n, p)| format!("{n}/{p}")).collect::<Vec<_>>().join(", ")
        )),
        SanType::DnsName(dns) => {
            let dns = dns.as_str().to_ascii_lowercase();
            if dns.contains('*') {
                return Err(format!(
                    "{dns} is a wildcard; a hub certificate names the hub's own hosts only, e.g. hub.home.arpa"
                ));
            }
            if !is_host_name(&dns) {
                return Err(format!(
                    "{dns} is not a host name (letters, digits and hyphens, in labels of at most 63 characters)"
                ));
            }
            if LOCAL_DNS_SUFFIXES
                .iter()
                .any(|s| dns.strip_suffix(s).is_some_and(|head| head.len() > 1 && head.ends_with('.')))
            {
                Ok(dns)
            } else {
                Err(format!(
                    "{dns} is not a local name; a hub certificate names only hosts under {}",
                    LOCAL_DNS_SUFFIXES.map(|s| format!(".{s}")).join(", ")
                ))
            }
        }
        other => Err(format!("a hub certificate names IP addresses and DNS names only, not {other:?}")),
    }
}

/// A DNS host name: dot-separated labels of 1 to 63 letters, digits and hyphens, not starting or ending with a
/// hyphen, 253 characters at most.
fn is_host_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn private_networks() -> impl Iterator<Item = (IpAddr, u8)> {
    PRIVATE_NETWORKS.iter().map(|(net, prefix)| (net.parse().expect("a listed network"), *prefix))
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// A P-256 scalar from the secret; the (astronomically rare) digest that is no valid scalar is hashed again.
fn derive_key(secret: &[u8]) -> p256::ecdsa::SigningKey {
    (0u32..)
        .find_map(|round| {
            let seed = Sha256::new()
                .chain_update(b"doorstep-ca-p256-v1\0")
                .chain_update(round.to_be_bytes())
                .chain_update(secret)
                .finalize();
            p256::ecdsa::SigningKey::from_slice(&seed).ok()
        })
        .expect("some digest is a valid scalar")
}

/// A serial number from bytes, made positive and non-zero in its first byte as DER integers need.
fn positive_serial(bytes: &[u8]) -> SerialNumber {
    let mut bytes = bytes.to_vec();
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

fn to_time(t: chrono::DateTime<chrono::Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).expect("a representable time")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(names: &[&str]) -> String {
        let key = rcgen::KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    #[test]
    fn the_ca_is_the_same_for_the_same_secret_and_differs_otherwise() {
        let a = CertificateAuthority::from_secret(b"one secret of at least thirty-two bytes");
        let b = CertificateAuthority::from_secret(b"one secret of at least thirty-two bytes");
        let c = CertificateAuthority::from_secret(b"another secret of thirty-two bytes or more");
        assert_eq!(a.certificate_pem(), b.certificate_pem());
        assert_ne!(a.info().sha256, c.info().sha256);
        assert!(a.info().name.starts_with("Doorstep CA "), "{:?}", a.info());
        assert_ne!(a.info().name, c.info().name);
    }

    fn hub() -> HubIdentity {
        HubIdentity { team: "team-a".into(), device_id: "0193-device".into() }
    }

    #[test]
    fn hub_certificates_name_only_local_addresses() {
        let ca = CertificateAuthority::from_secret(b"one secret of at least thirty-two bytes");
        let now = chrono::Utc::now();
        let names = ["192.168.1.10", "Hub.Home.Arpa", "hub.home.arpa"];
        let issued = ca.issue_hub_certificate(&request(&names), &hub(), now).unwrap();
        assert_eq!(issued.names, ["192.168.1.10", "hub.home.arpa"], "a name asked twice counts once");
        assert!((issued.not_after - now).num_minutes() >= HUB_CERT_DAYS * 24 * 60 - 1);
        assert!((issued.not_after - now).num_days() <= 7, "short-lived");
        for (name, why) in [
            ("8.8.8.8", "not an address of a local network"),
            ("example.com", "not a local name"),
            ("local", "not a local name"),
            ("evil-local", "not a local name"),
            ("*.home.arpa", "is a wildcard"),
            ("*.internal", "is a wildcard"),
            ("*.lan", "is a wildcard"),
            ("a.*.lan", "is a wildcard"),
            ("hub_1.lan", "not a host name"),
            ("-hub.lan", "not a host name"),
            ("hub..lan", "not a host name"),
        ] {
            let refused = ca.issue_hub_certificate(&request(&[name]), &hub(), now).unwrap_err();
            assert!(refused.contains(why), "{name}: {refused}");
        }
        let many = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"];
        let refused = ca.issue_hub_certificate(&request(&many), &hub(), now).unwrap_err();
        assert!(refused.contains("at most 4 addresses"), "{refused}");
        assert!(ca.issue_hub_certificate(&request(&[]), &hub(), now).unwrap_err().contains("at least one"));
        assert!(ca.issue_hub_certificate("not a request", &hub(), now).unwrap_err().contains("not a valid"));
        let ed25519 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let other = CertificateParams::new(vec!["10.0.0.1".to_string()]).unwrap();
        let refused = ca.issue_hub_certificate(&other.serialize_request(&ed25519).unwrap().pem().unwrap(), &hub(), now);
        assert!(refused.unwrap_err().contains("P-256"));
    }

    #[test]
    fn a_hub_certificate_names_its_team_and_device() {
        let ca = CertificateAuthority::from_secret(b"one secret of at least thirty-two bytes");
        let issued = ca.issue_hub_certificate(&request(&["10.0.0.1"]), &hub(), chrono::Utc::now()).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(issued.certificate_pem.as_bytes()).unwrap();
        assert_eq!(HubIdentity::of_certificate(&pem.contents), Some(hub()));
        // The CA's own certificate, like any certificate the CA did not issue to a hub, names no hub.
        let (_, ca_pem) = x509_parser::pem::parse_x509_pem(ca.certificate_pem().as_bytes()).unwrap();
        assert_eq!(HubIdentity::of_certificate(&ca_pem.contents), None);
    }
}
