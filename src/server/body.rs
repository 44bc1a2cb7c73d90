//! Reading request bodies within limits: a size cap (413), a total time limit
//! (408, so a client dripping a byte at a time cannot hold a connection), and
//! at most `http.max_large_bodies` bodies over 1 MiB in memory at once.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// Bodies above this size need one of the large-body permits.
pub const LARGE_BODY: usize = 1024 * 1024;

/// How bodies are read: shared by every handler that reads one.
#[derive(Clone)]
pub struct BodyLimits {
    pub timeout: Duration,
    large: Arc<Semaphore>,
    max_large: usize,
}

/// A body read in full. Holding it holds its large-body permit, if it needed one.
pub struct ReadBody {
    pub bytes: Vec<u8>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl BodyLimits {
    pub fn new(timeout: Duration, max_large_bodies: usize) -> BodyLimits {
        BodyLimits {
            timeout,
            large: Arc::new(Semaphore::new(max_large_bodies)),
            max_large: max_large_bodies,
        }
    }

    /// Large bodies being read right now.
    pub fn large_in_flight(&self) -> usize {
        self.max_large - self.large.available_permits()
    }

    /// Reads `body` (at most `max` bytes) before the time limit runs out.
    pub async fn read(
        &self,
        headers: &HeaderMap,
        body: Body,
        max: usize,
    ) -> Result<ReadBody, ApiError> {
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request bodies here are limited to {max} bytes"),
            )
        };
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if length.is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        let timed_out = || {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the body did not arrive within {} s (http.body_timeout_seconds)",
                    self.timeout.as_secs()
                ),
            )
        };
        let large = max > LARGE_BODY && length.is_none_or(|n| n > LARGE_BODY as u64);
        let permit = if large {
            // Waiting for a turn is bounded by the body timeout too; the client
            // cannot send meanwhile (nothing reads its socket), so its own time
            // starts once it has a turn.
            let permit = tokio::time::timeout(self.timeout, self.large.clone().acquire_owned())
                .await
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "busy",
                        "too many large bodies are being received; retry later",
                    )
                })?
                .expect("the semaphore is never closed");
            Some(permit)
        } else {
            None
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        let capacity = length.map_or(8 * 1024, |n| n as usize).min(max);
        let mut bytes = Vec::with_capacity(capacity);
        let mut body = body;
        loop {
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_) => return Err(timed_out()),
                Ok(None) => break,
                Ok(Some(Err(err))) => {
                    return Err(ApiError::bad_request(
                        "malformed_body",
                        format!("the request body could not be read: {err}"),
                    ));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > max {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(ReadBody {
            bytes,
            _permit: permit,
        })
    }
}
