//! The running service: HTTP server and inbox worker over one store.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::git::mirrors::Mirrors;
use crate::git::remote::RemotePolicy;
use crate::github::client::GithubClient;
use crate::github::outcomes::CiRules;
use crate::group_commit::{GroupCommit, WriteFailure};
use crate::health::Health;
use crate::jobs::context::HandlerContext;
use crate::jobs::reconcile::Reconciler;
use crate::jobs::schedule::Scheduler;
use crate::jobs::worker::Worker;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::notify::digests::DigestPoster;
use crate::notify::pr_comment::PrCommenter;
use crate::server::body::BodyLimits;
use crate::server::rate_limit::RateLimiter;
use crate::server::{self, AppState};
use crate::store::Store;
use crate::store::deliveries::Inserted;

/// The least time between two ledger passes woken by events.
const SETTLE_PAUSE: Duration = Duration::from_secs(5);

/// How long the usage counter waits after a batch arrives, so the batches
/// arriving meanwhile are counted in the same transaction.
const COUNT_PAUSE: Duration = Duration::from_secs(1);

pub struct App {
    pub state: AppState,
    pub worker: Worker,
    /// The group-commit writers: if one ends while the service runs, it is fatal.
    writers: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
    ledger_wake: Arc<Notify>,
    /// GitHub's API (none without a token or App).
    github: Option<GithubClient>,
    /// Discord as an application (commands, DMs).
    chat: crate::chat::Chat,
}

impl App {
    /// Connects to the configured database and brings its schema up to date.
    pub async fn connect(config: Config) -> anyhow::Result<App> {
        App::connect_with_clock(config, crate::clock::system()).await
    }

    /// [`App::connect`] with a clock of the caller's (tests move time by hand).
    pub async fn connect_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        let store = Store::connect_with(&config.database_url, config.connect_options())
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot open the database configured by `database_url` ({}): {e}",
                    crate::store::describe_url(&config.database_url)
                )
            })?;
        store.migrate().await?;
        // A GitHub App key that cannot be read stops the start, saying why.
        GithubClient::from_config(&config.github, clock.clone(), Arc::new(Metrics::new()))?;
        if let Some(tls) = store.tls_in_use().await? {
            tracing::info!(tls, "connected to PostgreSQL");
        }
        store
            .sync_configured_people(&config.people, crate::clock::now_ms())
            .await?;
        Ok(App::new(config, store, clock))
    }

    /// Must be called inside a tokio runtime (it starts the inbox writer).
    pub fn new(config: Config, store: Store, clock: Arc<dyn Clock>) -> App {
        crate::git::fetch::configure_libgit2(
            config.mirrors.connect_timeout_seconds * 1000,
            config.mirrors.timeout_seconds * 1000,
        );
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::new());
        // This instance's name on every lease it takes (another instance, even
        // in this process, is another replica).
        let lease_owner = crate::secret::new_lease_owner();
        let stored = Arc::new(Notify::new());
        // Wakes the ledger after new facts (a processed delivery, stored signals).
        let ledger_wake = Arc::new(Notify::new());
        let ledger = Ledger::new(store.clone(), &config);
        let config = Arc::new(config);
        let github = GithubClient::from_config(&config.github, clock.clone(), metrics.clone())
            .unwrap_or_else(|e| {
                // `connect` checks this first; here it only turns GitHub's API off.
                tracing::error!(error = %e, "GitHub's API is not used");
                None
            });
        let pr_comments = github
            .clone()
            .filter(|_| config.github.pr_comments)
            .map(|github| {
                Arc::new(PrCommenter::new(
                    github,
                    ledger.clone(),
                    config.clone(),
                    clock.clone(),
                ))
            });
        let chat = crate::chat::Chat {
            ledger: ledger.clone(),
            config: config.clone(),
            client: crate::notify::discord::DiscordClient::new(
                &config.discord.api_url,
                Duration::from_millis(config.discord.retry_base_ms),
                metrics.clone(),
            ),
            clock: clock.clone(),
        };
        let discord = crate::server::discord::Endpoint::from_config(chat.clone()).map(Arc::new);
        let policy = RemotePolicy::new(&config.mirrors.allowed_remotes, &config.github.api_url);
        let ctx = Arc::new(HandlerContext {
            store: store.clone(),
            metrics: metrics.clone(),
            ci_rules: CiRules::new(&config.signals.ci)
                .expect("CI globs are checked when the configuration loads"),
            mirrors: config.mirrors.enabled.then(|| {
                Arc::new(Mirrors::new(
                    &config.data_dir,
                    config.github.token.clone(),
                    policy,
                ))
            }),
            attributor: Arc::new(config.attributor()),
            github_api_url: config.github.api_url.clone(),
            ledger_wake: ledger_wake.clone(),
            pr_comments: pr_comments.clone(),
            repositories: config.repository_policy(),
        });
        let worker = Worker::new(
            ctx,
            metrics.clone(),
            config.worker.clone(),
            stored.clone(),
            clock.clone(),
            health.clone(),
            lease_owner.clone(),
        );
        let (inbox, inbox_writer) = {
            let store = store.clone();
            GroupCommit::start(move |batch| {
                let (store, stored) = (store.clone(), stored.clone());
                async move {
                    let results = store
                        .insert_deliveries(&batch)
                        .await
                        .map_err(|e| WriteFailure::from(&e));
                    if let Ok(results) = &results
                        && results
                            .iter()
                            .any(|r| matches!(r, Inserted::Stored | Inserted::Requeued))
                    {
                        // Wake the worker: there is something to process.
                        stored.notify_one();
                    }
                    (batch, results)
                }
            })
        };
        let (signals, signals_writer) = {
            let store = store.clone();
            let wake = ledger_wake.clone();
            GroupCommit::start(move |batch| {
                let (store, wake) = (store.clone(), wake.clone());
                async move {
                    let results = store
                        .insert_signals(&batch)
                        .await
                        .map_err(|e| WriteFailure::from(&e));
                    if results.is_ok() {
                        wake.notify_one();
                    }
                    (batch, results)
                }
            })
        };
        let state = AppState {
            inbox,
            signals,
            rate_limiter: Arc::new(RateLimiter::new(config.api.rate_limit_per_minute)),
            telemetry_rate_limiter: Arc::new(RateLimiter::new(config.usage.rate_limit_per_minute)),
            usage_wake: Arc::new(Notify::new()),
            body_limits: BodyLimits::new(
                Duration::from_secs(config.http.body_timeout_seconds),
                config.http.max_large_bodies,
            ),
            health,
            store,
            config,
            metrics,
            ledger,
            clock,
            pr_comments,
            lease_owner,
            discord,
        };
        App {
            state,
            worker,
            github,
            ledger_wake,
            chat,
            writers: vec![
                ("inbox writer", inbox_writer),
                ("signal writer", signals_writer),
            ],
        }
    }

    /// Brings the ledger up to date with what is stored, at the clock's time
    /// (what the service does after each delivery and signal, and on schedule).
    pub async fn settle(&self) -> anyhow::Result<crate::ledger::SettleReport> {
        let report = self.state.ledger.settle(self.state.clock.now_ms()).await?;
        crate::chat::dm::deliver(&self.chat, &self.state.lease_owner).await;
        Ok(report)
    }

    /// Counts the stored OTLP batches into usage (what the service does
    /// right after each batch is acknowledged). Returns the points that added something.
    pub async fn count_usage(&self) -> anyhow::Result<u64> {
        let s = &self.state;
        Ok(
            crate::jobs::usage::count_stored(&s.store, &s.config, s.ledger.tz(), s.clock.now_ms())
                .await?,
        )
    }

    /// Closes the weeks that are due at the clock's time (what the service
    /// does on start, on schedule and after a settle that appended entries).
    pub async fn close_due(&self) -> anyhow::Result<Vec<String>> {
        let closed = self
            .state
            .ledger
            .close_due(self.state.clock.now_ms())
            .await?;
        crate::chat::dm::deliver(&self.chat, &self.state.lease_owner).await;
        Ok(closed)
    }

    /// The scheduled jobs of this service (vesting, calibration, hygiene, digest).
    pub fn scheduler(&self) -> Scheduler {
        Scheduler::new(
            &self.state.config,
            self.state.ledger.clone(),
            self.state.clock.clone(),
            Some(self.digest_poster()),
            Some(self.reconciler()),
            self.state.lease_owner.clone(),
        )
        .with_dms(self.chat.clone())
    }

    /// Mirror fetches for lost webhooks, and CI asked of GitHub before vesting.
    pub fn reconciler(&self) -> Reconciler {
        Reconciler::new(
            &self.state.config,
            self.state.store.clone(),
            self.github.clone(),
            self.state.clock.clone(),
        )
    }

    /// Posts weekly digests to the configured Discord destinations.
    pub fn digest_poster(&self) -> DigestPoster {
        DigestPoster::new(
            self.state.ledger.clone(),
            self.state.config.clone(),
            self.state.clock.clone(),
            self.state.health.clone(),
            self.state.metrics.clone(),
            self.state.lease_owner.clone(),
        )
    }

    /// The whole HTTP surface: the API, webhooks and operations beside the
    /// dashboard's pages, every route under the same limits and headers.
    pub fn router(&self) -> axum::Router {
        let routes = server::routes()
            .merge(crate::dashboard::router(self.state.clone()))
            .fallback(not_found);
        server::with_limits(routes, self.state.clone())
    }

    /// Serves HTTP on `listener` and runs the worker until `shutdown` is cancelled
    /// (then in-flight work gets the grace period), or until a background task
    /// dies for good: then it stops the same way and returns the error, so the
    /// process exits non-zero instead of lingering half-alive.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let health = self.state.health.clone();
        let router = self.router();
        let scheduler = self.scheduler();
        let reconciler = self.reconciler();
        for (name, writer) in self.writers {
            let health = health.clone();
            // A writer ends normally only once every handle is gone (after `run`).
            tokio::spawn(async move {
                if let Err(err) = writer.await {
                    health.fail(name, format!("died: {err}"));
                }
            });
        }
        let worker = tokio::spawn(self.worker.clone().run(shutdown.clone()));
        let scheduler = tokio::spawn(scheduler.run_forever(shutdown.clone()));
        let reconciler = if self.state.config.mirrors.enabled {
            tokio::spawn(reconciler.run_forever(shutdown.clone()))
        } else {
            tokio::spawn(async {})
        };
        let settler = {
            let (ledger, clock, wake) = (
                self.state.ledger.clone(),
                self.state.clock.clone(),
                self.ledger_wake.clone(),
            );
            let (chat, owner) = (self.chat.clone(), self.state.lease_owner.clone());
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                // On start: the weeks whose close time passed while it was down.
                if let Err(e) = ledger.close_due(clock.now_ms()).await {
                    tracing::error!(error = %e, "weeks could not be closed; retried after the next settle and on schedule");
                }
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = wake.notified() => {}
                    }
                    // Facts that arrive meanwhile wake it once more (Notify keeps one permit).
                    if let Err(e) = ledger.settle(clock.now_ms()).await {
                        tracing::error!(error = %e, "the ledger could not be settled; retried on the next event or schedule");
                    }
                    crate::chat::dm::deliver(&chat, &owner).await;
                    // A pass reads every commit: under a stream of events, passes
                    // run at most this often (what arrives meanwhile waits for it).
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(SETTLE_PAUSE) => {}
                    }
                }
            })
        };
        let usage_counter = {
            let (store, config, ledger, clock, wake) = (
                self.state.store.clone(),
                self.state.config.clone(),
                self.state.ledger.clone(),
                self.state.clock.clone(),
                self.state.usage_wake.clone(),
            );
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    // Batches stored before a restart are counted on start.
                    if let Err(e) = crate::jobs::usage::count_stored(
                        &store,
                        &config,
                        ledger.tz(),
                        clock.now_ms(),
                    )
                    .await
                    {
                        tracing::error!(error = %e, "usage batches could not be counted; retried on the next batch");
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = wake.notified() => {}
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(COUNT_PAUSE) => {}
                    }
                }
            })
        };
        let fatal = {
            let (health, shutdown) = (health.clone(), shutdown.clone());
            tokio::spawn(async move {
                let reason = health.fatal().await;
                tracing::error!(%reason, "a background task failed for good; stopping");
                shutdown.cancel();
            })
        };
        server::listener::serve(listener, router, &self.state.config.http, shutdown.clone()).await;
        shutdown.cancel();
        fatal.abort();
        let grace = Duration::from_secs(self.state.config.http.shutdown_grace_seconds);
        if tokio::time::timeout(grace, worker).await.is_err() {
            tracing::warn!("the worker did not stop within the grace period");
        }
        for task in [scheduler, settler, reconciler, usage_counter] {
            if tokio::time::timeout(grace, task).await.is_err() {
                tracing::warn!("the ledger did not stop within the grace period");
            }
        }
        self.state.store.close().await;
        match health.fatal_reason() {
            Some(reason) => anyhow::bail!("stopped because {reason}"),
            None => Ok(()),
        }
    }
}

/// No route: the dashboard's 404 page for a browser, JSON for API clients.
async fn not_found(request: axum::extract::Request) -> axum::response::Response {
    let path = request.uri().path();
    let browser = request
        .headers()
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if browser && !path.starts_with("/api/") && !path.starts_with("/webhooks/") {
        return crate::dashboard::not_found_page(&format!("There is no page {path}."));
    }
    server::ops::not_found(request).await
}
