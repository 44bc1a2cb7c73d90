//! `tokentally why SHA [--repo OWNER/NAME]`: why a commit earned what it did,
//! one factor a line, with the arithmetic.

use std::path::PathBuf;

use clap::Args;

use super::open_ledger;
use crate::ledger::why::{Found, explain};

#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The commit (7 to 40 hex digits)
    pub sha: String,
    /// The repository, when the commit id could be in several
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,
    /// `text` or `json` (what `GET /api/v1/commits/OWNER/NAME/SHA/tokens` answers)
    #[arg(long, default_value = "text")]
    pub format: String,
}

pub async fn run(config_path: Option<&PathBuf>, args: WhyArgs) -> anyhow::Result<()> {
    let sha = args.sha.to_ascii_lowercase();
    if !crate::store::is_commit_prefix(&sha) {
        anyhow::bail!(
            "{:?} is not a commit id (7 to 40 hexadecimal digits)",
            args.sha
        );
    }
    if !matches!(args.format.as_str(), "text" | "json") {
        anyhow::bail!("--format {:?}: expected text or json", args.format);
    }
    let (ledger, store) = open_ledger(config_path).await?;
    let found = ledger.find_commit(&sha, args.repo.as_deref()).await?;
    let (repository, commit) = match found {
        Found::UnknownRepository(name) => anyhow::bail!("no repository {name} is known"),
        Found::Commits(mut found) => match found.len() {
            0 => anyhow::bail!(
                "no commit {sha} is known{}",
                args.repo
                    .as_ref()
                    .map(|r| format!(" in {r}"))
                    .unwrap_or_default()
            ),
            1 => found.remove(0),
            _ => anyhow::bail!(
                "{sha} names {} commits ({}); give more digits or --repo",
                found.len(),
                found
                    .iter()
                    .map(|(r, c)| format!("{} {}", r.full_name, &c.sha[..12]))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    };
    let (t, version, rules) = ledger.why(&repository, &commit).await?;
    store.close().await;
    if args.format == "json" {
        println!("{}", serde_json::to_string_pretty(&t.to_json())?);
    } else {
        print!("{}", explain(&t, &version, &rules));
    }
    Ok(())
}
