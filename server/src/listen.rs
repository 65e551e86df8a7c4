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

/// Connections the kernel completes and queues for a listener before it is accepted (capped by the system's
/// `net.core.somaxconn`). Devices reach a server in bursts (a team syncing at base, all phones at once after a
/// network outage): with the usual 128, every connection past it was dropped and the phone tried again a second
/// later, which was the p99 of a burst of 200 syncs.
const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` (`host:port`; the first of its addresses that can be bound) with a backlog for bursts.
pub async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let mut last_error = None;
    for candidate in tokio::net::lookup_host(addr).await.with_context(|| format!("cannot resolve {addr}"))? {
        let socket = match candidate {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        // As std and tokio's own `bind` do: a restarted server may take its port back at once.
        socket.set_reuseaddr(true)?;
        match socket.bind(candidate).and_then(|()| socket.listen(LISTEN_BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(match last_error {
        Some(e) => anyhow!("cannot listen on {addr}: {e}"),
        None => anyhow!("cannot listen on {addr}: it resolves to no address"),
    })
}

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

#[cfg(test)]
mod tests {
    /// A burst of connections to a server that has not accepted them yet all complete their handshake at once:
    /// none is dropped to be retried a second later.
    #[tokio::test]
    async fn a_burst_of_connections_waits_in_the_backlog() {
        let listener = super::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // More than the usual 128, within what the system allows a listener.
        let system_cap =
            std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok().and_then(|s| s.trim().parse().ok());
        let burst = system_cap.unwrap_or(300).min(300);
        let connects = (0..burst)
            .map(|_| tokio::time::timeout(std::time::Duration::from_millis(500), tokio::net::TcpStream::connect(addr)));
        let results = futures_util::future::join_all(connects).await;
        let connected = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert_eq!(connected, burst, "connections completed before the server accepted any");
    }

    #[tokio::test]
    async fn an_address_in_use_is_refused_with_its_address() {
        let taken = super::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let e = super::bind(&addr).await.unwrap_err().to_string();
        assert!(e.contains(&addr), "{e}");
    }
}
