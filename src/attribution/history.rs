//! What a walk has seen of the history so far, oldest first: subjects and
//! pull-request numbers (to resolve reverts by subject or `#N`), and the
//! commit graph with generation numbers, so "is this commit an ancestor of
//! that one" is answered in memory instead of by libgit2 walking the history
//! again for every revert and `Fixes:` link (which re-reads months of commits
//! through its object cache each time).

use std::cell::RefCell;
use std::collections::HashMap;

use git2::Oid;

use super::links;
use crate::git::oid_map::{OidHasher, OidMap};

/// A commit of the walk.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// 1 + the largest generation of its parents (1 for a root).
    generation: u32,
    /// Its parents' node numbers: `parents[first..first + count]`.
    first: u32,
    count: u32,
    /// Every ancestor was seen too (its generation is exact, and a commit not
    /// in the index is not its ancestor).
    complete: bool,
}

/// A 64-bit hash of a subject (SipHash: subjects are written by anyone).
fn subject_hash(subject: &str) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    thread_local! {
        static STATE: RandomState = RandomState::new();
    }
    STATE.with(|state| state.hash_one(subject))
}

#[derive(Debug, Default)]
pub struct SeenCommits {
    /// By the hash of the subject (no copy of each subject is kept; the rare
    /// revert by subject compares the subject itself, see `commit.rs`).
    by_subject: HashMap<u64, Oid, std::hash::BuildHasherDefault<OidHasher>>,
    by_pull_request: HashMap<u64, Oid>,
    index: OidMap<u32>,
    nodes: Vec<Node>,
    /// Every node's parents, one after the other (see [`Node::first`]).
    parents: Vec<u32>,
    /// Scratch for ancestor searches: the search number that last visited each node.
    visited: RefCell<(u32, Vec<u32>)>,
}

impl SeenCommits {
    /// A landed commit known by its subject only (from an earlier sync).
    pub fn remember(&mut self, oid: Oid, subject: &str) {
        self.by_subject.insert(subject_hash(subject), oid);
        if let Some(n) = links::pull_request_number(subject) {
            self.by_pull_request.insert(n, oid);
        }
    }

    /// A commit the walk visited, after its parents.
    pub fn remember_commit(
        &mut self,
        oid: Oid,
        parents: impl IntoIterator<Item = Oid>,
        subject: &str,
    ) {
        self.remember(oid, subject);
        if self.index.contains_key(&oid) {
            return;
        }
        let first = self.parents.len() as u32;
        let mut complete = true;
        let mut generation = 1;
        for parent in parents {
            match self.index.get(&parent) {
                Some(&p) => {
                    let node = self.nodes[p as usize];
                    complete &= node.complete;
                    generation = generation.max(node.generation + 1);
                    self.parents.push(p);
                }
                None => complete = false,
            }
        }
        let n = self.nodes.len() as u32;
        self.nodes.push(Node {
            generation,
            first,
            count: self.parents.len() as u32 - first,
            complete,
        });
        self.index.insert(oid, n);
    }

    /// The latest commit seen with this subject (by its hash: the caller
    /// checks the commit's subject).
    pub(super) fn by_subject(&self, subject: &str) -> Option<Oid> {
        self.by_subject.get(&subject_hash(subject)).copied()
    }

    pub(super) fn by_pull_request(&self, number: u64) -> Option<Oid> {
        self.by_pull_request.get(&number).copied()
    }

    /// Whether `target` is an ancestor of a commit whose parents are
    /// `parents`; `None` when the walk has not seen enough of the history to
    /// say (the caller asks git then).
    pub fn is_ancestor(&self, parents: &[Oid], target: Oid) -> Option<bool> {
        let mut starts = Vec::with_capacity(parents.len());
        for parent in parents {
            if *parent == target {
                return Some(true);
            }
            let &n = self.index.get(parent)?;
            if !self.nodes[n as usize].complete {
                return None;
            }
            starts.push(n);
        }
        // Every ancestor is in the index: one that is not there is no ancestor.
        let Some(&goal) = self.index.get(&target) else {
            return Some(false);
        };
        let goal_generation = self.nodes[goal as usize].generation;
        let mut visited = self.visited.borrow_mut();
        let (search, marks) = &mut *visited;
        *search += 1;
        marks.resize(self.nodes.len(), 0);
        let mut stack = starts;
        while let Some(n) = stack.pop() {
            if n == goal {
                return Some(true);
            }
            let node = self.nodes[n as usize];
            // An ancestor of `n` has a smaller generation than `n`: below the
            // goal's generation the goal cannot be reached.
            if node.generation <= goal_generation || marks[n as usize] == *search {
                continue;
            }
            marks[n as usize] = *search;
            let (first, count) = (node.first as usize, node.count as usize);
            stack.extend_from_slice(&self.parents[first..first + count]);
        }
        Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(n: u8) -> Oid {
        Oid::from_bytes(&[n; 20]).unwrap()
    }

    /// 1 ← 2 ← 3 ← 5 (merge of 3 and 4), 1 ← 4; 6 on 2 (a side branch).
    fn graph() -> SeenCommits {
        let mut seen = SeenCommits::default();
        seen.remember_commit(oid(1), [], "one");
        seen.remember_commit(oid(2), [oid(1)], "two");
        seen.remember_commit(oid(3), [oid(2)], "three");
        seen.remember_commit(oid(4), [oid(1)], "four");
        seen.remember_commit(oid(5), [oid(3), oid(4)], "Merge pull request #7");
        seen.remember_commit(oid(6), [oid(2)], "six");
        seen
    }

    #[test]
    fn ancestors_through_merges_and_not_across_branches() {
        let seen = graph();
        // A commit whose parent is 5: everything but 6 is its history.
        for (target, expected) in [
            (1, true),
            (2, true),
            (3, true),
            (4, true),
            (5, true),
            (6, false),
        ] {
            assert_eq!(
                seen.is_ancestor(&[oid(5)], oid(target)),
                Some(expected),
                "{target}"
            );
        }
        assert_eq!(seen.is_ancestor(&[oid(4)], oid(3)), Some(false));
        assert_eq!(seen.is_ancestor(&[oid(6)], oid(1)), Some(true));
        // Never seen, with a complete history: not an ancestor.
        assert_eq!(seen.is_ancestor(&[oid(5)], oid(99)), Some(false));
        assert_eq!(seen.by_pull_request(7), Some(oid(5)));
        assert_eq!(seen.by_subject("three"), Some(oid(3)));
    }

    #[test]
    fn an_incomplete_history_defers_to_git() {
        let mut seen = SeenCommits::default();
        // A walk that started after 1 (a range, or an incremental sync).
        seen.remember_commit(oid(2), [oid(1)], "two");
        seen.remember_commit(oid(3), [oid(2)], "three");
        assert_eq!(seen.is_ancestor(&[oid(3)], oid(1)), None);
        assert_eq!(seen.is_ancestor(&[oid(3)], oid(3)), Some(true));
        assert_eq!(seen.is_ancestor(&[oid(9)], oid(2)), None);
    }
}
