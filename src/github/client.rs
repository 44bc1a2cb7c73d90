//! GitHub's REST API through octocrab: with `github.token`, or as a GitHub App
//! (`app_id` + `private_key`) with an installation token per installation,
//! fetched on first use and refreshed before its hour ends. Every request
//! goes to `github.api_url` (GitHub Enterprise, tests) and through one retry
//! policy of our own (octocrab's is not compiled in): 5xx, 429, secondary
//! rate limits (a 403 saying so; `Retry-After` honoured up to a minute) and
//! network errors are retried with back-off; other answers are returned as
//! they are.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use octocrab::Octocrab;
use serde_json::Value;
use tokio::sync::Mutex;

use super::settings::GithubConfig;
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::secret::Secret;

/// Attempts of one request.
const ATTEMPTS: u32 = 3;
/// An installation token is replaced when it has less than this left.
const REFRESH_BEFORE_MS: i64 = 5 * 60 * 1000;
const TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `Retry-After` of a rate limit waited out within one request.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// GitHub answered with this status (after retries, for 5xx/429).
    #[error("GitHub answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("GitHub could not be reached: {0}")]
    Network(String),
    #[error("GitHub App: {0}")]
    App(String),
}

impl GithubError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GithubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

enum Auth {
    Token(Octocrab),
    App {
        app: Octocrab,
        /// installation id → (client, expiry in epoch ms).
        installations: Mutex<HashMap<i64, (Octocrab, i64)>>,
    },
}

#[derive(Clone)]
pub struct GithubClient {
    auth: Arc<Auth>,
    api_url: String,
    retry_base: Duration,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

fn token_client(api_url: &str, token: &Secret) -> Result<Octocrab, GithubError> {
    Octocrab::builder()
        .set_connect_timeout(Some(TIMEOUT))
        .set_read_timeout(Some(TIMEOUT))
        .base_uri(api_url)
        .map_err(|e| GithubError::App(format!("github.api_url: {e}")))?
        .personal_token(token.expose().to_string())
        .build()
        .map_err(|e| GithubError::App(e.to_string()))
}

impl GithubClient {
    /// The client the configuration asks for: `None` without a token or App.
    pub fn from_config(
        github: &GithubConfig,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Result<Option<GithubClient>, GithubError> {
        let api_url = github.api_url.trim_end_matches('/').to_string();
        let auth = match (&github.app_id, &github.private_key, &github.token) {
            (Some(app_id), Some(key_path), _) => {
                let pem = std::fs::read(key_path).map_err(|e| {
                    GithubError::App(format!("github.private_key {}: {e}", key_path.display()))
                })?;
                let key = octocrab::EncodingKey::from_rsa_pem(&pem).map_err(|e| {
                    GithubError::App(format!(
                        "github.private_key {} is not an RSA private key in PEM: {e}",
                        key_path.display()
                    ))
                })?;
                let app = Octocrab::builder()
                    .set_connect_timeout(Some(TIMEOUT))
                    .set_read_timeout(Some(TIMEOUT))
                    .base_uri(api_url.as_str())
                    .map_err(|e| GithubError::App(format!("github.api_url: {e}")))?
                    .app(octocrab::models::AppId(*app_id), key)
                    .build()
                    .map_err(|e| GithubError::App(e.to_string()))?;
                Auth::App {
                    app,
                    installations: Mutex::new(HashMap::new()),
                }
            }
            (_, _, Some(token)) => Auth::Token(token_client(&api_url, token)?),
            _ => return Ok(None),
        };
        Ok(Some(GithubClient {
            auth: Arc::new(auth),
            api_url,
            retry_base: Duration::from_millis(github.retry_base_ms),
            clock,
            metrics,
        }))
    }

    /// The client for a repository of `installation` (an App needs one; a token ignores it).
    async fn client(&self, installation: Option<i64>) -> Result<Octocrab, GithubError> {
        match &*self.auth {
            Auth::Token(client) => Ok(client.clone()),
            Auth::App { app, installations } => {
                let id = installation.ok_or_else(|| {
                    GithubError::App(
                        "no installation is known for this repository (it comes with the App's events)"
                            .to_string(),
                    )
                })?;
                let mut cache = installations.lock().await;
                let now = self.clock.now_ms();
                if let Some((client, expires_at)) = cache.get(&id)
                    && *expires_at - REFRESH_BEFORE_MS > now
                {
                    return Ok(client.clone());
                }
                let route = format!("/app/installations/{id}/access_tokens");
                let answer: Value = self
                    .retried(app, |app| {
                        let route = route.clone();
                        async move { app.post(route, None::<&()>).await }
                    })
                    .await?;
                let token = answer["token"].as_str().ok_or_else(|| {
                    GithubError::App("the installation token answer has no token".into())
                })?;
                let expires_at = answer["expires_at"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp_millis())
                    // GitHub's tokens last an hour.
                    .unwrap_or(now + 3_600_000);
                let client = token_client(&self.api_url, &Secret::new(token))?;
                cache.insert(id, (client.clone(), expires_at));
                tracing::info!(installation = id, "GitHub App installation token fetched");
                Ok(client)
            }
        }
    }

    /// Runs `request` with `client` under the retry policy.
    async fn retried<F, Fut>(&self, client: &Octocrab, request: F) -> Result<Value, GithubError>
    where
        F: Fn(Octocrab) -> Fut,
        Fut: std::future::Future<Output = octocrab::Result<Value>>,
    {
        let mut wait = self.retry_base;
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            // GitHub's own wait, when it names one (rate limits).
            let mut asked_wait = None;
            let error = match request(client.clone()).await {
                Ok(value) => {
                    self.metrics.github_request("ok");
                    return Ok(value);
                }
                Err(octocrab::Error::GitHub { source, .. }) => {
                    let status = source.status_code.as_u16();
                    let error = GithubError::Status {
                        status,
                        message: source.message.clone(),
                    };
                    // A secondary rate limit is a 403 that says so.
                    let rate_limited = status == 429
                        || (status == 403 && source.message.to_lowercase().contains("rate limit"));
                    if !(status >= 500 || rate_limited) {
                        self.metrics.github_request("failed");
                        return Err(error);
                    }
                    asked_wait = source
                        .headers
                        .as_ref()
                        .and_then(|h| h.get("retry-after"))
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    if asked_wait.is_some_and(|w| w > MAX_RATE_LIMIT_WAIT) {
                        // Too long to hold a delivery: the next event or run tries again.
                        self.metrics.github_request("failed");
                        return Err(error);
                    }
                    error
                }
                Err(e @ (octocrab::Error::Json { .. } | octocrab::Error::Serde { .. })) => {
                    // Never read an unreadable answer as "nothing there" (that
                    // would write a second comment).
                    self.metrics.github_request("failed");
                    return Err(GithubError::Network(format!(
                        "an answer that is not JSON: {e}"
                    )));
                }
                Err(e) => GithubError::Network(e.to_string()),
            };
            last = Some(error);
            if attempt < ATTEMPTS {
                self.metrics.github_request("retried");
                tokio::time::sleep(asked_wait.unwrap_or(wait)).await;
                wait *= 2;
            }
        }
        self.metrics.github_request("failed");
        Err(last.expect("at least one attempt"))
    }

    /// A GET as the App itself (its JWT), such as `/app`; with a token, as the token.
    pub async fn get_as_app(&self, route: &str) -> Result<Value, GithubError> {
        let client = match &*self.auth {
            Auth::Token(client) => client.clone(),
            Auth::App { app, .. } => app.clone(),
        };
        self.retried(&client, |c| async move { c.get(route, None::<&()>).await })
            .await
    }

    pub async fn get(&self, installation: Option<i64>, route: &str) -> Result<Value, GithubError> {
        let client = self.client(installation).await?;
        self.retried(&client, |c| async move { c.get(route, None::<&()>).await })
            .await
    }

    pub async fn post(
        &self,
        installation: Option<i64>,
        route: &str,
        body: &Value,
    ) -> Result<Value, GithubError> {
        let client = self.client(installation).await?;
        self.retried(&client, |c| async move { c.post(route, Some(body)).await })
            .await
    }

    pub async fn patch(
        &self,
        installation: Option<i64>,
        route: &str,
        body: &Value,
    ) -> Result<Value, GithubError> {
        let client = self.client(installation).await?;
        self.retried(&client, |c| async move { c.patch(route, Some(body)).await })
            .await
    }
}
