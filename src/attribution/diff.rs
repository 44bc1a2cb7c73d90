//! Diff facts of one commit against its first parent (root commits against the
//! empty tree): files, lines added/deleted, lines that only moved, lines in
//! excluded paths, binary files, and a patch-id.
//!
//! The patch-id is tokentally's own: a hash of each changed file's path and
//! changed lines with whitespace removed, combined independently of file order
//! (the idea of `git patch-id --stable`, not its exact bytes). Equal changes get
//! equal ids wherever they land.

use std::collections::HashMap;

use std::cmp::Ordering;

use git2::{Commit, ObjectType, Oid, Repository, Tree, TreeEntry};
use imara_diff::{Algorithm, Diff, InternedInput};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::kind::Kind;
use super::paths::{PathClass, PathRules};
use crate::scoring::similarity;

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
    /// Every text hunk only moved whitespace or re-wrapped lines: without
    /// whitespace, what it removed is what it added (a formatting-only change).
    pub formatting_only: bool,
    /// Changed paths outside excluded ones (change sets are joined by a common file).
    pub files: Vec<String>,
    /// The MinHash signature of the added lines outside excluded paths (hex).
    pub minhash: Option<String>,
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

/// Blobs larger than this are counted as binary files, never loaded or diffed:
/// a generated 200 MB file must not cost a scan its memory or its time.
pub const MAX_DIFF_BLOB_BYTES: usize = 1024 * 1024;

/// Trees nested deeper than this are not descended into (a hostile history can
/// nest thousands of levels to exhaust the stack).
pub const MAX_TREE_DEPTH: usize = 64;

/// Lines shorter than this (after trimming) are too common (`}`, `end`) to say
/// anything about moved code.
const MIN_MOVED_LINE: usize = 4;

/// A file whose blob differs between the parent's tree and the commit's tree.
struct FileChange {
    path: String,
    old: Option<Oid>,
    new: Option<Oid>,
}

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
    let mut changes = Vec::new();
    changed_files(repo, parent_tree.as_ref(), Some(&tree), "", 0, &mut changes)?;
    let odb = repo.odb()?;
    let too_large = |id: Option<Oid>| {
        id.is_some_and(|id| {
            odb.read_header(id)
                .is_ok_and(|(size, _)| size > MAX_DIFF_BLOB_BYTES)
        })
    };
    let large: Vec<bool> = changes
        .iter()
        .map(|c| too_large(c.old) || too_large(c.new))
        .collect();

    let mut facts = DiffFacts::default();
    let mut file_ids: Vec<[u8; 32]> = Vec::with_capacity(changes.len());
    let mut added_lines: HashMap<&[u8], u64> = HashMap::new();
    // For the near-duplicate signature: every added line outside excluded paths.
    let mut added_text: Vec<String> = Vec::new();
    let mut hunks = 0u64;
    let mut formatting_hunks = 0u64;
    let mut deleted_lines: HashMap<&[u8], u64> = HashMap::new();

    // Exact renames: a blob deleted at one path and added unchanged at another.
    let mut renamed = vec![false; changes.len()];
    for i in 0..changes.len() {
        let Some(old) = changes[i].old.filter(|_| changes[i].new.is_none()) else {
            continue;
        };
        if let Some(j) = (0..changes.len())
            .find(|&j| !renamed[j] && changes[j].old.is_none() && changes[j].new == Some(old))
        {
            renamed[i] = true;
            renamed[j] = true;
            let class = count_file(&mut facts, rules, &changes[j].path);
            if class != PathClass::Excluded {
                facts.files.push(changes[j].path.clone());
            }
            if class != PathClass::Excluded && !large[i] {
                facts.lines_moved += repo
                    .find_blob(old)
                    .map(|b| count_lines(b.content()))
                    .unwrap_or(0);
            }
            let mut h = Sha256::new();
            h.update(b"rename\0");
            h.update(changes[i].path.as_bytes());
            h.update(b"\0");
            h.update(changes[j].path.as_bytes());
            file_ids.push(h.finalize().into());
        }
    }

    let blobs: Vec<(Option<git2::Blob<'_>>, Option<git2::Blob<'_>>)> = changes
        .iter()
        .zip(&large)
        .map(|(c, large)| {
            if *large {
                return Ok((None, None));
            }
            let find = |id: Option<Oid>| id.map(|id| repo.find_blob(id)).transpose();
            Ok((find(c.old)?, find(c.new)?))
        })
        .collect::<Result<_, git2::Error>>()?;
    for (i, change) in changes.iter().enumerate() {
        if renamed[i] {
            continue;
        }
        let class = count_file(&mut facts, rules, &change.path);
        if class != PathClass::Excluded {
            facts.files.push(change.path.clone());
        }
        let (old, new) = &blobs[i];
        let old = old.as_ref().map(|b| b.content()).unwrap_or_default();
        let new = new.as_ref().map(|b| b.content()).unwrap_or_default();
        let mut file_hash = Sha256::new();
        file_hash.update(change.path.as_bytes());
        if large[i] || is_binary(old) || is_binary(new) {
            facts.binary_files += 1;
            file_hash.update(b"\0binary\0");
            file_hash.update(change.old.map(|o| o.to_string()).unwrap_or_default());
            file_hash.update(change.new.map(|o| o.to_string()).unwrap_or_default());
            file_ids.push(file_hash.finalize().into());
            continue;
        }
        // Myers, as `git diff` uses by default, so the counts match git's.
        let input = InternedInput::new(old, new);
        let diff = Diff::compute(Algorithm::Myers, &input);
        for hunk in diff.hunks() {
            if class != PathClass::Excluded {
                // Formatting-only: the same text once whitespace is gone.
                let without_whitespace = |lines: &[imara_diff::Token]| -> Vec<u8> {
                    lines
                        .iter()
                        .flat_map(|t| input.interner[*t].iter().copied())
                        .filter(|b| !b.is_ascii_whitespace())
                        .collect()
                };
                let before = &input.before[hunk.before.start as usize..hunk.before.end as usize];
                let after = &input.after[hunk.after.start as usize..hunk.after.end as usize];
                hunks += 1;
                formatting_hunks +=
                    u64::from(without_whitespace(before) == without_whitespace(after));
            }
            let removed = hunk
                .before
                .clone()
                .map(|t| ('-', input.interner[input.before[t as usize]]));
            let added = hunk
                .after
                .clone()
                .map(|t| ('+', input.interner[input.after[t as usize]]));
            for (origin, line) in removed.chain(added) {
                // The patch-id ignores whitespace, like `git patch-id`.
                file_hash.update([origin as u8]);
                file_hash.update(
                    line.iter()
                        .copied()
                        .filter(|b| !b.is_ascii_whitespace())
                        .collect::<Vec<u8>>(),
                );
                if class == PathClass::Excluded {
                    facts.lines_excluded += 1;
                    continue;
                }
                let (count, side) = if origin == '+' {
                    (&mut facts.lines_added, &mut added_lines)
                } else {
                    (&mut facts.lines_deleted, &mut deleted_lines)
                };
                *count += 1;
                if origin == '+' {
                    added_text.push(String::from_utf8_lossy(line).into_owned());
                }
                let content = line.trim_ascii();
                if content.len() >= MIN_MOVED_LINE {
                    *side.entry(content).or_insert(0) += 1;
                }
            }
        }
        file_ids.push(file_hash.finalize().into());
    }

    let in_both: u64 = added_lines
        .iter()
        .map(|(line, n)| (*n).min(deleted_lines.get(line).copied().unwrap_or(0)))
        .sum();
    facts.lines_moved += in_both;
    facts.moved_pairs = in_both;
    facts.formatting_only = hunks > 0 && formatting_hunks == hunks;
    facts.minhash =
        similarity::signature(added_text.iter().map(String::as_str)).map(|s| s.to_hex());
    if !file_ids.is_empty() {
        // Order-independent across files, like `git patch-id --stable`.
        file_ids.sort();
        let mut id = Sha256::new();
        for f in &file_ids {
            id.update(f);
        }
        facts.patch_id = Some(hex::encode(&id.finalize()[..20]));
    }
    Ok(facts)
}

fn count_file(facts: &mut DiffFacts, rules: &PathRules, path: &str) -> PathClass {
    let class = rules.classify(path);
    facts.files_changed += 1;
    match class {
        PathClass::Excluded => facts.classes.excluded += 1,
        PathClass::Docs => facts.classes.docs += 1,
        PathClass::Tests => facts.classes.tests += 1,
        PathClass::Code => facts.classes.code += 1,
    }
    class
}

/// Git's test: a NUL byte in the first 8,000 bytes makes a file binary.
fn is_binary(content: &[u8]) -> bool {
    content[..content.len().min(8000)].contains(&0)
}

/// Collects the blobs that differ between two trees, descending only into
/// subtrees whose ids differ (libgit2's tree diff walks every entry of both trees).
fn changed_files(
    repo: &Repository,
    old: Option<&Tree<'_>>,
    new: Option<&Tree<'_>>,
    prefix: &str,
    depth: usize,
    out: &mut Vec<FileChange>,
) -> Result<(), git2::Error> {
    if depth > MAX_TREE_DEPTH {
        return Ok(());
    }
    // Both trees list their entries in git's order, so one merge pass pairs them.
    let mut old_entries = old.map(|t| t.iter()).into_iter().flatten().peekable();
    let mut new_entries = new.map(|t| t.iter()).into_iter().flatten().peekable();
    loop {
        let order = match (old_entries.peek(), new_entries.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(o), Some(n)) => git_order(o, n),
        };
        let (before, after) = match order {
            Ordering::Less => (old_entries.next(), None),
            Ordering::Greater => (None, new_entries.next()),
            Ordering::Equal => (old_entries.next(), new_entries.next()),
        };
        if let (Some(b), Some(a)) = (&before, &after)
            && b.id() == a.id()
        {
            continue;
        }
        let entry = before
            .as_ref()
            .or(after.as_ref())
            .expect("one side has the entry");
        let path = format!("{prefix}{}", String::from_utf8_lossy(entry.name_bytes()));
        let is_tree = |e: &Option<TreeEntry<'_>>| {
            e.as_ref()
                .is_some_and(|e| e.kind() == Some(ObjectType::Tree))
        };
        if is_tree(&before) || is_tree(&after) {
            let old_tree = before
                .as_ref()
                .filter(|_| is_tree(&before))
                .map(|e| repo.find_tree(e.id()))
                .transpose()?;
            let new_tree = after
                .as_ref()
                .filter(|_| is_tree(&after))
                .map(|e| repo.find_tree(e.id()))
                .transpose()?;
            changed_files(
                repo,
                old_tree.as_ref(),
                new_tree.as_ref(),
                &format!("{path}/"),
                depth + 1,
                out,
            )?;
        } else {
            // Blobs (files and symlinks); submodule commits are not ours to count.
            let blob = |e: &Option<TreeEntry<'_>>| {
                e.as_ref()
                    .filter(|e| e.kind() == Some(ObjectType::Blob))
                    .map(|e| e.id())
            };
            let (old_blob, new_blob) = (blob(&before), blob(&after));
            if old_blob.is_some() || new_blob.is_some() {
                out.push(FileChange {
                    path,
                    old: old_blob,
                    new: new_blob,
                });
            }
        }
    }
    Ok(())
}

/// Git's tree-entry order: by name bytes, a tree's name compared as if it ended in `/`.
fn git_order(a: &TreeEntry<'_>, b: &TreeEntry<'_>) -> Ordering {
    let (x, y) = (a.name_bytes(), b.name_bytes());
    let common = x.len().min(y.len());
    x[..common].cmp(&y[..common]).then_with(|| {
        let next = |name: &[u8], entry: &TreeEntry<'_>| match name.get(common) {
            Some(c) => *c,
            None if entry.kind() == Some(ObjectType::Tree) => b'/',
            None => 0,
        };
        next(x, a).cmp(&next(y, b))
    })
}

fn count_lines(content: &[u8]) -> u64 {
    if content.is_empty() {
        return 0;
    }
    let newlines = content.iter().filter(|b| **b == b'\n').count() as u64;
    newlines + u64::from(!content.ends_with(b"\n"))
}
