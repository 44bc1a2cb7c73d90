//! `tokentally report`: a CI pipeline reports an outcome signal for the commit it built.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::process_env;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The tokentally server, e.g. https://tokentally.example.com
    #[arg(long, env = "TOKENTALLY_URL", value_name = "URL")]
    pub url: String,
    /// API token (tokentally token create)
    #[arg(
        long,
        env = "TOKENTALLY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: String,
    /// Signal name: ci, deploy, incident, or a custom name
    #[arg(long)]
    pub signal: String,
    /// pass or fail
    #[arg(long)]
    pub status: String,
    /// Optional number (duration, coverage, …)
    #[arg(long)]
    pub value: Option<f64>,
    /// Idempotency key [default: from the CI run (GitHub Actions, GitLab), else random per call]
    #[arg(long)]
    pub key: Option<String>,
    /// owner/name [default: from the CI environment]
    #[arg(long)]
    pub repo: Option<String>,
    /// Commit id [default: from the CI environment]
    #[arg(long)]
    pub sha: Option<String>,
    /// Link to the CI run [default: from the CI environment, when it says]
    #[arg(long, value_name = "URL")]
    pub run_url: Option<String>,
    /// Attempts on connection errors and 5xx answers
    #[arg(long, default_value_t = 5)]
    pub attempts: u32,
}

/// Where each CI keeps the repository and the commit.
const SHA_VARS: &[&str] = &[
    "GITHUB_SHA",
    "CI_COMMIT_SHA",
    "BUILDKITE_COMMIT",
    "CIRCLE_SHA1",
    "GIT_COMMIT",
];
const REPO_VARS: &[&str] = &[
    "GITHUB_REPOSITORY",
    "CI_PROJECT_PATH",
    "BUILDKITE_REPO",
    "CIRCLE_PROJECT_USERNAME + CIRCLE_PROJECT_REPONAME",
    "GIT_URL",
];

pub async fn run(_config_path: Option<&PathBuf>, args: ReportArgs) -> anyhow::Result<()> {
    let env = process_env();
    let repo = match args.repo.clone() {
        Some(repo) => repo,
        None => repo_from_env(&env).ok_or_else(|| {
            anyhow::anyhow!(
                "no --repo given and none of {} is set",
                REPO_VARS.join(", ")
            )
        })?,
    };
    let sha = match args.sha.clone() {
        Some(sha) => sha,
        None => first_set(&env, SHA_VARS).ok_or_else(|| {
            anyhow::anyhow!("no --sha given and none of {} is set", SHA_VARS.join(", "))
        })?,
    };
    let key = args
        .key
        .clone()
        .or_else(|| key_from_env(&env, &args.signal))
        .unwrap_or_else(|| format!("report-{}", crate::config::random_hex(12)));
    let mut body = serde_json::json!({
        "repo": repo, "sha": sha, "signal": args.signal, "status": args.status, "key": key,
    });
    if let Some(value) = args.value {
        body["value"] = value.into();
    }
    if let Some(url) = args.run_url.clone().or_else(|| run_url_from_env(&env)) {
        body["url"] = url.into();
    }
    let endpoint = format!("{}/api/v1/signals", args.url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;

    let mut delay = Duration::from_millis(500);
    let attempts = args.attempts.max(1);
    for attempt in 1..=attempts {
        let last = attempt == attempts;
        let sent = client
            .post(&endpoint)
            .bearer_auth(&args.token)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                let replayed = response.status() == reqwest::StatusCode::OK;
                eprintln!(
                    "reported {} {} for {repo}@{}{}",
                    args.signal,
                    args.status,
                    &sha[..sha.len().min(12)],
                    if replayed { " (already recorded)" } else { "" }
                );
                return Ok(());
            }
            Ok(response) if response.status().is_server_error() && !last => {
                eprintln!(
                    "server answered {}; retrying in {delay:?}",
                    response.status()
                );
            }
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let message = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or(text);
                anyhow::bail!("the server refused the signal ({status}): {message}");
            }
            Err(err) if !last => {
                eprintln!("cannot reach {endpoint} ({err}); retrying in {delay:?}");
            }
            Err(err) => {
                anyhow::bail!("cannot reach {endpoint} after {attempts} attempts: {err}")
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    unreachable!("the last attempt returns")
}

fn first_set(env: &HashMap<String, String>, vars: &[&str]) -> Option<String> {
    vars.iter()
        .filter_map(|v| env.get(*v))
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
}

/// `owner/name` from the CI's variables (a git URL is reduced to its last two parts).
pub fn repo_from_env(env: &HashMap<String, String>) -> Option<String> {
    if let Some(repo) = first_set(env, &["GITHUB_REPOSITORY", "CI_PROJECT_PATH"]) {
        return Some(repo);
    }
    if let (Some(user), Some(name)) = (
        env.get("CIRCLE_PROJECT_USERNAME"),
        env.get("CIRCLE_PROJECT_REPONAME"),
    ) {
        return Some(format!("{user}/{name}"));
    }
    first_set(env, &["BUILDKITE_REPO", "GIT_URL"]).and_then(|url| repo_from_git_url(&url))
}

/// `git@github.com:acme/api.git`, `https://github.com/acme/api.git` → `acme/api`.
pub fn repo_from_git_url(url: &str) -> Option<String> {
    let trimmed = url.trim().trim_end_matches('/').trim_end_matches(".git");
    let mut parts = trimmed.rsplit(['/', ':']);
    let name = parts.next()?;
    let owner = parts.next()?;
    (!owner.is_empty() && !name.is_empty()).then(|| format!("{owner}/{name}"))
}

/// One key per CI job run and signal, so retries and re-sent reports are recorded once.
fn key_from_env(env: &HashMap<String, String>, signal: &str) -> Option<String> {
    if let Some(run) = env.get("GITHUB_RUN_ID") {
        let attempt = env
            .get("GITHUB_RUN_ATTEMPT")
            .map(String::as_str)
            .unwrap_or("1");
        let job = env.get("GITHUB_JOB").map(String::as_str).unwrap_or("job");
        return Some(format!("github-{run}-{attempt}-{job}-{signal}"));
    }
    env.get("CI_JOB_ID")
        .map(|job| format!("gitlab-{job}-{signal}"))
}

fn run_url_from_env(env: &HashMap<String, String>) -> Option<String> {
    if let (Some(server), Some(repo), Some(run)) = (
        env.get("GITHUB_SERVER_URL"),
        env.get("GITHUB_REPOSITORY"),
        env.get("GITHUB_RUN_ID"),
    ) {
        return Some(format!("{server}/{repo}/actions/runs/{run}"));
    }
    first_set(
        env,
        &[
            "CI_JOB_URL",
            "BUILDKITE_BUILD_URL",
            "CIRCLE_BUILD_URL",
            "BUILD_URL",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn repositories_from_each_ci() {
        assert_eq!(
            repo_from_env(&env(&[("GITHUB_REPOSITORY", "acme/api")])).as_deref(),
            Some("acme/api")
        );
        assert_eq!(
            repo_from_env(&env(&[("CI_PROJECT_PATH", "group/proj")])).as_deref(),
            Some("group/proj")
        );
        assert_eq!(
            repo_from_env(&env(&[
                ("CIRCLE_PROJECT_USERNAME", "acme"),
                ("CIRCLE_PROJECT_REPONAME", "web")
            ]))
            .as_deref(),
            Some("acme/web")
        );
        assert_eq!(
            repo_from_env(&env(&[("BUILDKITE_REPO", "git@github.com:acme/ops.git")])).as_deref(),
            Some("acme/ops")
        );
        assert_eq!(
            repo_from_env(&env(&[("GIT_URL", "https://github.com/acme/jobs.git")])).as_deref(),
            Some("acme/jobs")
        );
        assert_eq!(repo_from_env(&env(&[])), None);
    }

    #[test]
    fn keys_and_links_from_github_actions() {
        let gh = env(&[
            ("GITHUB_RUN_ID", "77"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("GITHUB_JOB", "test"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/api"),
        ]);
        assert_eq!(
            key_from_env(&gh, "ci").as_deref(),
            Some("github-77-2-test-ci")
        );
        assert_eq!(
            run_url_from_env(&gh).as_deref(),
            Some("https://github.com/acme/api/actions/runs/77")
        );
        assert_eq!(
            key_from_env(&env(&[("CI_JOB_ID", "5")]), "deploy").as_deref(),
            Some("gitlab-5-deploy")
        );
    }
}
