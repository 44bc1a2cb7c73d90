//! Which repositories the service takes events for: a signed event for a
//! repository it does not know yet makes it known only when it is allowed, so
//! a leaked webhook secret cannot fill the database (and the reconcile loop)
//! with made-up repositories.
//!
//! `github.repositories` lists `owner/name` or `owner/*` patterns. Without a
//! list, a GitHub App's events are allowed for the repositories of its
//! installations (the event names the installation), and without an App any
//! repository is allowed.

/// `owner/name` or `owner/*`, lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    owner: String,
    /// `None` for `owner/*`.
    name: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RepositoryPolicy {
    patterns: Vec<Pattern>,
    app: bool,
}

/// Why a `github.repositories` entry is not a pattern, or `None`.
pub fn invalid_pattern(text: &str) -> Option<&'static str> {
    let Some((owner, name)) = text.split_once('/') else {
        return Some("expected owner/name or owner/*");
    };
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 100
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !part(owner) || !(name == "*" || part(name)) {
        return Some("expected owner/name or owner/* (letters, digits, - _ .)");
    }
    None
}

impl RepositoryPolicy {
    /// `patterns` are checked by the configuration (see [`invalid_pattern`]);
    /// `app` says whether a GitHub App is configured.
    pub fn new(patterns: &[String], app: bool) -> RepositoryPolicy {
        let patterns = patterns
            .iter()
            .filter_map(|p| {
                let (owner, name) = p.split_once('/')?;
                Some(Pattern {
                    owner: owner.to_ascii_lowercase(),
                    name: (name != "*").then(|| name.to_ascii_lowercase()),
                })
            })
            .collect();
        RepositoryPolicy { patterns, app }
    }

    /// True when the list names `full_name` (or there is no list).
    pub fn listed(&self, full_name: &str) -> bool {
        if self.patterns.is_empty() {
            return true;
        }
        let full_name = full_name.to_ascii_lowercase();
        let Some((owner, name)) = full_name.split_once('/') else {
            return false;
        };
        self.patterns
            .iter()
            .any(|p| p.owner == owner && p.name.as_deref().is_none_or(|n| n == name))
    }

    /// Whether an event for `full_name` that came through `installation` (an
    /// App's webhooks say which) may make the repository known.
    pub fn admits(&self, full_name: &str, installation: Option<i64>) -> bool {
        if !self.patterns.is_empty() {
            return self.listed(full_name);
        }
        !self.app || installation.is_some()
    }
}

/// `owner/name` as on GitHub, or a GitLab project in nested groups
/// (`acme/backend/api`): two to 20 segments of letters, digits, `-`, `_`, `.`.
pub fn valid_repo(repo: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let parts: Vec<&str> = repo.split('/').collect();
    (2..=20).contains(&parts.len()) && repo.len() <= 300 && parts.iter().all(|p| ok(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_names_repositories_and_owners() {
        let p = RepositoryPolicy::new(&["acme/api".into(), "Tools/*".into()], true);
        assert!(p.admits("acme/api", None));
        assert!(p.admits("ACME/Api", Some(1)));
        assert!(p.admits("tools/anything", None));
        assert!(
            !p.admits("acme/web", Some(1)),
            "an installation does not widen a list"
        );
        assert!(!p.admits("evil/api", None));
        assert!(!p.listed("acme"));
    }

    #[test]
    fn without_a_list_an_app_admits_its_installations_and_no_app_admits_all() {
        let app = RepositoryPolicy::new(&[], true);
        assert!(app.admits("made/up", Some(7)));
        assert!(!app.admits("made/up", None));
        let plain = RepositoryPolicy::new(&[], false);
        assert!(plain.admits("made/up", None));
        assert!(plain.listed("made/up"));
    }

    #[test]
    fn patterns_are_checked() {
        assert_eq!(invalid_pattern("acme/api"), None);
        assert_eq!(invalid_pattern("acme/*"), None);
        for bad in [
            "acme",
            "*/*",
            "acme/",
            "/api",
            "acme/a*",
            "acme/api/x",
            "a b/c",
        ] {
            assert!(invalid_pattern(bad).is_some(), "{bad}");
        }
    }
}
