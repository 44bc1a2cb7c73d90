//! Walks a local repository and attributes every commit in a range, oldest first
//! (so a revert always comes after the commit it names).

use std::collections::BTreeMap;
use std::path::Path;

use git2::{Oid, Repository, Sort};

use super::commit::{Attributor, CommitFacts, CommitRecord, Prepared, SeenCommits};
use super::diff::diff_facts;
use crate::git::topo_walk::OldestFirst;

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

impl ScanOptions {
    /// Whether a commit committed at `time` is in the scan's window.
    fn in_window(&self, time: i64) -> bool {
        self.since.is_none_or(|s| time >= s) && self.until.is_none_or(|u| time <= u)
    }
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
    // Each commit is read once by the walk and once for its diff, far apart:
    // cached, they would only push out the trees that consecutive diffs share.
    // SAFETY: a global libgit2 tunable; `scan` serves the command line alone.
    unsafe {
        let _ = git2::opts::set_cache_object_limit(git2::ObjectType::Commit, 0);
    }
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
    let spec = repo.revparse(&options.rev).map_err(bad_range)?;
    let mut out = Output {
        repo: &repo,
        attributor,
        options,
        seen: SeenCommits::default(),
        summary: ScanSummary::default(),
        emit: &mut emit,
    };
    // One revision, in a repository whose commits say their own parents (no
    // shallow boundary or grafts): the walk reads each commit once.
    let replaced_parents = repo.is_shallow() || repo.path().join("info/grafts").exists();
    if !spec.mode().contains(git2::RevparseMode::RANGE) && !replaced_parents {
        let single = spec.from().expect("a single revision has a start");
        let start = single.peel_to_commit().map_err(bad_range)?.id();
        if options.diff {
            let walk = OldestFirst::walk(&repo, start, |_, _, _| {})?;
            let oids: Vec<Oid> = walk.iter().map(|(_, oid)| oid).collect();
            diff_in_parallel(&repo, &oids, attributor, options, |commit| {
                out.prepared(commit)
            })?;
        } else {
            let (walk, mut prepared) = prepare_while_walking(&repo, start, attributor)?;
            for (n, _) in walk.iter() {
                out.prepared(
                    prepared[n as usize]
                        .take()
                        .expect("every commit read is prepared"),
                )?;
            }
        }
        return Ok(out.summary);
    }

    let mut walk = repo.revwalk()?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME | Sort::REVERSE)?;
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
    for oid in walk {
        out.commit(&CommitFacts::of(&repo.find_commit(oid?)?))?;
    }
    Ok(out.summary)
}

/// Commits read this many at a time are handed to the preparing thread.
const BATCH: usize = 256;

/// A batch of commits as read: `(number, id, end of its bytes in data)`.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    commits: Vec<(u32, Oid, usize)>,
}

/// Walks the history from `start` while a second thread prepares each commit
/// as it is read ([`Attributor::prepare`]: trailers, credit, kind; no diff),
/// so only the linking and the output wait for the walk's end. Returns the
/// walk and the prepared commits by number.
fn prepare_while_walking(
    repo: &Repository,
    start: Oid,
    attributor: &Attributor,
) -> Result<(OldestFirst, Vec<Option<Prepared>>), ScanError> {
    std::thread::scope(|scope| {
        let (send, receive) = std::sync::mpsc::sync_channel::<Batch>(8);
        let preparer = scope.spawn(move || -> Result<Vec<(u32, Prepared)>, Oid> {
            let mut prepared = Vec::new();
            for batch in receive {
                let mut from = 0;
                for (n, oid, end) in batch.commits {
                    let facts = CommitFacts::parse(oid, &batch.data[from..end]).ok_or(oid)?;
                    prepared.push((n, attributor.prepare(&facts, None)));
                    from = end;
                }
            }
            Ok(prepared)
        });
        let mut batch = Batch::default();
        let walked = OldestFirst::walk(repo, start, |n, oid, bytes| {
            batch.data.extend_from_slice(bytes);
            batch.commits.push((n, oid, batch.data.len()));
            if batch.commits.len() == BATCH {
                // A closed channel means the preparer stopped at a bad commit: said below.
                let _ = send.send(std::mem::take(&mut batch));
            }
        });
        let _ = send.send(batch);
        drop(send);
        let prepared = preparer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let walk = walked?;
        let prepared = prepared.map_err(|oid| {
            ScanError::Git(git2::Error::from_str(&format!("commit {oid} is malformed")))
        })?;
        let mut by_number: Vec<Option<Prepared>> = Vec::new();
        by_number.resize_with(walk.numbered(), || None);
        for (n, commit) in prepared {
            by_number[n as usize] = Some(commit);
        }
        Ok((walk, by_number))
    })
}

/// Commits a diff thread takes at a time (the output waits for the oldest).
const DIFF_CHUNK: usize = 64;

/// The diff facts of `oids` (oldest first) on every core, each thread with a
/// repository handle of its own (libgit2's handles are not shared across
/// threads), handed to `done` in order. Diffs are independent of each other:
/// only linking reverts and fixes needs the order, and `done` does that.
/// Chunks are handed out only a few ahead of the oldest not yet done, so a
/// slow chunk or a slow reader of the output never lets results pile up.
fn diff_in_parallel(
    repo: &Repository,
    oids: &[Oid],
    attributor: &Attributor,
    options: &ScanOptions,
    mut done: impl FnMut(Prepared) -> Result<(), ScanError>,
) -> Result<(), ScanError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let ahead = 2 * threads;
    let chunks: Vec<&[Oid]> = oids.chunks(DIFF_CHUNK).collect();
    let path = repo.path();
    let (hand_out, work) = std::sync::mpsc::channel::<usize>();
    let work = std::sync::Mutex::new(work);
    std::thread::scope(|scope| {
        // Dropped when this closure returns, however it returns: the threads
        // then find no more work and end.
        let hand_out = hand_out;
        let (send, receive) =
            std::sync::mpsc::channel::<(usize, Result<Vec<Prepared>, git2::Error>)>();
        for _ in 0..threads {
            let send = send.clone();
            let (chunks, work) = (&chunks, &work);
            scope.spawn(move || {
                let repo = match Repository::open(path) {
                    Ok(repo) => repo,
                    Err(err) => {
                        let _ = send.send((0, Err(err)));
                        return;
                    }
                };
                // Ends when the chunks are all handed out, or the output stopped.
                while let Ok(i) = work
                    .lock()
                    .map_err(drop)
                    .and_then(|w| w.recv().map_err(drop))
                {
                    let prepared = chunks[i]
                        .iter()
                        .map(|&oid| {
                            let commit = repo.find_commit(oid)?;
                            let facts = CommitFacts::of(&commit);
                            let diff = (!facts.merge()
                                && options.in_window(facts.committer.when.seconds()))
                            .then(|| diff_facts(&repo, &commit, &attributor.rules));
                            Ok(attributor.prepare(&facts, diff))
                        })
                        .collect();
                    if send.send((i, prepared)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(send);
        let mut handed = 0;
        while handed < chunks.len().min(ahead) {
            let _ = hand_out.send(handed);
            handed += 1;
        }
        // Chunks finish out of order; they are handed on oldest first.
        let mut waiting = std::collections::BTreeMap::new();
        let mut expected = 0;
        while expected < chunks.len() {
            let Ok((i, chunk)) = receive.recv() else {
                break; // every thread stopped (a panic: the scope passes it on)
            };
            waiting.insert(i, chunk?);
            while let Some(chunk) = waiting.remove(&expected) {
                for commit in chunk {
                    done(commit)?;
                }
                expected += 1;
                if handed < chunks.len() {
                    let _ = hand_out.send(handed);
                    handed += 1;
                }
            }
        }
        Ok(())
    })
}

/// Where attributed commits go, oldest first: the summary, `emit`, and the
/// history later commits link to.
struct Output<'a, E> {
    repo: &'a Repository,
    attributor: &'a Attributor,
    options: &'a ScanOptions,
    seen: SeenCommits,
    summary: ScanSummary,
    emit: &'a mut E,
}

impl<E: FnMut(CommitRecord) -> Result<(), std::io::Error>> Output<'_, E> {
    fn record(&mut self, record: CommitRecord) -> Result<(), ScanError> {
        self.summary.add(&record);
        (self.emit)(record)?;
        Ok(())
    }

    fn commit(&mut self, facts: &CommitFacts<'_>) -> Result<(), ScanError> {
        if self.options.in_window(facts.committer.when.seconds()) {
            let record = self
                .attributor
                .attribute(self.repo, facts, self.options.diff, &self.seen);
            self.record(record)?;
        }
        self.seen
            .remember_commit(facts.id, facts.parents.iter().copied(), &facts.summary);
        Ok(())
    }

    fn prepared(&mut self, mut commit: Prepared) -> Result<(), ScanError> {
        let (id, parents, subject) = (
            commit.id(),
            commit.parents().to_vec(),
            commit.take_summary(),
        );
        if self.options.in_window(commit.committed_at()) {
            let record = self.attributor.link(self.repo, commit, &self.seen);
            self.record(record)?;
        }
        self.seen.remember_commit(id, parents, &subject);
        Ok(())
    }
}
