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

    fn note(&self, bucket: String, until: Timestamp, now: Timestamp) {
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
        let trusted = relay.trusted_proxies();
        if !trusted.contains(&peer) {
            return Ok(ClientIp(peer));
        }
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        let client = forwarded
            .iter()
            .rev()
            .find(|a| !trusted.contains(a))
            .copied()
            .unwrap_or(peer);
        Ok(ClientIp(client))
    }
}

impl Relay {
    /// Counts one use of each `(bucket, rate)`; refuses with `429
    /// rate_limited` and `retry_after` once any of them is full.
    pub(crate) async fn limit(&self, checks: &[(String, Rate)]) -> Result<(), ApiError> {
        let now = self.now();
        for (bucket, _) in checks {
            if let Some(until) = self.blocked().until(bucket, now) {
                return Err(self.limited(bucket, until, now));
            }
        }
        for (bucket, rate) in checks {
            let (b, r) = (bucket.clone(), *rate);
            match self.run(move |s| s.hit(&b, r, now)).await? {
                RateDecision::Allowed => {}
                RateDecision::Limited { until } => {
                    self.blocked().note(bucket.clone(), until, now);
                    return Err(self.limited(bucket, until, now));
                }
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

    fn limited(&self, bucket: &str, until: Timestamp, now: Timestamp) -> ApiError {
        self.metrics().rejected("rate_limited");
        let what = bucket.split(':').next().unwrap_or(bucket);
        ApiError::rate_limited(what, until.0.saturating_sub(now.0))
    }
}
