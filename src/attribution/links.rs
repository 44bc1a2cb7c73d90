//! Links between commits named in messages: reverts (`This reverts commit <sha>.`,
//! `Reverts owner/repo#N`, `Revert "<subject>"`), reapplies (`Reapply "<subject>"`)
//! and follow-up fixes (`Fixes: <sha> ("subject")`). Parsing only; resolving to
//! commits needs the repository.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevertRef {
    /// A full or abbreviated commit id.
    Sha(String),
    /// GitHub's revert PR body: `Reverts owner/repo#N`.
    PullRequest { repo: String, number: u64 },
    /// A subject `Revert "<subject>"` with no sha in the body.
    Subject(String),
    /// `Reapply "<subject>"`: undoes the revert of that subject.
    Reapply(String),
}

/// What `message` says it reverts.
pub fn revert_refs(message: &str) -> Vec<RevertRef> {
    let mut refs = Vec::new();
    for line in message.lines() {
        let line = line.trim();
        if let Some(rest) = strip_prefix_ci(line, "This reverts commit ") {
            let sha: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
            if sha.len() >= 7 {
                refs.push(RevertRef::Sha(sha.to_lowercase()));
            }
        } else if let Some(rest) = line.strip_prefix("Reverts ")
            && let Some((repo, number)) = rest.trim().split_once('#')
            && repo.contains('/')
            && let Ok(number) = number.trim().parse()
        {
            refs.push(RevertRef::PullRequest {
                repo: repo.to_string(),
                number,
            });
        }
    }
    if refs.is_empty() {
        let subject = message.lines().next().unwrap_or_default().trim();
        if let Some(inner) = quoted_after(subject, "Revert ") {
            refs.push(RevertRef::Subject(inner));
        } else if let Some(inner) = quoted_after(subject, "Reapply ") {
            refs.push(RevertRef::Reapply(inner));
        }
    }
    refs
}

/// The commit a `Fixes:` value names, when it names one (`abc1234 ("subject")`);
/// issue URLs and `#N` give `None`.
pub fn fixes_sha(value: &str) -> Option<String> {
    let first = value.split_whitespace().next()?;
    let sha = first.trim_end_matches([',', ';', ':']);
    (sha.len() >= 7 && sha.len() <= 64 && sha.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| sha.to_lowercase())
}

/// `prefix"…"` → the text between the first and last quote.
fn quoted_after(subject: &str, prefix: &str) -> Option<String> {
    let rest = subject.strip_prefix(prefix)?;
    let inner = rest.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.is_empty()).then(|| inner.to_string())
}

fn strip_prefix_ci<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let head = line.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &line[prefix.len()..])
}

/// The pull-request number a landed commit's subject carries: `… (#123)` (squash)
/// or `Merge pull request #123 from …` (merge commit).
pub fn pull_request_number(subject: &str) -> Option<u64> {
    if let Some(rest) = subject.strip_prefix("Merge pull request #") {
        return rest.split_whitespace().next()?.parse().ok();
    }
    let inner = subject.trim_end().strip_suffix(')')?;
    let (_, number) = inner.rsplit_once("(#")?;
    number.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_forms() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            revert_refs(&format!(
                "Revert \"feat: x\"\n\nThis reverts commit {sha}.\n"
            )),
            [RevertRef::Sha(sha.into())]
        );
        assert_eq!(
            revert_refs("Revert \"feat: x\"\n\nThis reverts commit 0123abc.\n"),
            [RevertRef::Sha("0123abc".into())]
        );
        assert_eq!(
            revert_refs(&format!(
                "Revert \"Merge branch 'x'\"\n\nThis reverts commit {sha}, reversing\nchanges made to 89abcdef.\n"
            )),
            [RevertRef::Sha(sha.into())]
        );
        assert_eq!(
            revert_refs("Revert \"Add exporter\" (#51)\n\nReverts acme/api#42\n"),
            [RevertRef::PullRequest {
                repo: "acme/api".into(),
                number: 42
            }]
        );
        assert_eq!(
            revert_refs("Revert \"feat: add retry\"\n\nIt broke prod.\n"),
            [RevertRef::Subject("feat: add retry".into())]
        );
        assert_eq!(
            revert_refs("Reapply \"feat: add retry\"\n\nFixed the cause.\n"),
            [RevertRef::Reapply("feat: add retry".into())]
        );
        assert_eq!(revert_refs("Reverts are discussed in the docs\n"), []);
        assert_eq!(revert_refs("This reverts commit soon.\n"), []);
    }

    #[test]
    fn fixes_values() {
        assert_eq!(
            fixes_sha("54a4f0239f2e (\"KVM: x\")").as_deref(),
            Some("54a4f0239f2e")
        );
        assert_eq!(fixes_sha("0123ABC").as_deref(), Some("0123abc"));
        assert_eq!(fixes_sha("#12"), None);
        assert_eq!(fixes_sha("https://github.com/o/r/issues/7"), None);
        assert_eq!(fixes_sha("abc12"), None, "too short to be a commit");
        assert_eq!(fixes_sha("deadline missed"), None);
    }

    #[test]
    fn pull_request_numbers() {
        assert_eq!(pull_request_number("Add exporter (#42)"), Some(42));
        assert_eq!(
            pull_request_number("Merge pull request #7 from a/b"),
            Some(7)
        );
        assert_eq!(pull_request_number("Add exporter"), None);
        assert_eq!(pull_request_number("Support (#x)"), None);
    }
}
