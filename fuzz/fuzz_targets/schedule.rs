//! Schedule input: RRULEs with a local DTSTART, times and dates typed by users, durations and offsets.
#![no_main]
use chrono::{NaiveDate, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use railyard::domain::process::time;
use railyard::domain::schedule;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The first line picks the zone and the start; the rest is the rule or the typed time.
    let (head, rule) = text.split_once('\n').unwrap_or(("", text));
    let zone = chrono_tz::TZ_VARIANTS[head.len() % chrono_tz::TZ_VARIANTS.len()];
    let dtstart = NaiveDate::from_ymd_opt(2026, 1, 1).and_then(|d| d.and_hms_opt(9, 30, 0)).expect("a start");
    let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let to = Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).unwrap();
    let _ = schedule::occurrences(rule, dtstart, zone, from, to);
    let _ = schedule::parse_time(rule, zone);
    let _ = schedule::parse_bound(rule, zone, true);
    let _ = schedule::parse_bound(rule, zone, false);
    let _ = time::parse_duration(rule);
    let _ = time::parse_offset(rule);
    let _ = time::parse_point(rule);
    if let Ok(local) = chrono::NaiveDateTime::parse_from_str(head, "%Y-%m-%dT%H:%M") {
        let _ = schedule::group_name(rule, local);
    }
});
