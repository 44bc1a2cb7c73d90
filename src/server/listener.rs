//! The HTTP server loop: hyper's HTTP/1 connections with the limits a public
//! endpoint needs. A client has `http.header_timeout_seconds` to send its
//! headers (the same timer closes idle keep-alive connections); at most
//! `http.max_connections` are served at once (the rest wait in the kernel's
//! accept queue); a shutdown lets in-flight requests finish for
//! `http.shutdown_grace_seconds`, then closes whatever is still open, so a
//! stalled client never holds the process.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::HttpConfig;

/// Serves `router` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(config.header_timeout_seconds))
        .keep_alive(true)
        // A header line that is not valid HTTP (a DEL in a value) is dropped
        // instead of answering a bare 400 with no body: the request then fails
        // where that header is needed, with the JSON error saying what is missing.
        .ignore_invalid_headers(true)
        .max_buf_size(64 * 1024);
    loop {
        // Take a slot before accepting: past the cap, clients wait in the backlog.
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
            drop(slot);
        });
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let open = graceful.count();
    let grace = Duration::from_secs(config.shutdown_grace_seconds);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open,
            grace_seconds = config.shutdown_grace_seconds,
            "shutdown grace period over: closing connections still open"
        );
    }
    connections.shutdown().await;
}
