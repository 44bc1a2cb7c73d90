//! ISO weeks (`2026-W41`) in the configured time zone: which week a time falls
//! in, and when a week starts and ends.

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;

/// The day (`YYYY-MM-DD`, in `tz`) a time (epoch ms) falls on: what daily
/// rows (usage) are filed under.
pub fn day_of(at_ms: i64, tz: Tz) -> String {
    tz.timestamp_millis_opt(at_ms)
        .single()
        .expect("a UTC instant has one local time")
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Week {
    pub year: i32,
    pub week: u32,
}

impl Week {
    /// The ISO week a time (epoch ms) falls in, in `tz`.
    pub fn of(at_ms: i64, tz: Tz) -> Week {
        let local = tz
            .timestamp_millis_opt(at_ms)
            .single()
            .expect("a UTC instant has one local time");
        let iso = local.iso_week();
        Week {
            year: iso.year(),
            week: iso.week(),
        }
    }

    /// `2026-W41`; `None` for anything else or a week the year does not have.
    /// The week a command or page means: `None` (or empty) is the last
    /// complete week — the one every default shows — `current` the week in
    /// progress, `last` the last complete one, else an ISO week `2026-W41`.
    pub fn chosen(text: Option<&str>, now: i64, tz: Tz) -> Option<Week> {
        match text.map(str::trim).filter(|t| !t.is_empty()) {
            None | Some("last") => Some(Week::of(now, tz).previous(tz)),
            Some("current") => Some(Week::of(now, tz)),
            Some(text) => Week::parse(text),
        }
    }

    pub fn parse(text: &str) -> Option<Week> {
        let (year, week) = text.split_once("-W")?;
        let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(week, 2) {
            return None;
        }
        let year: i32 = year.parse().ok()?;
        // Weeks before the epoch are no one's pay (and "0000" would print as "0").
        if year < 1970 {
            return None;
        }
        let week: u32 = week.parse().ok()?;
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon)?;
        Some(Week { year, week })
    }

    /// `[start, end)` in epoch ms: Monday 00:00 to the next Monday 00:00 in `tz`.
    pub fn bounds(self, tz: Tz) -> (i64, i64) {
        let monday = NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon)
            .expect("a parsed week exists");
        let start = local_midnight(monday, tz);
        let end = local_midnight(monday + chrono::Days::new(7), tz);
        (start, end)
    }

    /// Its first and last day, `YYYY-MM-DD` (Monday and Sunday): the days
    /// daily rows (usage) of the week are filed under.
    pub fn days(self) -> (String, String) {
        let monday = NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon)
            .expect("a parsed week exists");
        let sunday = monday + chrono::Days::new(6);
        (
            monday.format("%Y-%m-%d").to_string(),
            sunday.format("%Y-%m-%d").to_string(),
        )
    }

    pub fn previous(self, tz: Tz) -> Week {
        Week::of(self.bounds(tz).0 - 1, tz)
    }

    pub fn next(self, tz: Tz) -> Week {
        Week::of(self.bounds(tz).1, tz)
    }

    pub fn label(self) -> String {
        format!("{}-W{:02}", self.year, self.week)
    }
}

/// Midnight of `date` in `tz` (the first instant of the day where a DST gap
/// skips midnight).
fn local_midnight(date: NaiveDate, tz: Tz) -> i64 {
    let mut time = date.and_time(NaiveTime::MIN);
    loop {
        if let Some(t) = tz.from_local_datetime(&time).earliest() {
            return t.timestamp_millis();
        }
        time += chrono::Duration::minutes(30);
    }
}

/// A date (`YYYY-MM-DD`, midnight in `tz`) or an RFC 3339 time → epoch ms.
pub fn parse_time_in(text: &str, tz: Tz) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| local_midnight(d, tz))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_weeks_days_run_monday_to_sunday() {
        let w = super::Week::parse("2026-W01").unwrap();
        // ISO week 1 of 2026 starts on Monday 29 December 2025.
        assert_eq!(
            w.days(),
            ("2025-12-29".to_string(), "2026-01-04".to_string())
        );
    }

    use super::*;

    #[test]
    fn weeks_are_years_1970_to_9999() {
        for bad in [
            "0000-W01", "1969-W52", "+202-W01", "2026-W00", "2026-W54", "2026-w01", "2026-W1",
        ] {
            assert_eq!(Week::parse(bad), None, "{bad}");
        }
        assert_eq!(Week::parse("1970-W01").unwrap().label(), "1970-W01");
        assert_eq!(Week::parse("9999-W52").unwrap().label(), "9999-W52");
    }

    #[test]
    fn weeks_in_a_time_zone() {
        let utc: Tz = "UTC".parse().unwrap();
        let ny: Tz = "America/New_York".parse().unwrap();
        // 2026-10-05 is a Monday (ISO week 41).
        let w = Week::parse("2026-W41").unwrap();
        let (start, end) = w.bounds(utc);
        assert_eq!(start, parse_time_in("2026-10-05T00:00:00Z", utc).unwrap());
        assert_eq!(end - start, 7 * 86_400_000);
        assert_eq!(Week::of(start, utc), w);
        assert_eq!(Week::of(start - 1, utc).label(), "2026-W40");
        // Monday 02:00 UTC is still Sunday evening in New York: week 40 there.
        assert_eq!(Week::of(start + 2 * 3_600_000, ny).label(), "2026-W40");
        assert_eq!(w.bounds(ny).0 - start, 4 * 3_600_000, "EDT is UTC−4");
        // The week with the end of DST (1 Nov 2026 in New York) has 7 days + 1 hour.
        let (s, e) = Week::parse("2026-W44").unwrap().bounds(ny);
        assert_eq!(e - s, 7 * 86_400_000 + 3_600_000);
        assert_eq!(w.previous(ny).label(), "2026-W40");
        // 2026 has 53 ISO weeks; 2025 has 52.
        assert!(Week::parse("2026-W53").is_some());
        assert!(Week::parse("2025-W53").is_none());
        for bad in ["2026-41", "2026-W1", "26-W41", "2026-W00", "2026-Wxx", ""] {
            assert!(Week::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(
            parse_time_in("2026-10-05", ny).unwrap(),
            start + 4 * 3_600_000
        );
        assert!(parse_time_in("yesterday", utc).is_none());
    }
}
