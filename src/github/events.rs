//! GitHub webhook payloads turned into the project's own event types.
//!
//! Only the fields tokentally acts on are read; everything else in a payload is
//! ignored, so GitHub adding fields never breaks parsing. Parsing happens in the
//! worker, not at ingress: a payload that fails to parse stays stored with the
//! error and can be processed again by a fixed version.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// An event tokentally understands, or the name of one it does not handle.
#[derive(Debug, Clone, PartialEq)]
pub enum GithubEvent {
    Push(PushEvent),
    PullRequest(PullRequestEvent),
    CheckSuite(CheckSuiteEvent),
    CheckRun(CheckRunEvent),
    WorkflowRun(WorkflowRunEvent),
    Status(StatusEvent),
    DeploymentStatus(DeploymentStatusEvent),
    Installation(InstallationEvent),
    /// Not GitHub's: the service's own request to fetch a mirror, for pushes
    /// whose webhooks were lost (see `jobs::reconcile`).
    Reconcile(ReconcileEvent),
    /// An event no handler wants (stars, issues, …): acknowledged and ignored.
    Unhandled(String),
}

#[derive(Debug, thiserror::Error)]
#[error("{event} payload does not parse at `{path}`: {message}")]
pub struct ParseError {
    pub event: String,
    pub path: String,
    pub message: String,
}

/// Turns the body of a delivery with the `X-GitHub-Event` name `event` into an event.
pub fn parse(event: &str, payload: &str) -> Result<GithubEvent, ParseError> {
    Ok(match event {
        "push" => GithubEvent::Push(from_json(event, payload)?),
        "pull_request" => GithubEvent::PullRequest(from_json(event, payload)?),
        "check_suite" => GithubEvent::CheckSuite(from_json(event, payload)?),
        "check_run" => GithubEvent::CheckRun(from_json(event, payload)?),
        "workflow_run" => GithubEvent::WorkflowRun(from_json(event, payload)?),
        "status" => GithubEvent::Status(from_json(event, payload)?),
        "deployment_status" => GithubEvent::DeploymentStatus(from_json(event, payload)?),
        "installation" | "installation_repositories" => {
            GithubEvent::Installation(from_json(event, payload)?)
        }
        RECONCILE_EVENT => GithubEvent::Reconcile(from_json(event, payload)?),
        other => GithubEvent::Unhandled(other.to_string()),
    })
}

fn from_json<T: DeserializeOwned>(event: &str, payload: &str) -> Result<T, ParseError> {
    let de = &mut serde_json::Deserializer::from_str(payload);
    serde_path_to_error::deserialize(de).map_err(|err| ParseError {
        event: event.to_string(),
        path: err.path().to_string(),
        message: err.inner().to_string(),
    })
}

impl GithubEvent {
    /// The repository the event is about, when it names one.
    /// The App installation the event came through.
    pub fn installation_id(&self) -> Option<i64> {
        let installation = match self {
            GithubEvent::Push(e) => &e.installation,
            GithubEvent::PullRequest(e) => &e.installation,
            GithubEvent::CheckSuite(e) => &e.installation,
            GithubEvent::CheckRun(e) => &e.installation,
            GithubEvent::WorkflowRun(e) => &e.installation,
            GithubEvent::Status(e) => &e.installation,
            GithubEvent::DeploymentStatus(e) => &e.installation,
            GithubEvent::Installation(e) => return Some(e.installation.id),
            GithubEvent::Reconcile(_) | GithubEvent::Unhandled(_) => return None,
        };
        installation.as_ref().map(|i| i.id)
    }

    pub fn repository(&self) -> Option<&RepositoryRef> {
        match self {
            GithubEvent::Push(e) => Some(&e.repository),
            GithubEvent::PullRequest(e) => Some(&e.repository),
            GithubEvent::CheckSuite(e) => Some(&e.repository),
            GithubEvent::CheckRun(e) => Some(&e.repository),
            GithubEvent::WorkflowRun(e) => Some(&e.repository),
            GithubEvent::Status(e) => Some(&e.repository),
            GithubEvent::DeploymentStatus(e) => Some(&e.repository),
            GithubEvent::Reconcile(e) => Some(&e.repository),
            GithubEvent::Installation(_) | GithubEvent::Unhandled(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RepositoryRef {
    pub id: Option<i64>,
    pub full_name: String,
    pub default_branch: Option<String>,
    pub clone_url: Option<String>,
    /// When the last push happened: epoch seconds in push events, RFC 3339 elsewhere.
    pub pushed_at: Option<EventTime>,
}

/// A time as GitHub writes it in payloads: RFC 3339 text, or (in a few places
/// such as `repository.pushed_at` of push events) epoch seconds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum EventTime {
    Seconds(i64),
    Text(String),
}

impl EventTime {
    /// Epoch milliseconds; an error naming the value when it is not a time.
    pub fn to_ms(&self) -> Result<i64, String> {
        match self {
            EventTime::Seconds(s) if *s > 0 => Ok(s.saturating_mul(1000)),
            EventTime::Seconds(s) => Err(format!("{s} is not a time")),
            EventTime::Text(text) => parse_time(text),
        }
    }
}

/// Epoch milliseconds of an RFC 3339 time (`2019-05-15T15:20:55Z`, `…+00:00`).
pub fn parse_time(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserRef {
    pub login: String,
    pub id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GitPerson {
    pub name: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PushCommit {
    pub id: String,
    pub message: String,
    pub timestamp: Option<String>,
    pub author: Option<GitPerson>,
    pub committer: Option<GitPerson>,
    #[serde(default)]
    pub distinct: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PushEvent {
    /// The App installation the event came through (App webhooks only).
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub before: String,
    pub after: String,
    #[serde(default)]
    pub created: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub forced: bool,
    #[serde(default)]
    pub commits: Vec<PushCommit>,
    pub head_commit: Option<PushCommit>,
    pub pusher: Option<GitPerson>,
    pub repository: RepositoryRef,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BranchRef {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PullRequest {
    pub number: i64,
    pub state: String,
    pub title: Option<String>,
    pub html_url: Option<String>,
    pub user: Option<UserRef>,
    pub head: BranchRef,
    pub base: BranchRef,
    #[serde(default)]
    pub merged: bool,
    pub merge_commit_sha: Option<String>,
    pub merged_by: Option<UserRef>,
    pub merged_at: Option<String>,
}

/// What happened to a pull request: the actions tokentally acts on, or another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullRequestAction {
    Opened,
    Reopened,
    Synchronize,
    Closed,
    /// Labeled, edited, review requested, …: nothing to do.
    Other(String),
}

impl PullRequestAction {
    /// New commits may have arrived or landed: the mirror is synced.
    pub fn brings_commits(&self) -> bool {
        !matches!(self, PullRequestAction::Other(_))
    }
}

impl<'de> Deserialize<'de> for PullRequestAction {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        Ok(match String::deserialize(de)?.as_str() {
            "opened" => PullRequestAction::Opened,
            "reopened" => PullRequestAction::Reopened,
            "synchronize" => PullRequestAction::Synchronize,
            "closed" => PullRequestAction::Closed,
            other => PullRequestAction::Other(other.to_string()),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PullRequestEvent {
    /// The App installation the event came through (App webhooks only).
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub action: PullRequestAction,
    pub number: i64,
    pub pull_request: PullRequest,
    pub repository: RepositoryRef,
    pub sender: Option<UserRef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AppRef {
    pub slug: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CheckSuite {
    pub id: i64,
    pub head_sha: String,
    pub head_branch: Option<String>,
    pub status: Option<String>,
    pub conclusion: Option<String>,
    pub app: Option<AppRef>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CheckSuiteEvent {
    /// The App installation the event came through (App webhooks only).
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub action: String,
    pub check_suite: CheckSuite,
    pub repository: RepositoryRef,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CheckSuiteRef {
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CheckRun {
    pub id: i64,
    pub name: String,
    pub head_sha: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub html_url: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub check_suite: Option<CheckSuiteRef>,
    pub app: Option<AppRef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CheckRunEvent {
    /// The App installation the event came through (App webhooks only).
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub action: String,
    pub check_run: CheckRun,
    pub repository: RepositoryRef,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkflowRun {
    pub id: i64,
    pub name: Option<String>,
    pub head_sha: String,
    pub head_branch: Option<String>,
    pub status: Option<String>,
    pub conclusion: Option<String>,
    /// 1 for the first run, 2+ for re-runs.
    pub run_attempt: Option<i64>,
    pub event: Option<String>,
    pub html_url: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkflowRunEvent {
    /// The App installation the event came through (App webhooks only).
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub action: String,
    pub workflow_run: WorkflowRun,
    pub repository: RepositoryRef,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StatusEvent {
    /// The App installation the event came through (App webhooks only).
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub id: Option<i64>,
    pub sha: String,
    /// pending | success | failure | error
    pub state: String,
    pub context: String,
    pub target_url: Option<String>,
    pub description: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub repository: RepositoryRef,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Deployment {
    pub id: i64,
    pub sha: String,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub environment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeploymentStatus {
    pub id: i64,
    /// pending | success | failure | error | inactive | in_progress | queued
    pub state: String,
    pub environment: Option<String>,
    pub target_url: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeploymentStatusEvent {
    /// The App installation the event came through (App webhooks only).
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub action: String,
    pub deployment: Deployment,
    pub deployment_status: DeploymentStatus,
    pub repository: RepositoryRef,
}

/// The event name of the service's own mirror fetches.
pub const RECONCILE_EVENT: &str = "tokentally_reconcile";

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ReconcileEvent {
    pub repository: RepositoryRef,
}

/// `installation` of an App's event: which installation token reaches the repository.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InstallationRef {
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Installation {
    pub id: i64,
    pub account: Option<UserRef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InstalledRepository {
    pub id: Option<i64>,
    pub full_name: String,
}

/// `installation` and `installation_repositories` events: which repositories an App covers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InstallationEvent {
    pub action: String,
    pub installation: Installation,
    /// `installation` events list the repositories (absent for "all repositories" installs).
    #[serde(default)]
    pub repositories: Option<Vec<InstalledRepository>>,
    #[serde(default)]
    pub repositories_added: Vec<InstalledRepository>,
    #[serde(default)]
    pub repositories_removed: Vec<InstalledRepository>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_events_are_unhandled() {
        assert_eq!(
            parse("star", "{}").unwrap(),
            GithubEvent::Unhandled("star".to_string())
        );
    }

    #[test]
    fn errors_say_where_the_payload_failed() {
        let err = parse(
            "status",
            r#"{"sha":"abc","state":"success","context":"ci","repository":{"full_name":7}}"#,
        )
        .unwrap_err();
        assert_eq!(err.path, "repository.full_name");
        assert!(err.to_string().contains("status payload"), "{err}");
    }
}
