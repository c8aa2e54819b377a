//! Figures from the runs: percentiles, per-pair ratios to NATS, the
//! Markdown report and its plot.

use std::fmt::Write as _;

use crate::delivery::Delivery;

/// A system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// The Backchannel relay on SQLite.
    RelaySqlite,
    /// The Backchannel relay on PostgreSQL (the relay and every process
    /// of the database server are measured).
    RelayPostgres,
    /// NATS JetStream, file storage, `sync_interval: always`, R1.
    Nats,
}

impl System {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            System::RelaySqlite => "relay (SQLite)",
            System::RelayPostgres => "relay (PostgreSQL)",
            System::Nats => "NATS JetStream",
        }
    }

    /// Its colour in the plot.
    fn colour(self) -> &'static str {
        match self {
            System::RelaySqlite => "#1f5fa8",
            System::RelayPostgres => "#2e8b57",
            System::Nats => "#c0392b",
        }
    }
}

/// What one run of one system measured.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The system.
    pub system: System,
    /// Closed-loop senders.
    pub senders: usize,
    /// Acknowledged messages per second in the window.
    pub msgs_per_s: f64,
    /// Acknowledgement latency percentiles, microseconds.
    pub p50_us: u32,
    /// 95th percentile.
    pub p95_us: u32,
    /// 99th percentile.
    pub p99_us: u32,
    /// CPU time of the system's processes per acknowledged message, µs.
    pub cpu_us_per_msg: f64,
    /// Peak resident set of the system's processes, KiB.
    pub rss_kib: u64,
    /// Sends refused or failed in the window.
    pub errors: u64,
}

/// One pair of runs (relay and NATS, same senders, back to back) and the
/// disk's fsync latency measured just before it.
#[derive(Clone, Debug)]
pub struct Pair {
    /// The relay's run.
    pub relay: RunResult,
    /// NATS's run.
    pub nats: RunResult,
    /// The relay on PostgreSQL, when it was measured.
    pub postgres: Option<RunResult>,
    /// fsync p50 measured before the pair, µs.
    pub fsync_p50_us: u32,
    /// fsync p99 measured before the pair, µs.
    pub fsync_p99_us: u32,
}

/// The `p`-th percentile (0–100) of `values`, sorting them.
pub fn percentile(values: &mut [u32], p: f64) -> u32 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * (values.len() - 1) as f64).round() as usize;
    values[rank.min(values.len() - 1)]
}

/// Median, least and greatest of `values`.
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let mid = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    (mid, v[0], v[v.len() - 1])
}

/// Per sender count, the median of per-pair ratios and their spread.
pub struct Ratios {
    /// Senders.
    pub senders: usize,
    /// relay msg/s ÷ NATS msg/s.
    pub throughput: (f64, f64, f64),
    /// relay CPU per message ÷ NATS's.
    pub cpu: (f64, f64, f64),
    /// relay p50 ÷ fsync p50 of its pair.
    pub p50_over_fsync: (f64, f64, f64),
    /// relay p99 ÷ fsync p99 of its pair.
    pub p99_over_fsync: (f64, f64, f64),
    /// The fsync p50 the pairs were measured at (median), µs.
    pub fsync_p50_us: f64,
    /// The fsync p99 (median), µs.
    pub fsync_p99_us: f64,
}

/// The ratios for each sender count, in the order first measured.
pub fn ratios(pairs: &[Pair]) -> Vec<Ratios> {
    let mut counts: Vec<usize> = pairs.iter().map(|p| p.relay.senders).collect();
    counts.dedup();
    counts
        .into_iter()
        .map(|k| {
            let of: Vec<&Pair> = pairs.iter().filter(|p| p.relay.senders == k).collect();
            let each =
                |f: &dyn Fn(&Pair) -> f64| spread(&of.iter().map(|p| f(p)).collect::<Vec<_>>());
            Ratios {
                senders: k,
                throughput: each(&|p| p.relay.msgs_per_s / p.nats.msgs_per_s),
                cpu: each(&|p| p.relay.cpu_us_per_msg / p.nats.cpu_us_per_msg),
                p50_over_fsync: each(&|p| {
                    f64::from(p.relay.p50_us) / f64::from(p.fsync_p50_us.max(1))
                }),
                p99_over_fsync: each(&|p| {
                    f64::from(p.relay.p99_us) / f64::from(p.fsync_p99_us.max(1))
                }),
                fsync_p50_us: each(&|p| f64::from(p.fsync_p50_us)).0,
                fsync_p99_us: each(&|p| f64::from(p.fsync_p99_us)).0,
            }
        })
        .collect()
}

/// A target of the speed issue and whether this run met it.
pub struct Target {
    /// What is compared, in words.
    pub what: String,
    /// The measured median ratio.
    pub measured: f64,
    /// The bound.
    pub bound: f64,
    /// True if the ratio must be at least the bound, false at most.
    pub at_least: bool,
}

impl Target {
    /// Whether the measured ratio is within the bound.
    pub fn met(&self) -> bool {
        if self.at_least {
            self.measured >= self.bound
        } else {
            self.measured <= self.bound
        }
    }
}

/// The targets that this run's sender counts can judge.
pub fn targets(ratios: &[Ratios]) -> Vec<Target> {
    let at = |k: usize| ratios.iter().find(|r| r.senders == k);
    let mut out = Vec::new();
    if let Some(r) = at(32) {
        out.push(Target {
            what: "durable msg/s ÷ NATS at 32 senders".into(),
            measured: r.throughput.0,
            bound: 4.0,
            at_least: true,
        });
    }
    if let Some(r) = at(1) {
        out.push(Target {
            what: "durable msg/s ÷ NATS at 1 sender".into(),
            measured: r.throughput.0,
            bound: 1.2,
            at_least: true,
        });
    }
    let (cpu, _, _) = spread(&ratios.iter().map(|r| r.cpu.0).collect::<Vec<_>>());
    out.push(Target {
        what: "CPU per message ÷ NATS's (median over sender counts)".into(),
        measured: cpu,
        bound: 1.0,
        at_least: false,
    });
    if let Some(r) = at(1) {
        out.push(Target {
            what: "p50 ack latency at 1 sender ÷ fsync p50".into(),
            measured: r.p50_over_fsync.0,
            bound: 2.0,
            at_least: false,
        });
    }
    if let Some(r) = at(32) {
        out.push(Target {
            what: "p99 ack latency at 32 senders ÷ fsync p99".into(),
            measured: r.p99_over_fsync.0,
            bound: 10.0,
            at_least: false,
        });
    }
    out
}

fn ms(us: u32) -> String {
    format!("{:.2}", f64::from(us) / 1000.0)
}

fn ratio((mid, lo, hi): (f64, f64, f64)) -> String {
    format!("{mid:.2} ({lo:.2}–{hi:.2})")
}

/// A message posted to one relay instance, pushed by another on the same
/// PostgreSQL database: how long it took.
#[derive(Clone, Copy, Debug)]
pub struct Handoff {
    /// Messages timed.
    pub messages: usize,
    /// Percentiles, µs.
    pub p50_us: u32,
    /// 99th percentile.
    pub p99_us: u32,
    /// The slowest.
    pub worst_us: u32,
}

impl Handoff {
    /// The figures of `waits` (µs; reordered).
    pub fn of(waits: &mut [u32]) -> Self {
        Handoff {
            messages: waits.len(),
            p50_us: percentile(waits, 50.0),
            p99_us: percentile(waits, 99.0),
            worst_us: waits.iter().copied().max().unwrap_or(0),
        }
    }
}

/// The figures as Markdown: every run, the ratios, the targets.
pub fn markdown(
    pairs: &[Pair],
    handoff: Option<&Handoff>,
    deliveries: &[Delivery],
    header: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "### Every run\n");
    let _ = writeln!(
        out,
        "| system | senders | msg/s | p50 ms | p95 ms | p99 ms | CPU µs/msg | peak RSS MiB | errors |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in pairs {
        for r in [Some(&p.relay), p.postgres.as_ref(), Some(&p.nats)]
            .into_iter()
            .flatten()
        {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {} | {} | {} | {:.0} | {:.1} | {} |",
                r.system.name(),
                r.senders,
                r.msgs_per_s,
                ms(r.p50_us),
                ms(r.p95_us),
                ms(r.p99_us),
                r.cpu_us_per_msg,
                r.rss_kib as f64 / 1024.0,
                r.errors
            );
        }
    }
    let rs = ratios(pairs);
    let _ = writeln!(
        out,
        "\n### Ratios to NATS (median of per-pair ratios, least–greatest)\n"
    );
    let _ = writeln!(
        out,
        "| senders | msg/s ÷ NATS | CPU/msg ÷ NATS | relay p50 ÷ fsync p50 | relay p99 ÷ fsync p99 | fsync p50 ms | fsync p99 ms |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rs {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} |",
            r.senders,
            ratio(r.throughput),
            ratio(r.cpu),
            ratio(r.p50_over_fsync),
            ratio(r.p99_over_fsync),
            r.fsync_p50_us / 1000.0,
            r.fsync_p99_us / 1000.0
        );
    }
    postgres_ratios(&mut out, pairs);
    if let Some(h) = handoff {
        let _ = writeln!(
            out,
            "\n### Two relay instances on one PostgreSQL\n\n{} messages of 1 KiB posted one at a time to instance A, each timed from its post until instance B pushed it over WebSocket to its recipient (the database's notification is the only path between the instances): p50 {} ms, p99 {} ms, slowest {} ms.",
            h.messages,
            ms(h.p50_us),
            ms(h.p99_us),
            ms(h.worst_us)
        );
    }
    delivery_table(&mut out, deliveries);
    let _ = writeln!(out, "\n### Targets\n");
    let mut all = targets(&rs);
    if let Some(h) = handoff {
        all.push(Target {
            what: "post to one instance, pushed by another: p99 in seconds".into(),
            measured: f64::from(h.p99_us) / 1e6,
            bound: 1.0,
            at_least: false,
        });
    }
    for t in all {
        let _ = writeln!(
            out,
            "- {}: **{:.2}** (target {} {:.1}): {}",
            t.what,
            t.measured,
            if t.at_least { "≥" } else { "≤" },
            t.bound,
            if t.met() { "met" } else { "**not met**" }
        );
    }
    out
}

/// End to end through the client library, where it was measured.
fn delivery_table(out: &mut String, deliveries: &[Delivery]) {
    if deliveries.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n### End to end through the client\n\nThe real client library on both sides, the relay on SQLite: each sender (a channel of its own with one recipient) calls `send_text` closed-loop (seal, encrypt, store in its own SQLite store, post, await the ack); the recipient calls `sync` (fetch, decrypt, verify the envelope and transcript, store, ack) again as soon as it returns, after 1 ms when it returned nothing. Each message is timed from the start of its `send_text` until the recipient's `sync` returned it.\n"
    );
    let _ = writeln!(
        out,
        "| senders | seconds | sent msg/s | decrypted msg/s | send → decrypted p50 ms | p99 ms | send_text p50 ms | errors |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    for d in deliveries {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} |",
            d.senders,
            d.seconds,
            d.sent_per_s,
            d.msgs_per_s,
            ms(d.p50_us),
            ms(d.p99_us),
            ms(d.send_p50_us),
            d.errors
        );
    }
}

/// The relay on PostgreSQL against NATS, where it was measured (the
/// issue asks for the figure at 32 senders, aiming at 2 or more).
fn postgres_ratios(out: &mut String, pairs: &[Pair]) {
    let mut counts: Vec<usize> = pairs
        .iter()
        .filter(|p| p.postgres.is_some())
        .map(|p| p.relay.senders)
        .collect();
    counts.dedup();
    if counts.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n### The relay on PostgreSQL ÷ NATS (median of per-run ratios, least–greatest)\n"
    );
    let _ = writeln!(
        out,
        "| senders | msg/s ÷ NATS | CPU/msg ÷ NATS | msg/s ÷ relay on SQLite |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|");
    for k in counts {
        let of: Vec<(&RunResult, &Pair)> = pairs
            .iter()
            .filter(|p| p.relay.senders == k)
            .filter_map(|p| Some((p.postgres.as_ref()?, p)))
            .collect();
        let each = |f: &dyn Fn(&RunResult, &Pair) -> f64| {
            spread(&of.iter().map(|(r, p)| f(r, p)).collect::<Vec<_>>())
        };
        let _ = writeln!(
            out,
            "| {k} | {} | {} | {} |",
            ratio(each(&|r, p| r.msgs_per_s / p.nats.msgs_per_s)),
            ratio(each(&|r, p| r.cpu_us_per_msg / p.nats.cpu_us_per_msg)),
            ratio(each(&|r, p| r.msgs_per_s / p.relay.msgs_per_s)),
        );
    }
}

/// Throughput and latency against senders, every system, as an SVG.
pub fn svg(pairs: &[Pair]) -> String {
    let rs = ratios(pairs);
    let ks: Vec<usize> = rs.iter().map(|r| r.senders).collect();
    let median_of = |sys: System, k: usize, f: &dyn Fn(&RunResult) -> f64| {
        let v: Vec<f64> = pairs
            .iter()
            .filter_map(|p| match sys {
                System::Nats => Some(&p.nats),
                System::RelaySqlite => Some(&p.relay),
                System::RelayPostgres => p.postgres.as_ref(),
            })
            .filter(|r| r.senders == k)
            .map(f)
            .collect();
        spread(&v).0
    };
    let mut systems = vec![System::RelaySqlite, System::Nats];
    if pairs.iter().any(|p| p.postgres.is_some()) {
        systems.insert(1, System::RelayPostgres);
    }
    let series = |f: &dyn Fn(&RunResult) -> f64| -> Series {
        systems
            .iter()
            .map(|&s| {
                (
                    s,
                    ks.iter().map(|&k| median_of(s, k, f)).collect::<Vec<f64>>(),
                )
            })
            .collect()
    };
    let throughput = series(&|r| r.msgs_per_s);
    let p50 = series(&|r| f64::from(r.p50_us) / 1000.0);
    let p99 = series(&|r| f64::from(r.p99_us) / 1000.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="860" height="340" viewBox="0 0 860 340" font-family="DejaVu Sans, sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="860" height="340" fill="white"/>"#);
    chart(
        &mut out,
        0.0,
        "acknowledged msg/s",
        &ks,
        &[(&throughput, "")],
    );
    chart(
        &mut out,
        430.0,
        "ack latency, ms (solid p50, dashed p99)",
        &ks,
        &[(&p50, ""), (&p99, "6 4")],
    );
    let _ = write!(out, r#"<g transform="translate(230,330)">"#);
    for (i, s) in systems.iter().enumerate() {
        let x = i as f64 * 145.0;
        let _ = write!(
            out,
            r#"<rect x="{x}" y="-9" width="12" height="3" fill="{}"/><text x="{}" y="-4">{}</text>"#,
            s.colour(),
            x + 16.0,
            s.name()
        );
    }
    let _ = writeln!(out, "</g>");
    out.push_str("</svg>\n");
    out
}

type Series = Vec<(System, Vec<f64>)>;

fn chart(out: &mut String, left: f64, title: &str, ks: &[usize], lines: &[(&Series, &str)]) {
    let (x0, y0, w, h) = (left + 60.0, 40.0, 340.0, 240.0);
    let top = lines
        .iter()
        .flat_map(|(s, _)| s.iter().flat_map(|(_, v)| v.iter().copied()))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let x_at = |i: usize| {
        x0 + if ks.len() > 1 {
            w * i as f64 / (ks.len() - 1) as f64
        } else {
            w / 2.0
        }
    };
    let y_at = |v: f64| y0 + h - h * (v / top);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="24" font-size="13">{title}</text>"#,
        x0
    );
    let _ = writeln!(
        out,
        r##"<path d="M{x0},{y0} V{} H{}" fill="none" stroke="#444"/>"##,
        y0 + h,
        x0 + w
    );
    for t in 0..=4 {
        let v = top * f64::from(t) / 4.0;
        let y = y_at(v);
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0 + w,
            x0 - 6.0,
            y + 4.0,
            if top > 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        );
    }
    for (i, k) in ks.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{k}</text>"#,
            x_at(i),
            y0 + h + 16.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">senders</text>"#,
        x0 + w / 2.0,
        y0 + h + 32.0
    );
    for (series, dash) in lines {
        for (system, values) in series.iter() {
            let colour = system.colour();
            let points: Vec<String> = values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, v)| format!("{:.1},{:.1}", x_at(i), y_at(*v)))
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>"#,
                points.join(" ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(system: System, senders: usize, msgs_per_s: f64, cpu: f64) -> RunResult {
        RunResult {
            system,
            senders,
            msgs_per_s,
            p50_us: 2000,
            p95_us: 3000,
            p99_us: 4000,
            cpu_us_per_msg: cpu,
            rss_kib: 1024,
            errors: 0,
        }
    }

    #[test]
    fn percentiles_pick_by_rank() {
        let mut v: Vec<u32> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut v, 50.0), 51);
        assert_eq!(percentile(&mut v, 99.0), 99);
        assert_eq!(percentile(&mut [], 50.0), 0);
    }

    /// The ratio is the median of per-pair ratios, not a ratio of medians,
    /// and a target is judged on it.
    #[test]
    fn ratios_are_medians_of_pairs() {
        let pair = |relay: f64, nats: f64| Pair {
            relay: run(System::RelaySqlite, 32, relay, 100.0),
            nats: run(System::Nats, 32, nats, 200.0),
            postgres: None,
            fsync_p50_us: 1000,
            fsync_p99_us: 100,
        };
        let pairs = [pair(400.0, 100.0), pair(300.0, 100.0), pair(900.0, 100.0)];
        let r = &ratios(&pairs)[0];
        assert_eq!(r.throughput, (4.0, 3.0, 9.0));
        assert_eq!(r.cpu.0, 0.5);
        let t = targets(&ratios(&pairs));
        assert!(t[0].met(), "4.0 meets ≥ 4");
        assert!(t.iter().any(|t| t.what.contains("p99") && !t.met()));
        let md = markdown(&pairs, None, &[], "## Figures");
        assert!(md.contains("| 32 | 4.00 (3.00–9.00) |"), "{md}");
        assert!(
            !md.contains("PostgreSQL"),
            "no PostgreSQL figures unless measured"
        );
        assert!(svg(&pairs).contains("<polyline"));
    }

    #[test]
    fn the_postgres_figures_and_the_handoff_are_reported_when_measured() {
        let pairs = [Pair {
            relay: run(System::RelaySqlite, 32, 400.0, 100.0),
            nats: run(System::Nats, 32, 100.0, 200.0),
            postgres: Some(run(System::RelayPostgres, 32, 250.0, 300.0)),
            fsync_p50_us: 1000,
            fsync_p99_us: 100,
        }];
        let handoff = Handoff::of(&mut [2_000, 1_000, 900_000, 4_000, 3_000]);
        let delivery = Delivery {
            senders: 8,
            seconds: 10.0,
            sent_per_s: 901.0,
            msgs_per_s: 812.4,
            p50_us: 9_500,
            p99_us: 31_000,
            send_p50_us: 7_250,
            errors: 0,
        };
        assert_eq!((handoff.p50_us, handoff.worst_us), (3_000, 900_000));
        let md = markdown(&pairs, Some(&handoff), &[delivery], "## Figures");
        assert!(
            md.contains("| 32 | 2.50 (2.50–2.50) | 1.50 (1.50–1.50) | 0.62 (0.62–0.62) |"),
            "{md}"
        );
        assert!(
            md.contains("p99 in seconds: **0.90** (target ≤ 1.0): met"),
            "{md}"
        );
        assert!(
            md.contains("| 8 | 10 | 901 | 812 | 9.50 | 31.00 | 7.25 | 0 |"),
            "{md}"
        );
        assert!(svg(&pairs).contains("relay (PostgreSQL)"));
    }
}
