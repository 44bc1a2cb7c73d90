//! The running service: HTTP server and inbox worker over one store.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::attribution::commit::Attributor;
use crate::attribution::mirror::Mirrors;
use crate::config::Config;
use crate::github::outcomes::CiRules;
use crate::group_commit::GroupCommit;
use crate::jobs::handlers::HandlerContext;
use crate::jobs::worker::Worker;
use crate::metrics::Metrics;
use crate::server::rate_limit::RateLimiter;
use crate::server::{self, AppState};
use crate::store::Store;
use crate::store::deliveries::Inserted;

pub struct App {
    pub state: AppState,
    pub worker: Worker,
}

impl App {
    /// Connects to the configured database and brings its schema up to date.
    pub async fn connect(config: Config) -> anyhow::Result<App> {
        let store = Store::connect_with(&config.database_url, config.sqlite_synchronous)
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot open the database configured by `database_url`: {e}")
            })?;
        store.migrate().await?;
        store
            .sync_configured_people(&config.people, crate::clock::now_ms())
            .await?;
        Ok(App::new(config, store))
    }

    /// Must be called inside a tokio runtime (it starts the inbox writer).
    pub fn new(config: Config, store: Store) -> App {
        let metrics = Arc::new(Metrics::new());
        let stored = Arc::new(Notify::new());
        let ctx = Arc::new(HandlerContext {
            store: store.clone(),
            metrics: metrics.clone(),
            ci_rules: CiRules::new(&config.signals.ci)
                .expect("CI globs are checked when the configuration loads"),
            mirrors: config
                .mirrors
                .enabled
                .then(|| Arc::new(Mirrors::new(&config.data_dir, config.github.token.clone()))),
            attributor: Arc::new(Attributor::from_config(&config)),
        });
        let worker = Worker::new(ctx, metrics.clone(), config.worker.clone(), stored.clone());
        let state = AppState {
            inbox: {
                let store = store.clone();
                GroupCommit::start(move |batch| {
                    let (store, stored) = (store.clone(), stored.clone());
                    async move {
                        let results = store
                            .insert_deliveries(&batch)
                            .await
                            .map_err(|e| e.to_string())?;
                        if results.contains(&Inserted::Stored) {
                            // Wake the worker: there is something to process.
                            stored.notify_one();
                        }
                        Ok(results)
                    }
                })
            },
            signals: {
                let store = store.clone();
                GroupCommit::start(move |batch| {
                    let store = store.clone();
                    async move {
                        store
                            .insert_signals(&batch)
                            .await
                            .map_err(|e| e.to_string())
                    }
                })
            },
            rate_limiter: Arc::new(RateLimiter::new(config.api.rate_limit_per_minute)),
            store,
            config: Arc::new(config),
            metrics,
        };
        App { state, worker }
    }

    pub fn router(&self) -> axum::Router {
        server::router(self.state.clone())
    }

    /// Serves HTTP on `listener` and runs the worker until `shutdown` is cancelled,
    /// then lets in-flight requests and the delivery being processed finish.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let worker = tokio::spawn(self.worker.clone().run(shutdown.clone()));
        let router = self.router();
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await?;
        shutdown.cancel();
        worker.await?;
        self.state.store.close().await;
        Ok(())
    }
}
