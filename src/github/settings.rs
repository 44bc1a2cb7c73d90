//! `[github]`: how the service reaches GitHub (webhook secrets, token or App,
//! API address) and which repositories it takes events for.

use std::path::PathBuf;

use serde::Deserialize;

use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubConfig {
    /// Every secret is accepted, so a secret can be rotated without downtime.
    pub webhook_secrets: Vec<Secret>,
    /// Token for fetching private repositories over HTTPS (and, later, the API).
    pub token: Option<Secret>,
    /// GitHub's REST API; its web host is where mirrors are fetched from and the
    /// only host the token is sent to.
    pub api_url: String,
    /// A GitHub App instead of a token: its id …
    pub app_id: Option<u64>,
    /// … and the path of its private key (PEM); installation tokens are fetched per event.
    pub private_key: Option<PathBuf>,
    /// Keep one comment on each pull request with AI-assisted commits.
    pub pr_comments: bool,
    /// How often every mirror is fetched, for pushes whose webhooks were lost.
    pub reconcile_interval_seconds: u64,
    /// First wait before retrying a GitHub API request after a 5xx, 429 or network error.
    pub retry_base_ms: u64,
    /// `owner/name` or `owner/*` patterns of the repositories events are taken
    /// for; empty: an App's installations, or any repository without an App.
    pub repositories: Vec<String>,
}

impl Default for GithubConfig {
    fn default() -> Self {
        GithubConfig {
            webhook_secrets: Vec::new(),
            token: None,
            api_url: "https://api.github.com".to_string(),
            app_id: None,
            private_key: None,
            pr_comments: true,
            reconcile_interval_seconds: 600,
            retry_base_ms: 1_000,
            repositories: Vec::new(),
        }
    }
}
