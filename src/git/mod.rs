//! Talking to git remotes: which remotes a signed payload may make the service
//! fetch, where the GitHub token may be sent, fetching the mirrors, and branch
//! names that are safe to put in a refspec. Reading a local history fast:
//! commit objects parsed from their bytes and a walk that reads each once.

pub mod commit_object;
pub mod fetch;
pub mod mirrors;
pub mod oid_map;
pub mod remote;
pub mod topo_walk;

/// Why `name` is not a branch name git would accept (`git check-ref-format
/// --branch`), or `None` when it is. Names from payloads go into fetch refspecs:
/// `*` or `:` would widen or redirect the fetch, `..` would climb out of `refs/`.
pub fn invalid_branch_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.starts_with('-') {
        return Some("it starts with `-`");
    }
    if name == "HEAD" || name == "@" {
        return Some("it is a reserved name");
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
    {
        return Some("it has a space, a control character or one of ~ ^ : ? * [ \\");
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") {
        return Some("it has `..`, `@{` or `//`");
    }
    if name.starts_with('/') || name.ends_with('/') || name.ends_with('.') {
        return Some("it starts or ends with `/`, or ends with `.`");
    }
    if name
        .split('/')
        .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return Some("a part starts with `.` or ends with `.lock`");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::invalid_branch_name;

    #[test]
    fn branch_names_as_git_checks_them() {
        for good in [
            "main",
            "master",
            "release/2.0",
            "feature/x-y_z",
            "v1.2",
            "ü-branch",
        ] {
            assert_eq!(invalid_branch_name(good), None, "{good}");
        }
        for bad in [
            "",
            "*",
            "main:refs/heads/pwn",
            "../../../HEAD",
            "-x",
            "a b",
            "a\tb",
            "a\nb",
            "a..b",
            "a//b",
            "/a",
            "a/",
            "a.",
            ".a",
            "a/.b",
            "a.lock",
            "a@{1}",
            "HEAD",
            "@",
            "a~1",
            "a^",
            "a?",
            "a[b",
            "a\\b",
            "a\u{7f}",
        ] {
            assert!(
                invalid_branch_name(bad).is_some(),
                "{bad:?} must be refused"
            );
        }
    }
}
