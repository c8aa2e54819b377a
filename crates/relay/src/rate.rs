//! Rate limits: fixed windows counted in the database (so several relay
//! instances share them), with a local note of windows known to be full so
//! that a flood past a limit is refused without touching the database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use backchannel_protocol::Timestamp;

use crate::app::Relay;
use crate::config::Rate;
use crate::error::ApiError;
use crate::server::Peer;
use crate::store::RateDecision;

/// Full windows: bucket → when it reopens.
#[derive(Debug, Default)]
pub(crate) struct Blocked(Mutex<HashMap<String, Timestamp>>);

/// Most full windows remembered; past it, old ones are dropped (the
/// database still refuses them).
const BLOCKED_MAX: usize = 100_000;

impl Blocked {
    fn until(&self, bucket: &str, now: Timestamp) -> Option<Timestamp> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(bucket).copied().filter(|t| *t > now)
    }

    pub(crate) fn note(&self, bucket: String, until: Timestamp, now: Timestamp) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= BLOCKED_MAX {
            map.retain(|_, t| *t > now);
        }
        if map.len() < BLOCKED_MAX {
            map.insert(bucket, until);
        }
    }
}

/// The address a request is from: the TCP peer, or, when the peer is a
/// trusted proxy, the last address in `X-Forwarded-For` that is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<Relay> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, relay: &Relay) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<Peer>()
            .map(|p| p.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(ClientIp(address_key(client_ip(
            peer.to_canonical(),
            relay.trusted_proxies(),
            &parts.headers,
        ))))
    }
}

/// The address limits count by: IPv4 as it is (a mapped IPv6 form made
/// IPv4), IPv6 by its /64, which one subscriber usually holds whole.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
        v4 => v4,
    }
}

/// The peer, or, from a trusted proxy, the nearest address in
/// `X-Forwarded-For` that is not one of the trusted proxies (addresses
/// further left were written by the client and prove nothing).
fn client_ip(peer: IpAddr, trusted: &[IpAddr], headers: &axum::http::HeaderMap) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|a| a.trim().parse::<IpAddr>().ok().map(|a| a.to_canonical()))
        .collect::<Vec<_>>();
    for a in forwarded.iter().rev() {
        match a {
            Some(a) if trusted.contains(a) => continue,
            Some(a) => return *a,
            // A malformed hop: nothing to its left can be believed.
            None => return peer,
        }
    }
    peer
}

impl Relay {
    /// Counts one use of each `(bucket, rate)`; refuses with `429
    /// rate_limited` and `retry_after` once any of them is full.
    pub(crate) async fn limit(&self, checks: &[(String, Rate)]) -> Result<(), ApiError> {
        let now = self.now();
        self.refuse_known_full(checks, now)?;
        // One trip to the store for all of them: counts stop at the first
        // full window, as they would one by one.
        let all = checks.to_vec();
        let full = self
            .run(move |s| {
                for (bucket, rate) in all {
                    if let RateDecision::Limited { until } = s.hit(&bucket, rate, now)? {
                        return Ok(Some((bucket, until)));
                    }
                }
                Ok(None)
            })
            .await?;
        if let Some((bucket, until)) = full {
            self.blocked().note(bucket.clone(), until, now);
            return Err(self.limited(&bucket, until, now));
        }
        Ok(())
    }

    /// Refuses, without a trip to the store, a use of a window already
    /// seen full (its count is not needed to know).
    pub(crate) fn refuse_known_full(
        &self,
        checks: &[(String, Rate)],
        now: Timestamp,
    ) -> Result<(), ApiError> {
        for (bucket, _) in checks {
            if let Some(until) = self.blocked().until(bucket, now) {
                return Err(self.limited(bucket, until, now));
            }
        }
        Ok(())
    }

    /// Whether a use of `bucket` is still within `rate` (counted if so).
    pub(crate) async fn within(&self, bucket: String, rate: Rate) -> Result<bool, ApiError> {
        let now = self.now();
        if self.blocked().until(&bucket, now).is_some() {
            return Ok(false);
        }
        let b = bucket.clone();
        match self.run(move |s| s.hit(&b, rate, now)).await? {
            RateDecision::Allowed => Ok(true),
            RateDecision::Limited { until } => {
                self.blocked().note(bucket, until, now);
                Ok(false)
            }
        }
    }

    pub(crate) fn limited(&self, bucket: &str, until: Timestamp, now: Timestamp) -> ApiError {
        self.metrics().rejected("rate_limited");
        let what = bucket.split(':').next().unwrap_or(bucket);
        ApiError::rate_limited(what, until.0.saturating_sub(now.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(v: &str) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let inner: IpAddr = "10.0.0.2".parse().unwrap();
        let client: IpAddr = "198.51.100.7".parse().unwrap();
        let other: IpAddr = "203.0.113.9".parse().unwrap();
        let trusted = [proxy, inner];
        // Not from a proxy: the header is the client's own words.
        assert_eq!(client_ip(other, &trusted, &xff("198.51.100.7")), other);
        // From the proxy: the nearest untrusted hop, not the leftmost.
        assert_eq!(
            client_ip(proxy, &trusted, &xff("1.2.3.4, 198.51.100.7, 10.0.0.2")),
            client
        );
        assert_eq!(
            client_ip(proxy, &trusted, &xff("garbage, 198.51.100.7")),
            client
        );
        assert_eq!(
            client_ip(proxy, &trusted, &xff("198.51.100.7, garbage")),
            proxy
        );
        assert_eq!(
            client_ip(proxy, &trusted, &axum::http::HeaderMap::new()),
            proxy
        );
    }
}
