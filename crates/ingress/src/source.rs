//! The source allowlist of the webhook route: `VERDICT_WEBHOOK_ALLOW_CIDRS`, with the client
//! found behind `VERDICT_TRUSTED_PROXIES` through `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use http::HeaderMap;
use ipnet::IpNet;

use crate::Error;

const FORWARDED_FOR: &str = "x-forwarded-for";

/// Which source addresses may deliver webhooks.
#[derive(Debug, Clone)]
pub struct SourceFilter {
    allow: Arc<[IpNet]>,
    trusted_proxies: Arc<[IpNet]>,
}

impl SourceFilter {
    /// Webhooks from `allow` only; the peer is believed about the client (its
    /// `X-Forwarded-For`) only when it is in `trusted_proxies`.
    pub fn new(allow: Vec<IpNet>, trusted_proxies: Vec<IpNet>) -> Self {
        Self {
            allow: allow.into(),
            trusted_proxies: trusted_proxies.into(),
        }
    }

    /// Whether a request from `peer` with these headers may deliver.
    pub fn allows(&self, peer: IpAddr, headers: &HeaderMap) -> bool {
        self.client(peer, headers)
            .is_some_and(|client| within(&self.allow, client))
    }

    /// The client's address: the peer itself unless it is a trusted proxy; behind trusted
    /// proxies, the right-most `X-Forwarded-For` address that is not one (entries to its left
    /// were written by the client and prove nothing); the left-most when all are trusted.
    /// `None` when an entry that must be believed is not an address.
    fn client(&self, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        let mut nearest = peer.to_canonical();
        if !within(&self.trusted_proxies, nearest) {
            return Some(nearest);
        }
        // Several headers form one list, in order.
        for value in headers.get_all(FORWARDED_FOR).iter().rev() {
            let value = value.to_str().ok()?;
            for entry in value.rsplit(',') {
                let hop = parse_hop(entry.trim())?;
                if !within(&self.trusted_proxies, hop) {
                    return Some(hop);
                }
                nearest = hop;
            }
        }
        Some(nearest)
    }
}

/// `1.2.3.4`, `2001:db8::1`, or either with a port (`1.2.3.4:5678`, `[2001:db8::1]:443`), as
/// proxies write them.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|addr| addr.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

fn within(nets: &[IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|net| net.contains(&ip))
}

/// The middleware: 403 before the body is read when the source is not allowed.
pub(crate) async fn check(
    State(filter): State<SourceFilter>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let Some(peer) = peer else {
        // Served without connect info: a wiring bug, and the filter cannot be applied.
        tracing::error!("no peer address on the request, webhook source cannot be checked");
        return Error::SourceNotAllowed.into_response();
    };
    if filter.allows(peer, request.headers()) {
        next.run(request).await
    } else {
        tracing::warn!(%peer, "webhook from a source outside VERDICT_WEBHOOK_ALLOW_CIDRS");
        Error::SourceNotAllowed.into_response()
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|net| net.parse().unwrap()).collect()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_and_the_header_is_ignored() {
        let filter = SourceFilter::new(nets(&["203.0.113.0/24"]), vec![]);
        assert!(filter.allows(ip("203.0.113.9"), &HeaderMap::new()));
        assert!(!filter.allows(ip("10.0.0.5"), &forwarded(&["203.0.113.9"])));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let filter = SourceFilter::new(nets(&["203.0.113.0/24"]), nets(&["10.0.0.0/8"]));
        let proxy = ip("10.1.2.3");
        assert!(filter.allows(proxy, &forwarded(&["203.0.113.9"])));
        assert!(filter.allows(proxy, &forwarded(&["203.0.113.9, 10.9.9.9"])));
        assert!(filter.allows(proxy, &forwarded(&["203.0.113.9", "10.9.9.9:4711"])));
        // A client cannot prepend its way in: the hop the proxy saw is the client.
        assert!(!filter.allows(proxy, &forwarded(&["203.0.113.9, 198.51.100.7"])));
        assert!(!filter.allows(proxy, &forwarded(&["198.51.100.7"])));
        // Garbage where an address must be believed is refused, not skipped.
        assert!(!filter.allows(proxy, &forwarded(&["203.0.113.9, not-an-ip"])));
        // A trusted proxy with no header is itself the client.
        assert!(!filter.allows(proxy, &HeaderMap::new()));
    }

    #[test]
    fn ipv4_mapped_ipv6_addresses_match_ipv4_ranges() {
        let filter = SourceFilter::new(nets(&["203.0.113.0/24"]), nets(&["::1/128"]));
        assert!(filter.allows(ip("::ffff:203.0.113.9"), &HeaderMap::new()));
        assert!(filter.allows(ip("::1"), &forwarded(&["[::ffff:203.0.113.9]:443"])));
    }
}
