//! `tokentally serve`: the long-running service.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{init_tracing, load_config, process_env};
use crate::app::App;
use crate::config::{self, DEFAULT_CONFIG_FILE};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// HOST:PORT to listen on (0.0.0.0:8080, localhost:8080, 127.0.0.1:0 for any free port); overrides `listen` and TOKENTALLY_LISTEN [default: 127.0.0.1:8080]
    #[arg(long, value_name = "HOST:PORT", value_parser = crate::config::resolve_listen)]
    pub listen: Option<SocketAddr>,
}

pub async fn run(config_path: Option<&PathBuf>, args: ServeArgs) -> anyhow::Result<()> {
    let env = process_env();
    // No file and no secret from the environment: write the first-run file (other
    // TOKENTALLY_* variables, such as TOKENTALLY_LOG, still apply on top of it).
    if config_path.is_none()
        && !Path::new(DEFAULT_CONFIG_FILE).exists()
        && !env.contains_key("TOKENTALLY_GITHUB_WEBHOOK_SECRET")
    {
        // The file records the address given, so the next start listens there too.
        let listen = args
            .listen
            .unwrap_or_else(|| config::Config::default().listen);
        config::write_first_run_file(Path::new(DEFAULT_CONFIG_FILE), listen)?;
        let shown = std::env::current_dir()
            .map(|d| d.join(DEFAULT_CONFIG_FILE))
            .unwrap_or_else(|_| PathBuf::from(DEFAULT_CONFIG_FILE));
        super::say(format_args!(
            "tokentally: first run: wrote {} (mode 0600) with a new webhook secret; \
             enter that secret in the GitHub webhook settings",
            shown.display()
        ));
    }
    let mut config = load_config(config_path, &env)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    init_tracing(&config);
    crate::memory::return_large_allocations_to_the_system();
    if config.github.webhook_secrets.is_empty() {
        let file = config_path
            .cloned()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
        anyhow::bail!(
            "no webhook secret is configured in {} or the environment: set `github.webhook_secrets` \
             in that file or TOKENTALLY_GITHUB_WEBHOOK_SECRET",
            file.display()
        );
    }
    let listen = config.listen;
    let shutdown = CancellationToken::new();
    stop_on_signal(shutdown.clone())?;
    let app = App::connect(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen} (`listen`): {e}"))?;
    tracing::info!(
        "listening on http://{}; GitHub webhooks go to /webhooks/github",
        listener.local_addr()?
    );
    app.run(listener, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM. The handlers are installed before this
/// returns, so a signal that arrives right after start-up is not lost (the
/// default action would kill the process without a graceful stop).
fn stop_on_signal(shutdown: CancellationToken) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            tracing::info!("shutting down: finishing in-flight requests");
            shutdown.cancel();
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing in-flight requests");
        shutdown.cancel();
    });
    Ok(())
}
