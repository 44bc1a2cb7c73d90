//! Bare mirrors of the repositories the service watches, fetched with git2, and
//! the walk that finds what is new: commits that landed on the default branch,
//! and commits of open pull requests.
//!
//! Everything here blocks (git2's `Repository` is not `Sync`): callers run it in
//! `spawn_blocking`, one repository at a time (see [`Mirrors::lock`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use git2::{AutotagOption, Cred, FetchOptions, FetchPrune, Oid, RemoteCallbacks, Repository, Sort};

use super::commit::{Attributor, CommitRecord, SeenCommits};
use super::links::pull_request_number;
use crate::config::Secret;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("repository name {0:?} is not of the form owner/name")]
    BadName(String),
    #[error("cannot fetch {name}: {message}")]
    Fetch { name: String, message: String },
    #[error("git error in the mirror of {name}: {message}")]
    Git { name: String, message: String },
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

/// What a sync found.
#[derive(Debug, Default)]
pub struct SyncOutcome {
    pub default_head: Option<String>,
    /// New commits on the default branch, oldest first, with the pull request that
    /// brought each in (from its `(#N)` subject or a `Merge pull request #N` merge).
    pub landed: Vec<(Option<i64>, CommitRecord)>,
    /// Commits stored before (from a pull request) that are now on the default branch.
    pub now_landed: Vec<String>,
    /// New commits of pull requests, with the pull-request number.
    pub pull_requests: Vec<(i64, CommitRecord)>,
    /// How long the fetch took (the rest of the sync is walking and attributing).
    pub fetch_time: std::time::Duration,
}

impl Mirrors {
    pub fn new(data_dir: &Path, token: Option<Secret>) -> Mirrors {
        Mirrors {
            root: data_dir.join("mirrors"),
            token,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The mirror's path: `<data_dir>/mirrors/<owner>/<name>.git`.
    pub fn path_for(&self, full_name: &str) -> Result<PathBuf, MirrorError> {
        let valid = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        match full_name.split_once('/') {
            Some((owner, name)) if valid(owner) && valid(name) => {
                Ok(self.root.join(owner).join(format!("{name}.git")))
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
            .entry(full_name.to_string())
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
    /// HTTPS credentials (GitHub token), if any.
    pub token: Option<String>,
    pub known: KnownState,
    /// (number, head sha) of the pull requests an event named.
    pub pr_heads: Vec<(i64, String)>,
}

/// Fetches the mirror and attributes what is new.
pub fn sync(request: &SyncRequest, attributor: &Attributor) -> Result<SyncOutcome, MirrorError> {
    let SyncRequest {
        path,
        full_name,
        url,
        default_branch,
        token,
        known,
        pr_heads,
    } = request;
    let token = token.as_deref();
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
    let started = std::time::Instant::now();
    fetch(&repo, url, token).map_err(|e| MirrorError::Fetch {
        name: full_name.to_string(),
        message: e.message().to_string(),
    })?;
    let fetch_time = started.elapsed();

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

    // Landed: reachable from the default branch, not yet attributed as landed.
    let mut walk = repo.revwalk().map_err(git)?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME | Sort::REVERSE)
        .map_err(git)?;
    walk.push(head).map_err(git)?;
    if let Some(tip) = known
        .landed_tip
        .as_deref()
        .and_then(|t| Oid::from_str(t).ok())
        && repo.find_commit(tip).is_ok()
    {
        walk.hide(tip).map_err(git)?;
    }
    let new_on_default: Vec<Oid> = walk.collect::<Result<_, _>>().map_err(git)?;
    let pull_requests = merged_pull_requests(&repo, &new_on_default).map_err(git)?;
    for oid in new_on_default {
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
                outcome.landed.push((number, record));
            }
        }
        seen.remember(
            commit.id(),
            &String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default()),
        );
    }

    // Pull requests: commits of refs/pull/N/head (and heads named by the event)
    // that are not on the default branch.
    let mut heads: Vec<(i64, Oid)> = Vec::new();
    for reference in repo.references_glob("refs/pull/*/head").map_err(git)? {
        let reference = reference.map_err(git)?;
        let number = reference
            .name()
            .ok()
            .and_then(|n| n.strip_prefix("refs/pull/"))
            .and_then(|n| n.strip_suffix("/head"))
            .and_then(|n| n.parse().ok());
        if let (Some(number), Ok(commit)) = (number, reference.peel_to_commit()) {
            heads.push((number, commit.id()));
        }
    }
    for (number, sha) in pr_heads {
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
            let oid = oid.map_err(git)?;
            if known.commits.contains_key(&oid.to_string()) || !taken.insert(oid) {
                continue;
            }
            let commit = repo.find_commit(oid).map_err(git)?;
            outcome
                .pull_requests
                .push((number, attributor.attribute(&repo, &commit, true, &seen)));
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

/// Fetches every branch and pull-request head, pruning what the remote deleted.
fn fetch(repo: &Repository, url: &str, token: Option<&str>) -> Result<(), git2::Error> {
    let mut remote = match repo.find_remote("origin") {
        Ok(remote) if remote.url().ok() == Some(url) => remote,
        Ok(_) => {
            repo.remote_set_url("origin", url)?;
            repo.find_remote("origin")?
        }
        Err(_) => repo.remote_with_fetch("origin", url, "+refs/heads/*:refs/heads/*")?,
    };
    let mut callbacks = RemoteCallbacks::new();
    if let Some(token) = token {
        // GitHub accepts a token as the password of any user name over HTTPS.
        let token = token.to_string();
        callbacks.credentials(move |_url, _user, _allowed| {
            Cred::userpass_plaintext("x-access-token", &token)
        });
    }
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(callbacks)
        .prune(FetchPrune::On)
        .download_tags(AutotagOption::None);
    remote.fetch(
        &[
            "+refs/heads/*:refs/heads/*",
            "+refs/pull/*/head:refs/pull/*/head",
        ],
        Some(&mut options),
        None,
    )
}
