//! Which CI result a commit has, from the CI signals recorded for it.
//!
//! One run is never counted twice. A GitHub Actions run arrives as a
//! `workflow_run`, a `check_suite` and `check_run`s, and the job may report an
//! API `ci` signal too; so only one family of GitHub checks counts — workflow
//! runs if there are any, else check suites, else check runs — plus commit
//! statuses (other CI systems report those); API `ci` signals count only when
//! GitHub reported no CI at all (a CI that sends no GitHub events).
//!
//! Each context (a workflow, a suite's app, a check or status name, an API
//! signal's context) counts its own attempts; `neutral` results (a run
//! cancelled because a newer push superseded it) say nothing.
//! - first-run green: every context passed on its first attempt;
//! - green after failure: every context's latest attempt passed;
//! - red: some context's latest attempt failed;
//! - none: no counted result.
//!
//! Order of arrival never matters: attempts are ordered by their number, then
//! by event time.

use super::signal::SignalStatus;
use std::collections::BTreeMap;

/// One CI result as stored (a `ci` signal).
#[derive(Debug, Clone, PartialEq)]
pub struct CiObservation {
    /// `github:workflow_run`, `github:check_suite`, `github:check_run`,
    /// `github:status`, or `api:<token>`.
    pub source: String,
    pub context: String,
    pub attempt: Option<i64>,
    /// `pass`, `fail` or `neutral`.
    pub status: SignalStatus,
    /// Event time (epoch ms), to order attempts without numbers.
    pub occurred_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiResult {
    FirstRunGreen,
    GreenAfterFailure,
    Red,
    None,
}

impl CiResult {
    pub fn as_str(self) -> &'static str {
        match self {
            CiResult::FirstRunGreen => "first_run_green",
            CiResult::GreenAfterFailure => "green_after_failure",
            CiResult::Red => "red",
            CiResult::None => "none",
        }
    }
}

/// The family a source belongs to, and which GitHub check family ranks first.
fn family(source: &str) -> (&'static str, u8) {
    match source {
        "github:workflow_run" => ("checks", 3),
        "github:check_suite" => ("checks", 2),
        "github:check_run" => ("checks", 1),
        "github:status" => ("status", 0),
        _ => ("api", 0),
    }
}

/// The CI result of a commit from all its `ci` observations.
pub fn ci_result(observations: &[CiObservation]) -> CiResult {
    let counted: Vec<&CiObservation> = observations
        .iter()
        .filter(|o| o.status != SignalStatus::Neutral)
        .collect();
    let best_checks = counted
        .iter()
        .filter(|o| family(&o.source).0 == "checks")
        .map(|o| family(&o.source).1)
        .max();
    let has_github =
        best_checks.is_some() || counted.iter().any(|o| family(&o.source).0 == "status");
    let kept = counted.into_iter().filter(|o| match family(&o.source) {
        ("checks", rank) => Some(rank) == best_checks,
        ("status", _) => true,
        _ => !has_github,
    });
    // context → attempts in order.
    let mut contexts: BTreeMap<(String, String), Vec<&CiObservation>> = BTreeMap::new();
    for o in kept {
        contexts
            .entry((family(&o.source).0.to_string(), o.context.clone()))
            .or_default()
            .push(o);
    }
    if contexts.is_empty() {
        return CiResult::None;
    }
    let mut all_first_green = true;
    for attempts in contexts.values_mut() {
        // Ties (same attempt, same time) are broken by status so the order of
        // arrival never decides.
        attempts.sort_by(|a, b| {
            (a.attempt.unwrap_or(i64::MAX), a.occurred_at, &a.status).cmp(&(
                b.attempt.unwrap_or(i64::MAX),
                b.occurred_at,
                &b.status,
            ))
        });
        let latest = attempts.last().expect("a context has an attempt");
        if latest.status == SignalStatus::Fail {
            return CiResult::Red;
        }
        // Neutral attempts were left out: the first attempt that says something
        // is the first run.
        if attempts.iter().any(|o| o.status == SignalStatus::Fail) {
            all_first_green = false;
        }
    }
    if all_first_green {
        CiResult::FirstRunGreen
    } else {
        CiResult::GreenAfterFailure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(
        source: &str,
        context: &str,
        attempt: Option<i64>,
        status: &str,
        at: i64,
    ) -> CiObservation {
        CiObservation {
            source: source.into(),
            context: context.into(),
            attempt,
            status: status.parse().unwrap(),
            occurred_at: at,
        }
    }

    #[test]
    fn results_by_the_rules() {
        assert_eq!(ci_result(&[]), CiResult::None);
        let green = [o("github:workflow_run", "tests", Some(1), "pass", 1)];
        assert_eq!(ci_result(&green), CiResult::FirstRunGreen);
        let rerun = [
            o("github:workflow_run", "tests", Some(2), "pass", 9),
            o("github:workflow_run", "tests", Some(1), "fail", 5),
        ];
        assert_eq!(
            ci_result(&rerun),
            CiResult::GreenAfterFailure,
            "order of arrival ignored"
        );
        let red = [
            o("github:workflow_run", "tests", Some(1), "pass", 1),
            o("github:workflow_run", "lint", Some(1), "fail", 2),
        ];
        assert_eq!(ci_result(&red), CiResult::Red, "one red context is red");
        let failed_then_failed = [
            o("github:status", "ci/jenkins", None, "fail", 1),
            o("github:status", "ci/jenkins", None, "fail", 2),
        ];
        assert_eq!(ci_result(&failed_then_failed), CiResult::Red);
        let status_fixed = [
            o("github:status", "ci/jenkins", None, "pass", 2),
            o("github:status", "ci/jenkins", None, "fail", 1),
        ];
        assert_eq!(ci_result(&status_fixed), CiResult::GreenAfterFailure);
    }

    #[test]
    fn one_run_is_counted_once() {
        // A GitHub Actions run: workflow_run + check_suite + check_runs + the
        // job's own API report. The failing check_run is the same run's step
        // that the workflow run already says passed on re-run.
        let run = [
            o("github:workflow_run", "CI", Some(1), "pass", 10),
            o("github:check_suite", "github-actions", None, "pass", 10),
            o("github:check_run", "test (ubuntu)", None, "pass", 9),
            o("github:check_run", "test (macos)", None, "pass", 9),
            o("api:ci", "linux", None, "fail", 8),
        ];
        assert_eq!(ci_result(&run), CiResult::FirstRunGreen);
        // Without workflow runs, check suites are the family that counts.
        let suites = [
            o("github:check_suite", "circleci", None, "pass", 10),
            o("github:check_run", "build", None, "fail", 9),
        ];
        assert_eq!(ci_result(&suites), CiResult::FirstRunGreen);
        // API signals count when GitHub says nothing.
        let api_only = [o("api:gitlab", "node-1", None, "fail", 1)];
        assert_eq!(ci_result(&api_only), CiResult::Red);
    }

    #[test]
    fn neutral_results_say_nothing() {
        let superseded = [o("github:workflow_run", "CI", Some(1), "neutral", 1)];
        assert_eq!(ci_result(&superseded), CiResult::None);
        // A superseded run is not a failure: the first run that says something passed.
        let then_green = [
            o("github:workflow_run", "CI", Some(1), "neutral", 1),
            o("github:workflow_run", "CI", Some(2), "pass", 2),
        ];
        assert_eq!(ci_result(&then_green), CiResult::FirstRunGreen);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn observation() -> impl Strategy<Value = CiObservation> {
        (
            prop::sample::select(vec![
                "github:workflow_run",
                "github:check_suite",
                "github:check_run",
                "github:status",
                "api:ci",
            ]),
            prop::sample::select(vec!["tests", "lint", "build"]),
            prop::option::of(1i64..4),
            prop::sample::select(vec!["pass", "fail", "neutral"]),
            0i64..1_000,
        )
            .prop_map(|(source, context, attempt, status, at)| CiObservation {
                source: source.into(),
                context: context.into(),
                attempt,
                status: status.parse().unwrap(),
                occurred_at: at,
            })
    }

    proptest! {
        /// Signals arriving in any order give the same result.
        #[test]
        fn order_of_arrival_never_matters(
            observations in prop::collection::vec(observation(), 0..12),
            seed in any::<u64>(),
        ) {
            let mut shuffled = observations.clone();
            // A deterministic shuffle from the seed.
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(ci_result(&observations), ci_result(&shuffled));
        }

        /// The same signal recorded twice changes nothing.
        #[test]
        fn a_repeated_signal_changes_nothing(observations in prop::collection::vec(observation(), 1..10)) {
            let mut doubled = observations.clone();
            doubled.push(observations[0].clone());
            prop_assert_eq!(ci_result(&observations), ci_result(&doubled));
        }
    }
}
