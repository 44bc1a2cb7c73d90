//! The commits reachable from one commit, oldest first, in exactly the order
//! of libgit2's `Sort::TOPOLOGICAL | Sort::TIME | Sort::REVERSE` walk (its
//! topological sort, with the same priority queue), reading each commit once.
//! libgit2's walk reads every commit to learn its parents and hands out ids
//! only, so a caller that wants the commits reads
//! (inflates) each one a second time; this walk hands each commit's bytes
//! over as it reads them.

use std::cmp::Ordering;

use git2::{ObjectType, Oid, Repository};

use super::commit_object;
use super::oid_map::OidMap;

/// A walk's result: the commits, oldest first.
#[derive(Debug, Default)]
pub struct OldestFirst {
    oids: Vec<Oid>,
    order: Vec<u32>,
}

impl OldestFirst {
    /// Walks everything reachable from `start`, handing each commit's number
    /// and bytes to `on_read` as it is read (newest first, roughly).
    pub fn walk(
        repo: &Repository,
        start: Oid,
        mut on_read: impl FnMut(u32, Oid, &[u8]),
    ) -> Result<OldestFirst, git2::Error> {
        let odb = repo.odb()?;
        let mut graph = Graph {
            index: OidMap::default(),
            nodes: Vec::new(),
            parents: Vec::new(),
        };
        let start = graph.node(start);
        graph.parse(&odb, start, &mut on_read)?;
        let reachable = graph.reachable(&odb, start, &mut on_read)?;
        let mut order = graph.topological(&reachable);
        order.reverse();
        Ok(OldestFirst {
            oids: graph.nodes.iter().map(|n| n.oid).collect(),
            order,
        })
    }

    /// Each commit's number (as handed to `on_read`) and id, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (u32, Oid)> + '_ {
        self.order.iter().map(|&n| (n, self.oids[n as usize]))
    }

    /// How many commits were numbered.
    pub fn numbered(&self) -> usize {
        self.oids.len()
    }
}

#[derive(Debug, Clone, Copy)]
struct Node {
    oid: Oid,
    time: i64,
    /// Its parents' node numbers: `parents[first..first + count]`.
    first: u32,
    count: u32,
    parsed: bool,
    /// Found by the walk.
    seen: bool,
    /// 1 + children not yet emitted, during the topological sort; 0 once
    /// emitted (libgit2's `in_degree`).
    in_degree: u32,
}

struct Graph {
    index: OidMap<u32>,
    nodes: Vec<Node>,
    parents: Vec<u32>,
}

impl Graph {
    fn node(&mut self, oid: Oid) -> u32 {
        if let Some(&n) = self.index.get(&oid) {
            return n;
        }
        let n = self.nodes.len() as u32;
        self.nodes.push(Node {
            oid,
            time: 0,
            first: 0,
            count: 0,
            parsed: false,
            seen: false,
            in_degree: 0,
        });
        self.index.insert(oid, n);
        n
    }

    fn parents_of(&self, n: u32) -> std::ops::Range<usize> {
        let node = self.nodes[n as usize];
        node.first as usize..(node.first + node.count) as usize
    }

    /// Reads commit `n`: its time and parents.
    fn parse(
        &mut self,
        odb: &git2::Odb<'_>,
        n: u32,
        on_read: &mut impl FnMut(u32, Oid, &[u8]),
    ) -> Result<(), git2::Error> {
        if self.nodes[n as usize].parsed {
            return Ok(());
        }
        let oid = self.nodes[n as usize].oid;
        let object = odb.read(oid)?;
        if object.kind() != ObjectType::Commit {
            return Err(git2::Error::from_str(&format!(
                "object {oid} is not a commit"
            )));
        }
        let raw = commit_object::parse(object.data())
            .ok_or_else(|| git2::Error::from_str(&format!("commit {oid} is malformed")))?;
        let first = self.parents.len() as u32;
        let time = raw.time();
        for parent in raw.parents {
            let p = self.node(parent);
            self.parents.push(p);
        }
        let node = &mut self.nodes[n as usize];
        node.time = time;
        node.first = first;
        node.count = self.parents.len() as u32 - first;
        node.parsed = true;
        on_read(n, oid, object.data());
        Ok(())
    }

    /// Every commit reachable from `start` (read once each). libgit2 lists
    /// them by date first, but from one start that order changes nothing
    /// below: the start is the only tip.
    fn reachable(
        &mut self,
        odb: &git2::Odb<'_>,
        start: u32,
        on_read: &mut impl FnMut(u32, Oid, &[u8]),
    ) -> Result<Vec<u32>, git2::Error> {
        self.nodes[start as usize].seen = true;
        let mut stack = vec![start];
        let mut found = Vec::new();
        while let Some(n) = stack.pop() {
            for i in self.parents_of(n) {
                let p = self.parents[i];
                self.parse(odb, p, on_read)?;
                let parent = &mut self.nodes[p as usize];
                if !parent.seen {
                    parent.seen = true;
                    stack.push(p);
                }
            }
            found.push(n);
        }
        Ok(found)
    }

    /// libgit2's `sort_in_topological_order` with `GIT_SORT_TIME`: tips in a
    /// priority queue by time (libgit2's binary heap, replayed step for step
    /// so that equal times come out in the same order), a commit queued once
    /// all its children are out.
    fn topological(&mut self, list: &[u32]) -> Vec<u32> {
        for &n in list {
            self.nodes[n as usize].in_degree = 1;
        }
        for &n in list {
            for i in self.parents_of(n) {
                let p = self.parents[i] as usize;
                if self.nodes[p].in_degree != 0 {
                    self.nodes[p].in_degree += 1;
                }
            }
        }
        let mut queue = TimeHeap::default();
        for &n in list {
            if self.nodes[n as usize].in_degree == 1 {
                queue.insert(&self.nodes, n);
            }
        }
        let mut out = Vec::with_capacity(list.len());
        while let Some(n) = queue.pop(&self.nodes) {
            for i in self.parents_of(n) {
                let p = self.parents[i];
                let parent = &mut self.nodes[p as usize];
                if parent.in_degree == 0 {
                    continue;
                }
                parent.in_degree -= 1;
                if parent.in_degree == 1 {
                    queue.insert(&self.nodes, p);
                }
            }
            self.nodes[n as usize].in_degree = 0;
            out.push(n);
        }
        out
    }
}

/// libgit2's `git_pqueue` with `git_commit_list_time_cmp` (newest first).
#[derive(Default)]
struct TimeHeap(Vec<u32>);

impl TimeHeap {
    /// libgit2's comparison: `Greater` when `a` is older (it sinks).
    fn cmp(nodes: &[Node], a: u32, b: u32) -> Ordering {
        nodes[b as usize].time.cmp(&nodes[a as usize].time)
    }

    fn insert(&mut self, nodes: &[Node], item: u32) {
        self.0.push(item);
        let mut el = self.0.len() - 1;
        while el > 0 {
            let parent_el = (el - 1) >> 1;
            let parent = self.0[parent_el];
            if Self::cmp(nodes, parent, item) != Ordering::Greater {
                break;
            }
            self.0[el] = parent;
            el = parent_el;
        }
        self.0[el] = item;
    }

    fn pop(&mut self, nodes: &[Node]) -> Option<u32> {
        let top = *self.0.first()?;
        let last = self.0.pop().expect("not empty");
        if self.0.is_empty() {
            return Some(top);
        }
        // The last item moves to the top and sinks.
        let mut el = 0;
        loop {
            let mut kid_el = 2 * el + 1;
            let Some(&first_kid) = self.0.get(kid_el) else {
                break;
            };
            let mut kid = first_kid;
            if let Some(&right) = self.0.get(kid_el + 1)
                && Self::cmp(nodes, kid, right) == Ordering::Greater
            {
                kid = right;
                kid_el += 1;
            }
            if Self::cmp(nodes, last, kid) != Ordering::Greater {
                break;
            }
            self.0[el] = kid;
            el = kid_el;
        }
        self.0[el] = last;
        Some(top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// libgit2's own order, to compare with.
    fn libgit2_order(repo: &Repository, start: Oid) -> Vec<Oid> {
        let mut walk = repo.revwalk().unwrap();
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME | git2::Sort::REVERSE)
            .unwrap();
        walk.push(start).unwrap();
        walk.map(Result::unwrap).collect()
    }

    /// A history from a recipe: commit `i` has the parents `(i - 1 - back)`
    /// for each `back` listed (none: a root), at time `times[i]`.
    fn build(repo: &Repository, recipe: &[(Vec<usize>, i64)]) -> Vec<Oid> {
        let tree = {
            let builder = repo.treebuilder(None).unwrap();
            repo.find_tree(builder.write().unwrap()).unwrap()
        };
        let mut made: Vec<Oid> = Vec::new();
        for (i, (backs, time)) in recipe.iter().enumerate() {
            let sig = git2::Signature::new("T", "t@x", &git2::Time::new(*time, 0)).unwrap();
            let parents: Vec<git2::Commit<'_>> = backs
                .iter()
                .filter(|&&back| back < i)
                .map(|&back| repo.find_commit(made[i - 1 - back]).unwrap())
                .collect();
            let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
            let oid = repo
                .commit(None, &sig, &sig, &format!("c{i}"), &tree, &refs)
                .unwrap();
            made.push(oid);
        }
        made
    }

    fn same_order(recipe: &[(Vec<usize>, i64)]) -> Result<(), TestCaseError> {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let made = build(&repo, recipe);
        // Every commit as a start: merges, side branches, several roots.
        for &start in made.iter().rev().take(4) {
            let mut read = std::collections::HashMap::new();
            let walk = OldestFirst::walk(&repo, start, |n, oid, bytes| {
                assert_eq!(bytes, repo.odb().unwrap().read(oid).unwrap().data());
                assert!(read.insert(n, oid).is_none(), "each commit is read once");
            })
            .unwrap();
            let ours: Vec<Oid> = walk
                .iter()
                .map(|(n, oid)| {
                    assert_eq!(read.get(&n), Some(&oid), "numbered as read");
                    oid
                })
                .collect();
            prop_assert_eq!(read.len(), ours.len());
            prop_assert_eq!(ours, libgit2_order(&repo, start));
        }
        Ok(())
    }

    #[test]
    fn equal_times_merges_and_several_roots() {
        // All at one time: only the queues' tie order decides.
        let recipe: Vec<(Vec<usize>, i64)> = vec![
            (vec![], 5),
            (vec![0], 5),
            (vec![], 5),
            (vec![0, 1], 5),
            (vec![1], 5),
            (vec![0, 2, 1], 5),
            (vec![0, 0], 5),
            (vec![3, 1], 5),
        ];
        same_order(&recipe).unwrap();
        // Times going backwards (clock skew) and a parent listed twice.
        let skewed: Vec<(Vec<usize>, i64)> = vec![
            (vec![], 100),
            (vec![0], 50),
            (vec![0, 0], 50),
            (vec![1, 0], 10),
            (vec![2], 200),
            (vec![0, 3], 200),
        ];
        same_order(&skewed).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn any_history_comes_out_in_libgit2s_order(
            recipe in prop::collection::vec(
                (prop::collection::vec(0usize..6, 0..4), 0i64..4),
                1..40,
            )
        ) {
            // Mostly linear with branches and merges; few distinct times.
            let recipe: Vec<(Vec<usize>, i64)> = recipe
                .into_iter()
                .enumerate()
                .map(|(i, (backs, time))| {
                    let backs = if i > 0 && backs.is_empty() && i % 7 != 0 { vec![0] } else { backs };
                    (backs, 1_000 + time)
                })
                .collect();
            same_order(&recipe)?;
        }
    }
}
