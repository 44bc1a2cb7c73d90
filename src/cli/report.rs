//! `tokentally report`: a CI pipeline reports an outcome signal for the commit it built.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use sha2::Digest;

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
    /// Idempotency key: a retried report with the same key is recorded once [default: the CI job run, the signal and the context (GitHub Actions, GitLab); else random per call]
    #[arg(long)]
    pub key: Option<String>,
    /// What distinguishes this report from others of the same job run, e.g. the matrix values of a matrix job (`${{ toJSON(matrix) }}`); each context records its own signal and counts its own attempts [default: GitLab's CI_NODE_INDEX for parallel jobs; else none, and the default key is random per call so matrix legs never collide]
    #[arg(long)]
    pub context: Option<String>,
    /// owner/name [default: from the CI environment]
    #[arg(long)]
    pub repo: Option<String>,
    /// Commit id [default: from the CI environment]
    #[arg(long)]
    pub sha: Option<String>,
    /// Link to the CI run [default: from the CI environment, when it says]
    #[arg(long, value_name = "URL")]
    pub run_url: Option<String>,
    /// Attempts on connection errors, 429 and 5xx answers
    #[arg(long, default_value_t = 5)]
    pub attempts: u32,
    /// The longest total time to wait between attempts (429's Retry-After included), in seconds
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub max_wait: u64,
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
    let url = args.url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        anyhow::bail!(
            "--url / TOKENTALLY_URL must start with https:// or http:// (got {url:?}); \
             for example https://tokentally.example.com"
        );
    }
    if args.token.trim().is_empty() {
        anyhow::bail!(
            "the API token is empty: set TOKENTALLY_TOKEN (or --token) to a token from \
             `tokentally token create`. In GitHub Actions, secrets are not passed to workflows \
             run from forks: skip the report there (if: github.event.pull_request.head.repo.fork == false)"
        );
    }
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
        None => sha_from_env(&env)?.ok_or_else(|| {
            anyhow::anyhow!("no --sha given and none of {} is set", SHA_VARS.join(", "))
        })?,
    };
    let context = args
        .context
        .clone()
        .or_else(|| env.get("CI_NODE_INDEX").map(|i| format!("node-{i}")));
    let key = args
        .key
        .clone()
        .or_else(|| {
            // Without a context, legs of one matrix job share every variable GitHub
            // sets: only a key of their own keeps them from colliding.
            context
                .as_deref()
                .and_then(|context| key_from_env(&env, &args.signal, context))
        })
        .unwrap_or_else(|| format!("report-{}", crate::secret::random_hex(12)));
    let mut body = serde_json::json!({
        "repo": repo, "sha": sha, "signal": args.signal, "status": args.status, "key": key,
    });
    if let Some(context) = &context {
        body["context"] = context.clone().into();
    }
    if let Some(value) = args.value {
        body["value"] = value.into();
    }
    if let Some(url) = args.run_url.clone().or_else(|| run_url_from_env(&env)) {
        body["url"] = url.into();
    }
    let endpoint = format!("{}/api/v1/signals", url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;

    let mut delay = Duration::from_millis(500);
    let mut waited = Duration::ZERO;
    let max_wait = Duration::from_secs(args.max_wait);
    let attempts = args.attempts.max(1);
    for attempt in 1..=attempts {
        let last = attempt == attempts;
        let sent = client
            .post(&endpoint)
            .bearer_auth(args.token.trim())
            .json(&body)
            .send()
            .await;
        let wait = match sent {
            Ok(response) if response.status().is_success() => {
                let replayed = response.status() == reqwest::StatusCode::OK;
                super::say(format_args!(
                    "reported {} {} for {repo}@{}{}",
                    args.signal,
                    args.status,
                    &sha[..sha.len().min(12)],
                    if replayed { " (already recorded)" } else { "" }
                ));
                return Ok(());
            }
            Ok(response)
                if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS && !last =>
            {
                let retry_after = retry_after(&response).unwrap_or(delay);
                super::say(format_args!(
                    "the server is rate limiting this token (429); waiting {} s as its Retry-After says, then retrying",
                    retry_after.as_secs()
                ));
                retry_after
            }
            // 502/503/504: the server or its database is away for now; a 500 is a
            // fault that the same request will meet again, so it is not retried.
            Ok(response) if is_temporary(response.status()) && !last => {
                let wait = retry_after(&response).unwrap_or(delay);
                super::say(format_args!(
                    "server answered {}; retrying in {wait:?}",
                    response.status()
                ));
                wait
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
                super::say(format_args!(
                    "cannot reach {endpoint} ({}); retrying in {delay:?}",
                    causes(&err)
                ));
                delay
            }
            Err(err) => {
                anyhow::bail!(
                    "cannot reach {endpoint} after {attempts} attempts: {}",
                    causes(&err)
                )
            }
        };
        if waited + wait > max_wait {
            anyhow::bail!(
                "gave up: waiting {} s more would pass --max-wait ({} s); the signal was not recorded",
                wait.as_secs(),
                args.max_wait
            );
        }
        tokio::time::sleep(wait).await;
        waited += wait;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    unreachable!("the last attempt returns")
}

/// Answers that say "try again later".
fn is_temporary(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}

/// The response's `Retry-After` in seconds, when it has one.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// An error with every cause (`error sending request: … : Connection refused`).
fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// In a `pull_request` workflow GITHUB_SHA is GitHub's temporary merge commit,
/// which never lands: the pull request's head comes from the event file.
fn sha_from_env(env: &HashMap<String, String>) -> anyhow::Result<Option<String>> {
    let event = env.get("GITHUB_EVENT_NAME").map(String::as_str);
    if matches!(event, Some("pull_request" | "pull_request_target"))
        && let Some(path) = env.get("GITHUB_EVENT_PATH")
    {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read GITHUB_EVENT_PATH {path} for the pull request's head: {e}")
        })?;
        let event: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("GITHUB_EVENT_PATH {path} is not JSON: {e}"))?;
        if let Some(head) = event["pull_request"]["head"]["sha"].as_str() {
            return Ok(Some(head.to_string()));
        }
    }
    Ok(first_set(env, SHA_VARS))
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

/// One key per CI job run, signal and context, so retries and re-sent reports
/// are recorded once and each matrix leg (context) records its own.
fn key_from_env(env: &HashMap<String, String>, signal: &str, context: &str) -> Option<String> {
    let context = hex::encode(&sha2::Sha256::digest(context.as_bytes())[..8]);
    if let Some(run) = env.get("GITHUB_RUN_ID") {
        let attempt = env
            .get("GITHUB_RUN_ATTEMPT")
            .map(String::as_str)
            .unwrap_or("1");
        let job = env.get("GITHUB_JOB").map(String::as_str).unwrap_or("job");
        return Some(format!("github-{run}-{attempt}-{job}-{signal}-{context}"));
    }
    env.get("CI_JOB_ID")
        .map(|job| format!("gitlab-{job}-{signal}-{context}"))
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
        let key = key_from_env(&gh, "ci", "{\"os\":\"linux\"}").unwrap();
        assert!(key.starts_with("github-77-2-test-ci-"), "{key}");
        assert_ne!(
            key,
            key_from_env(&gh, "ci", "{\"os\":\"macos\"}").unwrap(),
            "matrix legs get keys of their own"
        );
        assert_eq!(key, key_from_env(&gh, "ci", "{\"os\":\"linux\"}").unwrap());
        assert_eq!(
            run_url_from_env(&gh).as_deref(),
            Some("https://github.com/acme/api/actions/runs/77")
        );
        assert!(
            key_from_env(&env(&[("CI_JOB_ID", "5")]), "deploy", "x")
                .unwrap()
                .starts_with("gitlab-5-deploy-")
        );
    }
}
