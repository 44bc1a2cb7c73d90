//! What a freshly fetched mirror holds that is new: commits that landed on the
//! default branch (and commits force-pushed off it), and commits of the pull
//! requests an event named. Each new commit is attributed and handed over as
//! soon as it is ready, so a first walk of a long history never holds every
//! record in memory.
//!
//! Everything here blocks (git2's `Repository` is not `Sync`): callers run it in
//! `spawn_blocking`, one repository at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use git2::{Oid, Repository, Sort};

use super::commit::{
    Attributor, CommitFacts, CommitRecord, PullRequestLink, PullRequestVia, SeenCommits,
};
use super::links::pull_request_number;

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("sync of {0} was cancelled (deadline passed, lease lost or shutting down)")]
    Cancelled(String),
    #[error("git error in the mirror of {name}: {message}")]
    Git { name: String, message: String },
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
    /// How many new commits on the default branch were handed to `found`.
    pub landed: usize,
    /// Commits stored before (from a pull request) that are now on the default branch.
    pub now_landed: Vec<String>,
    /// How many new commits of pull requests were handed to `found`.
    pub pull_requests: usize,
    /// Commits that were on the default branch at the last sync and no longer are
    /// (a force push removed them): they are no longer landed.
    pub unlanded: Vec<String>,
}

/// One walk of a fetched mirror.
pub struct WalkRequest<'a> {
    pub full_name: &'a str,
    pub default_branch: &'a str,
    pub known: &'a KnownState,
    /// (number, head sha) of the pull requests an event named: only these pull
    /// requests are walked, so a sync's cost does not grow with every pull
    /// request ever opened.
    pub pr_heads: &'a [(i64, String)],
    /// Set from outside to stop the walk (deadline, lost lease, shutdown).
    pub cancel: &'a Arc<AtomicBool>,
}

/// A new commit a sync attributed, handed over as soon as it is ready (a first
/// sync of a long history never holds every record in memory).
#[derive(Debug)]
pub enum Found {
    /// On the default branch, oldest first, with the pull request that brought it
    /// in (from its `(#N)` subject or a `Merge pull request #N` merge).
    Landed(Option<PullRequestLink>, CommitRecord),
    /// On a pull request's branch only, with the pull-request number.
    Preview(i64, CommitRecord),
}

/// Walks what is new in `repo`, handing each new commit to `found` (which
/// returns false when its receiver is gone: the walk stops).
pub fn walk(
    repo: &Repository,
    request: &WalkRequest<'_>,
    attributor: &Attributor,
    found: &mut dyn FnMut(Found) -> bool,
) -> Result<SyncOutcome, WalkError> {
    let WalkRequest {
        full_name,
        default_branch,
        known,
        pr_heads,
        cancel,
    } = request;
    let cancelled = || {
        cancel
            .load(Ordering::Relaxed)
            .then(|| WalkError::Cancelled(full_name.to_string()))
    };
    let git = |e: git2::Error| WalkError::Git {
        name: full_name.to_string(),
        message: e.message().to_string(),
    };
    let mut outcome = SyncOutcome::default();
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
    let pull_requests = merged_pull_requests(repo, &new_on_default).map_err(git)?;
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
                let mut record = attributor.attribute(repo, &CommitFacts::of(&commit), true, &seen);
                // After the first sync, a landed fix is blamed for the lines
                // it touched (before it, history is the baseline).
                if last_tip.is_some() {
                    attributor.find_follow_ups(repo, &commit, &mut record);
                }
                let number = pull_requests.get(&oid).cloned().or_else(|| {
                    pull_request_number(&record.subject).map(|n| PullRequestLink {
                        number: n as i64,
                        via: PullRequestVia::Subject,
                    })
                });
                outcome.landed += 1;
                if !found(Found::Landed(number, record)) {
                    return Err(WalkError::Cancelled(full_name.to_string()));
                }
            }
        }
        seen.remember_commit(
            commit.id(),
            commit.parent_ids(),
            &String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default()),
        );
    }

    // Pull requests the event named: commits of refs/pull/N/head (and the head
    // sha the event gives) that are not on the default branch.
    let mut heads: Vec<(i64, Oid)> = Vec::new();
    for (number, sha) in pr_heads.iter() {
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
            let record = attributor.attribute(repo, &CommitFacts::of(&commit), true, &seen);
            outcome.pull_requests += 1;
            if !found(Found::Preview(number, record)) {
                return Err(WalkError::Cancelled(full_name.to_string()));
            }
        }
    }
    Ok(outcome)
}

/// For each `Merge pull request #N` merge among `commits`: the commits it brought
/// in (reachable from its second parent, not from its first) belong to PR N,
/// by way of that merge (scoring checks GitHub names it as PR N's merge).
fn merged_pull_requests(
    repo: &Repository,
    commits: &[Oid],
) -> Result<HashMap<Oid, PullRequestLink>, git2::Error> {
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
        let link = PullRequestLink {
            number,
            via: PullRequestVia::Merge(oid.to_string()),
        };
        numbers.insert(*oid, link.clone());
        let mut walk = repo.revwalk()?;
        walk.push(merge.parent_id(1)?)?;
        walk.hide(merge.parent_id(0)?)?;
        for brought in walk {
            numbers.entry(brought?).or_insert_with(|| link.clone());
        }
    }
    Ok(numbers)
}
