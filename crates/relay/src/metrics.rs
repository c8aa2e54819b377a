//! Counters for the operator, rendered in the Prometheus text format on a
//! listener of its own (`--metrics-listen`), never on the public one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::store::WriteCounts;

/// Upper bounds of the post latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 11] = [
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The relay's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    post_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    post_count: AtomicU64,
    post_sum_us: AtomicU64,
}

/// Gauges read at scrape time.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    /// Open connections.
    pub connections: usize,
    /// Envelopes waiting in all mailboxes.
    pub mailbox_envelopes: u64,
    /// The deepest mailbox.
    pub mailbox_depth_max: u64,
    /// Whether posts are refused for lack of disk.
    pub storage_full: bool,
    /// The store's commits and checkpoints.
    pub writes: WriteCounts,
}

impl Metrics {
    /// Counts one answered request by route template and status.
    /// Labels are static: they cannot grow with what clients send.
    pub fn request(&self, method: &'static str, route: &'static str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((method, route, status)).or_default() += 1;
    }

    /// Counts one request or connection refused by the limit `code`.
    pub fn rejected(&self, code: &'static str) {
        let mut m = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(code).or_default() += 1;
    }

    /// Records one post's latency.
    pub fn post(&self, took: Duration) {
        let s = took.as_secs_f64();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if s <= *bound {
                self.post_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.post_count.fetch_add(1, Ordering::Relaxed);
        self.post_sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// How many requests `code` refused so far.
    pub fn rejected_count(&self, code: &str) -> u64 {
        let m = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        m.get(code).copied().unwrap_or(0)
    }

    /// The Prometheus text exposition.
    pub fn render(&self, g: Gauges) -> String {
        let mut out = String::new();
        out.push_str("# HELP backchannel_requests_total Requests answered, by method, route and status.\n# TYPE backchannel_requests_total counter\n");
        for ((method, route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "backchannel_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP backchannel_rejected_total Requests and connections refused, by limit.\n# TYPE backchannel_rejected_total counter\n");
        for (code, n) in self
            .rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(out, "backchannel_rejected_total{{limit=\"{code}\"}} {n}");
        }
        out.push_str("# HELP backchannel_post_seconds Time to store and acknowledge a post.\n# TYPE backchannel_post_seconds histogram\n");
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            let n = self.post_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "backchannel_post_seconds_bucket{{le=\"{bound}\"}} {n}");
        }
        let count = self.post_count.load(Ordering::Relaxed);
        let sum = self.post_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "backchannel_post_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(out, "backchannel_post_seconds_sum {sum}");
        let _ = writeln!(out, "backchannel_post_seconds_count {count}");
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, v: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        gauge(
            &mut out,
            "backchannel_connections",
            "Open connections.",
            "gauge",
            g.connections.to_string(),
        );
        gauge(
            &mut out,
            "backchannel_mailbox_envelopes",
            "Envelopes waiting in all mailboxes.",
            "gauge",
            g.mailbox_envelopes.to_string(),
        );
        gauge(
            &mut out,
            "backchannel_mailbox_depth_max",
            "Envelopes waiting in the deepest mailbox.",
            "gauge",
            g.mailbox_depth_max.to_string(),
        );
        gauge(
            &mut out,
            "backchannel_storage_full",
            "1 while posts are refused for lack of disk.",
            "gauge",
            u8::from(g.storage_full).to_string(),
        );
        gauge(
            &mut out,
            "backchannel_store_commits_total",
            "Transactions committed; each but a rate-window count waited for one fsync of the WAL.",
            "counter",
            g.writes.commits.to_string(),
        );
        gauge(
            &mut out,
            "backchannel_store_checkpoints_total",
            "Truncating checkpoints; each synced the WAL and the database file.",
            "counter",
            g.writes.checkpoints.to_string(),
        );
        gauge(
            &mut out,
            "backchannel_store_writes_total",
            "Writes committed; several share a commit (and its fsync) when they arrive while the previous commit is being synced.",
            "counter",
            g.writes.writes.to_string(),
        );
        gauge(
            &mut out,
            "backchannel_store_writes_queued",
            "Writes waiting for the database writer.",
            "gauge",
            g.writes.queued.to_string(),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_counts_what_happened() {
        let m = Metrics::default();
        m.request("POST", "/v1/login", 200);
        m.request("POST", "/v1/login", 200);
        m.rejected("rate_limited");
        m.post(Duration::from_millis(3));
        let text = m.render(Gauges {
            connections: 2,
            ..Gauges::default()
        });
        assert!(text.contains(
            "backchannel_requests_total{method=\"POST\",route=\"/v1/login\",status=\"200\"} 2"
        ));
        assert!(text.contains("backchannel_rejected_total{limit=\"rate_limited\"} 1"));
        assert!(text.contains("backchannel_post_seconds_bucket{le=\"0.002\"} 0"));
        assert!(text.contains("backchannel_post_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("backchannel_connections 2"));
    }
}
