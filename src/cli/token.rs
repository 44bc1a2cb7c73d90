//! `tokentally token create|list|revoke`: API tokens for CI pipelines.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{load_config, process_env};
use crate::api_token;
use crate::clock::now_ms;
use crate::github::repositories::valid_repo;
use crate::store::Store;
use crate::store::tokens::Role;

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once (only its hash is stored)
    Create {
        /// A unique name, e.g. the pipeline that uses it
        #[arg(long)]
        name: String,
        /// A repository (owner/name) the token may report for; repeat for several
        /// (needed unless --all-repos; telemetry tokens need neither)
        #[arg(long = "repo", value_name = "OWNER/NAME")]
        repos: Vec<String>,
        /// Let the token report for every repository
        #[arg(long, conflicts_with = "repos")]
        all_repos: bool,
        /// report: write signals; read: the read API; telemetry: OTLP usage only; admin: everything, redemptions
        #[arg(long, value_enum, default_value = "report")]
        role: Role,
        /// The signal names it may post, comma-separated (`ci,deploy`, `*` for
        /// any); default for report tokens: ci only
        #[arg(long, value_delimiter = ',', value_name = "NAMES")]
        signals: Vec<String>,
        /// The person the token belongs to: a dashboard login with it opens
        /// their page as `/me`
        #[arg(long, value_name = "PERSON")]
        person: Option<String>,
    },
    /// List tokens (names and scopes, never the tokens)
    List,
    /// Revoke a token by name
    Revoke { name: String },
}

pub async fn run(config_path: Option<&PathBuf>, args: TokenArgs) -> anyhow::Result<()> {
    let config = load_config(config_path, &process_env())?;
    let store = Store::open_existing(&config.database_url, config.connect_options()).await?;
    store.migrate().await?;
    let result = match args.command {
        TokenCommand::Create {
            name,
            repos,
            all_repos,
            role,
            signals,
            person,
        } => {
            let grants = Grants {
                role,
                signals,
                person,
            };
            create(&store, &name, repos, all_repos, grants).await
        }
        TokenCommand::List => list(&store).await,
        TokenCommand::Revoke { name } => {
            if store.revoke_token(&name, now_ms()).await? {
                eprintln!("revoked token {name:?}");
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "there is no live token named {name:?} (see `tokentally token list`)"
                ))
            }
        }
    };
    store.close().await;
    result
}

/// What a new token may do: its role, and the signals it may post.
struct Grants {
    role: Role,
    signals: Vec<String>,
    person: Option<String>,
}

async fn create(
    store: &Store,
    name: &str,
    repos: Vec<String>,
    all_repos: bool,
    grants: Grants,
) -> anyhow::Result<()> {
    let Grants {
        role,
        signals,
        person,
    } = grants;
    if let Some(p) = &person
        && !store.person_exists(p).await?
    {
        anyhow::bail!(
            "--person {p:?}: there is no such person (names come from [[people]] and commit authors)"
        );
    }
    if name.trim().is_empty() {
        anyhow::bail!("--name must not be empty");
    }
    let signals: Vec<String> = signals
        .iter()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = signals
        .iter()
        .find(|s| s.as_str() != "*" && !crate::scoring::signal::reportable_name(s))
    {
        anyhow::bail!(
            "--signals {bad:?} is not a signal name (ci, deploy, incident, or a custom name)"
        );
    }
    if !signals.is_empty() && role == Role::Read {
        anyhow::bail!("--signals needs a report or admin token: a read token posts nothing");
    }
    if repos.is_empty() && !all_repos && role != Role::Telemetry {
        anyhow::bail!(
            "the token needs a scope: --repo OWNER/NAME (repeatable) or --all-repos \
             (telemetry tokens need none)"
        );
    }
    if let Some(bad) = repos.iter().find(|r| !valid_repo(r)) {
        anyhow::bail!("--repo {bad:?} is not of the form owner/name (or group/subgroup/name)");
    }
    let scope = if all_repos || (repos.is_empty() && role == Role::Telemetry) {
        vec!["*".to_string()]
    } else {
        // GitHub repository names are case-insensitive.
        repos.iter().map(|r| r.to_ascii_lowercase()).collect()
    };
    let token = api_token::generate();
    if !store
        .create_token(name, &api_token::hash(&token), &scope, role, now_ms())
        .await?
    {
        anyhow::bail!(
            "a live token named {name:?} exists already: pick another name, or revoke it first \
             (`tokentally token revoke {name}`) to replace it"
        );
    }
    if !signals.is_empty() {
        store.set_token_signals(name, &signals).await?;
    }
    if let Some(p) = &person {
        store.set_token_person(name, p).await?;
    }
    // The token on stdout alone, so `$(tokentally token create …)` captures it.
    println!("{token}");
    let granted = match role {
        Role::Read => String::new(),
        Role::Admin if signals.is_empty() => "; it may post any signal".to_string(),
        _ if signals.is_empty() => "; it may post ci only (grant more with --signals)".to_string(),
        _ => format!("; it may post {}", signals.join(", ")),
    };
    eprintln!(
        "created {} token {name:?} for {}{granted}; it is shown only this once",
        role.as_str(),
        if all_repos {
            "all repositories".to_string()
        } else {
            scope.join(", ")
        }
    );
    Ok(())
}

async fn list(store: &Store) -> anyhow::Result<()> {
    println!(
        "{:<24} {:<7} {:<10} {:<25} {:<16} repositories",
        "name", "role", "state", "created", "signals"
    );
    for token in store.tokens().await? {
        let created = chrono::DateTime::from_timestamp_millis(token.created_at)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        let state = if token.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        };
        println!(
            "{:<24} {:<7} {:<10} {:<25} {:<16} {}",
            token.name,
            token.role.as_str(),
            state,
            created,
            token.signal_grants().join(","),
            token.repositories.join(", ")
        );
    }
    Ok(())
}
