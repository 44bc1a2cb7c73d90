//! Walks a local repository and attributes every commit in a range, oldest first
//! (so a revert always comes after the commit it names).

use std::collections::BTreeMap;
use std::path::Path;

use git2::{Repository, Sort};

use super::commit::{Attributor, CommitRecord, SeenCommits};

#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// A revision (`HEAD`, `main`) or a range (`v1.0..main`).
    pub rev: String,
    /// Only commits committed at or after this time (epoch seconds).
    pub since: Option<i64>,
    /// Only commits committed at or before this time (epoch seconds).
    pub until: Option<i64>,
    /// Compute diff facts (slower) or read trailers only.
    pub diff: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{path} is not a git repository: {message}")]
    NotARepository { path: String, message: String },
    #[error("bad revision or range {rev:?}: {message}")]
    BadRange { rev: String, message: String },
    #[error("git error: {0}")]
    Git(#[from] git2::Error),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Totals for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanSummary {
    pub commits: u64,
    pub ai_commits: u64,
    pub merges: u64,
    pub reverts: u64,
    pub agents: BTreeMap<String, u64>,
    pub kinds: BTreeMap<&'static str, u64>,
}

impl ScanSummary {
    fn add(&mut self, record: &CommitRecord) {
        self.commits += 1;
        self.merges += u64::from(record.merge);
        self.reverts += u64::from(!record.reverts.is_empty());
        if record.ai {
            self.ai_commits += 1;
            for agent in &record.agents {
                *self.agents.entry(agent.clone()).or_default() += 1;
            }
        }
        if !record.merge {
            *self.kinds.entry(record.kind.as_str()).or_default() += 1;
        }
    }
}

/// Attributes the commits of `options.rev` in the repository at `path`, handing each
/// record to `emit` as soon as it is ready.
pub fn scan(
    path: &Path,
    options: &ScanOptions,
    attributor: &Attributor,
    mut emit: impl FnMut(CommitRecord) -> Result<(), std::io::Error>,
) -> Result<ScanSummary, ScanError> {
    // Objects are read from the local object database, which git already checks;
    // re-hashing every object read (libgit2's default) doubles the cost of a scan.
    git2::opts::strict_hash_verification(false);
    crate::git::fetch::limit_libgit2_memory();
    // Like git: a subdirectory of a work tree finds its repository.
    // Never freed: `scan` serves the command line, whose process ends right after,
    // and freeing a long history's cached objects one by one took a fifth of
    // the scan. (The service's mirror walk keeps its repositories as usual.)
    let repo = Repository::discover(path).map_err(|e| ScanError::NotARepository {
        path: path.display().to_string(),
        message: e.message().to_string(),
    })?;
    let repo = std::mem::ManuallyDrop::new(repo);
    // A repository without commits yet has nothing to scan (not a bad revision).
    let unborn = repo
        .head()
        .err()
        .is_some_and(|e| e.code() == git2::ErrorCode::UnbornBranch);
    if options.rev == "HEAD" && unborn {
        return Ok(ScanSummary::default());
    }
    let bad_range = |e: git2::Error| ScanError::BadRange {
        rev: options.rev.clone(),
        message: e.message().to_string(),
    };
    let mut walk = repo.revwalk()?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME | Sort::REVERSE)?;
    let spec = repo.revparse(&options.rev).map_err(bad_range)?;
    if spec.mode().contains(git2::RevparseMode::RANGE) {
        let (Some(from), Some(to)) = (spec.from(), spec.to()) else {
            return Err(ScanError::BadRange {
                rev: options.rev.clone(),
                message: "a range needs both ends".into(),
            });
        };
        let to = to.peel_to_commit().map_err(bad_range)?.id();
        let from = from.peel_to_commit().map_err(bad_range)?.id();
        walk.push(to)?;
        if spec.mode().contains(git2::RevparseMode::MERGE_BASE) {
            walk.push(from)?;
            walk.hide(repo.merge_base(from, to)?)?;
        } else {
            walk.hide(from)?;
        }
    } else {
        let single = spec.from().expect("a single revision has a start");
        walk.push(single.peel_to_commit().map_err(bad_range)?.id())?;
    }

    let mut seen = SeenCommits::default();
    let mut summary = ScanSummary::default();
    for oid in walk {
        let commit = repo.find_commit(oid?)?;
        let time = commit.committer().when().seconds();
        let subject =
            String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default()).to_string();
        let in_window =
            options.since.is_none_or(|s| time >= s) && options.until.is_none_or(|u| time <= u);
        if in_window {
            let record = attributor.attribute(&repo, &commit, options.diff, &seen);
            summary.add(&record);
            emit(record)?;
        }
        seen.remember_commit(commit.id(), commit.parent_ids(), &subject);
    }
    Ok(summary)
}
