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
    parse_time_at(s, backchannel_client::now().0)
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

/// [`parse_time`] with `now` given.
fn parse_time_at(s: &str, now_ms: i64) -> Result<i64, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse()
            .map_err(|_| format!("{s:?} is too large for Unix milliseconds"));
    }
    let relative = t
        .strip_prefix('+')
        .map(|r| (1, r))
        .or_else(|| t.strip_prefix('-').map(|r| (-1, r)))
        .or_else(|| t.strip_prefix("in ").map(|r| (1, r)))
        .or_else(|| t.strip_suffix(" ago").map(|r| (-1, r)));
    if let Some((sign, span)) = relative {
        let secs = i64::try_from(parse_seconds(span)?)
            .map_err(|_| format!("{s:?} is too far from now"))?;
        return secs
            .checked_mul(1000 * sign)
            .and_then(|d| now_ms.checked_add(d))
            .ok_or_else(|| format!("{s:?} is too far from now"));
    }
    absolute(t).ok_or_else(|| {
        if t.parse::<jiff::civil::DateTime>().is_ok() {
            format!("{s:?} has no time zone: add Z for UTC ({t}Z) or an offset ({t}+02:00)")
        } else {
            format!(
                "{s:?} is not a time: use now, +2h, -30m, in 2 days, 2026-12-03, \
                 2026-12-03T10:00Z, 2026-12-03T10:00+02:00 or Unix ms"
            )
        }
    })
}

/// A bare date (00:00 UTC) or an RFC 3339 time with its zone.
fn absolute(t: &str) -> Option<i64> {
    if t.len() == 10 {
        let date: jiff::civil::Date = t.parse().ok()?;
        let ts = TimeZone::UTC.to_timestamp(date.into()).ok()?;
        return Some(ts.as_millisecond());
    }
    let ts: jiff::Timestamp = t.parse().ok()?;
    Some(ts.as_millisecond())
}

/// Seconds in a duration: `90`, `90s`, `1h30m`, `1 hour 30 minutes`, `2d`.
fn parse_seconds(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a duration like 90s, 30m, 2h, 2d or 1 hour 30 minutes");
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| format!("{s:?} is out of range"));
    }
    let mut rest = t;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = rest[digits..].trim_start();
        let letters = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = match rest[..letters].to_ascii_lowercase().as_str() {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 604_800,
            "" => return Err(bad()),
            other => {
                return Err(format!(
                    "unknown unit {other:?} in {s:?}: use s, m, h, d or w (or seconds, minutes, hours, days, weeks)"
                ))
            }
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{s:?} is out of range"))?;
        rest = rest[letters..].trim_start_matches([' ', ',']);
    }
    if t.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// A positive duration in whole seconds (a clap value parser for policy
/// durations and timeouts).
pub fn parse_duration(s: &str) -> Result<u32, String> {
    let secs = parse_seconds(s)?;
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
    fn times_accept_rfc3339_with_offsets() {
        let p = |s| parse_time_at(s, NOW);
        assert_eq!(p("2026-12-03T10:00:00Z"), Ok(NOW));
        assert_eq!(p("2026-12-03T10:00Z"), Ok(NOW));
        assert_eq!(p("2026-12-03T12:00:00+02:00"), Ok(NOW));
        assert_eq!(p("2026-12-03T05:00-05:00"), Ok(NOW));
        assert_eq!(p("2025-06-15T15:06:40Z"), Ok(1_750_000_000_000));
        assert!(p("2025-13-01T00:00Z").is_err());
        let no_zone = p("2026-12-03T10:00").unwrap_err();
        assert!(no_zone.contains("no time zone"), "{no_zone}");
        assert!(p("tomorrow").unwrap_err().contains("is not a time"));
    }

    #[test]
    fn a_bare_date_is_midnight_utc_and_digits_are_unix_ms() {
        assert_eq!(parse_time_at("2026-12-03", 0), Ok(NOW - 10 * 3_600_000));
        assert_eq!(parse_time_at("1750000000000", 0), Ok(1_750_000_000_000));
        assert_eq!(parse_time_at("now", NOW), Ok(NOW));
    }

    #[test]
    fn relative_times_count_from_now() {
        let p = |s| parse_time_at(s, NOW);
        assert_eq!(p("+90s"), Ok(NOW + 90_000));
        assert_eq!(p("+30m"), Ok(NOW + 1_800_000));
        assert_eq!(p("+2h"), Ok(NOW + 7_200_000));
        assert_eq!(p("+2d"), Ok(NOW + 172_800_000));
        assert_eq!(p("-30m"), Ok(NOW - 1_800_000));
        assert_eq!(p("in 2 days"), Ok(NOW + 172_800_000));
        assert_eq!(p("3 hours ago"), Ok(NOW - 10_800_000));
        assert_eq!(p("+1h30m"), Ok(NOW + 5_400_000));
        assert!(p("+2x").unwrap_err().contains("unknown unit"));
        assert!(p("+").is_err());
        assert!(p("+99999999999999999d").is_err());
    }

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
