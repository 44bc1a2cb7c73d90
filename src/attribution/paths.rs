//! Path classes: documentation, tests, and paths excluded from size
//! (lockfiles, vendored and generated code). Globs are configurable.

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

/// `[attribution.paths]`: glob lists; each replaces its default when given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathGlobs {
    pub docs: Vec<String>,
    pub tests: Vec<String>,
    pub lockfiles: Vec<String>,
    pub vendored: Vec<String>,
    pub generated: Vec<String>,
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl Default for PathGlobs {
    fn default() -> Self {
        PathGlobs {
            docs: strings(&[
                "**/*.md",
                "**/*.markdown",
                "**/*.rst",
                "**/*.adoc",
                "**/*.txt",
                "docs/**",
                "doc/**",
                "Documentation/**",
                "**/README*",
                "**/CHANGELOG*",
                "**/LICENSE*",
                "**/*.man",
                "**/man/*.[0-9]",
            ]),
            tests: strings(&[
                "tests/**",
                "test/**",
                "t/**",
                "**/tests/**",
                "**/test/**",
                "**/__tests__/**",
                "**/spec/**",
                "**/testdata/**",
                "**/*_test.go",
                "**/*_test.rs",
                "**/test_*.py",
                "**/*_test.py",
                "**/*.test.*",
                "**/*.spec.*",
                "**/*Test.java",
                "**/*Tests.java",
                "**/*_spec.rb",
            ]),
            lockfiles: strings(&[
                "**/Cargo.lock",
                "**/package-lock.json",
                "**/npm-shrinkwrap.json",
                "**/yarn.lock",
                "**/pnpm-lock.yaml",
                "**/bun.lockb",
                "**/poetry.lock",
                "**/Pipfile.lock",
                "**/uv.lock",
                "**/Gemfile.lock",
                "**/composer.lock",
                "**/go.sum",
                "**/flake.lock",
                "**/mix.lock",
                "**/pubspec.lock",
                "**/Podfile.lock",
            ]),
            vendored: strings(&[
                "vendor/**",
                "**/vendor/**",
                "third_party/**",
                "**/third_party/**",
                "**/node_modules/**",
            ]),
            generated: strings(&[
                "**/*.min.js",
                "**/*.min.css",
                "**/*.pb.go",
                "**/*_pb2.py",
                "**/*_pb2_grpc.py",
                "**/*.generated.*",
                "**/generated/**",
                "**/*.snap",
                "**/dist/**",
            ]),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathClass {
    Excluded,
    Docs,
    Tests,
    Code,
}

#[derive(Debug, Clone)]
pub struct PathRules {
    docs: GlobSet,
    tests: GlobSet,
    excluded: GlobSet,
}

impl Default for PathRules {
    fn default() -> Self {
        PathRules::new(&PathGlobs::default()).expect("built-in globs are valid")
    }
}

impl PathRules {
    pub fn new(globs: &PathGlobs) -> Result<PathRules, globset::Error> {
        let excluded: Vec<String> = globs
            .lockfiles
            .iter()
            .chain(&globs.vendored)
            .chain(&globs.generated)
            .cloned()
            .collect();
        Ok(PathRules {
            docs: build(&globs.docs)?,
            tests: build(&globs.tests)?,
            excluded: build(&excluded)?,
        })
    }

    pub fn classify(&self, path: &str) -> PathClass {
        if self.excluded.is_match(path) {
            PathClass::Excluded
        } else if self.tests.is_match(path) {
            PathClass::Tests
        } else if self.docs.is_match(path) {
            PathClass::Docs
        } else {
            PathClass::Code
        }
    }
}

fn build(patterns: &[String]) -> Result<GlobSet, globset::Error> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(Glob::new(pattern)?);
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_classes() {
        let rules = PathRules::default();
        let cases = [
            ("README.md", PathClass::Docs),
            ("docs/guide/intro.html", PathClass::Docs),
            ("crates/x/README", PathClass::Docs),
            ("src/lib.rs", PathClass::Code),
            ("tests/it/main.rs", PathClass::Tests),
            ("pkg/server/handler_test.go", PathClass::Tests),
            ("web/src/app.test.tsx", PathClass::Tests),
            ("t/t0001-init.sh", PathClass::Tests),
            ("tests/fixtures/notes.md", PathClass::Tests),
            ("Cargo.lock", PathClass::Excluded),
            ("web/package-lock.json", PathClass::Excluded),
            ("vendor/github.com/x/y.go", PathClass::Excluded),
            ("static/app.min.js", PathClass::Excluded),
            ("api/v1/service.pb.go", PathClass::Excluded),
        ];
        for (path, class) in cases {
            assert_eq!(rules.classify(path), class, "{path}");
        }
    }

    #[test]
    fn configured_globs_replace_defaults() {
        let globs = PathGlobs {
            docs: vec!["handbook/**".into()],
            ..PathGlobs::default()
        };
        let rules = PathRules::new(&globs).unwrap();
        assert_eq!(rules.classify("handbook/a.html"), PathClass::Docs);
        assert_eq!(rules.classify("README.md"), PathClass::Code);
        assert!(
            PathRules::new(&PathGlobs {
                tests: vec!["a[".into()],
                ..PathGlobs::default()
            })
            .is_err()
        );
    }
}
