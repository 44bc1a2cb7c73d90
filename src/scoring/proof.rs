//! Proof of assistance (`scoring.require_usage`): an AI commit earns only when
//! its author's agent reported verified usage in the hours before it. A
//! trailer anyone can type proves nothing; the agent's own metrics do.

use std::collections::HashSet;

use chrono::{Days, NaiveDate};
use chrono_tz::Tz;

use super::week::day_of;

const HOUR_MS: i64 = 3_600_000;
/// How far before landing a commit's own (author-set) time may reach: a
/// backdated commit cannot borrow usage from long ago.
const MAX_REVIEW_MS: i64 = 14 * 24 * HOUR_MS;

/// The days (`YYYY-MM-DD` in `tz`) whose usage backs a commit made at
/// `committed_at` that landed at `landed_at`: from `window_hours` before it
/// was made (never more than 14 days before landing) to its landing day.
pub fn window_days(
    committed_at: Option<i64>,
    landed_at: i64,
    window_hours: u32,
    tz: Tz,
) -> Vec<String> {
    let made = committed_at
        .unwrap_or(landed_at)
        .clamp(landed_at - MAX_REVIEW_MS, landed_at);
    let from = made - i64::from(window_hours) * HOUR_MS;
    let parse = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("day_of gives dates");
    let (first, last) = (parse(&day_of(from, tz)), parse(&day_of(landed_at, tz)));
    let mut days = Vec::new();
    let mut day = first;
    while day <= last {
        days.push(day.format("%Y-%m-%d").to_string());
        day = day + Days::new(1);
    }
    days
}

/// Who reported model-token usage of which agent on which day.
#[derive(Debug, Default)]
pub struct UsageDays {
    by_agent: HashSet<(String, String, String)>,
    any_agent: HashSet<(String, String)>,
}

impl UsageDays {
    /// From (person, agent, day) rows.
    pub fn new(rows: impl IntoIterator<Item = (String, String, String)>) -> UsageDays {
        let mut days = UsageDays::default();
        for (person, agent, day) in rows {
            days.any_agent.insert((person.clone(), day.clone()));
            days.by_agent.insert((person, agent, day));
        }
        days
    }

    /// Whether `person` reported usage of `agent` (`None`: any) on `day`.
    pub fn has(&self, person: &str, agent: Option<&str>, day: &str) -> bool {
        match agent {
            Some(agent) => {
                self.by_agent
                    .contains(&(person.to_string(), agent.to_string(), day.to_string()))
            }
            None => self
                .any_agent
                .contains(&(person.to_string(), day.to_string())),
        }
    }
}

/// Why a commit is `unverified`, or `None` when its author's usage backs it:
/// usage of one of its agents (of any agent when it names none) on one of
/// `days`. `has_usage(agent, day)` says whether the author reported usage
/// of `agent` (`None`: any) that day.
pub fn unverified_reason(
    agents: &[String],
    days: &[String],
    window_hours: u32,
    has_usage: impl Fn(Option<&str>, &str) -> bool,
) -> Option<String> {
    let backed = days.iter().any(|day| {
        if agents.is_empty() {
            has_usage(None, day)
        } else {
            agents.iter().any(|a| has_usage(Some(a), day))
        }
    });
    if backed {
        return None;
    }
    let which = if agents.is_empty() {
        "any agent".to_string()
    } else {
        agents.join(" or ")
    };
    Some(format!(
        "no verified usage of {which} by its author in the {window_hours} hours before it \
         (days {} to {}): scoring.require_usage is on",
        days.first().map_or("?", String::as_str),
        days.last().map_or("?", String::as_str),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TZ: Tz = chrono_tz::UTC;
    /// 2026-10-14T12:00:00Z.
    const LANDED: i64 = 1_791_979_200_000;

    fn days(list: &[&str]) -> Vec<String> {
        list.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn the_window_runs_from_before_the_commit_to_its_landing_day() {
        // Made at landing: the 72 hours before it, noon to noon: four days.
        assert_eq!(
            window_days(None, LANDED, 72, TZ),
            days(&["2026-10-11", "2026-10-12", "2026-10-13", "2026-10-14"])
        );
        // Made a day before it landed: the window starts a day earlier.
        assert_eq!(
            window_days(Some(LANDED - 24 * HOUR_MS), LANDED, 24, TZ),
            days(&["2026-10-12", "2026-10-13", "2026-10-14"])
        );
        // A commit dated a year back borrows at most 14 days of review.
        let backdated = window_days(Some(LANDED - 365 * 24 * HOUR_MS), LANDED, 0, TZ);
        assert_eq!(backdated.first().unwrap(), "2026-09-30");
        assert_eq!(backdated.len(), 15);
        // A commit "made" after it landed (a clock ahead) counts from landing.
        assert_eq!(
            window_days(Some(LANDED + 48 * HOUR_MS), LANDED, 0, TZ),
            days(&["2026-10-14"])
        );
        // Days are local: 23:30 UTC is the next day in Berlin.
        let late = LANDED + 11 * HOUR_MS + 30 * 60_000;
        assert_eq!(
            window_days(None, late, 0, chrono_tz::Europe::Berlin),
            days(&["2026-10-15"])
        );
    }

    #[test]
    fn usage_of_its_agent_in_the_window_backs_a_commit() {
        let window = days(&["2026-10-13", "2026-10-14"]);
        let claude = |agent: Option<&str>, day: &str| {
            agent.is_none_or(|a| a == "claude-code") && day == "2026-10-13"
        };
        let agents = vec!["claude-code".to_string()];
        assert_eq!(unverified_reason(&agents, &window, 72, claude), None);
        // Another agent's usage does not back it.
        let reason = unverified_reason(&["copilot".to_string()], &window, 72, claude).unwrap();
        assert!(
            reason.contains("copilot") && reason.contains("72 hours"),
            "{reason}"
        );
        assert!(reason.contains("2026-10-13 to 2026-10-14"), "{reason}");
        // No agent named: any agent's usage backs it.
        assert_eq!(unverified_reason(&[], &window, 72, claude), None);
        // Usage outside the window does not.
        let outside = days(&["2026-10-14"]);
        let reason = unverified_reason(&agents, &outside, 72, claude).unwrap();
        assert!(reason.contains("claude-code"), "{reason}");
        assert!(unverified_reason(&[], &outside, 72, claude).is_some());
    }
}
