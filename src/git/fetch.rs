//! Fetching a bare mirror from its remote with git2: the refspecs it asks for,
//! where the GitHub token may go (only to the URL it belongs to) and where a
//! redirect may lead (only to an allowed host), and libgit2's process-wide
//! timeouts and memory limits.
//!
//! Everything here blocks: callers run it in `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use git2::{
    AutotagOption, Cred, ErrorClass, ErrorCode, FetchOptions, FetchPrune, RemoteCallbacks,
    Repository,
};

/// One mirror to fetch.
pub struct FetchRequest<'a> {
    /// The bare mirror (created on the first fetch).
    pub path: &'a Path,
    pub url: &'a str,
    /// The token and the URL prefix it belongs to (`https://github.com/`), if any.
    pub credentials: Option<(&'a str, &'a str)>,
    /// The hosts a TLS connection may reach (`mirrors.allowed_remotes`).
    pub allowed_hosts: &'a [String],
    /// The default branch (checked: only a valid branch name makes a refspec).
    pub default_branch: &'a str,
    /// Pull requests whose `refs/pull/N/head` is fetched too.
    pub pull_requests: &'a [i64],
    /// Set from outside to stop the fetch.
    pub cancel: &'a Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "the default branch {branch:?} is not a valid branch name ({why}); nothing was fetched"
    )]
    BadBranch { branch: String, why: &'static str },
    #[error("cannot create the mirror directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{message}")]
    Git {
        message: String,
        /// The remote does not exist, refuses to be reached where it sends us,
        /// or speaks a scheme libgit2 cannot: retrying cannot help.
        permanent: bool,
    },
}

impl FetchError {
    pub fn is_permanent(&self) -> bool {
        match self {
            FetchError::BadBranch { .. } => true,
            FetchError::Io { .. } => false,
            FetchError::Git { permanent, .. } => *permanent,
        }
    }
}

/// Opens (or creates) the mirror and fetches its default branch and the pull
/// requests asked for, pruning what the remote deleted.
pub fn fetch_mirror(request: &FetchRequest<'_>) -> Result<Repository, FetchError> {
    // The refspec is built only from a name git accepts as a branch: `*` would
    // fetch every branch, `a:refs/heads/b` would write elsewhere.
    if let Some(why) = super::invalid_branch_name(request.default_branch) {
        return Err(FetchError::BadBranch {
            branch: request
                .default_branch
                .chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect(),
            why,
        });
    }
    let git = |e: git2::Error| FetchError::Git {
        message: e.message().to_string(),
        permanent: is_permanent_fetch_error(&e),
    };
    let repo = open_or_init(request.path).map_err(|e| match e {
        OpenError::Io(source) => FetchError::Io {
            path: request.path.to_path_buf(),
            source,
        },
        OpenError::Git(e) => git(e),
    })?;
    let branch = request.default_branch;
    let mut refspecs = vec![format!("+refs/heads/{branch}:refs/heads/{branch}")];
    for number in request.pull_requests {
        refspecs.push(format!("+refs/pull/{number}/head:refs/pull/{number}/head"));
    }
    fetch(
        &repo,
        request.url,
        request.credentials,
        request.allowed_hosts,
        &refspecs,
        request.cancel,
    )
    .map_err(git)?;
    Ok(repo)
}

enum OpenError {
    Io(std::io::Error),
    Git(git2::Error),
}

fn open_or_init(path: &Path) -> Result<Repository, OpenError> {
    if path.join("HEAD").exists() {
        return Repository::open_bare(path).map_err(OpenError::Git);
    }
    std::fs::create_dir_all(path).map_err(OpenError::Io)?;
    Repository::init_bare(path).map_err(OpenError::Git)
}

/// Fetches `refspecs` (the default branch and the pull requests an event named),
/// pruning what the remote deleted.
///
/// The token (`credentials`: the token and the prefix it belongs to) is given
/// only when libgit2 asks for the URL it belongs to, and once: if the remote
/// refuses it, libgit2 would ask again and again. Over https a redirect may
/// only lead to a host of `allowed_hosts` (checked on every TLS connection);
/// other remotes (a local path, plain http where allowed) follow no redirect.
fn fetch(
    repo: &Repository,
    url: &str,
    credentials: Option<(&str, &str)>,
    allowed_hosts: &[String],
    refspecs: &[String],
    cancel: &Arc<AtomicBool>,
) -> Result<(), git2::Error> {
    let mut remote = match repo.find_remote("origin") {
        Ok(remote) if remote.url().ok() == Some(url) => remote,
        Ok(_) => {
            repo.remote_set_url("origin", url)?;
            repo.find_remote("origin")?
        }
        Err(_) => repo.remote_with_fetch("origin", url, "+refs/heads/*:refs/heads/*")?,
    };
    let mut callbacks = RemoteCallbacks::new();
    if let Some((token, prefix)) = credentials {
        // GitHub accepts a token as the password of any user name over HTTPS.
        let (token, prefix) = (token.to_string(), prefix.to_string());
        let asked = AtomicUsize::new(0);
        callbacks.credentials(move |asked_for, _user, _allowed| {
            if !crate::git::remote::credentials_for(asked_for, &prefix) {
                return Err(git2::Error::new(
                    ErrorCode::Auth,
                    ErrorClass::Http,
                    format!(
                        "{} asked for credentials; the token goes only to {prefix}",
                        host_of(asked_for)
                    ),
                ));
            }
            if asked.fetch_add(1, Ordering::Relaxed) > 0 {
                return Err(git2::Error::new(
                    ErrorCode::Auth,
                    ErrorClass::Http,
                    "the remote refused the GitHub token (`github.token`)",
                ));
            }
            Cred::userpass_plaintext("x-access-token", &token)
        });
    }
    let https = url.starts_with("https://");
    let origin_host = host_of(url);
    let allowed: Vec<String> = allowed_hosts.to_vec();
    callbacks.certificate_check(move |_cert, host| {
        let host = host.to_ascii_lowercase();
        if host == origin_host || allowed.contains(&host) {
            // libgit2 checks the certificate itself, as without this callback.
            Ok(git2::CertificateCheckStatus::CertificatePassthrough)
        } else {
            Err(git2::Error::new(
                ErrorCode::Certificate,
                ErrorClass::Net,
                format!("{REDIRECTED_AWAY} {host:?}, a host outside `mirrors.allowed_remotes`"),
            ))
        }
    });
    // libgit2 calls these while data flows; returning false aborts the fetch.
    let keep_going = cancel.clone();
    callbacks.transfer_progress(move |_| !keep_going.load(Ordering::Relaxed));
    let keep_going = cancel.clone();
    callbacks.sideband_progress(move |_| !keep_going.load(Ordering::Relaxed));
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(callbacks)
        .follow_redirects(if https {
            git2::RemoteRedirect::Initial
        } else {
            git2::RemoteRedirect::None
        })
        .prune(FetchPrune::On)
        .download_tags(AutotagOption::None);
    remote.fetch(refspecs, Some(&mut options), None)
}

/// How a fetch that a redirect took off the allowed hosts says so.
const REDIRECTED_AWAY: &str = "the remote sent the fetch to";

/// The lower-case host of a URL (empty when it has none).
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default()
}

/// A remote that does not exist, or a scheme libgit2 cannot speak: the same
/// fetch will fail the same way every time.
fn is_permanent_fetch_error(e: &git2::Error) -> bool {
    let message = e.message().to_ascii_lowercase();
    e.code() == ErrorCode::NotFound
        || e.message().contains(REDIRECTED_AWAY)
        || message.contains("unsupported url protocol")
        || message.contains("failed to resolve path")
        || message.contains("unexpected http status code: 404")
        || message.contains("repository not found")
}

/// Process-wide libgit2 limits: connect and read timeouts for remotes (a remote
/// that accepts and never answers must not hang a worker), and a bounded object
/// cache (libgit2's default of 256 MiB dominated a long scan's memory).
///
/// The options are global to the process: when several apps share one (tests),
/// the shortest timeouts asked for win.
pub fn configure_libgit2(connect_timeout_ms: u64, read_timeout_ms: u64) {
    use std::sync::atomic::AtomicU64;
    static CONNECT: AtomicU64 = AtomicU64::new(u64::MAX);
    static READ: AtomicU64 = AtomicU64::new(u64::MAX);
    let clamp = |ms: u64| ms.clamp(1, i32::MAX as u64) as i32;
    let connect = clamp(
        CONNECT
            .fetch_min(connect_timeout_ms, Ordering::SeqCst)
            .min(connect_timeout_ms),
    );
    let read = clamp(
        READ.fetch_min(read_timeout_ms, Ordering::SeqCst)
            .min(read_timeout_ms),
    );
    // SAFETY: these set global libgit2 options (plain integers libgit2 reads when
    // it opens a connection).
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(connect);
        let _ = git2::opts::set_server_timeout_in_milliseconds(read);
    }
    limit_libgit2_memory();
}

/// libgit2's object cache limit for this process: anonymous memory the process
/// holds (parsed trees take about three times what the limit counts). 32 MiB
/// keeps a 50,000-commit scan with diffs under 150 MB of `RssAnon`; 64 MiB made
/// it 10% faster at 230 MB (`cargo bench --bench scan`).
pub const OBJECT_CACHE_BYTES: isize = 32 * 1024 * 1024;
/// How much of pack files libgit2 keeps mapped at once. Mapped pack pages are
/// file-backed: the kernel reclaims them under pressure, so they cost no
/// anonymous memory, and large windows save remapping.
pub const PACK_MAPPED_BYTES: usize = 1024 * 1024 * 1024;

/// Sizes libgit2's object cache and mapped pack windows (see above).
pub fn limit_libgit2_memory() {
    // SAFETY: global libgit2 tunables (integers read when caching an object or
    // mapping a pack window); setting them at any time is allowed.
    unsafe {
        let _ = git2::opts::set_cache_max_size(OBJECT_CACHE_BYTES);
        let _ = git2::opts::set_mwindow_mapped_limit(PACK_MAPPED_BYTES);
        let _ = git2::opts::set_mwindow_size(64 * 1024 * 1024);
    }
}
