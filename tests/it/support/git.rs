//! Git repositories built by tests with the `git` command line.

use std::path::Path;
use std::process::Command;

pub struct TestRepo {
    pub dir: tempfile::TempDir,
    /// Seconds added to a fixed epoch for each commit, so dates are deterministic.
    clock: std::cell::Cell<i64>,
}

impl TestRepo {
    pub fn new() -> TestRepo {
        let repo = TestRepo {
            dir: tempfile::tempdir().unwrap(),
            clock: std::cell::Cell::new(1_763_000_000),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs git in the repository and returns its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_as(("Alice Example", "alice@example.com"), args)
    }

    pub fn git_as(&self, author: (&str, &str), args: &[&str]) -> String {
        let date = format!("{} +0000", self.clock.get());
        let out = Command::new("git")
            .current_dir(self.path())
            .args(args)
            .env("GIT_AUTHOR_NAME", author.0)
            .env("GIT_AUTHOR_EMAIL", author.1)
            .env("GIT_COMMITTER_NAME", "Alice Example")
            .env("GIT_COMMITTER_EMAIL", "alice@example.com")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.path())
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn write(&self, path: &str, content: impl AsRef<[u8]>) {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }

    /// Stages everything and commits as `author`; returns the new commit's id.
    pub fn commit_as(&self, author: (&str, &str), message: &str) -> String {
        self.clock.set(self.clock.get() + 3600);
        self.git(&["add", "-A"]);
        self.git_as(author, &["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    pub fn commit(&self, message: &str) -> String {
        self.commit_as(("Alice Example", "alice@example.com"), message)
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }
}

/// `n` numbered lines of code-like text, `prefix` making them unique per file.
pub fn lines(prefix: &str, n: usize) -> String {
    (1..=n)
        .map(|i| format!("let {prefix}_{i} = compute_{prefix}({i});\n"))
        .collect()
}

/// A bare repository standing in for GitHub (the service fetches it over file://).
pub struct Remote {
    dir: tempfile::TempDir,
}

impl Remote {
    pub fn new() -> Remote {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        Remote { dir }
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }

    pub fn git(&self, args: &[&str]) {
        let status = Command::new("git")
            .args(args)
            .current_dir(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }
}
