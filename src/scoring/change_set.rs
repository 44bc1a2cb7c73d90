//! Change sets: one person's landed AI commits that landed within
//! `change_set_hours` of each other and touch a common file (transitively),
//! and all commits of one merged pull request. Size is computed over a set and
//! shared by lines, so splitting one change into many commits earns nothing.

use std::collections::HashMap;

/// What grouping needs to know about a landed, paid AI commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Landed<'a> {
    pub person: &'a str,
    pub landed_at: i64,
    /// Changed files, each qualified by its repository.
    pub files: Vec<String>,
    /// (repository id, number) of the merged pull request GitHub says it belongs to.
    pub pull_request: Option<(i64, i64)>,
}

/// The change sets of more than one commit, as positions in `commits`, each
/// oldest first.
pub fn change_sets(commits: &[Landed<'_>], window_ms: i64) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..commits.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let join = |parent: &mut Vec<usize>, a: usize, b: usize| {
        let (ra, rb) = (root(parent, a), root(parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    };
    // One merged pull request: one set.
    let mut by_pull_request: HashMap<(i64, i64), usize> = HashMap::new();
    for (i, c) in commits.iter().enumerate() {
        if let Some(pr) = c.pull_request {
            let first = *by_pull_request.entry(pr).or_insert(i);
            join(&mut parent, first, i);
        }
    }
    // One person's commits close in time on a common file.
    let mut by_person: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, c) in commits.iter().enumerate() {
        by_person.entry(c.person).or_default().push(i);
    }
    for list in by_person.values_mut() {
        list.sort_by_key(|&i| commits[i].landed_at);
        for (n, &i) in list.iter().enumerate() {
            for &j in list[..n].iter().rev() {
                if commits[i].landed_at - commits[j].landed_at > window_ms {
                    break;
                }
                if commits[i]
                    .files
                    .iter()
                    .any(|f| commits[j].files.contains(f))
                {
                    join(&mut parent, i, j);
                }
            }
        }
    }
    let mut sets: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..commits.len() {
        let r = root(&mut parent, i);
        sets.entry(r).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = sets.into_values().filter(|s| s.len() > 1).collect();
    for set in &mut out {
        set.sort_by_key(|&i| (commits[i].landed_at, i));
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn landed<'a>(person: &'a str, hours: i64, files: &[&str]) -> Landed<'a> {
        Landed {
            person,
            landed_at: hours * HOUR,
            files: files.iter().map(|f| f.to_string()).collect(),
            pull_request: None,
        }
    }

    #[test]
    fn close_commits_on_a_common_file_form_one_set_transitively() {
        let commits = [
            landed("ada", 0, &["1:a.rs"]),
            landed("ada", 20, &["1:a.rs", "1:b.rs"]),
            // 40 h after the first, 20 h after the second, via b.rs: joined.
            landed("ada", 40, &["1:b.rs"]),
            // Another file, same day: its own.
            landed("ada", 41, &["1:c.rs"]),
            // Another person on the same file: their own.
            landed("bob", 1, &["1:a.rs"]),
            // Same path in another repository: not a common file.
            landed("ada", 2, &["2:a.rs"]),
            // Too late: 30 h after the last of the set.
            landed("ada", 70, &["1:b.rs"]),
        ];
        assert_eq!(change_sets(&commits, 24 * HOUR), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn a_merged_pull_request_is_one_set_whatever_its_files_and_times() {
        let mut a = landed("ada", 0, &["1:a.rs"]);
        let mut b = landed("bob", 100, &["1:z.rs"]);
        a.pull_request = Some((1, 42));
        b.pull_request = Some((1, 42));
        let c = landed("ada", 1, &["1:q.rs"]);
        assert_eq!(change_sets(&[a, c, b], 24 * HOUR), vec![vec![0, 2]]);
    }
}
