//! The weekly leaderboard: who ranks (at least `leaderboard_min_ai_commits`
//! landed AI commits in the week), in which order (value, efficiency or
//! hygiene), and how each moved against the previous week.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::MilliTokens;
use super::rules::Rules;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankBy {
    Value,
    Efficiency,
    Hygiene,
}

impl RankBy {
    pub fn parse(text: &str) -> Option<RankBy> {
        match text {
            "value" => Some(RankBy::Value),
            "efficiency" => Some(RankBy::Efficiency),
            "hygiene" => Some(RankBy::Hygiene),
            _ => None,
        }
    }
}

/// One person's week, as the leaderboard needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonWeek {
    pub person: String,
    /// (earned − clawed back) × payout factor, in milli-tokens.
    pub value: MilliTokens,
    pub hygiene: u32,
    /// Tokens per 1,000 usage tokens; `None` without reported usage.
    pub efficiency: Option<f64>,
    pub ai_commits: u32,
}

/// Movement against last week's rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trend {
    New,
    Same,
    Up(u32),
    Down(u32),
}

impl Trend {
    /// `new`, `=`, `+N`, `-N` (the API's form).
    pub fn as_text(&self) -> String {
        match self {
            Trend::New => "new".to_string(),
            Trend::Same => "=".to_string(),
            Trend::Up(n) => format!("+{n}"),
            Trend::Down(n) => format!("-{n}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub rank: u32,
    pub week: PersonWeek,
    pub trend: Trend,
}

/// Ranks the people with enough activity (the rest come back unranked, by
/// value); ties keep a stable order by person. `previous` is last week's rank
/// of each person who was ranked then.
pub fn rank(
    weeks: &[PersonWeek],
    by: RankBy,
    previous: &BTreeMap<String, u32>,
    rules: &Rules,
) -> (Vec<Ranked>, Vec<PersonWeek>) {
    let (mut ranked, mut unranked): (Vec<PersonWeek>, Vec<PersonWeek>) = weeks
        .iter()
        .cloned()
        .partition(|w| w.ai_commits >= rules.leaderboard_min_ai_commits);
    ranked.sort_by(|a, b| order(a, b, by));
    unranked.sort_by(|a, b| order(a, b, RankBy::Value));
    let ranked = ranked
        .into_iter()
        .enumerate()
        .map(|(i, week)| {
            let rank = i as u32 + 1;
            let trend = match previous.get(&week.person) {
                None => Trend::New,
                Some(&before) if before == rank => Trend::Same,
                Some(&before) if before > rank => Trend::Up(before - rank),
                Some(&before) => Trend::Down(rank - before),
            };
            Ranked { rank, week, trend }
        })
        .collect();
    (ranked, unranked)
}

/// Best first; people without an efficiency come after those with one.
fn order(a: &PersonWeek, b: &PersonWeek, by: RankBy) -> Ordering {
    let primary = match by {
        RankBy::Value => b.value.cmp(&a.value),
        RankBy::Hygiene => b.hygiene.cmp(&a.hygiene).then(b.value.cmp(&a.value)),
        RankBy::Efficiency => match (a.efficiency, b.efficiency) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
        .then(b.value.cmp(&a.value)),
    };
    primary.then_with(|| a.person.cmp(&b.person))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week(
        person: &str,
        value: i64,
        hygiene: u32,
        efficiency: Option<f64>,
        ai: u32,
    ) -> PersonWeek {
        PersonWeek {
            person: person.into(),
            value,
            hygiene,
            efficiency,
            ai_commits: ai,
        }
    }

    #[test]
    fn ranks_trends_and_the_activity_rule() {
        let rules = Rules::default();
        let weeks = [
            week("maria", 88_000, 100, Some(7.9), 5),
            week("kenji", 74_500, 85, Some(5.1), 3),
            week("sam", 52_000, 100, None, 2),
            week("lee", 90_000, 100, Some(9.0), 1), // one AI commit: listed, not ranked
        ];
        let previous: BTreeMap<String, u32> = [("maria".to_string(), 3), ("kenji".to_string(), 1)]
            .into_iter()
            .collect();
        let (ranked, unranked) = rank(&weeks, RankBy::Value, &previous, &rules);
        let view: Vec<(u32, &str, String)> = ranked
            .iter()
            .map(|r| (r.rank, r.week.person.as_str(), r.trend.as_text()))
            .collect();
        assert_eq!(
            view,
            [
                (1, "maria", "+2".to_string()),
                (2, "kenji", "-1".to_string()),
                (3, "sam", "new".to_string())
            ]
        );
        assert_eq!(unranked.len(), 1);
        assert_eq!(unranked[0].person, "lee");

        let (by_efficiency, _) = rank(&weeks, RankBy::Efficiency, &previous, &rules);
        let order: Vec<&str> = by_efficiency
            .iter()
            .map(|r| r.week.person.as_str())
            .collect();
        assert_eq!(order, ["maria", "kenji", "sam"], "no usage reported: last");
        let (by_hygiene, _) = rank(&weeks, RankBy::Hygiene, &previous, &rules);
        let order: Vec<&str> = by_hygiene.iter().map(|r| r.week.person.as_str()).collect();
        assert_eq!(order, ["maria", "sam", "kenji"], "ties broken by value");
        let same: BTreeMap<String, u32> = [("maria".to_string(), 1)].into_iter().collect();
        assert_eq!(
            rank(&weeks, RankBy::Value, &same, &rules).0[0].trend,
            Trend::Same
        );
        assert_eq!(RankBy::parse("value"), Some(RankBy::Value));
        assert_eq!(RankBy::parse("votes"), None);
    }
}
