//! Every real GitHub payload of the CI and deploy events turns into the signal
//! its fields say (or none), with the event's own time. Payloads are picked by
//! content, so the shared fixtures and the npm package's set both work.

use tokentally::github::events::{GithubEvent, parse, parse_time};
use tokentally::github::outcomes::{CiRules, outcome};

use crate::support::{self, fixture_where, fixtures};

fn event(name: &str, body: &[u8]) -> GithubEvent {
    parse(name, std::str::from_utf8(body).unwrap()).unwrap()
}

#[test]
fn every_ci_and_deploy_payload_gives_the_signal_its_fields_say() {
    if !support::fixtures_available() {
        return;
    }
    let rules = CiRules::default();
    let mut seen = 0;
    for (name, file, body) in fixtures() {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let action = v["action"].as_str().unwrap_or_default();
        let expected: Option<(&str, &str, String)> = match name.as_str() {
            "check_suite" | "check_run" | "workflow_run" => {
                let run = &v[name.as_str()];
                let status = match run["conclusion"].as_str() {
                    Some("success" | "neutral" | "skipped") => Some("pass"),
                    Some("failure" | "timed_out" | "action_required" | "startup_failure") => {
                        Some("fail")
                    }
                    Some("cancelled" | "stale") => Some("neutral"),
                    _ => None,
                };
                let time = match name.as_str() {
                    "check_run" => &run["completed_at"],
                    _ => &run["updated_at"],
                };
                match (action, status) {
                    ("completed", Some(status)) => {
                        Some(("ci", status, time.as_str().unwrap_or_default().to_string()))
                    }
                    _ => None,
                }
            }
            "status" => match v["state"].as_str().unwrap() {
                "success" => Some(("ci", "pass", v["updated_at"].as_str().unwrap().into())),
                "failure" | "error" => {
                    Some(("ci", "fail", v["updated_at"].as_str().unwrap().into()))
                }
                _ => None,
            },
            "deployment_status" => {
                let ds = &v["deployment_status"];
                let time = ds["updated_at"].as_str().unwrap().to_string();
                match ds["state"].as_str().unwrap() {
                    "success" => Some(("deploy", "pass", time)),
                    "failure" | "error" => Some(("deploy", "fail", time)),
                    _ => None,
                }
            }
            _ => continue,
        };
        seen += 1;
        let found =
            outcome(&event(&name, &body), &rules).unwrap_or_else(|e| panic!("{name}/{file}: {e}"));
        match (found, expected) {
            (None, None) => {}
            (Some(found), Some((signal, status, time))) => {
                assert_eq!(
                    (found.name.as_str(), found.status.as_str()),
                    (signal, status),
                    "{name}/{file}"
                );
                assert_eq!(found.sha.len(), 40, "{name}/{file}");
                let at = (!time.is_empty()).then(|| parse_time(&time).unwrap());
                assert_eq!(found.occurred_at, at, "{name}/{file}: the event's time");
            }
            (found, expected) => panic!("{name}/{file}: {found:?}, expected {expected:?}"),
        }
    }
    assert!(seen >= 25, "{seen} CI and deploy payloads");
}

#[test]
fn known_payloads_give_known_values() {
    if !support::fixtures_available() {
        return;
    }
    let rules = CiRules::default();
    let body = fixture_where("status", |v| v["id"] == 6805126730u64 && support::plain(v));
    let status = outcome(&event("status", &body), &rules).unwrap().unwrap();
    assert_eq!(status.sha, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    assert_eq!(status.repo, "Codertocat/Hello-World");
    assert_eq!(status.key, "github:status:6805126730");
    assert_eq!(status.context, "default");
    assert_eq!(status.occurred_at, Some(1_557_933_655_000)); // 2019-05-15T15:20:55Z

    let body = fixture_where("check_run", |v| {
        v["action"] == "completed" && v["check_run"]["conclusion"] == "success" && support::plain(v)
    });
    let run = outcome(&event("check_run", &body), &rules)
        .unwrap()
        .unwrap();
    assert_eq!(run.context, "Octocoders-linter");
    assert_eq!(run.occurred_at, Some(1_557_933_672_000)); // 15:21:12Z

    let body = fixture_where("workflow_run", |v| {
        v["action"] == "completed"
            && v["workflow_run"]["pull_requests"]
                .as_array()
                .is_some_and(Vec::is_empty)
            && v["repository"]["full_name"] == "octo-org/octo-repo"
    });
    let run = outcome(&event("workflow_run", &body), &rules)
        .unwrap()
        .unwrap();
    assert_eq!((run.status.as_str(), run.attempt), ("pass", Some(1)));
}
