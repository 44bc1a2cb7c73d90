//! What a signal is: its name (the closed set tokentally knows, or a custom
//! name a CI pipeline reports) and its status.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// `pass`, `fail`, or `neutral` (a CI run that says nothing about the commit,
/// such as one cancelled because a newer push superseded it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignalStatus {
    Fail,
    Neutral,
    Pass,
}

impl SignalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalStatus::Pass => "pass",
            SignalStatus::Fail => "fail",
            SignalStatus::Neutral => "neutral",
        }
    }
}

impl FromStr for SignalStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "pass" => Ok(SignalStatus::Pass),
            "fail" => Ok(SignalStatus::Fail),
            "neutral" => Ok(SignalStatus::Neutral),
            other => Err(format!(
                "{other:?} is not a signal status (pass, fail, neutral)"
            )),
        }
    }
}

/// A signal's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignalName {
    Ci,
    Deploy,
    Incident,
    /// Recorded from git history: a later commit reverts this one.
    Reverted,
    /// Recorded from git history: a later commit fixes this one.
    FixedLater,
    /// A name a pipeline chose, weighted by `[scoring.signals.NAME]`.
    Custom(Arc<str>),
}

impl SignalName {
    pub fn as_str(&self) -> &str {
        match self {
            SignalName::Ci => "ci",
            SignalName::Deploy => "deploy",
            SignalName::Incident => "incident",
            SignalName::Reverted => "reverted",
            SignalName::FixedLater => "fixed_later",
            SignalName::Custom(name) => name,
        }
    }

    /// Names only tokentally itself records (from git history).
    pub fn is_reserved(&self) -> bool {
        matches!(self, SignalName::Reverted | SignalName::FixedLater)
    }

    /// Whether the signal decides the outcome multiplier (reverts, follow-up
    /// fixes and incidents claw back instead).
    pub fn decides_outcome(&self) -> bool {
        !matches!(
            self,
            SignalName::Reverted | SignalName::FixedLater | SignalName::Incident
        )
    }
}

/// A name a pipeline may report: up to 64 lower-case letters, digits, `_ - .`,
/// and not one tokentally records itself from git history.
pub fn reportable_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
        && !name.parse::<SignalName>().is_ok_and(|n| n.is_reserved())
}

impl FromStr for SignalName {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "ci" => SignalName::Ci,
            "deploy" => SignalName::Deploy,
            "incident" => SignalName::Incident,
            "reverted" => SignalName::Reverted,
            "fixed_later" => SignalName::FixedLater,
            other => SignalName::Custom(other.into()),
        })
    }
}

impl fmt::Display for SignalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for SignalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for SignalName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<&str> for SignalStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for SignalName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl serde::Serialize for SignalStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_statuses_read_back_as_written() {
        for name in [
            "ci",
            "deploy",
            "incident",
            "reverted",
            "fixed_later",
            "perf_budget",
        ] {
            let parsed: SignalName = name.parse().unwrap();
            assert_eq!(parsed.as_str(), name);
        }
        assert!(SignalName::Reverted.is_reserved());
        assert!(!SignalName::Ci.is_reserved());
        assert!(!SignalName::Incident.decides_outcome());
        assert!("perf".parse::<SignalName>().unwrap().decides_outcome());
        for status in ["pass", "fail", "neutral"] {
            assert_eq!(status.parse::<SignalStatus>().unwrap().as_str(), status);
        }
        assert!("ok".parse::<SignalStatus>().is_err());
    }
}
