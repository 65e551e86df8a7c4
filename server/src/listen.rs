//! Serving a router over plain HTTP or HTTPS (rustls), with the same graceful shutdown either way: on the
//! shutdown signal the listener closes and requests in flight finish before the process exits.

use anyhow::{anyhow, Context};
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// A TLS server configuration from a certificate chain and its private key, both PEM (they may be one file).
pub fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("cannot read the certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{} holds no certificate (a PEM file with -----BEGIN CERTIFICATE-----)", cert.display());
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow!("{} holds no usable private key (PEM: PKCS#8, SEC1 or RSA): {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| anyhow!("{} and {} do not make a usable pair: {e}", cert.display(), key.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `app` on `listener` until `shutdown` resolves, over HTTPS when `tls` is given. Handlers may read the
/// client's address (`ConnectInfo<SocketAddr>`).
pub async fn serve_app(
    app: Router,
    listener: tokio::net::TcpListener,
    tls: Option<RustlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let Some(tls) = tls else {
        axum::serve(listener, service).with_graceful_shutdown(shutdown).await?;
        return Ok(());
    };
    let handle = axum_server::Handle::new();
    let on_signal = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        // No deadline, as for plain HTTP: a sync in flight finishes.
        on_signal.graceful_shutdown(None);
    });
    axum_server::from_tcp_rustls(listener.into_std()?, tls)?.handle(handle).serve(service).await?;
    Ok(())
}
