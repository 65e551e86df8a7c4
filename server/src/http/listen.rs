//! Serving a router over plain HTTP or HTTPS (rustls), with the same graceful shutdown either way (on the
//! shutdown signal the listener closes and requests in flight finish before the process exits) and the same
//! limits on slow and numerous connections.

use crate::http::bodies::BodyPace;
use anyhow::{anyhow, Context};
use axum::Router;
use axum_server::accept::{Accept, DefaultAcceptor};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

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

/// What the connections of one client may hold of the server: how long a request may take to arrive, and how many
/// connections one address may have open. Without these a client that opens connections and sends nothing, or a
/// byte now and then, holds a file descriptor each for as long as it likes, and a few thousand of them stop the
/// server from accepting anyone else.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time for a request's headers to arrive: from the connection's start (after the TLS handshake, which has
    /// the same time), or from the previous answer on a kept-alive connection, which is closed when it passes.
    pub header_timeout: Duration,
    /// How fast request bodies must arrive.
    pub body: BodyPace,
    /// Connections open at the same time from one address (an IPv6 /64 counts as one); 0 for no bound.
    pub per_address: usize,
}

pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes a second a body must average past its first `DEFAULT_BODY_TIMEOUT`: a phone on a poor 2G link sends
/// several times as much.
pub const DEFAULT_BODY_MIN_RATE: u64 = 500;
/// A team at base shares one address (a router, or a mobile operator's NAT), and a browser opens up to six
/// connections to a server: this leaves room for dozens of devices behind one address.
pub const DEFAULT_CONNECTIONS_PER_ADDRESS: usize = 256;

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body: BodyPace { timeout: DEFAULT_BODY_TIMEOUT, min_rate: DEFAULT_BODY_MIN_RATE },
            per_address: DEFAULT_CONNECTIONS_PER_ADDRESS,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, over HTTPS when `tls` is given, with the default
/// `ConnectionLimits`. Handlers may read the client's address (`ConnectInfo<SocketAddr>`).
pub async fn serve_app(
    app: Router,
    listener: tokio::net::TcpListener,
    tls: Option<RustlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_app_with(app, listener, tls, ConnectionLimits::default(), shutdown).await
}

/// As `serve_app`, with the given limits.
pub async fn serve_app_with(
    app: Router,
    listener: tokio::net::TcpListener,
    tls: Option<RustlsConfig>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = app.layer(axum::middleware::from_fn_with_state(limits.body, crate::http::bodies::pace_bodies));
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let on_signal = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        // No deadline: a sync in flight finishes.
        on_signal.graceful_shutdown(None);
    });
    let per_address = PerAddress::new(limits.per_address);
    let server = axum_server::from_tcp(listener.into_std()?)?.handle(handle);
    match tls {
        None => configure(server.acceptor(per_address.around(DefaultAcceptor::new())), &limits).serve(service).await?,
        Some(tls) => {
            let tls = RustlsAcceptor::new(tls).handshake_timeout(limits.header_timeout);
            configure(server.acceptor(per_address.around(tls)), &limits).serve(service).await?
        }
    }
    Ok(())
}

fn configure<A>(
    mut server: axum_server::Server<SocketAddr, A>,
    limits: &ConnectionLimits,
) -> axum_server::Server<SocketAddr, A> {
    // The builder comes with a timer, which hyper's timeouts need.
    server.http_builder().http1().header_read_timeout(limits.header_timeout);
    // Also bounds the wait before the protocol is known (HTTP/1.1 or HTTP/2), which hyper does not time.
    server.first_request_timeout(limits.header_timeout)
}

/// An acceptor that admits at most `max` open connections per client address, around another acceptor (plain or
/// TLS). A connection past the bound is closed at once, before its TLS handshake or its first request.
#[derive(Clone)]
struct PerAddress {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, OpenFrom>>>,
}

#[derive(Default)]
struct OpenFrom {
    connections: usize,
    /// When refusing one of its connections was last logged: an address at its bound is logged once a minute.
    logged: Option<Instant>,
}

impl PerAddress {
    fn new(max: usize) -> PerAddress {
        PerAddress { max: if max == 0 { usize::MAX } else { max }, open: Default::default() }
    }

    fn around<A>(&self, inner: A) -> Bounded<A> {
        Bounded { inner, bound: self.clone() }
    }

    /// A slot for one more connection from `ip`, or `None` if it has as many as it may.
    fn take(&self, ip: IpAddr) -> Option<Slot> {
        let key = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let from = open.entry(key).or_default();
        if from.connections >= self.max {
            if from.logged.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                from.logged = Some(Instant::now());
                tracing::warn!(address = %key, bound = self.max, "refusing connections: the address has as many open as it may");
            }
            return None;
        }
        from.connections += 1;
        Some(Slot { key, open: self.open.clone() })
    }
}

/// One address's bound counts an IPv4 address, or an IPv6 /64 (what one subscriber usually gets).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::from(u64::MAX)))),
        },
        v4 => v4,
    }
}

/// A connection's place in its address's count, given back when the connection is dropped.
struct Slot {
    key: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, OpenFrom>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(from) = open.get_mut(&self.key) {
            from.connections -= 1;
            if from.connections == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[derive(Clone)]
struct Bounded<A> {
    inner: A,
    bound: PerAddress,
}

impl<A, S> Accept<TcpStream, S> for Bounded<A>
where
    A: Accept<TcpStream, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Counted<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let slot = match stream.peer_addr() {
            Ok(peer) => self.bound.take(peer.ip()),
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        let Some(slot) = slot else {
            // Dropping the stream closes it.
            return Box::pin(std::future::ready(Err(std::io::Error::other("too many connections from one address"))));
        };
        let accepting = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = accepting.await?;
            Ok((Counted { stream, _slot: slot }, service))
        })
    }
}

/// A connection that holds its slot in its address's count while it is open.
struct Counted<S> {
    stream: S,
    _slot: Slot,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
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

    /// One address holds at most its bound of connections, and a closed one frees its place; an IPv6 /64 is one
    /// address, and an IPv4 address is the same whether it comes mapped into IPv6 or not.
    #[test]
    fn connections_are_bounded_per_address() {
        let bound = super::PerAddress::new(2);
        let v4: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let first = bound.take(v4).unwrap();
        let _second = bound.take("::ffff:192.0.2.7".parse().unwrap()).unwrap();
        assert!(bound.take(v4).is_none());
        assert!(bound.take("192.0.2.8".parse().unwrap()).is_some(), "another address is not affected");
        drop(first);
        assert!(bound.take(v4).is_some());

        let _a = bound.take("2001:db8:1:2::1".parse().unwrap()).unwrap();
        let _b = bound.take("2001:db8:1:2:ffff::9".parse().unwrap()).unwrap();
        assert!(bound.take("2001:db8:1:2::3".parse().unwrap()).is_none(), "the same /64");
        assert!(bound.take("2001:db8:1:3::1".parse().unwrap()).is_some(), "another /64");
        assert!(super::PerAddress::new(0).take(v4).is_some(), "0: no bound");
    }

    #[tokio::test]
    async fn an_address_in_use_is_refused_with_its_address() {
        let taken = super::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let e = super::bind(&addr).await.unwrap_err().to_string();
        assert!(e.contains(&addr), "{e}");
    }
}
