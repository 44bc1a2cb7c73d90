//! What `/readyz` reports beyond the database: background tasks that died or
//! keep dying. A task that cannot go on marks the process fatal, and `serve`
//! then stops with a non-zero exit code rather than linger half-alive.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// How long a problem that happened once (a refused statement) stays reported.
pub const RECENT_PROBLEM_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Default)]
pub struct Health {
    problems: Mutex<BTreeMap<String, String>>,
    /// Problems of single events, reported until [`RECENT_PROBLEM_TTL`] after the last one.
    recent: Mutex<BTreeMap<String, (String, Instant)>>,
    fatal: CancellationToken,
    fatal_reason: Mutex<Option<String>>,
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    /// Records a problem of `component` (shown by `/readyz`).
    pub fn set_problem(&self, component: &str, message: impl Into<String>) {
        self.problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(component.to_string(), message.into());
    }

    /// Records a problem that happened now (it is reported for
    /// [`RECENT_PROBLEM_TTL`] after its last occurrence, then dropped).
    pub fn set_recent_problem(&self, component: &str, message: impl Into<String>) {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(component.to_string(), (message.into(), Instant::now()));
    }

    /// component → message, for `/readyz`.
    pub fn problems(&self) -> BTreeMap<String, String> {
        let mut problems = self
            .problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.retain(|_, (_, at)| at.elapsed() < RECENT_PROBLEM_TTL);
        for (component, (message, _)) in recent.iter() {
            problems.insert(component.clone(), message.clone());
        }
        problems
    }

    /// `component` died for good: the process must stop (exit non-zero).
    pub fn fail(&self, component: &str, reason: impl Into<String>) {
        let reason = reason.into();
        self.set_problem(component, reason.clone());
        let mut fatal = self.fatal_reason.lock().unwrap_or_else(|e| e.into_inner());
        if fatal.is_none() {
            *fatal = Some(format!("{component}: {reason}"));
        }
        self.fatal.cancel();
    }

    /// Completes when some component failed for good.
    pub async fn fatal(&self) -> String {
        self.fatal.cancelled().await;
        self.fatal_reason()
            .unwrap_or_else(|| "a background task failed".to_string())
    }

    pub fn fatal_reason(&self) -> Option<String> {
        self.fatal_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
