//! Outcome signals read from GitHub events: CI results (`check_suite`,
//! `check_run`, `workflow_run`, `status`) and deployments (`deployment_status`).
//! Pure: the worker stores what these functions return.

use crate::scoring::signal::{SignalName, SignalStatus};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use super::events::{GithubEvent, parse_time};

/// `[signals.ci]`: which checks count as CI, and which conclusions pass or fail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CiSignalConfig {
    /// Check, status or workflow names (globs) that count as CI.
    pub include: Vec<String>,
    /// Names that never count (a linter bot, a coverage reporter, …).
    pub exclude: Vec<String>,
    pub pass: Vec<String>,
    pub fail: Vec<String>,
    /// Conclusions that say nothing about the commit: a run cancelled because a
    /// newer push superseded it. Stored as `neutral`; scoring ignores them.
    pub neutral: Vec<String>,
}

/// Every conclusion GitHub sends for check suites, check runs and workflow runs.
pub const CONCLUSIONS: &[&str] = &[
    "success",
    "failure",
    "neutral",
    "cancelled",
    "skipped",
    "timed_out",
    "action_required",
    "startup_failure",
    "stale",
];

impl Default for CiSignalConfig {
    fn default() -> Self {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        CiSignalConfig {
            include: strings(&["*"]),
            exclude: Vec::new(),
            pass: strings(&["success", "neutral", "skipped"]),
            fail: strings(&["failure", "timed_out", "action_required", "startup_failure"]),
            neutral: strings(&["cancelled", "stale"]),
        }
    }
}

/// One signal an event carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub repo: String,
    pub sha: String,
    /// `ci` or `deploy`.
    pub name: SignalName,
    /// `pass`, `fail` or `neutral`.
    pub status: SignalStatus,
    /// The check, status context, workflow or environment.
    pub context: String,
    /// The run attempt when GitHub says (workflow runs); else counted by the store.
    pub attempt: Option<i64>,
    pub url: Option<String>,
    /// Unique per result, so a redelivered event stores nothing new.
    pub key: String,
    pub source: &'static str,
    /// When it happened, from the payload (epoch ms); `None` when the payload has
    /// no time (the delivery's arrival time is used then).
    pub occurred_at: Option<i64>,
}

/// A payload whose outcome cannot be trusted: retrying will not change that.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutcomeError {
    #[error("`{field}` is not a commit id (40 hexadecimal digits): {value:?}")]
    BadSha { field: &'static str, value: String },
    #[error("`{field}`: {message}")]
    BadTime {
        field: &'static str,
        message: String,
    },
}

#[derive(Debug, Clone)]
pub struct CiRules {
    include: GlobSet,
    exclude: GlobSet,
    pass: Vec<String>,
    fail: Vec<String>,
    neutral: Vec<String>,
}

impl Default for CiRules {
    fn default() -> Self {
        CiRules::new(&CiSignalConfig::default()).expect("default globs are valid")
    }
}

impl CiRules {
    pub fn new(config: &CiSignalConfig) -> Result<CiRules, globset::Error> {
        let build = |patterns: &[String]| -> Result<GlobSet, globset::Error> {
            let mut builder = GlobSetBuilder::new();
            for p in patterns {
                builder.add(Glob::new(p)?);
            }
            builder.build()
        };
        Ok(CiRules {
            include: build(&config.include)?,
            exclude: build(&config.exclude)?,
            pass: config.pass.clone(),
            fail: config.fail.clone(),
            neutral: config.neutral.clone(),
        })
    }

    fn counts(&self, name: &str) -> bool {
        self.include.is_match(name) && !self.exclude.is_match(name)
    }

    fn status_for(&self, conclusion: &str) -> Option<SignalStatus> {
        if self.pass.iter().any(|c| c == conclusion) {
            Some(SignalStatus::Pass)
        } else if self.fail.iter().any(|c| c == conclusion) {
            Some(SignalStatus::Fail)
        } else if self.neutral.iter().any(|c| c == conclusion) {
            Some(SignalStatus::Neutral)
        } else {
            None
        }
    }
}

/// The signal `event` carries, if any, checked: its sha must be a full commit id
/// and its time must parse. Names are cleaned of control characters.
pub fn outcome(event: &GithubEvent, rules: &CiRules) -> Result<Option<Outcome>, OutcomeError> {
    let Some(mut found) = raw_outcome(event, rules) else {
        return Ok(None);
    };
    let sha = found.sha.to_ascii_lowercase();
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(OutcomeError::BadSha {
            field: "sha",
            value: found.sha.chars().take(80).collect(),
        });
    }
    found.sha = sha;
    found.context = clean_text(&found.context, 200);
    found.url = found.url.map(|u| clean_text(&u, 2048));
    found.key = clean_text(&found.key, 400);
    found.occurred_at = match event_time(event) {
        Some((field, text)) => {
            Some(parse_time(text).map_err(|message| OutcomeError::BadTime { field, message })?)
        }
        None => None,
    };
    Ok(Some(found))
}

/// The payload field that says when the outcome happened, and its text.
fn event_time(event: &GithubEvent) -> Option<(&'static str, &str)> {
    match event {
        GithubEvent::CheckSuite(e) => e
            .check_suite
            .updated_at
            .as_deref()
            .map(|t| ("check_suite.updated_at", t)),
        GithubEvent::CheckRun(e) => e
            .check_run
            .completed_at
            .as_deref()
            .map(|t| ("check_run.completed_at", t)),
        GithubEvent::WorkflowRun(e) => e
            .workflow_run
            .updated_at
            .as_deref()
            .map(|t| ("workflow_run.updated_at", t)),
        GithubEvent::Status(e) => e
            .updated_at
            .as_deref()
            .map(|t| ("updated_at", t))
            .or(e.created_at.as_deref().map(|t| ("created_at", t))),
        GithubEvent::DeploymentStatus(e) => {
            let status = &e.deployment_status;
            status
                .updated_at
                .as_deref()
                .map(|t| ("deployment_status.updated_at", t))
                .or(status
                    .created_at
                    .as_deref()
                    .map(|t| ("deployment_status.created_at", t)))
        }
        _ => None,
    }
}

/// Text from a payload made safe to store: control characters (NUL included,
/// which PostgreSQL refuses) dropped, at most `max` characters.
pub fn clean_text(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Only completed runs and final states count, so a `queued` arriving after its
/// `completed` changes nothing.
fn raw_outcome(event: &GithubEvent, rules: &CiRules) -> Option<Outcome> {
    match event {
        GithubEvent::CheckSuite(e) if e.action == "completed" => {
            let suite = &e.check_suite;
            let context = suite
                .app
                .as_ref()
                .and_then(|a| a.slug.clone().or(a.name.clone()))
                .unwrap_or_else(|| "check_suite".to_string());
            let conclusion = suite.conclusion.as_deref()?;
            let status = rules.status_for(conclusion)?;
            rules.counts(&context).then(|| Outcome {
                repo: e.repository.full_name.clone(),
                sha: suite.head_sha.clone(),
                name: SignalName::Ci,
                status,
                key: format!("github:check_suite:{}:{conclusion}", suite.id),
                context,
                attempt: None,
                url: None,
                source: "github:check_suite",
                occurred_at: None,
            })
        }
        GithubEvent::CheckRun(e) if e.action == "completed" => {
            let run = &e.check_run;
            let conclusion = run.conclusion.as_deref()?;
            let status = rules.status_for(conclusion)?;
            rules.counts(&run.name).then(|| Outcome {
                repo: e.repository.full_name.clone(),
                sha: run.head_sha.clone(),
                name: SignalName::Ci,
                status,
                context: run.name.clone(),
                attempt: None,
                url: run.html_url.clone(),
                key: format!("github:check_run:{}:{conclusion}", run.id),
                source: "github:check_run",
                occurred_at: None,
            })
        }
        GithubEvent::WorkflowRun(e) if e.action == "completed" => {
            let run = &e.workflow_run;
            let conclusion = run.conclusion.as_deref()?;
            let status = rules.status_for(conclusion)?;
            let context = run
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "workflow".to_string());
            let attempt = run.run_attempt.unwrap_or(1);
            rules.counts(&context).then(|| Outcome {
                repo: e.repository.full_name.clone(),
                sha: run.head_sha.clone(),
                name: SignalName::Ci,
                status,
                key: format!("github:workflow_run:{}:{attempt}", run.id),
                context,
                attempt: Some(attempt),
                url: run.html_url.clone(),
                source: "github:workflow_run",
                occurred_at: None,
            })
        }
        GithubEvent::Status(e) => {
            let status = match e.state.as_str() {
                "success" => SignalStatus::Pass,
                "failure" | "error" => SignalStatus::Fail,
                _ => return None, // pending
            };
            let key = match e.id {
                Some(id) => format!("github:status:{id}"),
                None => format!("github:status:{}:{}:{}", e.sha, e.context, e.state),
            };
            rules.counts(&e.context).then(|| Outcome {
                repo: e.repository.full_name.clone(),
                sha: e.sha.clone(),
                name: SignalName::Ci,
                status,
                context: e.context.clone(),
                attempt: None,
                url: e.target_url.clone(),
                key,
                source: "github:status",
                occurred_at: None,
            })
        }
        GithubEvent::DeploymentStatus(e) => {
            let status = match e.deployment_status.state.as_str() {
                "success" => SignalStatus::Pass,
                "failure" | "error" => SignalStatus::Fail,
                _ => return None, // queued, in_progress, pending, inactive
            };
            Some(Outcome {
                repo: e.repository.full_name.clone(),
                sha: e.deployment.sha.clone(),
                name: SignalName::Deploy,
                status,
                context: e
                    .deployment_status
                    .environment
                    .clone()
                    .or(e.deployment.environment.clone())
                    .unwrap_or_else(|| "deployment".to_string()),
                attempt: None,
                url: e.deployment_status.target_url.clone(),
                key: format!("github:deployment_status:{}", e.deployment_status.id),
                source: "github:deployment_status",
                occurred_at: None,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::events::parse;

    #[test]
    fn bad_shas_and_times_are_refused_and_names_cleaned() {
        let rules = CiRules::default();
        for sha in [
            "",
            "%",
            "_______",
            "abc1234",
            "zz6113728f27ae82c7b1a177c8d03f9e96e0adf2",
        ] {
            let body = serde_json::json!({
                "sha": sha, "state": "success", "context": "ci",
                "repository": { "full_name": "acme/api" },
            });
            let event = parse("status", &body.to_string()).unwrap();
            assert!(
                matches!(outcome(&event, &rules), Err(OutcomeError::BadSha { .. })),
                "{sha:?} must be refused"
            );
        }
        let body = serde_json::json!({
            "sha": "6113728F27AE82C7B1A177C8D03F9E96E0ADF246", "state": "failure",
            "context": "c\u{0}i\u{7}", "updated_at": "yesterday",
            "repository": { "full_name": "acme/api" },
        });
        let event = parse("status", &body.to_string()).unwrap();
        let err = outcome(&event, &rules).unwrap_err();
        assert!(err.to_string().contains("updated_at"), "{err}");
        let body = serde_json::json!({
            "sha": "6113728F27AE82C7B1A177C8D03F9E96E0ADF246", "state": "failure",
            "context": "c\u{0}i\u{7}", "repository": { "full_name": "acme/api" },
        });
        let event = parse("status", &body.to_string()).unwrap();
        let found = outcome(&event, &rules).unwrap().unwrap();
        assert_eq!(found.sha, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
        assert_eq!(found.context, "ci");
        assert_eq!(found.occurred_at, None, "no time in the payload");
    }

    fn workflow_run(id: i64, attempt: i64, conclusion: &str, name: &str) -> GithubEvent {
        let body = serde_json::json!({
            "action": "completed",
            "workflow_run": { "id": id, "name": name, "head_sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "status": "completed",
                              "conclusion": conclusion, "run_attempt": attempt },
            "repository": { "full_name": "acme/api" },
        });
        parse("workflow_run", &body.to_string()).unwrap()
    }

    #[test]
    fn reruns_cancellations_and_excluded_names() {
        let rules = CiRules::default();
        let outcome = |e: &GithubEvent, r: &CiRules| super::outcome(e, r).unwrap();
        let first = outcome(&workflow_run(9, 1, "failure", "tests"), &rules).unwrap();
        let rerun = outcome(&workflow_run(9, 2, "success", "tests"), &rules).unwrap();
        assert_eq!((first.status, first.attempt), (SignalStatus::Fail, Some(1)));
        assert_eq!((rerun.status, rerun.attempt), (SignalStatus::Pass, Some(2)));
        assert_ne!(first.key, rerun.key, "each attempt is its own signal");
        // Cancelled (typically superseded by a newer push) says nothing about the commit.
        assert_eq!(
            outcome(&workflow_run(9, 1, "cancelled", "tests"), &rules)
                .unwrap()
                .status,
            SignalStatus::Neutral
        );
        assert_eq!(
            outcome(&workflow_run(9, 1, "skipped", "tests"), &rules)
                .unwrap()
                .status,
            SignalStatus::Pass
        );
        assert!(outcome(&workflow_run(9, 1, "weird", "tests"), &rules).is_none());

        let rules = CiRules::new(&CiSignalConfig {
            exclude: vec!["lint*".into(), "Octocoders-*".into()],
            ..CiSignalConfig::default()
        })
        .unwrap();
        assert!(outcome(&workflow_run(9, 1, "failure", "lint-bot"), &rules).is_none());
        assert!(outcome(&workflow_run(9, 1, "failure", "tests"), &rules).is_some());
        let octocoders = serde_json::json!({
            "action": "completed",
            "check_run": { "id": 4, "name": "Octocoders-linter", "status": "completed",
                           "conclusion": "failure", "head_sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246" },
            "repository": { "full_name": "acme/api" },
        });
        let octocoders = parse("check_run", &octocoders.to_string()).unwrap();
        assert!(outcome(&octocoders, &rules).is_none());
        let only_tests = CiRules::new(&CiSignalConfig {
            include: vec!["test*".into()],
            ..CiSignalConfig::default()
        })
        .unwrap();
        assert!(outcome(&workflow_run(9, 1, "failure", "deploy-docs"), &only_tests).is_none());
    }
}
