//! What kind of change a commit is: declared (`AI-Kind:`), from a Conventional
//! Commits prefix, or read from the diff.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Feature,
    Fix,
    Refactor,
    Perf,
    Test,
    Docs,
    Debug,
    Chore,
    /// Reverts or reapplies earlier work: undoing work is not new value.
    Revert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KindSource {
    Trailer,
    Conventional,
    Diff,
    /// The commit reverts or reapplies another (this wins over any declaration).
    Revert,
    /// Nothing to go by (diff facts were skipped, or a merge commit): feature.
    Default,
}

impl KindSource {
    pub fn as_str(self) -> &'static str {
        match self {
            KindSource::Trailer => "trailer",
            KindSource::Conventional => "conventional",
            KindSource::Diff => "diff",
            KindSource::Revert => "revert",
            KindSource::Default => "default",
        }
    }
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Feature,
        Kind::Fix,
        Kind::Refactor,
        Kind::Perf,
        Kind::Test,
        Kind::Docs,
        Kind::Debug,
        Kind::Chore,
        Kind::Revert,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Feature => "feature",
            Kind::Fix => "fix",
            Kind::Refactor => "refactor",
            Kind::Perf => "perf",
            Kind::Test => "test",
            Kind::Docs => "docs",
            Kind::Debug => "debug",
            Kind::Chore => "chore",
            Kind::Revert => "revert",
        }
    }

    /// An `AI-Kind:` value (case-insensitive; a few common spellings accepted).
    pub fn parse(value: &str) -> Option<Kind> {
        let value = value.trim().to_lowercase();
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == value)
            .or(match value.as_str() {
                "feat" => Some(Kind::Feature),
                "bugfix" => Some(Kind::Fix),
                "tests" => Some(Kind::Test),
                "doc" => Some(Kind::Docs),
                _ => None,
            })
    }

    /// The kind a Conventional Commits subject declares (`feat(api)!: …` → feature).
    pub fn from_conventional_subject(subject: &str) -> Option<Kind> {
        let (head, _) = subject.split_once(':')?;
        let head = head.trim_end_matches('!');
        let kind_word = match head.split_once('(') {
            Some((word, scope)) if scope.ends_with(')') || scope.ends_with(")!") => word,
            Some(_) => return None,
            None => head,
        };
        if kind_word.is_empty() || !kind_word.chars().all(|c| c.is_ascii_alphabetic()) {
            return None;
        }
        match kind_word.to_lowercase().as_str() {
            "feat" | "feature" => Some(Kind::Feature),
            "fix" | "bugfix" | "hotfix" => Some(Kind::Fix),
            "refactor" => Some(Kind::Refactor),
            "perf" => Some(Kind::Perf),
            "test" | "tests" => Some(Kind::Test),
            "docs" | "doc" => Some(Kind::Docs),
            "chore" | "build" | "ci" | "style" => Some(Kind::Chore),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventional_prefixes() {
        let cases = [
            ("feat: add x", Some(Kind::Feature)),
            ("feat(api): add x", Some(Kind::Feature)),
            ("feat(api)!: break x", Some(Kind::Feature)),
            ("fix!: y", Some(Kind::Fix)),
            ("refactor: z", Some(Kind::Refactor)),
            ("perf(db): faster", Some(Kind::Perf)),
            ("test: more", Some(Kind::Test)),
            ("docs: readme", Some(Kind::Docs)),
            ("chore: bump", Some(Kind::Chore)),
            ("build: cargo", Some(Kind::Chore)),
            ("ci: workflow", Some(Kind::Chore)),
            ("style: fmt", Some(Kind::Chore)),
            ("Fix: capitalised", Some(Kind::Fix)),
            ("USER: not a type", None),
            ("net/ipv4: kernel subsystem", None),
            ("Merge branch 'x'", None),
            ("Revert \"feat: x\"", None),
            ("feat add x", None),
            ("feat(api: broken", None),
        ];
        for (subject, expected) in cases {
            assert_eq!(
                Kind::from_conventional_subject(subject),
                expected,
                "{subject}"
            );
        }
    }

    #[test]
    fn declared_kinds() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            assert_eq!(Kind::parse(&kind.as_str().to_uppercase()), Some(kind));
        }
        assert_eq!(Kind::parse(" refactor "), Some(Kind::Refactor));
        assert_eq!(Kind::parse("improvement"), None);
    }
}
