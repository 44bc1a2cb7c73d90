//! `tokentally scan PATH`: attribute a local repository without a server.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate};
use clap::{Args, ValueEnum};

use super::{load_config, process_env};
use crate::attribution::commit::CommitRecord;
use crate::attribution::scan::{ScanOptions, ScanSummary, scan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per commit and a summary.
    Table,
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Jsonl,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The repository (a work tree or a bare repository)
    pub path: PathBuf,
    /// Revision or range to scan (`main`, `v1.0..main`)
    #[arg(long, default_value = "HEAD", value_name = "RANGE")]
    pub rev: String,
    /// Only commits committed on or after DATE (YYYY-MM-DD or RFC 3339)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only commits committed on or before DATE (YYYY-MM-DD = through the end of that day, UTC)
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Read trailers only: no diff facts, no kind from the diff (much faster)
    #[arg(long)]
    pub no_diff: bool,
    /// Table: print each commit's warnings (unresolvable links, malformed trailers) under it
    #[arg(long, short)]
    pub verbose: bool,
}

pub fn run(config_path: Option<&PathBuf>, args: ScanArgs) -> anyhow::Result<()> {
    let config = load_config(config_path, &process_env())?;
    let attributor = config.attributor();
    let options = ScanOptions {
        rev: args.rev.clone(),
        since: args
            .since
            .as_deref()
            .map(|d| parse_date("--since", d, false))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|d| parse_date("--until", d, true))
            .transpose()?,
        diff: !args.no_diff,
    };
    if let (Some(since), Some(until)) = (options.since, options.until)
        && since > until
    {
        anyhow::bail!(
            "--since ({}) is after --until ({}): nothing could match",
            args.since.as_deref().unwrap_or_default(),
            args.until.as_deref().unwrap_or_default()
        );
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    match args.format {
        Format::Jsonl => {
            scan(&args.path, &options, &attributor, |record| {
                serde_json::to_writer(&mut out, &record)?;
                out.write_all(b"\n")
            })?;
        }
        Format::Json => {
            // Streamed element by element: a long history never sits in memory.
            out.write_all(b"[")?;
            let mut first = true;
            scan(&args.path, &options, &attributor, |record| {
                out.write_all(if first { b"\n" } else { b",\n" })?;
                first = false;
                serde_json::to_writer_pretty(&mut out, &record)?;
                Ok(())
            })?;
            out.write_all(b"\n]\n")?;
        }
        Format::Table => {
            let mut header_written = false;
            // Who reverted or fixed what: known only once the later commit is read.
            let mut later: Vec<(String, &'static str, String)> = Vec::new();
            let summary = scan(&args.path, &options, &attributor, |record| {
                if !header_written {
                    write_header(&mut out)?;
                    header_written = true;
                }
                for target in &record.reverts {
                    later.push((target.clone(), "reverted by", record.sha.clone()));
                }
                for target in &record.fixes {
                    later.push((target.clone(), "fixed by", record.sha.clone()));
                }
                write_row(&mut out, &record, options.diff, args.verbose)
            })?;
            if header_written {
                write_summary(&mut out, &summary, &later)?;
            } else {
                writeln!(out, "no commits")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn write_header(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<8} {:<10} {:<24} {:<18} {:<16} {:<9} {:>13} {:>3}  subject",
        "commit", "date", "person", "ai", "model", "kind", "+/-", "!"
    )
}

fn short(sha: &str) -> &str {
    &sha[..7.min(sha.len())]
}

fn write_row(
    out: &mut impl Write,
    r: &CommitRecord,
    with_diff: bool,
    verbose: bool,
) -> std::io::Result<()> {
    let ai = if r.ai {
        r.agents.join(",")
    } else {
        "-".to_string()
    };
    let mut flags = String::new();
    if r.merge {
        flags.push_str("[merge] ");
    }
    for target in &r.reverts {
        flags.push_str(&format!("[reverts {}] ", short(target)));
    }
    for target in &r.fixes {
        flags.push_str(&format!("[fixes {}] ", short(target)));
    }
    // Without diff facts (or for a merge, which is flagged, not measured) the
    // size is unknown, not zero.
    let size = if with_diff && !r.merge {
        format!("+{}/-{}", r.lines_added, r.lines_deleted)
    } else {
        String::new()
    };
    let warnings = if r.warnings.is_empty() {
        String::new()
    } else {
        r.warnings.len().to_string()
    };
    writeln!(
        out,
        "{:<8} {:<10} {:<24} {:<18} {:<16} {:<9} {:>13} {:>3}  {}{}",
        short(&r.sha),
        r.authored_at.get(..10).unwrap_or_default(),
        truncate(&r.person, 24),
        truncate(&ai, 18),
        truncate(r.model.as_deref().unwrap_or(""), 16),
        r.kind.as_str(),
        size,
        warnings,
        flags,
        truncate(&r.subject, 60),
    )?;
    if verbose {
        for warning in &r.warnings {
            writeln!(out, "         warning: {warning}")?;
        }
    }
    Ok(())
}

/// `1 commit`, `2 commits`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn write_summary(
    out: &mut impl Write,
    s: &ScanSummary,
    later: &[(String, &'static str, String)],
) -> std::io::Result<()> {
    let share = if s.commits == 0 {
        0.0
    } else {
        100.0 * s.ai_commits as f64 / s.commits as f64
    };
    let list = |items: Vec<(String, u64)>| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(" · ")
        }
    };
    let mut agents: Vec<(String, u64)> = s.agents.iter().map(|(k, v)| (k.clone(), *v)).collect();
    agents.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut kinds: Vec<(String, u64)> = s.kinds.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    writeln!(out)?;
    writeln!(
        out,
        "{} ({}), {} AI-assisted ({share:.1}%), {}",
        count(s.commits, "commit", "commits"),
        count(s.merges, "merge", "merges"),
        s.ai_commits,
        count(s.reverts, "revert", "reverts"),
    )?;
    writeln!(out, "Agents: {}", list(agents))?;
    writeln!(out, "Kinds: {}", list(kinds))?;
    if !later.is_empty() {
        let links: Vec<String> = later
            .iter()
            .map(|(target, how, by)| format!("{} {how} {}", short(target), short(by)))
            .collect();
        writeln!(out, "Reverted or fixed later: {}", links.join(" · "))?;
    }
    Ok(())
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// `YYYY-MM-DD` (UTC; the end of the day for `--until`) or RFC 3339 → epoch seconds.
fn parse_date(option: &str, text: &str, end_of_day: bool) -> anyhow::Result<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let time = if end_of_day {
            day.and_hms_opt(23, 59, 59)
        } else {
            day.and_hms_opt(0, 0, 0)
        };
        return Ok(time.expect("valid time of day").and_utc().timestamp());
    }
    anyhow::bail!(
        "{option}: cannot read {text:?} as a date (use YYYY-MM-DD or RFC 3339, e.g. 2026-11-20T09:00:00Z)"
    )
}
