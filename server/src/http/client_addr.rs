//! The client's address, as the login limits and the audit log see it: the connection's peer address, or,
//! when that peer is a reverse proxy the operator named (`--trusted-proxy`), the address the proxy reports in
//! `X-Forwarded-For`. Headers from any other peer are ignored, so a client cannot choose its own address.

use crate::http::error::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
pub use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The networks whose connections are reverse proxies of this server.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(networks)
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client behind `peer`: walking `X-Forwarded-For` from its end (the entry the nearest proxy added),
    /// each hop is believed only while the hop that reported it is a trusted proxy; the first address that is
    /// not a trusted proxy is the client.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.into_iter().rev() {
            if !self.trusts(client) {
                break;
            }
            match hop.parse::<IpAddr>() {
                Ok(addr) => client = canonical(addr),
                // Not an address (`unknown`, a port, garbage): the last proxy's own address is all we know.
                Err(_) => break,
            }
        }
        client
    }
}

/// Parses one `--trusted-proxy` value: an address (`127.0.0.1`, `::1`) or a network (`10.0.0.0/8`).
pub fn parse_trusted_proxy(value: &str) -> Result<IpNet, String> {
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{value:?} is not an address or a network such as 10.0.0.0/8"))
}

/// IPv4 clients reaching an IPv6 socket appear as `::ffff:a.b.c.d`: counted, logged and matched as IPv4.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// The requesting client's address (see the module's comment).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| ApiError::internal("the connection's address is unknown"))?;
        Ok(ClientAddr(state.trusted_proxies.client(peer, &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_proxy_is_believed() {
        let proxies = TrustedProxies::new(vec![parse_trusted_proxy("127.0.0.1").unwrap()]);
        let forged = headers(&["198.51.100.9"]);
        // A client connecting directly cannot choose its address.
        assert_eq!(proxies.client(ip("203.0.113.5"), &forged), ip("203.0.113.5"));
        // Through the proxy, the address it saw.
        assert_eq!(proxies.client(ip("127.0.0.1"), &forged), ip("198.51.100.9"));
        // Without any trusted proxy, headers count for nothing.
        assert_eq!(TrustedProxies::default().client(ip("127.0.0.1"), &forged), ip("127.0.0.1"));
    }

    #[test]
    fn a_client_cannot_hide_behind_entries_it_wrote_itself() {
        let proxies = TrustedProxies::new(vec![parse_trusted_proxy("10.0.0.0/8").unwrap()]);
        // The client sent "1.2.3.4" itself; the edge proxy appended the client's real address; an inner proxy
        // (10.0.0.2) appended the edge's.
        let h = headers(&["1.2.3.4, 203.0.113.5", "10.0.0.2"]);
        assert_eq!(proxies.client(ip("10.0.0.3"), &h), ip("203.0.113.5"));
        // Garbage where an address should be: the last proxy is all that is known.
        assert_eq!(proxies.client(ip("10.0.0.3"), &headers(&["unknown"])), ip("10.0.0.3"));
        // No header: the proxy itself.
        assert_eq!(proxies.client(ip("10.0.0.3"), &HeaderMap::new()), ip("10.0.0.3"));
        assert_eq!(proxies.client(ip("::ffff:10.0.0.3"), &headers(&["::ffff:203.0.113.5"])), ip("203.0.113.5"));
    }

    #[test]
    fn proxies_are_addresses_or_networks() {
        assert_eq!(parse_trusted_proxy("::1").unwrap().to_string(), "::1/128");
        assert_eq!(parse_trusted_proxy("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert!(parse_trusted_proxy("proxy.lan").unwrap_err().contains("not an address"));
    }
}
