//! From a commit's signals to its outcome: which signals count for the
//! outcome multiplier, and what they say at a given time.

use std::sync::Arc;

use super::ci::{CiObservation, CiResult, ci_result};
use super::commit::Outcomes;
use super::signal::{SignalName, SignalStatus};

/// A stored signal, as scoring sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalFact {
    /// Shared text: a pass holds hundreds of thousands of signals with a few
    /// distinct names, statuses, sources and contexts.
    pub name: SignalName,
    pub status: SignalStatus,
    pub source: Arc<str>,
    pub context: Arc<str>,
    pub attempt: Option<i64>,
    pub occurred_at: i64,
    /// The signal's value: for a follow-up fix, the share of the commit's
    /// added lines it touched (`None`: all of them).
    pub value: Option<f64>,
}

impl SignalFact {
    /// A signal from its stored parts.
    pub fn new(
        name: SignalName,
        status: SignalStatus,
        source: &str,
        context: &str,
        attempt: Option<i64>,
        occurred_at: i64,
    ) -> SignalFact {
        SignalFact {
            name,
            status,
            source: source.into(),
            context: context.into(),
            attempt,
            occurred_at,
            value: None,
        }
    }

    /// The same signal with a value.
    pub fn with_value(self, value: Option<f64>) -> SignalFact {
        SignalFact { value, ..self }
    }
}

/// The outcomes known at `t` (signals that happened at or before it): the CI
/// result (its own CI, else its pull request's head CI up to the merge), the
/// deploys and custom signals (latest status of each), and whether the CI
/// came from the head. The one place signals become an outcome: the ledger,
/// the pull-request comment and the dashboard all ask it.
pub fn outcomes_at(
    signals: &[SignalFact],
    pull_request_head: Option<(i64, &[SignalFact])>,
    t: i64,
) -> (Outcomes, CiResult, bool) {
    let observe = |s: &SignalFact| CiObservation {
        source: s.source.to_string(),
        context: s.context.to_string(),
        attempt: s.attempt,
        status: s.status,
        occurred_at: s.occurred_at,
    };
    let own: Vec<CiObservation> = signals
        .iter()
        .filter(|s| s.name == SignalName::Ci && s.occurred_at <= t)
        .map(observe)
        .collect();
    let (observations, from_head) = match pull_request_head {
        Some((merged_at, head)) if own.is_empty() => (
            head.iter()
                .filter(|s| s.name == SignalName::Ci && s.occurred_at <= merged_at.min(t))
                .map(observe)
                .collect(),
            true,
        ),
        _ => (own, false),
    };
    let ci = ci_result(&observations);
    let mut outcomes = Outcomes {
        ci: Some(ci),
        ..Outcomes::default()
    };
    // Latest status of each other signal at `t` (ordered by time, then status so
    // the order of arrival never decides).
    let mut later: Vec<&SignalFact> = signals
        .iter()
        .filter(|s| s.name != SignalName::Ci && s.name.decides_outcome() && s.occurred_at <= t)
        .collect();
    later.sort_by_key(|s| (s.occurred_at, s.status));
    for s in later {
        let passed = s.status == SignalStatus::Pass;
        if s.name == SignalName::Deploy {
            outcomes.deployed |= passed;
        } else {
            outcomes.custom.insert(s.name.to_string(), passed);
        }
    }
    (outcomes, ci, from_head && ci != CiResult::None)
}
