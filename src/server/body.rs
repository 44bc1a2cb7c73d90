//! Reading request bodies within limits: a size cap (413), a total time limit
//! (408, so a client dripping a byte at a time cannot hold a connection), and
//! at most `http.max_large_bodies` bodies over 1 MiB in memory at once.
//!
//! Every route gets a limit from one layer ([`guard_bodies`]): a body larger
//! than its route allows is refused before it is read, and one that does not
//! arrive within `http.body_timeout_seconds` is cut off, whoever reads it (a
//! handler, or the framework's form and JSON extractors). Routes that need more
//! say so in [`policy_for`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// What a route takes when it says nothing: JSON requests and small forms.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// The login and logout forms (a token and an anti-forgery value).
pub const FORM_BODY_LIMIT: usize = 4 * 1024;

/// How the body of a route is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPolicy {
    /// At most this many bytes, within the body timeout.
    Limit(usize),
    /// The handler reads the body itself with [`BodyLimits::read`] (larger
    /// bodies, which wait for a large-body permit before their time starts).
    OwnReader,
}

/// How much longer than the body timeout a large body waits for its turn.
const TURN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The body policy of a path: the routes that need another limit than
/// [`DEFAULT_BODY_LIMIT`] are listed here.
pub fn policy_for(path: &str) -> BodyPolicy {
    match path {
        // Both read their bodies themselves, bounded (up to 25 MiB, a few
        // large ones at a time).
        "/webhooks/github" | "/v1/metrics" => BodyPolicy::OwnReader,
        "/login" | "/logout" => BodyPolicy::Limit(FORM_BODY_LIMIT),
        _ => BodyPolicy::Limit(DEFAULT_BODY_LIMIT),
    }
}

/// Why a guarded body stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("request bodies here are limited to {0} bytes")]
    TooLarge(usize),
    #[error("the body did not arrive within {0} s (http.body_timeout_seconds)")]
    TimedOut(u64),
}

impl From<&BodyError> for ApiError {
    fn from(err: &BodyError) -> ApiError {
        match err {
            BodyError::TooLarge(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                err.to_string(),
            ),
            BodyError::TimedOut(_) => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                err.to_string(),
            ),
        }
    }
}

/// The [`BodyError`] behind an error from reading a body, if that is what it was.
pub fn body_error<'e>(err: &'e (dyn std::error::Error + 'static)) -> Option<&'e BodyError> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(body) = e.downcast_ref::<BodyError>() {
            return Some(body);
        }
        current = e.source();
    }
    None
}

/// The layer over the whole router: every body within its route's limit and
/// the body timeout.
pub async fn guard_bodies(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let BodyPolicy::Limit(max) = policy_for(request.uri().path()) else {
        return next.run(request).await;
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        // Refused unread: the connection is closed rather than drained.
        let mut response = ApiError::from(&BodyError::TooLarge(max)).into_response();
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        return response;
    }
    let (parts, body) = request.into_parts();
    let guarded = GuardedBody {
        inner: body,
        max,
        read: 0,
        timeout: limits.timeout,
        deadline: Box::pin(tokio::time::sleep(limits.timeout)),
    };
    next.run(Request::from_parts(parts, Body::new(guarded)))
        .await
}

/// A body that ends in a [`BodyError`] past its size or its time.
struct GuardedBody {
    inner: Body,
    max: usize,
    read: usize,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            let secs = self.timeout.as_secs();
            return Poll::Ready(Some(Err(axum::Error::new(BodyError::TimedOut(secs)))));
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            self.read += data.len();
            if self.read > self.max {
                let max = self.max;
                return Poll::Ready(Some(Err(axum::Error::new(BodyError::TooLarge(max)))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

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
            // Waiting for a turn is bounded by the body timeout too (plus a
            // grace, so a turn freed by a body that just timed out goes to the
            // one waiting behind it rather than both giving up at once); the
            // client cannot send meanwhile (nothing reads its socket), so its
            // own time starts once it has a turn.
            let wait = self.timeout + TURN_GRACE;
            let permit = tokio::time::timeout(wait, self.large.clone().acquire_owned())
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
                    if let Some(guard) = body_error(&err) {
                        return Err(guard.into());
                    }
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
