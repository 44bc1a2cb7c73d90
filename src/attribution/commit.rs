//! Attribution of one commit: evidence, credit, kind, diff facts and links.

use chrono::{DateTime, FixedOffset, TimeZone};
use git2::{Commit, Oid, Repository};
use serde::Serialize;

use super::agents::AgentRegistry;
use super::diff::{DiffFacts, diff_facts};
pub use super::history::SeenCommits;
use super::identity::Directory;
use super::kind::{Kind, KindSource};
use super::links::{self, RevertRef};
use super::paths::PathRules;
use super::trailers::{self, AgentUse};

/// Everything tokentally knows about a commit after attribution.
#[derive(Debug, Clone, Serialize)]
pub struct CommitRecord {
    pub sha: String,
    pub subject: String,
    pub author_name: String,
    pub author_email: String,
    pub committer_email: String,
    /// Who is credited: the author, or the human behind an agent author.
    pub person: String,
    /// Why `person` is credited.
    pub credit: Credit,
    pub authored_at: String,
    pub committed_at: String,
    pub ai: bool,
    pub agents: Vec<String>,
    pub model: Option<String>,
    pub kind: Kind,
    pub kind_source: KindSource,
    /// When a trailer declared the kind: what the subject or the diff says
    /// (the tier is the lower of the two, so a declaration cannot raise pay).
    pub detected_kind: Option<Kind>,
    pub usage_tokens: Option<u64>,
    pub files_changed: u64,
    pub binary_files: u64,
    pub lines_added: u64,
    pub lines_deleted: u64,
    pub lines_moved: u64,
    pub lines_excluded: u64,
    /// What counts for size: added + deleted, less moved lines and excluded paths.
    pub changed_lines: u64,
    pub patch_id: Option<String>,
    /// Only whitespace changed (or lines were re-wrapped): noise.
    pub formatting_only: bool,
    /// Changed paths outside excluded ones.
    pub files: Vec<String>,
    /// MinHash signature of the added lines (hex), for near-duplicates.
    pub minhash: Option<String>,
    /// Full ids of the commits this one reverts.
    pub reverts: Vec<String>,
    /// Full ids of the commits this one fixes (`Fixes: <sha>`).
    pub fixes: Vec<String>,
    /// For a fix: the earlier commits whose lines it deleted or changed, and
    /// the share of each one's added lines (found by blame).
    pub follow_ups: Vec<super::blame::FollowUp>,
    pub merge: bool,
    /// Supporting session links (`Amp-Thread-ID`, `Copilot-Session`, …).
    pub links: Vec<String>,
    /// Each agent and where it was found.
    pub evidence: Vec<AgentUse>,
    pub warnings: Vec<String>,
}

/// The pull request a commit belongs to, and how that is known. Only what
/// GitHub says lets a commit take its pull request's head CI: the pull
/// request's own commits (seen on `refs/pull/N/head`), the commits a merge
/// brought in (when GitHub names that merge as the pull request's merge
/// commit), or the merge commit itself; a `(#N)` in a subject alone never.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestLink {
    pub number: i64,
    pub via: PullRequestVia,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullRequestVia {
    /// Seen on the pull request's head ref.
    Branch,
    /// Brought in by (or being) this merge commit.
    Merge(String),
    /// Only a `(#N)` in the subject: a claim, not a fact.
    Subject,
}

impl PullRequestLink {
    pub fn branch(number: i64) -> PullRequestLink {
        PullRequestLink {
            number,
            via: PullRequestVia::Branch,
        }
    }

    /// As stored: `branch`, `merge:SHA` or `subject`.
    pub fn via_text(&self) -> String {
        match &self.via {
            PullRequestVia::Branch => "branch".to_string(),
            PullRequestVia::Merge(sha) => format!("merge:{sha}"),
            PullRequestVia::Subject => "subject".to_string(),
        }
    }
}

/// Where the credit for a commit comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Credit {
    /// A human authored it.
    Author,
    /// An agent authored it; the human co-author is credited.
    CoAuthor,
    /// An agent authored it with no human co-author; the committer is credited
    /// until the person who merged its pull request is known.
    Committer,
    /// Nobody but agents: the agent's address stands in until a merger is known.
    Agent,
}

impl Credit {
    pub fn as_str(self) -> &'static str {
        match self {
            Credit::Author => "author",
            Credit::CoAuthor => "co_author",
            Credit::Committer => "committer",
            Credit::Agent => "agent",
        }
    }
}

/// What attribution reads of a commit: from a `git2::Commit`, or from the
/// bytes a walk already read ([`crate::git::topo_walk`]), so a scan need not
/// read every commit twice.
#[derive(Debug, Clone)]
pub struct CommitFacts<'a> {
    pub id: Oid,
    pub parents: Vec<Oid>,
    pub author: Person,
    pub committer: Person,
    pub message: &'a [u8],
    /// The subject as git gives it (the first paragraph on one line).
    pub summary: String,
}

/// A commit's author or committer (as git2 gives them: a name or email that is
/// not UTF-8 reads as empty).
#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub email: String,
    pub when: git2::Time,
}

impl<'a> CommitFacts<'a> {
    pub fn of(commit: &'a Commit<'_>) -> CommitFacts<'a> {
        let person = |sig: git2::Signature<'_>| Person {
            name: sig.name().unwrap_or_default().to_string(),
            email: sig.email().unwrap_or_default().to_string(),
            when: sig.when(),
        };
        CommitFacts {
            id: commit.id(),
            parents: commit.parent_ids().collect(),
            author: person(commit.author()),
            committer: person(commit.committer()),
            message: commit.message_bytes(),
            summary: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default())
                .into_owned(),
        }
    }

    /// From a commit object's bytes; `None` when they are not a commit git reads.
    pub fn parse(id: Oid, bytes: &'a [u8]) -> Option<CommitFacts<'a>> {
        let raw = crate::git::commit_object::parse(bytes)?;
        let person = |sig: crate::git::commit_object::RawSignature<'_>| Person {
            name: std::str::from_utf8(sig.name)
                .unwrap_or_default()
                .to_string(),
            email: std::str::from_utf8(sig.email)
                .unwrap_or_default()
                .to_string(),
            when: sig.when,
        };
        Some(CommitFacts {
            id,
            author: person(raw.author),
            committer: person(raw.committer),
            summary: String::from_utf8_lossy(&crate::git::commit_object::summary(raw.message))
                .into_owned(),
            message: raw.message,
            parents: raw.parents,
        })
    }

    pub fn merge(&self) -> bool {
        self.parents.len() > 1
    }
}

/// The rules attribution applies (registry, path classes, people).
#[derive(Debug, Clone, Default)]
pub struct Attributor {
    pub registry: AgentRegistry,
    pub rules: PathRules,
    pub directory: Directory,
    /// How far back blame looks for the work a fix follows up (days): the
    /// vesting window, twice over for work committed long before it landed.
    pub follow_up_window_days: i64,
}

impl Attributor {
    /// Attribution with `agents` beyond the built-in registry, the path `globs`
    /// (checked when the configuration loads) and the `people` who own emails.
    pub fn new(
        agents: &[super::agents::AgentConfig],
        globs: &super::paths::PathGlobs,
        people: &[super::identity::PersonConfig],
    ) -> Attributor {
        Attributor {
            registry: AgentRegistry::new(agents),
            rules: PathRules::new(globs)
                .expect("path globs are checked when the configuration loads"),
            directory: Directory::new(people),
            follow_up_window_days: 28,
        }
    }

    /// Blame looks back `days` for the work a fix follows up.
    pub fn with_follow_up_window(self, days: i64) -> Attributor {
        Attributor {
            follow_up_window_days: days,
            ..self
        }
    }

    /// For a landed fix: which earlier commits' lines it deleted or changed
    /// (blame at its parent), into `record.follow_ups`. Run for commits that
    /// land after a repository's first sync (its history is the baseline).
    pub fn find_follow_ups(
        &self,
        repo: &Repository,
        commit: &Commit<'_>,
        record: &mut CommitRecord,
    ) {
        let fix = record.kind == Kind::Fix || record.detected_kind == Some(Kind::Fix);
        if !fix || record.merge {
            return;
        }
        match super::blame::follow_ups(repo, commit, &self.rules, self.follow_up_window_days) {
            Ok(found) => record.follow_ups = found,
            Err(err) => record
                .warnings
                .push(format!("blame could not be computed: {}", err.message())),
        }
    }

    /// Attributes `commit`; `with_diff: false` skips diff facts (trailers-only, much faster).
    pub fn attribute(
        &self,
        repo: &Repository,
        commit: &CommitFacts<'_>,
        with_diff: bool,
        seen: &SeenCommits,
    ) -> CommitRecord {
        let diff = (with_diff && !commit.merge()).then(|| {
            repo.find_commit(commit.id)
                .and_then(|commit| diff_facts(repo, &commit, &self.rules))
        });
        self.link(repo, self.prepare(commit, diff), seen)
    }

    /// Everything attribution says about `commit` on its own: all but the
    /// commits it reverts or fixes, which need the history before it (see
    /// [`Attributor::link`]). Needs no repository, so a scan runs it on another
    /// thread while it is still reading the history.
    pub fn prepare(
        &self,
        commit: &CommitFacts<'_>,
        diff: Option<Result<DiffFacts, git2::Error>>,
    ) -> Prepared {
        let message = String::from_utf8_lossy(commit.message);
        let subject = message
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let (author, committer) = (&commit.author, &commit.committer);
        let author_name = author.name.clone();
        let author_email = author.email.clone();
        let committer_name = committer.name.as_str();
        let committer_email = committer.email.clone();

        let mut ev = trailers::read(
            &self.registry,
            &message,
            (&author_name, &author_email),
            (committer_name, &committer_email),
        );
        let mut warnings = std::mem::take(&mut ev.warnings);
        if ev.declared_not_ai && !ev.agents.is_empty() {
            warnings.push(
                "AI-Assisted says no, but the commit names an agent; counted as not assisted"
                    .into(),
            );
        }
        let ai = !ev.agents.is_empty() && !ev.declared_not_ai;

        // An agent author is credited to the human co-author, else (once known) the
        // person who merged the pull request, else the committer.
        let (credited_email, credit) = if self.registry.agent_for_email(&author_email).is_some() {
            let human = ev.humans.iter().find(|h| !h.email.is_empty());
            let committer_is_human = self.registry.agent_for_email(&committer_email).is_none()
                && committer_email != "noreply@github.com";
            match human {
                Some(h) => (h.email.clone(), Credit::CoAuthor),
                None if committer_is_human => (committer_email.clone(), Credit::Committer),
                None => (author_email.clone(), Credit::Agent),
            }
        } else {
            (author_email.clone(), Credit::Author)
        };

        let merge = commit.merge();
        let with_diff = diff.is_some();
        let facts = match diff {
            Some(Ok(facts)) => facts,
            Some(Err(err)) => {
                warnings.push(format!("diff could not be computed: {}", err.message()));
                DiffFacts::default()
            }
            None => DiffFacts::default(),
        };
        let detected = if let Some(kind) = Kind::from_conventional_subject(&subject) {
            (kind, KindSource::Conventional)
        } else if with_diff {
            (facts.kind(), KindSource::Diff)
        } else {
            (Kind::Feature, KindSource::Default)
        };
        let revert_refs = links::revert_refs(&message);
        let fix_refs: Vec<String> = ev
            .fixes
            .iter()
            .filter_map(|value| links::fixes_sha(value))
            .collect();
        let declared_kind = ev.declared_kind;

        let record = CommitRecord {
            sha: commit.id.to_string(),
            subject,
            person: self.directory.person_for_email(&credited_email),
            credit,
            author_name,
            author_email,
            committer_email,
            authored_at: rfc3339(author.when),
            committed_at: rfc3339(committer.when),
            ai,
            agents: if ai {
                ev.agents.iter().map(|a| a.agent.clone()).collect()
            } else {
                Vec::new()
            },
            model: if ai {
                ev.model().map(str::to_string)
            } else {
                None
            },
            // Final once linked (a revert's kind is revert).
            kind: declared_kind.unwrap_or(detected.0),
            kind_source: detected.1,
            detected_kind: None,
            usage_tokens: ev.usage_tokens,
            files_changed: facts.files_changed,
            binary_files: facts.binary_files,
            lines_added: facts.lines_added,
            lines_deleted: facts.lines_deleted,
            lines_moved: facts.lines_moved,
            lines_excluded: facts.lines_excluded,
            changed_lines: facts.changed_lines(),
            patch_id: facts.patch_id,
            formatting_only: facts.formatting_only,
            files: facts.files,
            minhash: facts.minhash,
            reverts: Vec::new(),
            fixes: Vec::new(),
            follow_ups: Vec::new(),
            merge,
            links: ev.links,
            evidence: ev.agents,
            warnings,
        };
        Prepared {
            record,
            id: commit.id,
            committed_at: commit.committer.when.seconds(),
            parents: commit.parents.clone(),
            summary: commit.summary.clone(),
            revert_refs,
            fix_refs,
            detected,
            declared_kind,
        }
    }

    /// Completes a prepared commit with what needs the history before it:
    /// the commits it reverts (and, for a merge, what that merge brought in)
    /// and fixes, each only when in its history; a revert's kind.
    pub fn link(&self, repo: &Repository, prepared: Prepared, seen: &SeenCommits) -> CommitRecord {
        let Prepared {
            mut record,
            id,
            parents,
            revert_refs,
            fix_refs,
            detected,
            declared_kind,
            ..
        } = prepared;
        let warnings = &mut record.warnings;
        let reverts: Vec<String> = resolve_reverts(repo, revert_refs, seen, warnings)
            .into_iter()
            .filter(|target| {
                is_ancestor(
                    repo,
                    (id, &parents),
                    seen,
                    target,
                    "reverted commit",
                    warnings,
                )
            })
            .collect();
        let reverts = with_merged_commits(repo, reverts, warnings);
        let fixes: Vec<String> = fix_refs
            .iter()
            .filter_map(|sha| resolve_sha(repo, sha, "Fixes:", warnings))
            .collect();
        let fixes = fixes
            .into_iter()
            .filter(|target| is_ancestor(repo, (id, &parents), seen, target, "Fixes:", warnings))
            .collect();
        // A revert or reapply is kind revert whatever it declares: undoing work
        // earns nothing, and a trailer must not make it earn.
        let reverting = !reverts.is_empty()
            || record.subject.starts_with("Revert \"")
            || record.subject.starts_with("Reapply \"");
        (record.kind, record.kind_source, record.detected_kind) = if reverting {
            (Kind::Revert, KindSource::Revert, None)
        } else if let Some(kind) = declared_kind {
            (kind, KindSource::Trailer, Some(detected.0))
        } else {
            (detected.0, detected.1, None)
        };
        record.reverts = reverts;
        record.fixes = fixes;
        record
    }
}

/// A commit attributed on its own, waiting for [`Attributor::link`].
#[derive(Debug, Clone)]
pub struct Prepared {
    record: CommitRecord,
    id: Oid,
    committed_at: i64,
    parents: Vec<Oid>,
    summary: String,
    revert_refs: Vec<RevertRef>,
    fix_refs: Vec<String>,
    detected: (Kind, KindSource),
    declared_kind: Option<Kind>,
}

impl Prepared {
    pub fn id(&self) -> Oid {
        self.id
    }

    pub fn parents(&self) -> &[Oid] {
        &self.parents
    }

    /// The subject as git gives it (what a later revert names), taken out.
    pub fn take_summary(&mut self) -> String {
        std::mem::take(&mut self.summary)
    }

    /// The committer time (seconds).
    pub fn committed_at(&self) -> i64 {
        self.committed_at
    }
}

/// Most commits one reverted merge may bring back with it.
const MAX_MERGED_COMMITS: usize = 10_000;

/// Reverting a merge commit reverts what it brought in: each reverted merge
/// `M` adds the commits of `M^1..M^2` (a squash commit is one commit and
/// carries the credit itself).
fn with_merged_commits(
    repo: &Repository,
    reverts: Vec<String>,
    warnings: &mut Vec<String>,
) -> Vec<String> {
    let mut out = reverts.clone();
    let mut listed: std::collections::HashSet<String> = reverts.iter().cloned().collect();
    for target in &reverts {
        let Some(merge) = Oid::from_str(target)
            .ok()
            .and_then(|oid| repo.find_commit(oid).ok())
            .filter(|c| c.parent_count() > 1)
        else {
            continue;
        };
        let brought = (|| -> Result<Vec<String>, git2::Error> {
            let mut walk = repo.revwalk()?;
            for parent in merge.parent_ids().skip(1) {
                walk.push(parent)?;
            }
            walk.hide(merge.parent_id(0)?)?;
            walk.take(MAX_MERGED_COMMITS + 1)
                .map(|oid| oid.map(|o| o.to_string()))
                .collect()
        })();
        match brought {
            Ok(list) if list.len() > MAX_MERGED_COMMITS => warnings.push(format!(
                "reverted merge {} brought in over {MAX_MERGED_COMMITS} commits; only the merge is counted",
                &target[..12]
            )),
            Ok(list) => {
                for sha in list {
                    if listed.insert(sha.clone()) {
                        out.push(sha);
                    }
                }
            }
            Err(e) => warnings.push(format!(
                "the commits of reverted merge {} could not be listed: {}",
                &target[..12],
                e.message()
            )),
        }
    }
    out
}

fn resolve_reverts(
    repo: &Repository,
    refs: Vec<RevertRef>,
    seen: &SeenCommits,
    warnings: &mut Vec<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for reference in refs {
        let resolved = match &reference {
            RevertRef::Sha(sha) => resolve_sha(repo, sha, "reverted commit", warnings),
            RevertRef::PullRequest { repo: name, number } => {
                let found = seen.by_pull_request(*number).map(|o| o.to_string());
                if found.is_none() {
                    warnings.push(format!(
                        "reverts {name}#{number}, whose commit is not known"
                    ));
                }
                found
            }
            RevertRef::Subject(subject) => {
                let found = seen
                    .by_subject(subject)
                    .filter(|oid| has_subject(repo, *oid, subject))
                    .map(|o| o.to_string());
                if found.is_none() {
                    warnings.push(format!(
                        "reverts {subject:?}, which matches no earlier subject"
                    ));
                }
                found
            }
            RevertRef::Reapply(subject) => {
                let revert = format!("Revert \"{subject}\"");
                let found = seen
                    .by_subject(&revert)
                    .filter(|oid| has_subject(repo, *oid, &revert))
                    .map(|o| o.to_string());
                if found.is_none() {
                    warnings.push(format!(
                        "reapplies {subject:?}, but no revert of it is known"
                    ));
                }
                found
            }
        };
        if let Some(sha) = resolved
            && !out.contains(&sha)
        {
            out.push(sha);
        }
    }
    out
}

/// Whether commit `oid`'s subject is `subject` (the index finds subjects by hash).
fn has_subject(repo: &Repository, oid: Oid, subject: &str) -> bool {
    repo.find_commit(oid).is_ok_and(|c| {
        let summary = String::from_utf8_lossy(c.summary_bytes().unwrap_or_default()).to_string();
        let first_line = String::from_utf8_lossy(c.message_bytes())
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        summary == subject || first_line == subject
    })
}

/// A revert or fix is about landed work only when its target is in the linking
/// commit's history: a squash body quoting `This reverts commit X` for a commit
/// that only ever lived on the pull request's branch reverts nothing that landed.
///
/// The walk's own index answers (it has seen the history); git is asked only
/// when the walk started partway (a range, an incremental sync).
fn is_ancestor(
    repo: &Repository,
    (id, parents): (Oid, &[Oid]),
    seen: &SeenCommits,
    target: &str,
    what: &str,
    warnings: &mut Vec<String>,
) -> bool {
    let Ok(target_oid) = Oid::from_str(target) else {
        return false;
    };
    let ancestor = target_oid != id
        && match seen.is_ancestor(parents, target_oid) {
            Some(known) => known,
            None => repo.graph_descendant_of(id, target_oid).unwrap_or(false),
        };
    if !ancestor {
        warnings.push(format!(
            "{what} {} is not in this commit's history; not counted",
            &target[..target.len().min(12)]
        ));
    }
    ancestor
}

/// A full or abbreviated id → the full id of a commit in `repo`.
fn resolve_sha(
    repo: &Repository,
    sha: &str,
    what: &str,
    warnings: &mut Vec<String>,
) -> Option<String> {
    match repo.find_commit_by_prefix(sha) {
        Ok(commit) => Some(commit.id().to_string()),
        Err(err) => {
            let why = if err.code() == git2::ErrorCode::Ambiguous {
                "is ambiguous"
            } else {
                "is not in the repository"
            };
            warnings.push(format!("{what} {sha} {why}"));
            None
        }
    }
}

fn rfc3339(time: git2::Time) -> String {
    let offset = FixedOffset::east_opt(time.offset_minutes() * 60)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
    let when: Option<DateTime<FixedOffset>> = offset.timestamp_opt(time.seconds(), 0).single();
    when.map(|t| t.to_rfc3339()).unwrap_or_default()
}
