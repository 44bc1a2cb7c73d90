//! Follow-up fixes found by blame (the SZZ approach): the lines a fix deletes
//! or changes are blamed at the fix's parent; each commit that added some of
//! them was followed up by this fix, in proportion to the share of its own
//! added lines the fix touched.

use std::collections::HashMap;

use git2::{BlameOptions, Commit, Oid, Repository};
use imara_diff::{Algorithm, Diff, InternedInput};
use serde::Serialize;

use super::diff::{MAX_DIFF_BLOB_BYTES, diff_facts};
use super::paths::{PathClass, PathRules};

/// An earlier commit whose added lines a fix touched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowUp {
    /// The commit the touched lines came from (full id).
    pub sha: String,
    /// How many of its lines the fix deleted or changed.
    pub lines: u64,
    /// `lines` ÷ the lines it added (outside excluded paths), at most 1.
    pub share: f64,
}

/// The first commit on `start`'s first-parent line committed before `since`
/// (seconds): where blame stops. `None` when the history is younger.
fn window_start(start: &Commit<'_>, since: i64) -> Result<Option<Oid>, git2::Error> {
    let mut current = start.clone();
    loop {
        if current.time().seconds() < since {
            return Ok(Some(current.id()));
        }
        if current.parent_count() == 0 {
            return Ok(None);
        }
        current = current.parent(0)?;
    }
}

/// Files a fix changes beyond this many are not blamed (a sweeping change is
/// not a follow-up of any one commit, and blame costs a history walk per file).
const MAX_BLAMED_FILES: usize = 20;

/// The commits whose lines `commit` deletes or changes, with their shares,
/// largest first. Only files present in the parent, text, outside excluded
/// paths; only lines from commits of the last `window_days` before it (older
/// work has vested: blame stops there instead of walking all history).
pub fn follow_ups(
    repo: &Repository,
    commit: &Commit<'_>,
    rules: &PathRules,
    window_days: i64,
) -> Result<Vec<FollowUp>, git2::Error> {
    if commit.parent_count() != 1 {
        return Ok(Vec::new());
    }
    let parent = commit.parent(0)?;
    let boundary = window_start(&parent, commit.time().seconds() - window_days * 86_400)?;
    let (old_tree, new_tree) = (parent.tree()?, commit.tree()?);
    let diff = repo.diff_tree_to_tree(Some(&old_tree), Some(&new_tree), None)?;
    let mut touched: HashMap<Oid, u64> = HashMap::new();
    let mut blamed = 0;
    for delta in diff.deltas() {
        let old = delta.old_file();
        let Some(path) = old.path().and_then(|p| p.to_str()) else {
            continue;
        };
        if old.id().is_zero() || rules.classify(path) == PathClass::Excluded {
            continue;
        }
        let new_id = delta.new_file().id();
        let old_blob = repo.find_blob(old.id())?;
        if old_blob.size() > MAX_DIFF_BLOB_BYTES || old_blob.is_binary() {
            continue;
        }
        let new_content = if new_id.is_zero() {
            Vec::new()
        } else {
            let blob = repo.find_blob(new_id)?;
            if blob.size() > MAX_DIFF_BLOB_BYTES || blob.is_binary() {
                continue;
            }
            blob.content().to_vec()
        };
        // The parent's lines (1-based) the fix removes or rewrites.
        let input = InternedInput::new(old_blob.content(), new_content.as_slice());
        let lines: Vec<usize> = Diff::compute(Algorithm::Myers, &input)
            .hunks()
            .flat_map(|h| h.before)
            .map(|l| l as usize + 1)
            .collect();
        if lines.is_empty() {
            continue;
        }
        blamed += 1;
        if blamed > MAX_BLAMED_FILES {
            break;
        }
        let (lo, hi) = (lines[0], lines[lines.len() - 1]);
        let mut options = BlameOptions::new();
        options.newest_commit(parent.id()).min_line(lo).max_line(hi);
        if let Some(oldest) = boundary {
            options.oldest_commit(oldest);
        }
        let blame = repo.blame_file(std::path::Path::new(path), Some(&mut options))?;
        for line in lines {
            // Lines from before the window blame to the boundary: not ours
            // (without a boundary, "boundary" means the root commit: ours).
            let in_window = |h: &git2::BlameHunk<'_>| boundary.is_none() || !h.is_boundary();
            if let Some(hunk) = blame.get_line(line).filter(in_window) {
                *touched.entry(hunk.final_commit_id()).or_default() += 1;
            }
        }
    }
    let mut out = Vec::new();
    for (oid, lines) in touched {
        let Ok(origin) = repo.find_commit(oid) else {
            continue;
        };
        let added = diff_facts(repo, &origin, rules)
            .map(|f| f.lines_added)
            .unwrap_or(0);
        if added == 0 {
            continue;
        }
        out.push(FollowUp {
            sha: oid.to_string(),
            lines,
            share: (lines as f64 / added as f64).min(1.0),
        });
    }
    out.sort_by(|a, b| b.lines.cmp(&a.lines).then(a.sha.cmp(&b.sha)));
    Ok(out)
}
