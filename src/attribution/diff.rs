//! Diff facts of one commit against its first parent (root commits against the
//! empty tree): files, lines added/deleted, lines that only moved, lines in
//! excluded paths, binary files, and the patch-id.

use std::cell::RefCell;
use std::collections::HashMap;

use git2::{Commit, Delta, DiffFindOptions, DiffOptions, Repository};
use serde::Serialize;

use super::kind::Kind;
use super::paths::{PathClass, PathRules};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiffFacts {
    pub files_changed: u64,
    pub binary_files: u64,
    /// Lines added/deleted outside excluded paths (moved lines included).
    pub lines_added: u64,
    pub lines_deleted: u64,
    /// Lines that only moved: deleted in one place and added unchanged in another,
    /// or carried by a rename.
    pub lines_moved: u64,
    /// Lines added plus deleted in excluded paths (lockfiles, vendored, generated).
    pub lines_excluded: u64,
    pub patch_id: Option<String>,
    /// Of `lines_moved`, the deleted-here-added-there pairs (each counted in both
    /// `lines_added` and `lines_deleted`); the rest were carried by renames.
    #[serde(skip)]
    pub moved_pairs: u64,
    #[serde(skip)]
    pub classes: ClassCounts,
}

/// How many changed files fell in each path class (kind detection reads these).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassCounts {
    pub code: u64,
    pub docs: u64,
    pub tests: u64,
    pub excluded: u64,
    pub renamed: u64,
}

impl DiffFacts {
    /// Lines that count for size: changes outside excluded paths, less moved lines.
    pub fn changed_lines(&self) -> u64 {
        (self.lines_added + self.lines_deleted).saturating_sub(2 * self.moved_pairs)
    }

    /// The kind the diff suggests, when neither a trailer nor the subject says.
    pub fn kind(&self) -> Kind {
        let c = self.classes;
        let counted = c.code + c.docs + c.tests;
        if counted > 0 && c.docs == counted {
            return Kind::Docs;
        }
        if counted > 0 && c.tests == counted {
            return Kind::Test;
        }
        // Mostly moved or renamed lines with a small net change.
        if self.lines_moved > 0 && self.lines_moved >= 2 * self.changed_lines() {
            return Kind::Refactor;
        }
        Kind::Feature
    }
}

/// Lines shorter than this (after trimming) are too common (`}`, `end`) to say
/// anything about moved code.
const MIN_MOVED_LINE: usize = 4;

pub fn diff_facts(
    repo: &Repository,
    commit: &Commit<'_>,
    rules: &PathRules,
) -> Result<DiffFacts, git2::Error> {
    let tree = commit.tree()?;
    let parent_tree = match commit.parent_count() {
        0 => None,
        _ => Some(commit.parent(0)?.tree()?),
    };
    let mut options = DiffOptions::new();
    options.ignore_submodules(true);
    let mut diff = repo.diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), Some(&mut options))?;
    diff.find_similar(Some(DiffFindOptions::new().renames(true)))?;

    let facts = RefCell::new(DiffFacts::default());
    // Normalised content of deleted and added lines, to find lines that only moved.
    let deleted: RefCell<HashMap<Vec<u8>, u64>> = RefCell::new(HashMap::new());
    let added: RefCell<HashMap<Vec<u8>, u64>> = RefCell::new(HashMap::new());
    // The class of the file being walked, and whether it is a rename.
    let current = RefCell::new((PathClass::Code, false));

    let mut file_cb = |delta: git2::DiffDelta<'_>, _progress: f32| {
        let path = delta
            .new_file()
            .path()
            .or_else(|| delta.old_file().path())
            .map(|p| p.to_string_lossy().to_string())
            .unwrap_or_default();
        let class = rules.classify(&path);
        *current.borrow_mut() = (class, delta.status() == Delta::Renamed);
        let mut f = facts.borrow_mut();
        f.files_changed += 1;
        match class {
            PathClass::Excluded => f.classes.excluded += 1,
            PathClass::Docs => f.classes.docs += 1,
            PathClass::Tests => f.classes.tests += 1,
            PathClass::Code => f.classes.code += 1,
        }
        if delta.status() == Delta::Renamed {
            f.classes.renamed += 1;
            if class != PathClass::Excluded {
                // The lines the rename carried unchanged count as moved.
                let carried = repo
                    .find_blob(delta.old_file().id())
                    .map(|b| count_lines(b.content()))
                    .unwrap_or(0);
                f.lines_moved += carried;
            }
        }
        true
    };
    let mut binary_cb = |_delta: git2::DiffDelta<'_>, _binary: git2::DiffBinary<'_>| {
        facts.borrow_mut().binary_files += 1;
        true
    };
    let mut line_cb = |_delta: git2::DiffDelta<'_>,
                       _hunk: Option<git2::DiffHunk<'_>>,
                       line: git2::DiffLine<'_>| {
        let origin = line.origin();
        if origin != '+' && origin != '-' {
            return true;
        }
        let mut f = facts.borrow_mut();
        let (class, renamed) = *current.borrow();
        if class == PathClass::Excluded {
            f.lines_excluded += 1;
            return true;
        }
        if renamed && origin == '-' {
            // Deleted from the renamed file: not carried by the rename after all.
            f.lines_moved = f.lines_moved.saturating_sub(1);
        }
        let content = line.content().trim_ascii();
        let side = if origin == '+' {
            f.lines_added += 1;
            &added
        } else {
            f.lines_deleted += 1;
            &deleted
        };
        if content.len() >= MIN_MOVED_LINE {
            *side.borrow_mut().entry(content.to_vec()).or_insert(0) += 1;
        }
        true
    };
    diff.foreach(&mut file_cb, Some(&mut binary_cb), None, Some(&mut line_cb))?;

    let mut facts = facts.into_inner();
    let deleted = deleted.into_inner();
    let in_both: u64 = added
        .into_inner()
        .iter()
        .map(|(line, n)| (*n).min(deleted.get(line).copied().unwrap_or(0)))
        .sum();
    facts.lines_moved += in_both;
    facts.moved_pairs = in_both;
    if facts.files_changed > 0 {
        facts.patch_id = Some(diff.patchid(None)?.to_string());
    }
    Ok(facts)
}

fn count_lines(content: &[u8]) -> u64 {
    if content.is_empty() {
        return 0;
    }
    let newlines = content.iter().filter(|b| **b == b'\n').count() as u64;
    newlines + u64::from(!content.ends_with(b"\n"))
}
