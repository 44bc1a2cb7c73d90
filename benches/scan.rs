//! Attribution speed on a large history, side by side in one run: `tokentally
//! scan --format jsonl` with diff facts against `git log --numstat`, and
//! `--no-diff` against `git log --format='%H %(trailers)'`, with each scan's
//! peak anonymous memory (`RssAnon`) and peak RSS.
//!
//! No network here, so the repository is synthetic: BENCH_COMMITS (default 50,000)
//! commits over 400 files made with `git fast-import`, a third of them carrying
//! agent trailers, with renames and reverts of commits up to 5,000 back. It is
//! built once under target/bench-repos and reused. BENCH_REPO=PATH scans an
//! existing repository instead.
//!
//! `cargo bench --bench scan`

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// A small deterministic generator (no dependency needed for a benchmark's dice).
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const TRAILERS: &[&str] = &[
    "Co-Authored-By: Claude Opus 4.5 <noreply@anthropic.com>",
    "Co-authored-by: aider (gpt-5.4) <aider@aider.chat>",
    "Co-authored-by: Copilot <175728472+Copilot@users.noreply.github.com>",
    "AI-Assisted: cursor\nAI-Kind: refactor\nAI-Tokens: 12.4k",
    "Assisted-by: Claude:claude-3-opus coccinelle",
];

fn build_repo(path: &Path, commits: usize) {
    std::fs::create_dir_all(path).unwrap();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .current_dir(path)
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q", "--bare", "-b", "main"]);
    let mut import = Command::new("git")
        .current_dir(path)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufWriter::new(import.stdin.take().unwrap());
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15);
    let files = 400usize;
    // Each file: the version number of each of its lines.
    let mut contents: Vec<Vec<u32>> = (0..files).map(|_| vec![0; 40]).collect();
    let mut names: Vec<String> = (0..files)
        .map(|i| format!("src/mod{}/file{i}.rs", i % 20))
        .collect();
    let mut time = 1_600_000_000u64;
    for n in 0..commits {
        time += 600 + dice.below(3600);
        let mut message = match dice.below(6) {
            0 => format!("fix: handle case {n}"),
            1 => format!("feat: add option {n}"),
            2 => format!("refactor: tidy module {n}"),
            _ => format!("Update component {n}"),
        };
        // Reverts name work from weeks or months back (as real ones do), so
        // checking that the target is in the history costs what it costs.
        if n > 10 && dice.below(50) == 0 {
            let back = 5 + dice.below(5_000) as usize;
            message = format!("Revert \"Update component {}\"", n.saturating_sub(back));
        }
        message.push_str("\n\nSome explanation of the change.\n");
        if dice.below(3) == 0 {
            message.push('\n');
            message.push_str(TRAILERS[dice.below(TRAILERS.len() as u64) as usize]);
            message.push('\n');
        }
        writeln!(out, "commit refs/heads/main").unwrap();
        writeln!(out, "mark :{}", n + 1).unwrap();
        let who = dice.below(30);
        writeln!(out, "author Dev {who} <dev{who}@example.com> {time} +0000").unwrap();
        writeln!(
            out,
            "committer Dev {who} <dev{who}@example.com> {time} +0000"
        )
        .unwrap();
        writeln!(out, "data {}\n{message}", message.len()).unwrap();
        if dice.below(200) == 0 && n > 0 {
            let f = dice.below(files as u64) as usize;
            let new = format!("src/moved/file{f}_{n}.rs");
            writeln!(out, "R {} {new}", names[f]).unwrap();
            names[f] = new;
        }
        // The root commit creates every file; later ones touch one to three.
        let touched: Vec<usize> = if n == 0 {
            (0..files).collect()
        } else {
            (0..1 + dice.below(3))
                .map(|_| dice.below(files as u64) as usize)
                .collect()
        };
        for f in touched {
            let lines = &mut contents[f];
            for _ in 0..1 + dice.below(6) {
                let i = dice.below(lines.len() as u64) as usize;
                lines[i] += 1;
            }
            if dice.below(4) == 0 {
                lines.push(0);
            }
            let body: String = lines
                .iter()
                .enumerate()
                .map(|(i, v)| format!("    let value_{i} = compute({i}, {v}); // line {i}\n"))
                .collect();
            writeln!(
                out,
                "M 100644 inline {}\ndata {}\n{body}",
                names[f],
                body.len()
            )
            .unwrap();
        }
        writeln!(out).unwrap();
    }
    drop(out);
    assert!(import.wait().unwrap().success());
}

/// Runs the command with its output discarded; returns the seconds it took.
fn time(command: Command) -> f64 {
    time_and_peak(command).0
}

/// Wall time in seconds, the child's peak resident memory in MB (its own
/// `ru_maxrss`, read with `wait4`), and its peak anonymous memory in MB
/// (`RssAnon`, sampled every 2 ms: what the process itself holds; mapped pack
/// files are file-backed and reclaimable).
fn time_and_peak(mut command: Command) -> (f64, f64, f64) {
    let started = Instant::now();
    // Reaped by wait4 below (which also reports the child's peak memory).
    #[allow(clippy::zombie_processes)]
    let child = command.stdout(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    let sampler = std::thread::spawn(move || {
        let mut peak_kb = 0u64;
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let anon = status
                .lines()
                .find_map(|l| l.strip_prefix("RssAnon:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            match anon {
                Some(kb) => peak_kb = peak_kb.max(kb),
                None => break, // a zombie has no memory left to read
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        peak_kb as f64 / 1024.0
    });
    let mut status = 0;
    // SAFETY: waits for our own child; rusage is plain data filled by the kernel.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let pid = libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage);
        assert_eq!(pid, child.id() as libc::pid_t, "{command:?}");
        usage
    };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{command:?}"
    );
    (
        started.elapsed().as_secs_f64(),
        usage.ru_maxrss as f64 / 1024.0,
        sampler.join().unwrap(),
    )
}

fn main() {
    let commits: usize = std::env::var("BENCH_COMMITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let repo = match std::env::var("BENCH_REPO") {
        Ok(path) => PathBuf::from(path),
        Err(_) => {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/bench-repos")
                .join(format!("synthetic-v2-{commits}.git"));
            if !path.join("HEAD").exists() {
                eprintln!(
                    "building a {commits}-commit repository at {} …",
                    path.display()
                );
                let _ = std::fs::remove_dir_all(&path);
                build_repo(&path, commits);
            }
            path
        }
    };
    let count: usize = String::from_utf8(
        Command::new("git")
            .current_dir(&repo)
            .args(["rev-list", "--count", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    println!("repository {} with {count} commits", repo.display());

    let tokentally = env!("CARGO_BIN_EXE_tokentally");
    let mut git_log = Command::new("git");
    git_log.current_dir(&repo).args(["log", "--numstat"]);
    let git_secs = time(git_log);
    let mut scan = Command::new(tokentally);
    scan.args(["scan", repo.to_str().unwrap(), "--format", "jsonl"]);
    let (scan_secs, scan_peak_mb, scan_anon_mb) = time_and_peak(scan);
    let mut no_diff = Command::new(tokentally);
    no_diff.args([
        "scan",
        repo.to_str().unwrap(),
        "--format",
        "jsonl",
        "--no-diff",
    ]);
    let (no_diff_secs, no_diff_peak_mb, no_diff_anon_mb) = time_and_peak(no_diff);

    // For scale: git's own walk, and git's trailers-only log.
    let mut rev_list = Command::new("git");
    rev_list.current_dir(&repo).args(["rev-list", "HEAD"]);
    let rev_list_secs = time(rev_list);
    let mut git_trailers = Command::new("git");
    git_trailers
        .current_dir(&repo)
        .args(["log", "--format=%H %(trailers)"]);
    let git_trailers_secs = time(git_trailers);

    let rate = |secs: f64| count as f64 / secs;
    println!(
        "git log --numstat: {git_secs:.2} s = {:.0} commits/s; git log --format='%H %(trailers)': {git_trailers_secs:.2} s = {:.0} commits/s; git rev-list HEAD: {rev_list_secs:.2} s",
        rate(git_secs),
        rate(git_trailers_secs)
    );
    println!(
        "tokentally scan (diff facts): {scan_secs:.2} s = {:.0} commits/s = {:.2}x git log --numstat (target <= 1.2); peak RssAnon {scan_anon_mb:.0} MB, peak RSS {scan_peak_mb:.0} MB",
        rate(scan_secs),
        scan_secs / git_secs
    );
    println!(
        "tokentally scan --no-diff: {no_diff_secs:.2} s = {:.0} commits/s = {:.2}x git log --format='%H %(trailers)' (target <= 1.5); peak RssAnon {no_diff_anon_mb:.0} MB, peak RSS {no_diff_peak_mb:.0} MB",
        rate(no_diff_secs),
        no_diff_secs / git_trailers_secs
    );
    fair_play_costs(&repo);
}

/// What fair play adds per commit, on a sample of the history: the MinHash
/// signature of the added lines (part of every scan's diff facts), and blame
/// of a fix's deleted lines (run for fixes landing after a first sync).
fn fair_play_costs(repo_path: &Path) {
    use tokentally::attribution::{blame, paths::PathRules};
    let repo = git2::Repository::open(repo_path).unwrap();
    let rules = PathRules::default();
    let mut walk = repo.revwalk().unwrap();
    walk.push_head().unwrap();
    let sample: Vec<git2::Oid> = walk
        .filter_map(Result::ok)
        .filter(|oid| repo.find_commit(*oid).is_ok_and(|c| c.parent_count() == 1))
        .take(300)
        .collect();
    // The added lines of each sampled commit, then their signatures timed alone.
    let mut added: Vec<Vec<String>> = Vec::new();
    for oid in &sample {
        let commit = repo.find_commit(*oid).unwrap();
        let parent = commit.parent(0).unwrap().tree().unwrap();
        let diff = repo
            .diff_tree_to_tree(Some(&parent), Some(&commit.tree().unwrap()), None)
            .unwrap();
        let mut lines = Vec::new();
        diff.print(git2::DiffFormat::Patch, |_, _, line| {
            if line.origin() == '+' {
                lines.push(String::from_utf8_lossy(line.content()).into_owned());
            }
            true
        })
        .unwrap();
        added.push(lines);
    }
    let t = Instant::now();
    for lines in &added {
        std::hint::black_box(tokentally::scoring::similarity::signature(
            lines.iter().map(String::as_str),
        ));
    }
    let minhash_us = t.elapsed().as_secs_f64() * 1e6 / sample.len() as f64;
    let t = Instant::now();
    let mut found = 0;
    for oid in &sample {
        let commit = repo.find_commit(*oid).unwrap();
        found += blame::follow_ups(&repo, &commit, &rules, 28).unwrap().len();
    }
    let blame_ms = t.elapsed().as_secs_f64() * 1e3 / sample.len() as f64;
    println!(
        "fair play on {} recent commits: MinHash {minhash_us:.0} µs per commit; blame (28 days back) {blame_ms:.1} ms per fix ({found} follow-ups found); a first sync blames nothing (its history is the baseline)",
        sample.len()
    );
}
