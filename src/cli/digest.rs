//! `tokentally digest`: prints a week's digest (Markdown or JSON), writes its
//! chart, and with `--post` sends it to the Discord destinations — once per
//! week and destination unless `--force`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{load_config, process_env};
use crate::digest;
use crate::notify::digests::DigestPoster;
use crate::notify::discord::Sent;

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// ISO week, e.g. 2026-W47, or `current` [default: the last complete week]
    #[arg(long)]
    pub week: Option<String>,
    /// markdown or json
    #[arg(long, default_value = "markdown")]
    pub format: String,
    /// Write the chart (PNG) to this file
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// The digest as this destination sees it (its repos/people filters)
    #[arg(long)]
    pub destination: Option<String>,
    /// Send it to every Discord destination now (once per week and destination)
    #[arg(long, conflicts_with = "dry_run")]
    pub post: bool,
    /// With --post: send even if this week was already posted
    #[arg(long, requires = "post", conflicts_with = "update")]
    pub force: bool,
    /// With --post: edit the message already posted for this week in place
    /// (its numbers changed since)
    #[arg(long, requires = "post")]
    pub update: bool,
    /// Only print (the default; for symmetry with --post)
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(config_path: Option<&PathBuf>, args: DigestArgs) -> anyhow::Result<()> {
    if !matches!(args.format.as_str(), "markdown" | "json") {
        anyhow::bail!("--format {:?}: expected markdown or json", args.format);
    }
    let config = Arc::new(load_config(config_path, &process_env())?);
    let tz = config.tz().map_err(|e| anyhow::anyhow!(e))?;
    let week = super::standings::week_arg(args.week.as_deref(), tz)?;
    let destinations = config.discord.all_destinations();
    let destination = match &args.destination {
        Some(name) => Some(
            destinations
                .iter()
                .find(|d| &d.name == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = destinations.iter().map(|d| d.name.as_str()).collect();
                    anyhow::anyhow!(
                        "--destination {name:?} is not configured (destinations: {})",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    )
                })?
                .clone(),
        ),
        None => None,
    };
    if args.post && destinations.is_empty() {
        anyhow::bail!(
            "--post: no Discord destination is configured (set discord.webhook_url, \
             TOKENTALLY_DISCORD_WEBHOOK_URL or [[discord.destinations]])"
        );
    }
    let store =
        crate::store::Store::open_existing(&config.database_url, config.connect_options()).await?;
    store.migrate().await?;
    let ledger = crate::ledger::Ledger::new(store.clone(), &config);
    let data = digest::build(&ledger, &config, week, destination.as_ref()).await?;
    if let Some(path) = &args.chart {
        let png = digest::chart::png(&data, config.digest.chart)?;
        std::fs::write(path, png)
            .map_err(|e| anyhow::anyhow!("--chart {}: {e}", path.display()))?;
    }
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&data)?),
        _ => print!("{}", digest::markdown::render(&data)),
    }
    if !args.post {
        store.close().await;
        return Ok(());
    }
    let poster = DigestPoster::new(
        ledger,
        config.clone(),
        crate::clock::system(),
        Arc::new(crate::health::Health::new()),
        Arc::new(crate::metrics::Metrics::new()),
        crate::secret::new_lease_owner(),
    );
    let posted = if args.update {
        poster.update(week).await?
    } else {
        poster.post_now(week, args.force).await?
    };
    let posts = poster.posts().await?;
    store.close().await;
    let mut failed = false;
    for d in &destinations {
        let label = week.label();
        match posted.iter().find(|p| p.destination == d.name) {
            Some(p) => match &p.outcome {
                Sent::Message(id) if args.update => {
                    eprintln!("updated {label} in {} (message {id})", d.name)
                }
                Sent::Message(id) => eprintln!("posted {label} to {} (message {id})", d.name),
                Sent::Retry { error, .. } => {
                    failed = true;
                    eprintln!(
                        "{label} to {}: not posted yet ({error}); serve retries it",
                        d.name
                    )
                }
                Sent::Disabled(reason) | Sent::Rejected(reason) => {
                    failed = true;
                    eprintln!("{label} to {}: not posted: {reason}", d.name)
                }
            },
            None => {
                let row = posts
                    .iter()
                    .find(|p| p.week == label && p.destination == d.name);
                match row {
                    Some(r) if r.state == "sent" => {
                        // Nothing was sent: say so with a failing exit, and how.
                        failed = true;
                        eprintln!(
                            "{label} was already posted to {} (message {}): --update edits it in place with today's numbers, --force posts it again",
                            d.name,
                            r.message_id.as_deref().unwrap_or("?")
                        )
                    }
                    Some(r) => {
                        failed = true;
                        eprintln!(
                            "{label} to {}: {} ({})",
                            d.name,
                            r.state,
                            r.error.as_deref().unwrap_or("being sent by serve")
                        )
                    }
                    None => {
                        failed = true;
                        eprintln!("{label} to {}: not queued (destination disabled?)", d.name)
                    }
                }
            }
        }
    }
    if failed {
        anyhow::bail!("the digest was not posted everywhere");
    }
    Ok(())
}
