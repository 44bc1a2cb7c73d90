//! Bare mirrors of the repositories the service watches, fetched with git2, and
//! the walk that finds what is new: commits that landed on the default branch,
//! and commits of open pull requests.
//!
//! Everything here blocks (git2's `Repository` is not `Sync`): callers run it in
//! `spawn_blocking`, one repository at a time (see [`Mirrors::lock`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use git2::{
    AutotagOption, Cred, ErrorClass, ErrorCode, FetchOptions, FetchPrune, Oid, RemoteCallbacks,
    Repository, Sort,
};

use super::commit::{Attributor, CommitRecord, SeenCommits};
use super::links::pull_request_number;
use crate::git::remote::RemotePolicy;
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("repository name {0:?} is not of the form owner/name")]
    BadName(String),
    #[error("cannot fetch {name}: {message}")]
    Fetch {
        name: String,
        message: String,
        /// The remote does not exist or its scheme is not supported: retrying cannot help.
        permanent: bool,
    },
    #[error("sync of {0} was cancelled (deadline passed, lease lost or shutting down)")]
    Cancelled(String),
    #[error("git error in the mirror of {name}: {message}")]
    Git { name: String, message: String },
    #[error(
        "{name}: the default branch {branch:?} is not a valid branch name ({why}); nothing was fetched"
    )]
    BadBranch {
        name: String,
        branch: String,
        why: &'static str,
    },
    #[error("cannot create the mirror directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where mirrors live, and the per-repository locks that keep fetches one at a time.
pub struct Mirrors {
    root: PathBuf,
    token: Option<Secret>,
    policy: RemotePolicy,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// What the database already knows about a repository, for the walk.
#[derive(Debug, Clone, Default)]
pub struct KnownState {
    /// sha → landed.
    pub commits: HashMap<String, bool>,
    /// The default-branch head attributed last time.
    pub landed_tip: Option<String>,
    /// (sha, subject) of landed commits, oldest first.
    pub landed_subjects: Vec<(String, String)>,
}

impl MirrorError {
    /// True when retrying the same sync cannot succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            MirrorError::BadName(_)
                | MirrorError::BadBranch { .. }
                | MirrorError::Fetch {
                    permanent: true,
                    ..
                }
        )
    }
}

/// What a sync found.
#[derive(Debug, Default)]
pub struct SyncOutcome {
    pub default_head: Option<String>,
    /// How many new commits on the default branch were handed to `found`.
    pub landed: usize,
    /// Commits stored before (from a pull request) that are now on the default branch.
    pub now_landed: Vec<String>,
    /// How many new commits of pull requests were handed to `found`.
    pub pull_requests: usize,
    /// Commits that were on the default branch at the last sync and no longer are
    /// (a force push removed them): they are no longer landed.
    pub unlanded: Vec<String>,
    /// How long the fetch took (the rest of the sync is walking and attributing).
    pub fetch_time: std::time::Duration,
}

impl Mirrors {
    pub fn new(data_dir: &Path, token: Option<Secret>, policy: RemotePolicy) -> Mirrors {
        Mirrors {
            root: data_dir.join("mirrors"),
            token,
            policy,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Which remotes may be fetched, and where the token may go.
    pub fn policy(&self) -> &RemotePolicy {
        &self.policy
    }

    /// The mirror's path: `<data_dir>/mirrors/<owner>/<name>.git`.
    /// Repository names are case-insensitive on GitHub: `Acme/API` and `acme/api`
    /// share one mirror.
    pub fn path_for(&self, full_name: &str) -> Result<PathBuf, MirrorError> {
        let full_name = full_name.to_ascii_lowercase();
        let valid = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        // owner/name, or group/subgroup/name (GitLab-style nesting).
        let parts: Vec<&str> = full_name.split('/').collect();
        match parts.split_last() {
            Some((name, owners)) if !owners.is_empty() && parts.iter().all(|p| valid(p)) => {
                let mut path = self.root.clone();
                for owner in owners {
                    path.push(owner);
                }
                Ok(path.join(format!("{name}.git")))
            }
            _ => Err(MirrorError::BadName(full_name.to_string())),
        }
    }

    /// Holds the repository's lock: one fetch and walk at a time per repository.
    pub async fn lock(&self, full_name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .locks
            .lock()
            .expect("mirror lock table")
            .entry(full_name.to_ascii_lowercase())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    pub fn token(&self) -> Option<&Secret> {
        self.token.as_ref()
    }
}

/// One repository to sync.
pub struct SyncRequest {
    /// The mirror's path ([`Mirrors::path_for`]).
    pub path: PathBuf,
    pub full_name: String,
    pub url: String,
    pub default_branch: String,
    /// HTTPS credentials (GitHub token), if any; sent only where `token_prefix` says.
    pub token: Option<String>,
    /// The URL prefix the token may be sent to (`https://github.com/`).
    pub token_prefix: Option<String>,
    /// The hosts the fetch may reach over TLS (`mirrors.allowed_remotes`): a
    /// redirect elsewhere fails the fetch.
    pub allowed_hosts: Vec<String>,
    pub known: KnownState,
    /// (number, head sha) of the pull requests an event named: only these pull
    /// requests are fetched and walked, so a sync's cost does not grow with every
    /// pull request ever opened.
    pub pr_heads: Vec<(i64, String)>,
    /// Set from outside to stop the sync (deadline, lost lease, shutdown).
    pub cancel: Arc<AtomicBool>,
}

/// A new commit a sync attributed, handed over as soon as it is ready (a first
/// sync of a long history never holds every record in memory).
#[derive(Debug)]
pub enum Found {
    /// On the default branch, oldest first, with the pull request that brought it
    /// in (from its `(#N)` subject or a `Merge pull request #N` merge).
    Landed(Option<i64>, CommitRecord),
    /// On a pull request's branch only, with the pull-request number.
    Preview(i64, CommitRecord),
}

/// Fetches the mirror and attributes what is new, handing each new commit to
/// `found` (which returns false when its receiver is gone: the sync stops).
pub fn sync(
    request: &SyncRequest,
    attributor: &Attributor,
    found: &mut dyn FnMut(Found) -> bool,
) -> Result<SyncOutcome, MirrorError> {
    let SyncRequest {
        path,
        full_name,
        url,
        default_branch,
        token,
        token_prefix,
        allowed_hosts,
        known,
        pr_heads,
        cancel,
    } = request;
    let credentials = match (token.as_deref(), token_prefix.as_deref()) {
        (Some(token), Some(prefix)) if url.starts_with(prefix) => Some((token, prefix)),
        _ => None,
    };
    let cancelled = || {
        cancel
            .load(Ordering::Relaxed)
            .then(|| MirrorError::Cancelled(full_name.to_string()))
    };
    let git = |e: git2::Error| MirrorError::Git {
        name: full_name.to_string(),
        message: e.message().to_string(),
    };
    let repo = open_or_init(path).map_err(|e| match e {
        OpenError::Io(source) => MirrorError::Io {
            path: path.clone(),
            source,
        },
        OpenError::Git(e) => git(e),
    })?;
    // The refspec is built only from a name git accepts as a branch: `*` would
    // fetch every branch, `a:refs/heads/b` would write elsewhere.
    if let Some(why) = crate::git::invalid_branch_name(default_branch) {
        return Err(MirrorError::BadBranch {
            name: full_name.to_string(),
            branch: default_branch
                .chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect(),
            why,
        });
    }
    let started = std::time::Instant::now();
    let mut refspecs = vec![format!(
        "+refs/heads/{default_branch}:refs/heads/{default_branch}"
    )];
    for (number, _) in pr_heads {
        refspecs.push(format!("+refs/pull/{number}/head:refs/pull/{number}/head"));
    }
    fetch(&repo, url, credentials, allowed_hosts, &refspecs, cancel).map_err(|e| {
        if let Some(cancelled) = cancelled() {
            return cancelled;
        }
        MirrorError::Fetch {
            name: full_name.to_string(),
            message: e.message().to_string(),
            permanent: is_permanent_fetch_error(&e),
        }
    })?;
    let fetch_time = started.elapsed();
    // libgit2's fetch (the local transport builds a whole pack in memory) leaves
    // its freed memory in this thread's heap; give it back before the walk.
    crate::memory::trim();

    let mut outcome = SyncOutcome {
        fetch_time,
        ..SyncOutcome::default()
    };
    let head = match repo.find_reference(&format!("refs/heads/{default_branch}")) {
        Ok(reference) => reference.peel_to_commit().map_err(git)?.id(),
        // An empty repository, or the default branch is not pushed yet.
        Err(_) => return Ok(outcome),
    };
    outcome.default_head = Some(head.to_string());

    let mut seen = SeenCommits::default();
    for (sha, subject) in &known.landed_subjects {
        if let Ok(oid) = Oid::from_str(sha) {
            seen.remember(oid, subject);
        }
    }

    let last_tip = known
        .landed_tip
        .as_deref()
        .and_then(|t| Oid::from_str(t).ok())
        .filter(|tip| repo.find_commit(*tip).is_ok());

    // A force push: what the last tip reached and the new head does not is no
    // longer landed. (The old objects stay in the mirror until a gc.)
    if let Some(tip) = last_tip
        && tip != head
        && !repo.graph_descendant_of(head, tip).map_err(git)?
    {
        let mut walk = repo.revwalk().map_err(git)?;
        walk.push(tip).map_err(git)?;
        walk.hide(head).map_err(git)?;
        for oid in walk {
            let sha = oid.map_err(git)?.to_string();
            if known.commits.get(&sha) == Some(&true) {
                outcome.unlanded.push(sha);
            }
        }
    }

    // Landed: reachable from the default branch, not yet attributed as landed.
    let mut walk = repo.revwalk().map_err(git)?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME | Sort::REVERSE)
        .map_err(git)?;
    walk.push(head).map_err(git)?;
    if let Some(tip) = last_tip {
        walk.hide(tip).map_err(git)?;
    }
    let new_on_default: Vec<Oid> = walk.collect::<Result<_, _>>().map_err(git)?;
    let pull_requests = merged_pull_requests(&repo, &new_on_default).map_err(git)?;
    for oid in new_on_default {
        if let Some(cancelled) = cancelled() {
            return Err(cancelled);
        }
        let commit = repo.find_commit(oid).map_err(git)?;
        let sha = commit.id().to_string();
        match known.commits.get(&sha) {
            Some(true) => {}
            Some(false) => outcome.now_landed.push(sha),
            None => {
                let record = attributor.attribute(&repo, &commit, true, &seen);
                let number = pull_requests
                    .get(&oid)
                    .copied()
                    .or_else(|| pull_request_number(&record.subject).map(|n| n as i64));
                outcome.landed += 1;
                if !found(Found::Landed(number, record)) {
                    return Err(MirrorError::Cancelled(full_name.to_string()));
                }
            }
        }
        seen.remember(
            commit.id(),
            &String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default()),
        );
    }

    // Pull requests the event named: commits of refs/pull/N/head (and the head
    // sha the event gives) that are not on the default branch.
    let mut heads: Vec<(i64, Oid)> = Vec::new();
    for (number, sha) in pr_heads {
        if let Ok(reference) = repo.find_reference(&format!("refs/pull/{number}/head"))
            && let Ok(commit) = reference.peel_to_commit()
        {
            heads.push((*number, commit.id()));
        }
        if let Ok(oid) = Oid::from_str(sha)
            && repo.find_commit(oid).is_ok()
        {
            heads.push((*number, oid));
        }
    }
    let mut taken: std::collections::HashSet<Oid> = std::collections::HashSet::new();
    for (number, tip) in heads {
        let mut walk = repo.revwalk().map_err(git)?;
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME | Sort::REVERSE)
            .map_err(git)?;
        walk.push(tip).map_err(git)?;
        walk.hide(head).map_err(git)?;
        for oid in walk {
            if let Some(cancelled) = cancelled() {
                return Err(cancelled);
            }
            let oid = oid.map_err(git)?;
            if known.commits.contains_key(&oid.to_string()) || !taken.insert(oid) {
                continue;
            }
            let commit = repo.find_commit(oid).map_err(git)?;
            let record = attributor.attribute(&repo, &commit, true, &seen);
            outcome.pull_requests += 1;
            if !found(Found::Preview(number, record)) {
                return Err(MirrorError::Cancelled(full_name.to_string()));
            }
        }
    }
    Ok(outcome)
}

/// For each `Merge pull request #N` merge among `commits`: the commits it brought
/// in (reachable from its second parent, not from its first) belong to PR N.
fn merged_pull_requests(
    repo: &Repository,
    commits: &[Oid],
) -> Result<HashMap<Oid, i64>, git2::Error> {
    let mut numbers = HashMap::new();
    for oid in commits {
        let merge = repo.find_commit(*oid)?;
        if merge.parent_count() < 2 {
            continue;
        }
        let subject =
            String::from_utf8_lossy(merge.summary_bytes().unwrap_or_default()).to_string();
        let Some(number) = pull_request_number(&subject).map(|n| n as i64) else {
            continue;
        };
        numbers.insert(*oid, number);
        let mut walk = repo.revwalk()?;
        walk.push(merge.parent_id(1)?)?;
        walk.hide(merge.parent_id(0)?)?;
        for brought in walk {
            numbers.entry(brought?).or_insert(number);
        }
    }
    Ok(numbers)
}

enum OpenError {
    Io(std::io::Error),
    Git(git2::Error),
}

fn open_or_init(path: &Path) -> Result<Repository, OpenError> {
    if path.join("HEAD").exists() {
        return Repository::open_bare(path).map_err(OpenError::Git);
    }
    std::fs::create_dir_all(path).map_err(OpenError::Io)?;
    Repository::init_bare(path).map_err(OpenError::Git)
}

/// Fetches `refspecs` (the default branch and the pull requests an event named),
/// pruning what the remote deleted.
///
/// The token (`credentials`: the token and the prefix it belongs to) is given
/// only when libgit2 asks for the URL it belongs to, and once: if the remote
/// refuses it, libgit2 would ask again and again. Over https a redirect may
/// only lead to a host of `allowed_hosts` (checked on every TLS connection);
/// other remotes (a local path, plain http where allowed) follow no redirect.
fn fetch(
    repo: &Repository,
    url: &str,
    credentials: Option<(&str, &str)>,
    allowed_hosts: &[String],
    refspecs: &[String],
    cancel: &Arc<AtomicBool>,
) -> Result<(), git2::Error> {
    let mut remote = match repo.find_remote("origin") {
        Ok(remote) if remote.url().ok() == Some(url) => remote,
        Ok(_) => {
            repo.remote_set_url("origin", url)?;
            repo.find_remote("origin")?
        }
        Err(_) => repo.remote_with_fetch("origin", url, "+refs/heads/*:refs/heads/*")?,
    };
    let mut callbacks = RemoteCallbacks::new();
    if let Some((token, prefix)) = credentials {
        // GitHub accepts a token as the password of any user name over HTTPS.
        let (token, prefix) = (token.to_string(), prefix.to_string());
        let asked = AtomicUsize::new(0);
        callbacks.credentials(move |asked_for, _user, _allowed| {
            if !crate::git::remote::credentials_for(asked_for, &prefix) {
                return Err(git2::Error::new(
                    ErrorCode::Auth,
                    ErrorClass::Http,
                    format!(
                        "{} asked for credentials; the token goes only to {prefix}",
                        host_of(asked_for)
                    ),
                ));
            }
            if asked.fetch_add(1, Ordering::Relaxed) > 0 {
                return Err(git2::Error::new(
                    ErrorCode::Auth,
                    ErrorClass::Http,
                    "the remote refused the GitHub token (`github.token`)",
                ));
            }
            Cred::userpass_plaintext("x-access-token", &token)
        });
    }
    let https = url.starts_with("https://");
    let origin_host = host_of(url);
    let allowed: Vec<String> = allowed_hosts.to_vec();
    callbacks.certificate_check(move |_cert, host| {
        let host = host.to_ascii_lowercase();
        if host == origin_host || allowed.contains(&host) {
            // libgit2 checks the certificate itself, as without this callback.
            Ok(git2::CertificateCheckStatus::CertificatePassthrough)
        } else {
            Err(git2::Error::new(
                ErrorCode::Certificate,
                ErrorClass::Net,
                format!("{REDIRECTED_AWAY} {host:?}, a host outside `mirrors.allowed_remotes`"),
            ))
        }
    });
    // libgit2 calls these while data flows; returning false aborts the fetch.
    let keep_going = cancel.clone();
    callbacks.transfer_progress(move |_| !keep_going.load(Ordering::Relaxed));
    let keep_going = cancel.clone();
    callbacks.sideband_progress(move |_| !keep_going.load(Ordering::Relaxed));
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(callbacks)
        .follow_redirects(if https {
            git2::RemoteRedirect::Initial
        } else {
            git2::RemoteRedirect::None
        })
        .prune(FetchPrune::On)
        .download_tags(AutotagOption::None);
    remote.fetch(refspecs, Some(&mut options), None)
}

/// How a fetch that a redirect took off the allowed hosts says so.
const REDIRECTED_AWAY: &str = "the remote sent the fetch to";

/// The lower-case host of a URL (empty when it has none).
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default()
}

/// A remote that does not exist, or a scheme libgit2 cannot speak: the same
/// fetch will fail the same way every time.
fn is_permanent_fetch_error(e: &git2::Error) -> bool {
    let message = e.message().to_ascii_lowercase();
    e.code() == ErrorCode::NotFound
        || e.message().contains(REDIRECTED_AWAY)
        || message.contains("unsupported url protocol")
        || message.contains("failed to resolve path")
        || message.contains("unexpected http status code: 404")
        || message.contains("repository not found")
}

/// Process-wide libgit2 limits: connect and read timeouts for remotes (a remote
/// that accepts and never answers must not hang a worker), and a bounded object
/// cache (libgit2's default of 256 MiB dominated a long scan's memory).
///
/// The options are global to the process: when several apps share one (tests),
/// the shortest timeouts asked for win.
pub fn configure_libgit2(connect_timeout_ms: u64, read_timeout_ms: u64) {
    use std::sync::atomic::AtomicU64;
    static CONNECT: AtomicU64 = AtomicU64::new(u64::MAX);
    static READ: AtomicU64 = AtomicU64::new(u64::MAX);
    let clamp = |ms: u64| ms.clamp(1, i32::MAX as u64) as i32;
    let connect = clamp(
        CONNECT
            .fetch_min(connect_timeout_ms, Ordering::SeqCst)
            .min(connect_timeout_ms),
    );
    let read = clamp(
        READ.fetch_min(read_timeout_ms, Ordering::SeqCst)
            .min(read_timeout_ms),
    );
    // SAFETY: these set global libgit2 options (plain integers libgit2 reads when
    // it opens a connection).
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(connect);
        let _ = git2::opts::set_server_timeout_in_milliseconds(read);
    }
    limit_libgit2_memory();
}

/// libgit2's object cache limit for this process.
pub const OBJECT_CACHE_BYTES: isize = 8 * 1024 * 1024;
/// How much of pack files libgit2 keeps mapped at once (its default is 8 GiB:
/// every page of a large pack a walk touches stays in the process's memory).
pub const PACK_MAPPED_BYTES: usize = 32 * 1024 * 1024;

/// Bounds what libgit2 keeps in memory: its object cache and its mapped pack
/// windows. Scans and syncs of long histories stay within a few tens of MB.
pub fn limit_libgit2_memory() {
    // SAFETY: global libgit2 tunables (integers read when caching an object or
    // mapping a pack window); setting them at any time is allowed.
    unsafe {
        let _ = git2::opts::set_cache_max_size(OBJECT_CACHE_BYTES);
        let _ = git2::opts::set_mwindow_mapped_limit(PACK_MAPPED_BYTES);
        let _ = git2::opts::set_mwindow_size(8 * 1024 * 1024);
    }
}
