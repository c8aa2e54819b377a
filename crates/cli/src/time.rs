//! Times and durations as a person types and reads them: every time the
//! CLI accepts goes through [`parse_time`] (or [`parse_duration`]), and
//! every time it shows goes through [`show`], in UTC and the user's local
//! zone (the `TZ` variable, else the system's zone).
//!
//! A time is `now`; `+2h`, `-30m`, `in 2 days`, `3 hours ago` from now;
//! RFC 3339 with `Z` or an offset (`2026-12-03T10:00:00+02:00`, seconds
//! optional); a bare date (`2026-12-03`, 00:00 UTC); or Unix milliseconds.
//! A date and time with no zone is refused rather than guessed. A duration
//! is `90` (seconds), `90s`, `30m`, `2h`, `2d`, `1w`, or in words and
//! combined: `1h30m`, `1 hour 30 minutes`, `2 days`.

use std::sync::OnceLock;

use backchannel_protocol::Timestamp;
use jiff::tz::{Offset, TimeZone};

/// The time `s` names, in Unix milliseconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    backchannel_client::time::parse_time(s, backchannel_client::now())
}

/// The value parser of every time argument: [`parse_time`], then the time
/// is echoed on standard error (`until: 2026-12-04 10:00 UTC (11:00
/// local)`), before anything is sent, unless it was `now`.
#[derive(Clone, Copy, Debug)]
pub struct Time;

impl clap::builder::TypedValueParser for Time {
    type Value = i64;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<i64, clap::Error> {
        let parse: fn(&str) -> Result<i64, String> = parse_time;
        let ms = parse.parse_ref(cmd, arg, value)?;
        if !value.eq_ignore_ascii_case("now") {
            let label = arg.and_then(|a| a.get_long()).unwrap_or("time");
            eprintln!("{label}: {}", show(ms));
        }
        Ok(ms)
    }
}

/// A positive duration in whole seconds (a clap value parser for policy
/// durations and timeouts).
pub fn parse_duration(s: &str) -> Result<u32, String> {
    let secs = backchannel_client::time::parse_seconds(s)?;
    if secs == 0 {
        return Err(format!("{s:?} is zero: give a positive duration"));
    }
    u32::try_from(secs).map_err(|_| format!("{s:?} is out of range"))
}

/// `2 days`, `1 hour 30 minutes`.
pub fn duration(secs: u64) -> String {
    backchannel_protocol::duration_words(secs)
}

/// The user's zone, read once.
fn local() -> &'static TimeZone {
    static LOCAL: OnceLock<TimeZone> = OnceLock::new();
    LOCAL.get_or_init(TimeZone::system)
}

/// `2026-12-04 10:00 UTC (11:00 local)`; the local part is left out where
/// the local zone is UTC at that instant, and carries its date where that
/// differs.
pub fn show(ms: i64) -> String {
    show_in(ms, local())
}

fn show_in(ms: i64, zone: &TimeZone) -> String {
    let utc = Timestamp(ms).utc_text();
    let Ok(ts) = jiff::Timestamp::from_millisecond(ms) else {
        return utc;
    };
    if zone.to_offset(ts) == Offset::UTC {
        return utc;
    }
    let here = zone.to_datetime(ts);
    let clock = if here.second() == 0 {
        here.strftime("%H:%M").to_string()
    } else {
        here.strftime("%H:%M:%S").to_string()
    };
    if here.date() == TimeZone::UTC.to_datetime(ts).date() {
        format!("{utc} ({clock} local)")
    } else {
        format!("{utc} ({} {clock} local)", here.date())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_292_000_000; // 2026-12-03 10:00 UTC

    #[test]
    fn durations_parse_with_units_and_words() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("1w"), Ok(604_800));
        assert_eq!(parse_duration("2 days"), Ok(172_800));
        assert_eq!(parse_duration("1 hour 30 minutes"), Ok(5400));
        assert_eq!(parse_duration("1h, 30m"), Ok(5400));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5000000000").is_err());
        assert_eq!(duration(86_400), "1 day");
        assert_eq!(duration(5400), "1 hour 30 minutes");
    }

    #[test]
    fn times_show_in_utc_and_the_local_zone() {
        let utc = TimeZone::UTC;
        assert_eq!(show_in(NOW, &utc), "2026-12-03 10:00 UTC");
        let east = TimeZone::posix("EET-2").unwrap();
        assert_eq!(show_in(NOW, &east), "2026-12-03 10:00 UTC (12:00 local)");
        assert_eq!(
            show_in(NOW + 23 * 3_600_000 + 5_000, &east),
            "2026-12-04 09:00:05 UTC (11:00:05 local)"
        );
        let west = TimeZone::posix("EST5").unwrap();
        assert_eq!(
            show_in(NOW - 8 * 3_600_000, &west),
            "2026-12-03 02:00 UTC (2026-12-02 21:00 local)"
        );
    }
}
