//! Where the repository mirrors live (`<data_dir>/mirrors/<owner>/<name>.git`),
//! which remotes they may be fetched from, and the lock that keeps one fetch
//! and walk at a time per repository.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::remote::RemotePolicy;
use crate::secret::Secret;

/// A repository name that cannot be a mirror's path.
#[derive(Debug, thiserror::Error)]
#[error("repository name {0:?} is not of the form owner/name")]
pub struct BadName(pub String);

/// Where mirrors live, and the per-repository locks that keep fetches one at a time.
pub struct Mirrors {
    root: PathBuf,
    token: Option<Secret>,
    policy: RemotePolicy,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Mirrors {
    pub fn new(data_dir: &Path, token: Option<Secret>, policy: RemotePolicy) -> Mirrors {
        Mirrors {
            root: data_dir.join("mirrors"),
            token,
            policy,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Which remotes may be fetched, and where the token may go.
    pub fn policy(&self) -> &RemotePolicy {
        &self.policy
    }

    /// The mirror's path: `<data_dir>/mirrors/<owner>/<name>.git`.
    /// Repository names are case-insensitive on GitHub: `Acme/API` and `acme/api`
    /// share one mirror.
    pub fn path_for(&self, full_name: &str) -> Result<PathBuf, BadName> {
        let full_name = full_name.to_ascii_lowercase();
        let valid = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        // owner/name, or group/subgroup/name (GitLab-style nesting).
        let parts: Vec<&str> = full_name.split('/').collect();
        match parts.split_last() {
            Some((name, owners)) if !owners.is_empty() && parts.iter().all(|p| valid(p)) => {
                let mut path = self.root.clone();
                for owner in owners {
                    path.push(owner);
                }
                Ok(path.join(format!("{name}.git")))
            }
            _ => Err(BadName(full_name.to_string())),
        }
    }

    /// Holds the repository's lock: one fetch and walk at a time per repository.
    pub async fn lock(&self, full_name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .locks
            .lock()
            .expect("mirror lock table")
            .entry(full_name.to_ascii_lowercase())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    pub fn token(&self) -> Option<&Secret> {
        self.token.as_ref()
    }
}
