//! The `tokentally` command line: one file per subcommand.

pub mod config_cmd;
pub mod deliveries;
pub mod digest;
pub mod discord;
pub mod migrate;
pub mod people;
pub mod redeem;
pub mod replay;
pub mod report;
pub mod scan;
pub mod serve;
pub mod standings;
pub mod statements;
pub mod token;
pub mod usage;
pub mod why;

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, DEFAULT_CONFIG_FILE};

#[derive(Debug, Parser)]
#[command(
    name = "tokentally",
    version,
    about = "Pays engineers for AI-assisted work that holds up.",
    long_about = "tokentally attributes AI-assisted commits from git trailers, scores them \
                  against outcomes (CI, reverts, follow-up fixes, deploys), keeps a token \
                  ledger and posts a weekly digest to Discord.\n\n\
                  Configuration comes from tokentally.toml and TOKENTALLY_* environment \
                  variables (which win): `listen`, `database_url`, `data_dir`, `log`, \
                  `log_format`, `[github]`, `[mirrors]`, `[worker]`, `[http]`, `[api]`, \
                  `[signals.ci]`, `[[agents]]`, `[[people]]`, `[attribution.paths]`, `timezone`, \
                  `[scoring]`, `[schedules]`, `[payout]`; the README's \
                  configuration table gives each key's variable, default and meaning."
)]
pub struct Cli {
    /// Configuration file [default: ./tokentally.toml; created with a new webhook secret by `serve` on first run]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: webhook ingress, API and background worker.
    Serve(serve::ServeArgs),
    /// Apply database migrations and exit (`serve` also applies them on start).
    Migrate,
    /// Attribute the commits of a local repository (no server needed).
    Scan(scan::ScanArgs),
    /// Manage API tokens for CI pipelines.
    Token(token::TokenArgs),
    /// Report an outcome signal from a CI pipeline (repo and sha default from the CI's environment).
    Report(report::ReportArgs),
    /// List webhook deliveries and queue failed ones again.
    Deliveries(deliveries::DeliveriesArgs),
    /// Recompute the ledger under the current rules; --apply appends compensating adjustments.
    Replay(replay::ReplayArgs),
    /// Explain what a commit earned: each factor, with the arithmetic, and its entries.
    Why(why::WhyArgs),
    /// A week's leaderboard.
    Leaderboard(standings::LeaderboardArgs),
    /// A person's balance: pending, vested, redeemed, clawed back, available.
    Balance(standings::BalanceArgs),
    /// What each person was paid at a week's close (from its statement).
    Payouts(standings::PayoutsArgs),
    /// A week's statement: per person opening, vested, clawed back, corrections, redeemed, paid, closing.
    Statements(statements::StatementsArgs),
    /// The ledger itself: `ledger verify` checks its hash chain and every statement.
    Ledger(statements::LedgerArgs),
    /// Verified usage (model tokens, cost, sessions) the coding agents reported, per person and agent.
    Usage(usage::UsageArgs),
    /// Print the configuration in effect (file, environment, defaults), secrets redacted.
    Config,
    /// People: `people unmapped` lists authors no `[[people]]` entry owns.
    People(people::PeopleArgs),
    /// Redeem vested tokens as a bonus, PTO or equity.
    Redeem(redeem::RedeemArgs),
    /// Print a week's digest (Markdown or JSON), write its chart, or post it to Discord.
    Digest(digest::DigestArgs),
    /// The Discord application: `discord register` creates or updates its slash commands.
    Discord(discord::DiscordArgs),
}

/// The process environment as a map, so configuration can be tested without touching it.
pub fn process_env() -> HashMap<String, String> {
    std::env::vars().collect()
}

/// Loads the configuration from `--config` (which must exist) or `./tokentally.toml` (if present).
pub fn load_config(
    explicit: Option<&PathBuf>,
    env: &HashMap<String, String>,
) -> anyhow::Result<Config> {
    let path = match explicit {
        Some(path) if !path.exists() => {
            anyhow::bail!("config file {} does not exist", path.display())
        }
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
    };
    Ok(Config::load(path.as_deref(), env)?)
}

/// Logs to stderr. A log line that cannot be written (stderr is a pipe whose
/// reader went away) is dropped: logging never panics and never stops a task.
pub fn init_tracing(config: &Config) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LossyStderr)
        // Its default reports a failed write with eprintln!, which panics on a closed pipe.
        .log_internal_errors(false);
    let _ = match config.log_format {
        crate::config::LogFormat::Text => builder.with_ansi(ansi).try_init(),
        crate::config::LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

/// stderr that reports every write as done, even when it failed.
pub struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Writes a line to stderr without panicking when stderr is gone (eprintln! panics).
pub fn say(message: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{message}");
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(cli.config.as_ref(), args).await,
        Command::Migrate => migrate::run(cli.config.as_ref()).await,
        Command::Scan(args) => scan::run(cli.config.as_ref(), args),
        Command::Token(args) => token::run(cli.config.as_ref(), args).await,
        Command::Report(args) => report::run(cli.config.as_ref(), args).await,
        Command::Deliveries(args) => deliveries::run(cli.config.as_ref(), args).await,
        Command::Replay(args) => replay::run(cli.config.as_ref(), args).await,
        Command::Why(args) => why::run(cli.config.as_ref(), args).await,
        Command::Leaderboard(args) => standings::leaderboard(cli.config.as_ref(), args).await,
        Command::Balance(args) => standings::balance(cli.config.as_ref(), args).await,
        Command::Payouts(args) => standings::payouts(cli.config.as_ref(), args).await,
        Command::Statements(args) => statements::statements(cli.config.as_ref(), args).await,
        Command::Ledger(args) => statements::ledger(cli.config.as_ref(), args).await,
        Command::Config => config_cmd::run(cli.config.as_ref()).await,
        Command::Usage(args) => usage::run(cli.config.as_ref(), args).await,
        Command::Discord(args) => discord::run(cli.config.as_ref(), args).await,
        Command::People(args) => people::run(cli.config.as_ref(), args).await,
        Command::Redeem(args) => redeem::run(cli.config.as_ref(), args).await,
        Command::Digest(args) => digest::run(cli.config.as_ref(), args).await,
    }
}

/// The ledger over the configured (existing) database, and that store.
pub async fn open_ledger(
    config_path: Option<&PathBuf>,
) -> anyhow::Result<(crate::ledger::Ledger, crate::store::Store)> {
    let config = load_config(config_path, &process_env())?;
    let store =
        crate::store::Store::open_existing(&config.database_url, config.connect_options()).await?;
    store.migrate().await?;
    Ok((crate::ledger::Ledger::new(store.clone(), &config), store))
}
