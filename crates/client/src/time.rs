//! Times as a person types them, for every front end (the CLI's
//! arguments, the web interface's fields): `now`; `+2h`, `-30m`,
//! `in 2 days`, `3 hours ago` from now; RFC 3339 with `Z` or an offset
//! (seconds optional); a bare date (00:00 UTC); or Unix milliseconds. A
//! date and time with no zone is refused rather than guessed. The caller
//! passes `now`: nothing here reads a clock.
//!
//! ```
//! use backchannel_client::time::parse_time;
//! use backchannel_protocol::Timestamp;
//!
//! let now = Timestamp(1_796_292_000_000); // 2026-12-03 10:00 UTC
//! assert_eq!(parse_time("+1h", now), Ok(now.0 + 3_600_000));
//! assert_eq!(parse_time("2026-12-03T12:00+02:00", now), Ok(now.0));
//! assert!(parse_time("2026-12-03T10:00", now).is_err());
//! ```

use backchannel_protocol::Timestamp;
use jiff::tz::TimeZone;

/// The time `s` names, in Unix milliseconds, `now` being the given time.
pub fn parse_time(s: &str, now: Timestamp) -> Result<i64, String> {
    let now_ms = now.0;
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
pub fn parse_seconds(s: &str) -> Result<u64, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_292_000_000; // 2026-12-03 10:00 UTC

    fn parse_time_ms(s: &str, now: i64) -> Result<i64, String> {
        parse_time(s, Timestamp(now))
    }

    #[test]
    fn times_accept_rfc3339_with_offsets() {
        let p = |s| parse_time(s, Timestamp(NOW));
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
        assert_eq!(parse_time_ms("2026-12-03", 0), Ok(NOW - 10 * 3_600_000));
        assert_eq!(parse_time_ms("1750000000000", 0), Ok(1_750_000_000_000));
        assert_eq!(parse_time_ms("now", NOW), Ok(NOW));
    }

    #[test]
    fn relative_times_count_from_now() {
        let p = |s| parse_time(s, Timestamp(NOW));
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
}
