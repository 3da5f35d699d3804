//! Durations (`30s`, `90m`, `2h`, `3d`) and offsets from a release's start (`+4d 09:00`, `+90m`).

use chrono::{DateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

pub fn parse_duration(text: &str) -> Result<TimeDelta, String> {
    let t = text.trim();
    let invalid = || format!("{text:?} is not a duration (use e.g. 30s, 90m, 2h, 3d)");
    // The unit is the last character, which may be several bytes long (found by fuzzing).
    let Some((at, _)) = t.char_indices().last().filter(|(at, _)| *at > 0) else { return Err(invalid()) };
    let (number, unit) = t.split_at(at);
    let n: i64 = number.parse().map_err(|_| invalid())?;
    if n <= 0 || n > 10_000 {
        return Err(invalid());
    }
    Ok(match unit {
        "s" => TimeDelta::seconds(n),
        "m" => TimeDelta::minutes(n),
        "h" => TimeDelta::hours(n),
        "d" => TimeDelta::days(n),
        _ => return Err(invalid()),
    })
}

/// A point in time relative to the release's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// `+90m`: exactly this long after the start.
    After(TimeDelta),
    /// `+4d 09:00`: that many days after the start's date, at this wall-clock time in the release's zone.
    DayAt { days: i64, time: NaiveTime },
}

pub fn parse_offset(text: &str) -> Result<Offset, String> {
    let t = text.trim();
    let invalid = || format!("{text:?} is not an offset (use e.g. \"+90m\" or \"+4d 09:00\")");
    let rest = t.strip_prefix('+').ok_or_else(invalid)?;
    match rest.split_once(' ') {
        Some((days, time)) => {
            let days = days.strip_suffix('d').ok_or_else(invalid)?.parse::<i64>().map_err(|_| invalid())?;
            if !(0..=3650).contains(&days) {
                return Err(invalid());
            }
            let time = NaiveTime::parse_from_str(time.trim(), "%H:%M").map_err(|_| invalid())?;
            Ok(Offset::DayAt { days, time })
        }
        None => parse_duration(rest).map(Offset::After).map_err(|_| invalid()),
    }
}

impl Offset {
    /// The instant this offset names for a release starting at `start` in `zone`.
    pub fn resolve(&self, start: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
        match *self {
            Offset::After(d) => start + d,
            Offset::DayAt { days, time } => {
                let local_date = start.with_timezone(&zone).date_naive() + TimeDelta::days(days);
                let naive = local_date.and_time(time);
                // In a DST gap take the first valid instant after it; in a fold the earlier one.
                zone.from_local_datetime(&naive)
                    .earliest()
                    .or_else(|| zone.from_local_datetime(&(naive + TimeDelta::hours(1))).earliest())
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or(start)
            }
        }
    }
}

/// `not_before` and `until`: an offset, or an absolute RFC 3339 time.
pub fn parse_point(text: &str) -> Result<(), String> {
    if text.trim().starts_with('+') {
        return parse_offset(text).map(|_| ());
    }
    DateTime::parse_from_rfc3339(text.trim())
        .map(|_| ())
        .map_err(|_| format!("{text:?} is not an offset (\"+90m\", \"+4d 09:00\") or an RFC 3339 time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), TimeDelta::seconds(30));
        assert_eq!(parse_duration("90m").unwrap(), TimeDelta::minutes(90));
        assert_eq!(parse_duration("3d").unwrap(), TimeDelta::days(3));
        // Multi-byte last characters once panicked (fuzzing, scripts/fuzz).
        for bad in ["", "m", "10", "-5m", "5w", "1.5h", "0s", "\u{617}", "5\u{617}", "5é", "🚀", "+🚀"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
            assert!(parse_offset(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn offsets_resolve_in_the_release_zone_across_dst() {
        let zone: Tz = "Europe/Berlin".parse().unwrap();
        // Monday 2026-03-23 09:00 Berlin (UTC+1); four days later is after the DST change (UTC+2).
        let start = Utc.with_ymd_and_hms(2026, 3, 23, 8, 0, 0).unwrap();
        let at = parse_offset("+4d 09:00").unwrap().resolve(start, zone);
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 3, 27, 8, 0, 0).unwrap());
        let at = parse_offset("+7d 09:00").unwrap().resolve(start, zone);
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 3, 30, 7, 0, 0).unwrap(), "09:00 local after the change is 07:00 UTC");
        assert_eq!(parse_offset("+90m").unwrap().resolve(start, zone), start + TimeDelta::minutes(90));
        for bad in ["4d 09:00", "+4 09:00", "+4d 25:00", "+x", "+4d9:00"] {
            assert!(parse_offset(bad).is_err(), "{bad}");
        }
        assert!(parse_point("2026-12-01T09:00:00Z").is_ok());
        assert!(parse_point("next tuesday").is_err());
    }
}
