//! `tokentally scan PATH`: attribute a local repository without a server.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate};
use clap::{Args, ValueEnum};

use super::{load_config, process_env};
use crate::attribution::commit::{Attributor, CommitRecord};
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
}

pub fn run(config_path: Option<&PathBuf>, args: ScanArgs) -> anyhow::Result<()> {
    let config = load_config(config_path, &process_env())?;
    let attributor = Attributor::from_config(&config);
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
            let summary = scan(&args.path, &options, &attributor, |record| {
                if !header_written {
                    write_header(&mut out)?;
                    header_written = true;
                }
                write_row(&mut out, &record)
            })?;
            if !header_written {
                write_header(&mut out)?;
            }
            write_summary(&mut out, &summary)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn write_header(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<8} {:<10} {:<24} {:<18} {:<9} {:>13}  subject",
        "commit", "date", "person", "ai", "kind", "+/-"
    )
}

fn write_row(out: &mut impl Write, r: &CommitRecord) -> std::io::Result<()> {
    let ai = if r.ai {
        r.agents.join(",")
    } else {
        "-".to_string()
    };
    let mut flags = String::new();
    if r.merge {
        flags.push_str("[merge] ");
    }
    if !r.reverts.is_empty() {
        flags.push_str("[revert] ");
    }
    writeln!(
        out,
        "{:<8} {:<10} {:<24} {:<18} {:<9} {:>13}  {}{}",
        &r.sha[..7.min(r.sha.len())],
        r.authored_at.get(..10).unwrap_or_default(),
        truncate(&r.person, 24),
        truncate(&ai, 18),
        r.kind.as_str(),
        format!("+{}/-{}", r.lines_added, r.lines_deleted),
        flags,
        truncate(&r.subject, 60),
    )
}

fn write_summary(out: &mut impl Write, s: &ScanSummary) -> std::io::Result<()> {
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
        "{} commits ({} merges), {} AI-assisted ({share:.1}%), {} reverts",
        s.commits, s.merges, s.ai_commits, s.reverts
    )?;
    writeln!(out, "Agents: {}", list(agents))?;
    writeln!(out, "Kinds: {}", list(kinds))
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
