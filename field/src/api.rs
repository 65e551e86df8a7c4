//! The CLI's HTTP client: JSON and CBOR calls to a Doorstep server, with errors in plain words.

use anyhow::{anyhow, Result};
use reqwest::{Client, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// An HTTP client waiting up to `wait` for an answer, verifying certificates with `tls` if given (else with the
/// public certificate authorities, reqwest's own).
fn client(tls: Option<&Arc<rustls::ClientConfig>>, wait: Duration) -> Result<Client> {
    let mut builder = Client::builder().connect_timeout(Duration::from_secs(10)).timeout(wait).read_timeout(wait);
    if let Some(tls) = tls {
        builder = builder.use_preconfigured_tls(rustls::ClientConfig::clone(tls));
    }
    Ok(builder.build()?)
}

pub struct Api {
    base: String,
    token: Option<String>,
    client: Client,
    /// The TLS configuration that also trusts the installation's Doorstep CA (for its team's hubs), if any.
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// Why a call failed, so callers can treat "unreachable" differently from "refused".
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot reach the server at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("{message}")]
    Refused { status: u16, code: String, message: String },
    /// The address answered, but with a certificate this client does not trust: nothing was sent to it.
    #[error("refused {url}: {reason}")]
    Untrusted { url: String, reason: String },
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Result<Api> {
        Api::trusting(base, token, None)
    }

    /// A client that verifies HTTPS certificates with `tls` (a device's: the public certificate authorities, and
    /// the installation's Doorstep CA for hubs of its team, `hub_trust`), or with the public certificate
    /// authorities alone.
    pub fn trusting(base: &str, token: Option<String>, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Api> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(anyhow!("server address {base:?} must start with http:// or https://"));
        }
        // Exports set a longer total time per request; the read timeout still catches a server that stalls.
        let client = client(tls.as_ref(), Duration::from_secs(300))?;
        Ok(Api { base, token, client, tls })
    }

    /// The same client waiting up to `wait` for an answer, for requests the server takes long to answer.
    pub fn waiting(self, wait: Duration) -> Result<Api> {
        Ok(Api { client: client(self.tls.as_ref(), wait)?, ..self })
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req
    }

    pub async fn send(&self, req: RequestBuilder) -> Result<Response, CallError> {
        let resp = req.send().await.map_err(|e| match certificate_refusal(&e, self.tls.is_some()) {
            Some(reason) => CallError::Untrusted { url: self.base.clone(), reason },
            None => CallError::Unreachable { url: self.base.clone(), detail: root_cause(&e) },
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let parsed: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        let err = parsed.as_ref().and_then(|v| v.get("error"));
        let code = err.and_then(|e| e.get("code")).and_then(|c| c.as_str()).unwrap_or("http_error").to_string();
        let message = err
            .and_then(|e| e.get("message"))
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| format!("the server answered HTTP {status}: {}", text.trim()));
        Err(CallError::Refused { status, code, message })
    }

    pub async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T> {
        let resp = self.send(req).await?;
        Ok(resp.json().await?)
    }
}

/// Why the peer's certificate was refused, in words a volunteer or lead can act on; `None` if the failure was
/// not about a certificate.
fn certificate_refusal(e: &reqwest::Error, doorstep_ca: bool) -> Option<String> {
    use rustls::CertificateError as Cert;
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let refused = std::iter::from_fn(|| {
        let current = next?;
        // io::Error's source() skips the error it wraps, which is where rustls puts its own: step into it.
        next = match current.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
        Some(current)
    })
    .find_map(|err| match err.downcast_ref::<rustls::Error>() {
        Some(rustls::Error::InvalidCertificate(cert)) => Some(cert.clone()),
        _ => None,
    })?;
    let when = |secs: u64| {
        chrono::DateTime::from_timestamp(secs as i64, 0).map_or_else(|| format!("{secs} s"), |t| t.to_rfc3339())
    };
    Some(match refused {
        Cert::UnknownIssuer if !doorstep_ca => {
            "its certificate is signed by no public certificate authority, and this \
             profile holds no Doorstep CA certificate (it was enrolled before hubs served HTTPS): enrol again with \
             `doorstep field login`, which saves it"
                .to_string()
        }
        Cert::UnknownIssuer => "its certificate is signed neither by this installation's Doorstep CA (saved at \
             `doorstep field login`) nor by a public certificate authority, so it may not be your team's hub or \
             server; nothing was sent. Check the address with your team lead; a lead gets the hub a certificate with \
             `doorstep hub certificate`"
            .to_string(),
        Cert::ExpiredContext { not_after, .. } => format!(
            "its certificate expired at {}; the team lead renews it with `doorstep hub sync` or `doorstep hub \
             certificate` while the server can be reached",
            when(not_after.as_secs())
        ),
        Cert::Expired => "its certificate has expired; the team lead renews it with `doorstep hub sync` or \
             `doorstep hub certificate` while the server can be reached"
            .to_string(),
        Cert::NotValidYet | Cert::NotValidYetContext { .. } => {
            "its certificate is not valid yet: check this device's date and time".to_string()
        }
        Cert::NotValidForNameContext { presented, .. } => {
            let names: Vec<&str> = presented.iter().map(|name| bare_name(name)).collect();
            format!("its certificate is for another address ({}); use one of those", names.join(", "))
        }
        Cert::NotValidForName => "its certificate is for another address".to_string(),
        // Signed by the Doorstep CA, but not for a hub of this device's team (`hub_trust`).
        Cert::Other(other) if other.0.is::<crate::hub::trust::HubRefusal>() => other.0.to_string(),
        other => format!("its certificate is not acceptable ({other})"),
    })
}

/// `DnsName("hub.home.arpa")` or `IpAddress(127.0.0.1)`, as rustls lists a certificate's names, without the
/// wrapping.
fn bare_name(presented: &str) -> &str {
    presented
        .split_once('(')
        .and_then(|(_, inner)| inner.strip_suffix(')'))
        .map_or(presented, |inner| inner.trim_matches('"'))
}

pub fn root_cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
