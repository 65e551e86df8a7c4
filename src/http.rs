//! The CLI's HTTP client: JSON and CBOR calls to a Doorstep server, with errors in plain words.

use anyhow::{anyhow, Result};
use reqwest::{Client, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use std::time::Duration;

pub struct Api {
    base: String,
    token: Option<String>,
    client: Client,
}

/// Why a call failed, so callers can treat "unreachable" differently from "refused".
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot reach the server at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("{message}")]
    Refused { status: u16, code: String, message: String },
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Result<Api> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(anyhow!("server address {base:?} must start with http:// or https://"));
        }
        // Exports set a longer total time per request; the read timeout still catches a server that stalls.
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .read_timeout(Duration::from_secs(300))
            .build()?;
        Ok(Api { base, token, client })
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req
    }

    pub async fn send(&self, req: RequestBuilder) -> Result<Response, CallError> {
        let resp =
            req.send().await.map_err(|e| CallError::Unreachable { url: self.base.clone(), detail: root_cause(&e) })?;
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

pub fn root_cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
