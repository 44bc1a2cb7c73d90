//! What verified usage cost, set against what landed: each landed commit's
//! share of the usage before it, the cost of work that was taken back, and
//! waste (usage with nothing landed, or far more usage per landed commit
//! than the team's median).

use chrono::NaiveDate;

/// One day of a person's verified usage.
#[derive(Debug, Clone, PartialEq)]
pub struct DayUsage {
    /// `YYYY-MM-DD` in `timezone`.
    pub day: String,
    /// Weighted usage tokens (cache reads at their weight).
    pub tokens: f64,
    pub cost_micro_usd: i64,
}

/// A landed AI commit of the same person.
#[derive(Debug, Clone, PartialEq)]
pub struct LandedCommit {
    /// The day it landed, `YYYY-MM-DD` in `timezone`.
    pub day: String,
    /// Its tokens were taken back (cancelled or clawed back, in part or all).
    pub taken_back: bool,
}

/// A share of usage: weighted tokens and micro-USD.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Share {
    pub tokens: f64,
    pub cost_micro_usd: f64,
}

/// Usage per landed commit above this many times the team's median is waste.
pub const HEAVY_FACTOR: f64 = 3.0;
/// The median says something only over at least this many people.
pub const HEAVY_MIN_PEOPLE: usize = 3;

fn date(day: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

/// Each commit's share of the usage before it: a day's usage goes to the
/// commits of the first day, at or after it and fewer than `window_days`
/// later, on which some landed — split equally between them. Usage no
/// commit follows within the window is nobody's (it shows as waste).
pub fn apportion(days: &[DayUsage], commits: &[LandedCommit], window_days: u32) -> Vec<Share> {
    let mut shares = vec![Share::default(); commits.len()];
    let mut landing_days: Vec<NaiveDate> = commits.iter().filter_map(|c| date(&c.day)).collect();
    landing_days.sort_unstable();
    landing_days.dedup();
    for usage in days {
        let Some(day) = date(&usage.day) else {
            continue;
        };
        let first = landing_days.partition_point(|d| *d < day);
        let Some(target) = landing_days.get(first) else {
            continue;
        };
        if (*target - day).num_days() >= i64::from(window_days.max(1)) {
            continue;
        }
        let on_target: Vec<usize> = (0..commits.len())
            .filter(|&i| date(&commits[i].day) == Some(*target))
            .collect();
        let n = on_target.len() as f64;
        for i in on_target {
            shares[i].tokens += usage.tokens / n;
            shares[i].cost_micro_usd += usage.cost_micro_usd as f64 / n;
        }
    }
    shares
}

/// The cost (micro-USD) of the work that was taken back: the shares of the
/// commits whose tokens were cancelled or clawed back.
pub fn taken_back_cost(commits: &[LandedCommit], shares: &[Share]) -> f64 {
    commits
        .iter()
        .zip(shares)
        .filter(|(c, _)| c.taken_back)
        .map(|(_, s)| s.cost_micro_usd)
        .sum()
}

/// The median of the team's usage per landed commit (people with both),
/// when there are enough people for it to mean something.
pub fn team_median(per_commit: &[f64]) -> Option<f64> {
    if per_commit.len() < HEAVY_MIN_PEOPLE {
        return None;
    }
    let mut sorted = per_commit.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// Why a person's week of usage is waste, if it is: usage (at least
/// `min_usage`) with no landed AI commit, or usage per landed commit over
/// [`HEAVY_FACTOR`] × the team's median.
pub fn waste(
    usage: f64,
    ai_commits: u32,
    median: Option<f64>,
    min_usage: u64,
) -> Option<&'static str> {
    if ai_commits == 0 {
        return (usage >= min_usage as f64).then_some("nothing_landed");
    }
    let per_commit = usage / f64::from(ai_commits);
    median
        .filter(|m| *m > 0.0 && per_commit > HEAVY_FACTOR * m)
        .map(|_| "far_above_median")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(day: &str, tokens: f64, cost: i64) -> DayUsage {
        DayUsage {
            day: day.into(),
            tokens,
            cost_micro_usd: cost,
        }
    }

    fn landed(day: &str, taken_back: bool) -> LandedCommit {
        LandedCommit {
            day: day.into(),
            taken_back,
        }
    }

    #[test]
    fn usage_goes_to_the_next_landing_within_the_window() {
        let days = [
            usage("2026-10-12", 1_000.0, 1_000_000),
            usage("2026-10-13", 3_000.0, 3_000_000),
            usage("2026-10-14", 600.0, 600_000),
            // Nothing lands within 3 days after it: nobody's.
            usage("2026-10-20", 9_000.0, 9_000_000),
        ];
        let commits = [
            landed("2026-10-13", false),
            landed("2026-10-13", true),
            landed("2026-10-14", false),
        ];
        let shares = apportion(&days, &commits, 3);
        // The 12th and 13th go to the two commits of the 13th, half each.
        assert_eq!(shares[0].tokens, 2_000.0);
        assert_eq!(shares[1].cost_micro_usd, 2_000_000.0);
        // The 14th to the commit of the 14th alone.
        assert_eq!(shares[2].tokens, 600.0);
        // The taken-back commit's half: $2.
        assert_eq!(taken_back_cost(&commits, &shares), 2_000_000.0);
        // Shares never add up to more than the usage.
        let total: f64 = shares.iter().map(|s| s.tokens).sum();
        assert_eq!(total, 4_600.0);
        // A window of one day: only the same day's usage.
        let same_day = apportion(&days, &commits, 1);
        assert_eq!(same_day[0].tokens, 1_500.0);
        assert_eq!(same_day[2].tokens, 600.0);
        // A malformed day is skipped, not a panic.
        assert_eq!(
            apportion(&[usage("someday", 5.0, 5)], &commits, 3)[0],
            Share::default()
        );
    }

    #[test]
    fn waste_is_usage_with_nothing_landed_or_far_above_the_median() {
        assert_eq!(team_median(&[1.0, 2.0]), None, "too few people");
        assert_eq!(team_median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(team_median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        // Usage and nothing landed.
        assert_eq!(waste(20_000.0, 0, None, 10_000), Some("nothing_landed"));
        // A little usage with nothing landed is not worth a word.
        assert_eq!(waste(500.0, 0, None, 10_000), None);
        // 40,000 per commit against a median of 10,000: over 3×.
        assert_eq!(
            waste(80_000.0, 2, Some(10_000.0), 10_000),
            Some("far_above_median")
        );
        // Exactly 3× is not "far above".
        assert_eq!(waste(60_000.0, 2, Some(10_000.0), 10_000), None);
        assert_eq!(waste(80_000.0, 2, None, 10_000), None, "no median");
    }
}
