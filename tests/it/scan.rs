//! `tokentally scan` on repositories built here: every trailer convention, reverts
//! in every format, fixes, renames and moves, docs/test-only commits, merges, a
//! root commit, binary files and duplicated patches — checked field by field.

use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;

use crate::support::git::{TestRepo, lines};

fn scan_json(repo: &TestRepo, extra: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_tokentally"))
        .current_dir(repo.path())
        .args(["scan", ".", "--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Builds the history; returns the repo and the ids of the commits by name.
fn history() -> (TestRepo, HashMap<&'static str, String>) {
    let repo = TestRepo::new();
    let mut ids = HashMap::new();

    repo.write("src/app.rs", lines("app", 20));
    repo.write("README.md", "# App\n");
    ids.insert("root", repo.commit("feat: initial app"));

    repo.write("src/app.rs", lines("app", 25));
    ids.insert(
        "retry",
        repo.commit("Add retry\n\nWrap the call.\n\nAI-Tokens: 12.4k\nCo-Authored-By: Claude Opus 4.5 <noreply@anthropic.com>"),
    );

    repo.write("README.md", "# App\n\nHow to use it.\n");
    repo.write("docs/guide.md", "Guide\n");
    ids.insert("docs", repo.commit("Update guide"));

    repo.write("tests/app_test.rs", lines("t", 8));
    ids.insert(
        "tests",
        repo.commit("More coverage\n\nCo-authored-by: aider (gpt-5.4) <aider@aider.chat>"),
    );

    repo.git(&["mv", "src/app.rs", "src/core.rs"]);
    ids.insert("rename", repo.commit("Reorganise"));

    // Move the last 10 lines of core.rs into helpers.rs unchanged.
    let core = lines("app", 25);
    let kept: String = core.lines().take(15).map(|l| format!("{l}\n")).collect();
    let moved: String = core.lines().skip(15).map(|l| format!("{l}\n")).collect();
    repo.write("src/core.rs", &kept);
    repo.write("src/helpers.rs", &moved);
    ids.insert("move", repo.commit("Split helpers\n\nAI-Assisted: cursor"));

    repo.write(
        "assets/logo.png",
        [0x89u8, b'P', b'N', b'G', 0, 0, 1, 2, 3, 0, 255],
    );
    ids.insert("binary", repo.commit("Add logo"));

    repo.write("Cargo.lock", lines("lock", 100));
    ids.insert("lock", repo.commit("chore: bump deps"));

    repo.git(&["revert", "--no-edit", &ids["tests"]]);
    ids.insert("revert_full", repo.head());

    repo.write("src/extra.rs", lines("extra", 3));
    let short = &ids["docs"][..10];
    ids.insert(
        "revert_short",
        repo.commit(&format!(
            "Undo part of the guide change\n\nThis reverts commit {short}."
        )),
    );

    repo.write("docs/guide.md", "");
    ids.insert("revert_subject", repo.commit("Revert \"Update guide\""));

    repo.write("src/core.rs", format!("{kept}{}", lines("retry", 2)));
    ids.insert(
        "reapply",
        repo.commit("Reapply \"More coverage\"\n\nWith the flaky case fixed."),
    );

    repo.write("src/core.rs", format!("{kept}{}", lines("retry", 3)));
    let fixes = format!(
        "fix: handle empty input\n\nFixes: {} (\"Add retry\")\nFixes: #12\nFixes: https://example.com/issues/3",
        &ids["retry"][..12]
    );
    ids.insert("fix", repo.commit(&fixes));

    repo.write("src/core.rs", format!("{kept}{}", lines("retry", 4)));
    ids.insert("fix_unknown", repo.commit("fix: again\n\nFixes: deadbeef1234 (\"nothing\")\nAI-Tokens: lots\nAI-Assisted: claude-code"));

    // The same patch twice: add a line, remove it, add it again.
    let helpers = repo.path().join("src/helpers.rs");
    let base = std::fs::read_to_string(&helpers).unwrap();
    repo.write("src/helpers.rs", format!("{base}const LIMIT: u32 = 10;\n"));
    ids.insert("dup_a", repo.commit("Add limit"));
    repo.write("src/helpers.rs", &base);
    ids.insert("dup_undo", repo.commit("Remove limit"));
    repo.write("src/helpers.rs", format!("{base}const LIMIT: u32 = 10;\n"));
    ids.insert("dup_b", repo.commit("Add limit again"));

    repo.git(&["checkout", "-q", "-b", "side"]);
    repo.write("src/side.rs", lines("side", 4));
    ids.insert("side", repo.commit("feat: side work"));
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge branch 'side'",
        "side",
    ]);
    ids.insert("merge", repo.head());

    repo.write("src/export.rs", lines("export", 6));
    ids.insert("squash", repo.commit("Add exporter (#42)\n\n* first\n\nCo-authored-by: Claude <noreply@anthropic.com>\n\n* second"));
    repo.write("src/export.rs", "");
    ids.insert(
        "revert_pr",
        repo.commit("Revert \"Add exporter\" (#43)\n\nReverts acme/api#42"),
    );

    repo.write("src/bot.rs", lines("bot", 5));
    ids.insert(
        "bot_author",
        repo.commit_as(
            ("Copilot", "198982749+Copilot@users.noreply.github.com"),
            "Implement bot feature\n\nCo-authored-by: octocat <583231+octocat@users.noreply.github.com>",
        ),
    );

    repo.write("src/math.rs", lines("math", 5));
    ids.insert(
        "human_claude",
        repo.commit("Add math\n\nCo-authored-by: Claude Shannon <claude@shannon.example>"),
    );

    repo.write("src/kernel.rs", lines("kernel", 5));
    ids.insert(
        "kernel",
        repo.commit_as(("Jane Doe (aider)", "jane@example.com"), "mm: fix leak\n\nAssisted-by: Claude:claude-3-opus coccinelle sparse\nSigned-off-by: Jane Doe <jane@example.com>"),
    );
    // A file replaced by a directory of the same name (tree order puts "thing" before "thing/").
    repo.write("src/thing", lines("thing", 3));
    repo.write("src/thing.rs", lines("sibling", 2));
    ids.insert("thing_file", repo.commit("Add thing"));
    std::fs::remove_file(repo.path().join("src/thing")).unwrap();
    repo.write("src/thing/inner.rs", lines("inner", 4));
    ids.insert("thing_dir", repo.commit("Make thing a module"));
    (repo, ids)
}

#[test]
fn scan_reports_every_fact_field_by_field() {
    let (repo, ids) = history();
    let records = scan_json(&repo, &[]);
    let by_sha: HashMap<String, &Value> = records
        .iter()
        .map(|r| (r["sha"].as_str().unwrap().to_string(), r))
        .collect();
    let get = |name: &str| -> &Value {
        by_sha
            .get(&ids[name])
            .unwrap_or_else(|| panic!("{name} scanned"))
    };
    assert_eq!(records.len(), ids.len(), "every commit once");
    // Oldest first: the root commit leads.
    assert_eq!(records[0]["sha"], ids["root"].as_str());

    let root = get("root");
    assert_eq!(root["kind"], "feature");
    assert_eq!(root["kind_source"], "conventional");
    assert_eq!(root["files_changed"], 2);
    assert_eq!(root["lines_added"], 21);
    assert_eq!(root["ai"], false);
    assert_eq!(root["person"], "alice@example.com");
    assert_eq!(root["authored_at"], "2025-11-13T03:13:20+00:00");
    assert_eq!(root["merge"], false);

    let retry = get("retry");
    assert_eq!(retry["ai"], true);
    assert_eq!(retry["agents"], serde_json::json!(["claude-code"]));
    assert_eq!(retry["model"], "claude-opus-4.5");
    assert_eq!(retry["usage_tokens"], 12400);
    assert_eq!(retry["kind"], "feature");
    assert_eq!(retry["kind_source"], "diff");
    assert_eq!(
        (
            retry["lines_added"].as_u64(),
            retry["lines_deleted"].as_u64()
        ),
        (Some(5), Some(0))
    );
    assert_eq!(retry["author_email"], "alice@example.com");

    assert_eq!(get("docs")["kind"], "docs");
    assert_eq!(get("docs")["files_changed"], 2);
    let tests = get("tests");
    assert_eq!(
        (tests["kind"].as_str(), tests["ai"].as_bool()),
        (Some("test"), Some(true))
    );
    assert_eq!(tests["model"], "gpt-5.4");

    let rename = get("rename");
    assert_eq!(rename["kind"], "refactor");
    assert_eq!(rename["lines_moved"], 25);
    assert_eq!(
        (
            rename["lines_added"].as_u64(),
            rename["lines_deleted"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let moved = get("move");
    assert_eq!(moved["kind"], "refactor");
    assert_eq!(moved["lines_moved"], 10);
    assert_eq!(moved["agents"], serde_json::json!(["cursor"]));

    let binary = get("binary");
    assert_eq!(
        (
            binary["files_changed"].as_u64(),
            binary["binary_files"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(binary["lines_added"], 0);

    let lock = get("lock");
    assert_eq!(lock["lines_excluded"], 100);
    assert_eq!(lock["lines_added"], 0);
    assert_eq!(lock["kind"], "chore");

    let revert = |name: &str| get(name)["reverts"].clone();
    assert_eq!(revert("revert_full"), serde_json::json!([ids["tests"]]));
    assert_eq!(revert("revert_short"), serde_json::json!([ids["docs"]]));
    assert_eq!(revert("revert_subject"), serde_json::json!([ids["docs"]]));
    assert_eq!(revert("reapply"), serde_json::json!([ids["revert_full"]]));
    assert_eq!(revert("revert_pr"), serde_json::json!([ids["squash"]]));
    assert_eq!(revert("fix"), serde_json::json!([]));

    let fix = get("fix");
    assert_eq!(
        fix["fixes"],
        serde_json::json!([ids["retry"]]),
        "only the sha resolves; #12 and the URL are issues"
    );
    assert_eq!(fix["warnings"], serde_json::json!([]));
    let unknown = get("fix_unknown");
    assert_eq!(unknown["fixes"], serde_json::json!([]));
    let warnings: Vec<&str> = unknown["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("deadbeef1234")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("AI-Tokens")),
        "{warnings:?}"
    );
    assert_eq!(unknown["usage_tokens"], Value::Null, "never a silent zero");

    assert_eq!(get("dup_a")["patch_id"], get("dup_b")["patch_id"]);
    assert_ne!(get("dup_a")["patch_id"], get("dup_undo")["patch_id"]);
    assert!(get("dup_a")["patch_id"].as_str().unwrap().len() == 40);

    let merge = get("merge");
    assert_eq!(merge["merge"], true);
    assert_eq!(
        merge["files_changed"], 0,
        "merges are flagged, not measured"
    );
    assert_eq!(get("side")["kind"], "feature");

    let squash = get("squash");
    assert_eq!(squash["agents"], serde_json::json!(["claude-code"]));
    assert_eq!(squash["evidence"][0]["source"], "body");

    let bot = get("bot_author");
    assert_eq!(bot["agents"], serde_json::json!(["copilot"]));
    assert_eq!(
        bot["person"], "@octocat",
        "credit goes to the human co-author"
    );

    assert_eq!(get("human_claude")["ai"], false);
    let thing = get("thing_dir");
    assert_eq!(
        thing["files_changed"], 2,
        "the file removed and the new file in the directory"
    );
    assert_eq!(
        (
            thing["lines_added"].as_u64(),
            thing["lines_deleted"].as_u64()
        ),
        (Some(4), Some(3))
    );
    assert_eq!(get("thing_file")["files_changed"], 2);
    let kernel = get("kernel");
    assert_eq!(
        kernel["agents"],
        serde_json::json!(["claude-code", "aider"])
    );
    assert_eq!(kernel["model"], "claude-3-opus");
}

#[test]
fn ranges_dates_formats_and_errors() {
    let (repo, ids) = history();
    let range = format!("{}..{}", ids["lock"], ids["revert_subject"]);
    let records = scan_json(&repo, &["--rev", &range]);
    let shas: Vec<&str> = records.iter().map(|r| r["sha"].as_str().unwrap()).collect();
    assert_eq!(
        shas,
        [
            ids["revert_full"].as_str(),
            &ids["revert_short"],
            &ids["revert_subject"]
        ]
    );

    // Each commit is one hour after the previous, from 2025-11-13T03:13:20Z.
    let records = scan_json(
        &repo,
        &[
            "--since",
            "2025-11-13T05:00:00Z",
            "--until",
            "2025-11-13T07:00:00Z",
        ],
    );
    let shas: Vec<&str> = records.iter().map(|r| r["sha"].as_str().unwrap()).collect();
    assert_eq!(shas, [ids["docs"].as_str(), &ids["tests"]]);

    let out = Command::new(env!("CARGO_BIN_EXE_tokentally"))
        .args([
            "scan",
            repo.path().to_str().unwrap(),
            "--format",
            "jsonl",
            "--no-diff",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), ids.len());
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["files_changed"], 0, "--no-diff skips diff facts");

    let out = Command::new(env!("CARGO_BIN_EXE_tokentally"))
        .args(["scan", repo.path().to_str().unwrap()])
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    let line = |prefix: &str| {
        table
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?}: {table}"))
    };
    let totals = line(&format!("{} commits (1 merge), 7 AI-assisted", ids.len()));
    assert!(totals.contains("5 reverts"), "{table}");
    assert!(
        line("Agents: ").starts_with("Agents: claude-code 4 · aider 2"),
        "{table}"
    );
    line("Kinds: ");
    let links = line("Reverted or fixed later: ");
    assert!(links.contains(" reverted by "), "{links}");
    // The row shows the model, the revert link and how many warnings there are.
    let retry = line(&ids["retry"][..7]);
    assert!(retry.contains("claude-opus-4.5"), "{retry}");
    let revert_row = line(&ids["revert_full"][..7]);
    assert!(revert_row.contains("[reverts "), "{revert_row}");
    let all = scan_json(&repo, &[]);
    let with_warnings = all
        .iter()
        .find(|r| !r["warnings"].as_array().unwrap().is_empty())
        .expect("the history has a commit with a warning");
    let count = with_warnings["warnings"]
        .as_array()
        .unwrap()
        .len()
        .to_string();
    let row = line(&with_warnings["sha"].as_str().unwrap()[..7]);
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert!(
        columns.contains(&count.as_str()),
        "the warning count shows: {row}"
    );

    // --verbose prints the warnings; --no-diff leaves the size blank, not +0/-0.
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tokentally"))
            .current_dir(repo.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(run(&["scan", ".", "--verbose"]).contains("warning: "));
    assert!(!run(&["scan", ".", "--no-diff"]).contains("+0/-0"));
    // A work-tree subdirectory finds its repository, as git does.
    std::fs::create_dir_all(repo.path().join("src/deep")).unwrap();
    let from_sub = Command::new(env!("CARGO_BIN_EXE_tokentally"))
        .current_dir(repo.path().join("src/deep"))
        .args(["scan", ".", "--format", "jsonl", "--no-diff"])
        .output()
        .unwrap();
    assert!(
        from_sub.status.success(),
        "{}",
        String::from_utf8_lossy(&from_sub.stderr)
    );
    assert_eq!(
        String::from_utf8(from_sub.stdout).unwrap().lines().count(),
        ids.len()
    );
    // An empty repository has no commits; it is not a bad revision.
    let empty = TestRepo::new();
    let out = Command::new(env!("CARGO_BIN_EXE_tokentally"))
        .current_dir(empty.path())
        .args(["scan", "."])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "no commits");

    for (args, message) in [
        (vec!["scan", "/"], "is not a git repository"),
        (
            vec!["scan", ".", "--rev", "nope..main"],
            "bad revision or range",
        ),
        (
            vec!["scan", ".", "--since", "last week"],
            "--since: cannot read",
        ),
        (
            vec![
                "scan",
                ".",
                "--since",
                "2025-12-01",
                "--until",
                "2025-11-01",
            ],
            "is after --until",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tokentally"))
            .current_dir(repo.path())
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed output before failing"
        );
    }
}

/// A revert or `Fixes:` link counts only when its target is in the linking
/// commit's history: a squash body that quotes `This reverts commit X` for a
/// commit that only lived on the pull request's branch reverts nothing landed.
#[test]
fn links_count_only_to_ancestors_and_large_or_deep_files_are_bounded() {
    let repo = TestRepo::new();
    repo.write("a.rs", lines("a", 5));
    let base = repo.commit("feat: a");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("b.rs", lines("b", 5));
    let on_branch = repo.commit("feat: b (tried)");
    repo.git(&["revert", "--no-edit", &on_branch]);
    repo.git(&["checkout", "-q", "main"]);
    repo.write("c.rs", lines("c", 5));
    let squash = repo.commit(&format!(
        "feat: c (#4)\n\n* feat: b (tried)\n\n* Revert \"feat: b (tried)\"\n\nThis reverts commit {on_branch}.\n\nFixes: {} (\"feat: b (tried)\")",
        &on_branch[..12]
    ));
    // A genuine revert of landed work still counts, whatever kind it claims.
    repo.git(&["revert", "--no-edit", &base]);
    repo.git(&[
        "commit",
        "--amend",
        "-q",
        "--no-edit",
        "--trailer",
        "AI-Kind: fix",
    ]);
    let real_revert = repo.head();
    // A 2 MiB file is binary for the facts (never loaded or diffed) …
    repo.write("big.txt", "x\n".repeat(1024 * 1024));
    // … and a path nested past the depth bound is not walked.
    let deep: String = (0..70).map(|i| format!("d{i}/")).collect();
    repo.write(&format!("{deep}f.rs"), lines("f", 3));
    let bounded = repo.commit("chore: big and deep");

    let records = scan_json(&repo, &[]);
    let get = |sha: &str| records.iter().find(|r| r["sha"] == sha).unwrap().clone();
    let squashed = get(&squash);
    assert_eq!(squashed["reverts"], serde_json::json!([]), "{squashed:#}");
    assert_eq!(squashed["fixes"], serde_json::json!([]), "{squashed:#}");
    let warnings = squashed["warnings"].to_string();
    assert!(
        warnings.contains("not in this commit's history"),
        "{warnings}"
    );
    assert_eq!(get(&real_revert)["reverts"], serde_json::json!([base]));
    // Undoing work is kind revert (tier 0), whatever the commit declares.
    assert_eq!(get(&real_revert)["kind"], "revert");
    assert_eq!(get(&real_revert)["kind_source"], "revert");
    assert_eq!(
        squashed["kind"], "feature",
        "quoting a branch-only revert is not one"
    );
    let bounded = get(&bounded);
    assert_eq!(bounded["binary_files"], 1, "{bounded:#}");
    assert_eq!(
        bounded["files_changed"], 1,
        "the deep file is past the bound"
    );
    assert_eq!(bounded["lines_added"], 0);
}

/// The scan of one revision walks the history itself and reads each commit
/// once; with grafts (or a shallow clone) it keeps libgit2's walk, which
/// applies them. On a history without any, both must say the same, in the
/// same order, with and without diff facts.
#[test]
fn the_scans_own_walk_says_what_libgit2s_walk_says() {
    let (repo, _) = history();
    let own = (scan_json(&repo, &["--no-diff"]), scan_json(&repo, &[]));
    // An empty grafts file replaces no parent but sends the scan down libgit2's walk.
    let grafts = repo.path().join(".git/info/grafts");
    std::fs::create_dir_all(grafts.parent().unwrap()).unwrap();
    std::fs::write(&grafts, "").unwrap();
    let libgit2 = (scan_json(&repo, &["--no-diff"]), scan_json(&repo, &[]));
    assert!(own.0.len() > 10, "{}", own.0.len());
    assert!(
        own.0
            .iter()
            .any(|r| !r["reverts"].as_array().unwrap().is_empty()),
        "the history has reverts to link"
    );
    assert_eq!(own.0, libgit2.0, "trailers only");
    assert_eq!(own.1, libgit2.1, "with diff facts");
}
