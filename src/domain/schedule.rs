//! Time on the calendar (DESIGN §5, §6): view ranges in the viewer's zone, recurrence (RFC 5545,
//! via `rrule`), release-group names, and conflicts between releases.

use chrono::{DateTime, Datelike, Duration, DurationRound, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Day,
    Week,
    Month,
    Quarter,
    Agenda,
}

impl View {
    pub const ALL: [View; 5] = [View::Day, View::Week, View::Month, View::Quarter, View::Agenda];

    pub fn parse(s: &str) -> Option<View> {
        View::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            View::Day => "day",
            View::Week => "week",
            View::Month => "month",
            View::Quarter => "quarter",
            View::Agenda => "agenda",
        }
    }
}

/// Local midnight of `date` in `zone` (the first instant of the day, even across a DST change).
pub fn start_of_day(date: NaiveDate, zone: Tz) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    zone.from_local_datetime(&midnight)
        .earliest()
        .or_else(|| zone.from_local_datetime(&(midnight + Duration::hours(1))).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

/// The local days a view shows around `date`, and the UTC range they cover.
pub fn range(view: View, date: NaiveDate, zone: Tz) -> (Vec<NaiveDate>, DateTime<Utc>, DateTime<Utc>) {
    let (first, last) = match view {
        View::Day => (date, date),
        View::Week => {
            let monday = date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
            (monday, monday + Duration::days(6))
        }
        View::Month => {
            let first = date.with_day(1).unwrap_or(date);
            (first, last_of_month(first))
        }
        View::Quarter => {
            let q_month = (date.month0() / 3) * 3 + 1;
            let first = NaiveDate::from_ymd_opt(date.year(), q_month, 1).unwrap_or(date);
            let last = last_of_month(NaiveDate::from_ymd_opt(date.year(), q_month + 2, 1).unwrap_or(date));
            (first, last)
        }
        View::Agenda => (date, date + Duration::days(29)),
    };
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();
    (days, start_of_day(first, zone), start_of_day(last + Duration::days(1), zone))
}

fn last_of_month(first: NaiveDate) -> NaiveDate {
    let (y, m) = if first.month() == 12 { (first.year() + 1, 1) } else { (first.year(), first.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).map(|d| d - Duration::days(1)).unwrap_or(first)
}

/// Previous and next anchor dates for the view's navigation.
pub fn step(view: View, date: NaiveDate) -> (NaiveDate, NaiveDate) {
    match view {
        View::Day => (date - Duration::days(1), date + Duration::days(1)),
        View::Week => (date - Duration::days(7), date + Duration::days(7)),
        View::Agenda => (date - Duration::days(30), date + Duration::days(30)),
        View::Month | View::Quarter => {
            let months = if view == View::Month { 1 } else { 3 };
            (
                date.checked_sub_months(chrono::Months::new(months)).unwrap_or(date),
                date.checked_add_months(chrono::Months::new(months)).unwrap_or(date),
            )
        }
    }
}

pub const MAX_OCCURRENCES: u16 = 500;

/// Occurrences of an RRULE with an explicit local DTSTART in `zone`, within [from, to).
pub fn occurrences(
    rule: &str,
    dtstart: NaiveDateTime,
    zone: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, String> {
    let rule = rule.trim().trim_start_matches("RRULE:");
    if rule.is_empty() || rule.contains(['\n', '\r']) {
        return Err("the RRULE must be one line, e.g. FREQ=WEEKLY;BYDAY=MO".into());
    }
    let text = format!("DTSTART;TZID={}:{}\nRRULE:{rule}", zone.name(), dtstart.format("%Y%m%dT%H%M%S"));
    let set: rrule::RRuleSet = text.parse().map_err(|e: rrule::RRuleError| format!("invalid RRULE: {e}"))?;
    let rz: rrule::Tz = zone.into();
    let set = set.after(from.with_timezone(&rz) - Duration::seconds(1)).before(to.with_timezone(&rz));
    let result = set.all(MAX_OCCURRENCES);
    Ok(result.dates.into_iter().map(|d| d.with_timezone(&Utc)).filter(|d| *d >= from && *d < to).collect())
}

/// A release group's name for one occurrence: `{isoweek}`, `{month}`, `{year}`, `{date}`.
pub fn group_name(template: &str, local: NaiveDateTime) -> String {
    template
        .replace("{isoweek}", &local.iso_week().week().to_string())
        .replace("{month}", &local.format("%B").to_string())
        .replace("{year}", &local.year().to_string())
        .replace("{date}", &local.format("%Y-%m-%d").to_string())
}

/// A release's calendar window (DESIGN §6): its scheduled window; or, without a schedule, from
/// its activation to its finish, or to `now` while it is in flight. `None`: it has no time (an
/// unscheduled draft). A schedule without an end lasts until its start.
pub fn calendar_window(
    (start, end): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    (activated, finished): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    match (start, activated) {
        (Some(s), _) => Some((s, end.unwrap_or(s).max(s))),
        (None, Some(a)) => Some((a, finished.unwrap_or(now).max(a))),
        (None, None) => None,
    }
}

/// What conflicts need to know about a release.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub environments: Vec<String>,
    pub services: Vec<String>,
    pub group: Option<i64>,
    pub hotfix_for: Option<i64>,
}

/// Overlapping windows sharing an environment (and, when both name services, a service) conflict;
/// releases of one group never do, nor a hotfix with the release it fixes.
pub fn conflicts(entries: &[Entry]) -> BTreeMap<i64, Vec<i64>> {
    // A sweep in start order: the partners of an entry are the ones starting before it ends, so
    // a month of ~1,000 windows costs a few comparisons each rather than every pair.
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| (entries[i].start, i));
    let mut found: BTreeMap<i64, Vec<(usize, i64)>> = BTreeMap::new();
    for (pos, &i) in order.iter().enumerate() {
        let a = &entries[i];
        for &j in &order[pos + 1..] {
            let b = &entries[j];
            if b.start >= a.end {
                break;
            }
            let overlap = a.start < b.end;
            let shares_env = a.environments.iter().any(|e| b.environments.contains(e));
            let services_ok = a.services.is_empty() || b.services.is_empty() || a.services.iter().any(|s| b.services.contains(s));
            let same_group = a.group.is_some() && a.group == b.group;
            let hotfix_pair = a.hotfix_for == Some(b.id) || b.hotfix_for == Some(a.id);
            if overlap && shares_env && services_ok && !same_group && !hotfix_pair {
                found.entry(a.id).or_default().push((j, b.id));
                found.entry(b.id).or_default().push((i, a.id));
            }
        }
    }
    // Each list in the order of `entries`, as callers show it.
    found
        .into_iter()
        .map(|(id, mut partners)| {
            partners.sort_unstable();
            (id, partners.into_iter().map(|(_, other)| other).collect())
        })
        .collect()
}

/// A local date-time (`2026-12-01T09:00`) in `zone`, or an RFC 3339 time.
pub fn parse_time(text: &str, zone: chrono_tz::Tz) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        // PostgreSQL keeps microseconds: what was typed compares equal to what was stored.
        let utc = dt.with_timezone(&Utc);
        return Ok(utc.duration_trunc(chrono::TimeDelta::microseconds(1)).unwrap_or(utc));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
            return zone
                .from_local_datetime(&naive)
                .earliest()
                .map(|d| d.with_timezone(&Utc))
                .ok_or_else(|| format!("{t:?} does not exist in {} (a daylight-saving gap)", zone.name()));
        }
    }
    Err(format!("{t:?} is not a date and time (e.g. 2026-12-01T09:00)"))
}

/// A `from`/`to` query bound: a date (midnight in `zone`; for `to`, the end of that day, so a
/// period names its last day) or any time `parse_time` reads.
pub fn parse_bound(text: &str, zone: chrono_tz::Tz, is_end: bool) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(date) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let day = if is_end { date.succ_opt().unwrap_or(date) } else { date };
        return parse_time(&format!("{day}T00:00"), zone).or_else(|_| parse_time(&format!("{day}T01:00"), zone));
    }
    parse_time(t, zone).map_err(|_| format!("{t:?} is not a date (2026-12-01) or a time (2026-12-01T09:00, RFC 3339)"))
}

#[cfg(test)]
mod window_tests {
    use super::calendar_window;
    use chrono::{TimeZone, Utc};

    #[test]
    fn every_release_with_a_time_has_a_window() {
        let t = |h| Utc.with_ymd_and_hms(2026, 12, 7, h, 0, 0).single().expect("a valid time");
        assert_eq!(calendar_window((Some(t(9)), Some(t(11))), (Some(t(8)), None), t(10)), Some((t(9), t(11))), "scheduled");
        assert_eq!(calendar_window((None, None), (Some(t(8)), None), t(10)), Some((t(8), t(10))), "on demand, in flight: to now");
        assert_eq!(calendar_window((None, None), (Some(t(8)), Some(t(9))), t(10)), Some((t(8), t(9))), "on demand, finished");
        assert_eq!(calendar_window((None, None), (None, None), t(10)), None, "an unscheduled draft has no time");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> Tz {
        "Europe/Berlin".parse().unwrap()
    }

    #[test]
    fn views_cover_whole_local_days_across_dst() {
        let (days, from, to) = range(View::Month, NaiveDate::from_ymd_opt(2026, 10, 14).unwrap(), berlin());
        assert_eq!(days.len(), 31);
        assert_eq!(from, Utc.with_ymd_and_hms(2026, 9, 30, 22, 0, 0).unwrap(), "Oct 1 00:00 CEST");
        assert_eq!(to, Utc.with_ymd_and_hms(2026, 10, 31, 23, 0, 0).unwrap(), "Nov 1 00:00 CET");
        let (days, from, _) = range(View::Week, NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(), berlin());
        assert_eq!(days[0], NaiveDate::from_ymd_opt(2026, 11, 30).unwrap());
        assert_eq!(from, Utc.with_ymd_and_hms(2026, 11, 29, 23, 0, 0).unwrap());
        let (days, _, _) = range(View::Quarter, NaiveDate::from_ymd_opt(2026, 11, 5).unwrap(), berlin());
        assert_eq!(
            (days[0], *days.last().unwrap()),
            (NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(), NaiveDate::from_ymd_opt(2026, 12, 31).unwrap())
        );
        assert_eq!(step(View::Month, NaiveDate::from_ymd_opt(2026, 1, 31).unwrap()).1, NaiveDate::from_ymd_opt(2026, 2, 28).unwrap());
    }

    #[test]
    fn weekly_occurrences_stay_at_nine_local_across_dst() {
        let dtstart = NaiveDate::from_ymd_opt(2026, 10, 19).unwrap().and_hms_opt(9, 0, 0).unwrap();
        let from = Utc.with_ymd_and_hms(2026, 10, 19, 0, 0, 0).unwrap();
        let got = occurrences("FREQ=WEEKLY;BYDAY=MO", dtstart, berlin(), from, from + Duration::days(21)).unwrap();
        assert_eq!(
            got,
            vec![
                Utc.with_ymd_and_hms(2026, 10, 19, 7, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2026, 10, 26, 8, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap(),
            ]
        );
        assert!(occurrences("FREQ=SOMETIMES", dtstart, berlin(), from, from + Duration::days(7)).unwrap_err().contains("invalid RRULE"));
        let local = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap().and_hms_opt(9, 0, 0).unwrap();
        assert_eq!(group_name("Week {isoweek} System Release - {month} {year}", local), "Week 49 System Release - November 2026");
    }

    fn entry(id: i64, start: i64, end: i64, envs: &[&str]) -> Entry {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        Entry {
            id,
            start: t0 + Duration::hours(start),
            end: t0 + Duration::hours(end),
            environments: envs.iter().map(|e| e.to_string()).collect(),
            services: vec![],
            group: None,
            hotfix_for: None,
        }
    }

    #[test]
    fn conflicts_need_overlap_and_a_shared_environment() {
        let got =
            conflicts(&[entry(1, 0, 4, &["PROD1"]), entry(2, 2, 6, &["PROD1"]), entry(3, 2, 6, &["PROD2"]), entry(4, 4, 8, &["PROD1"])]);
        assert_eq!(got.get(&1), Some(&vec![2]));
        assert_eq!(got.get(&2), Some(&vec![1, 4]));
        assert_eq!(got.get(&3), None, "another environment");
        let mut a = entry(5, 0, 4, &["PROD1"]);
        let mut b = entry(6, 1, 3, &["PROD1"]);
        a.group = Some(9);
        b.group = Some(9);
        assert!(conflicts(&[a.clone(), b.clone()]).is_empty(), "same group");
        b.group = None;
        b.hotfix_for = Some(5);
        assert!(conflicts(&[a, b]).is_empty(), "a hotfix and its release");
    }

    /// The definition, pair by pair: what the sweep must find.
    fn every_pair(entries: &[Entry]) -> BTreeMap<i64, Vec<i64>> {
        let mut out: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for (i, a) in entries.iter().enumerate() {
            for b in &entries[i + 1..] {
                let overlap = a.start < b.end && b.start < a.end;
                let shares_env = a.environments.iter().any(|e| b.environments.contains(e));
                let services_ok = a.services.is_empty() || b.services.is_empty() || a.services.iter().any(|s| b.services.contains(s));
                let same_group = a.group.is_some() && a.group == b.group;
                let hotfix_pair = a.hotfix_for == Some(b.id) || b.hotfix_for == Some(a.id);
                if overlap && shares_env && services_ok && !same_group && !hotfix_pair {
                    out.entry(a.id).or_default().push(b.id);
                    out.entry(b.id).or_default().push(a.id);
                }
            }
        }
        for partners in out.values_mut() {
            let index = |id: &i64| entries.iter().position(|e| e.id == *id);
            partners.sort_by_key(index);
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn the_sweep_finds_exactly_the_conflicting_pairs(
            raw in proptest::collection::vec((0i64..48, 1i64..12, 0usize..4, 0usize..3, proptest::option::of(0i64..3), proptest::option::of(0i64..30)), 0..40)
        ) {
            let envs = ["PROD1", "PROD2", "QA"];
            let services = ["api", "web"];
            let entries: Vec<Entry> = raw
                .iter()
                .enumerate()
                .map(|(i, (start, len, env_mask, svc, group, hotfix))| {
                    let mut e = entry(i as i64, *start, start + len, &[]);
                    e.environments = envs.iter().enumerate().filter(|(k, _)| env_mask & (1 << k) != 0 || *k == 2 && *env_mask == 0).map(|(_, v)| v.to_string()).collect();
                    e.services = services.iter().take(*svc).map(|s| s.to_string()).collect();
                    e.group = *group;
                    e.hotfix_for = *hotfix;
                    e
                })
                .collect();
            proptest::prop_assert_eq!(conflicts(&entries), every_pair(&entries));
        }
    }
}
