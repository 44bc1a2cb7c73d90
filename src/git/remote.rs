//! Which remotes the service fetches, and where the GitHub token goes.
//!
//! A `clone_url` comes from a webhook payload. The payload is signed, but a
//! leaked webhook secret, a misconfigured GitHub Enterprise or a repository
//! renamed to a hostile host must not turn the service into a token exfiltrator
//! or a reader of local files. So a remote is fetched only when it starts with
//! one of `mirrors.allowed_remotes`, and the token is sent only over HTTPS to
//! the GitHub web host.

/// Why a remote was refused (a permanent error: retrying cannot help).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteRefused {
    #[error(
        "remote {url:?} is not allowed: it must start with one of {allowed:?} \
         (configure `mirrors.allowed_remotes` to allow more)"
    )]
    NotAllowed { url: String, allowed: Vec<String> },
    #[error("remote {url:?} is not a plain URL or path: {why}")]
    Malformed { url: String, why: &'static str },
}

/// The allow-list of remotes, and the one prefix the token may be sent to.
#[derive(Debug, Clone)]
pub struct RemotePolicy {
    allowed: Vec<String>,
    /// `https://<github web host>/`: the only place the token goes.
    token_prefix: String,
}

impl RemotePolicy {
    /// `allowed` empty means the default: the GitHub web host only.
    pub fn new(allowed: &[String], github_api_url: &str) -> RemotePolicy {
        let web = github_web_url(github_api_url);
        let allowed = if allowed.is_empty() {
            vec![web.clone()]
        } else {
            allowed.to_vec()
        };
        let token_prefix = if web.starts_with("https://") {
            web
        } else {
            // A GitHub Enterprise over plain http gets no token at all.
            String::new()
        };
        RemotePolicy {
            allowed,
            token_prefix,
        }
    }

    pub fn allowed(&self) -> &[String] {
        &self.allowed
    }

    /// Refuses anything outside the allow-list, and URLs that could mean
    /// something else than they seem (dot segments, user info, control characters).
    pub fn check(&self, url: &str) -> Result<(), RemoteRefused> {
        let malformed = |why| RemoteRefused::Malformed {
            url: printable(url),
            why,
        };
        if url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return Err(malformed("control characters, spaces or backslashes"));
        }
        let lower = url.to_ascii_lowercase();
        if lower.contains("%2e") || lower.contains("%2f") || lower.contains("%5c") {
            return Err(malformed("percent-encoded dots or slashes"));
        }
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, url),
        };
        if let Some(scheme) = scheme {
            let authority = rest.split('/').next().unwrap_or_default();
            if authority.contains('@') {
                return Err(malformed("credentials in the URL"));
            }
            if scheme.is_empty() {
                return Err(malformed("an empty scheme"));
            }
        } else if url.contains(':') && !url.starts_with('/') {
            // `host:path` is git's scp-like SSH syntax.
            return Err(malformed("scp-like SSH syntax"));
        }
        if rest.split('/').any(|segment| segment == "..") {
            return Err(malformed("`..` path segments"));
        }
        if self
            .allowed
            .iter()
            .any(|prefix| url.starts_with(prefix.as_str()))
        {
            Ok(())
        } else {
            Err(RemoteRefused::NotAllowed {
                url: printable(url),
                allowed: self.allowed.clone(),
            })
        }
    }

    /// True when the GitHub token may be sent to `url`: HTTPS to the GitHub web host.
    pub fn sends_token_to(&self, url: &str) -> bool {
        !self.token_prefix.is_empty() && url.starts_with(&self.token_prefix)
    }

    /// The hosts a fetch may talk to over TLS: those of the https entries of
    /// the allow-list. A redirect to any other host is refused.
    pub fn allowed_hosts(&self) -> Vec<String> {
        self.allowed
            .iter()
            .filter_map(|prefix| url::Url::parse(prefix).ok())
            .filter(|u| u.scheme() == "https")
            .filter_map(|u| u.host_str().map(str::to_ascii_lowercase))
            .collect()
    }
}

/// True when credentials for `token_prefix` (`https://github.com/`) may be given
/// for `url`, the URL libgit2 asks them for (after a redirect, the new one):
/// https, and the same host and port.
pub fn credentials_for(url: &str, token_prefix: &str) -> bool {
    let (Ok(asked), Ok(allowed)) = (url::Url::parse(url), url::Url::parse(token_prefix)) else {
        return false;
    };
    asked.scheme() == "https"
        && allowed.scheme() == "https"
        && asked.host_str().is_some()
        && asked.host_str() == allowed.host_str()
        && asked.port_or_known_default() == allowed.port_or_known_default()
}

/// `https://api.github.com` → `https://github.com/`; a GitHub Enterprise API
/// (`https://ghe.example/api/v3`) → `https://ghe.example/`.
pub fn github_web_url(api_url: &str) -> String {
    let (scheme, rest) = api_url.split_once("://").unwrap_or(("https", api_url));
    let host = rest.split('/').next().unwrap_or_default();
    let host = host.strip_prefix("api.").unwrap_or(host);
    format!("{scheme}://{host}/")
}

/// A URL for an error message: never longer than 200 characters.
fn printable(url: &str) -> String {
    let cleaned: String = url
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect();
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_allows_github_over_https_only() {
        let p = RemotePolicy::new(&[], "https://api.github.com");
        assert!(p.check("https://github.com/acme/api.git").is_ok());
        for bad in [
            "http://github.com/acme/api.git",
            "https://github.com.evil.example/acme/api.git",
            "https://evil.example/acme/api.git",
            "file:///etc",
            "/srv/git/acme.git",
            "git@github.com:acme/api.git",
            "ssh://git@github.com/acme/api.git",
            "https://github.com/../../x",
            "https://x@github.com/acme/api.git",
            "https://github.com/acme/%2e%2e/x",
            "https://github.com/acme/api.git\n",
        ] {
            assert!(p.check(bad).is_err(), "{bad} must be refused");
        }
        assert!(p.sends_token_to("https://github.com/acme/api.git"));
        assert!(!p.sends_token_to("http://github.com/acme/api.git"));
        assert!(!p.sends_token_to("https://github.com.evil.example/x"));
    }

    #[test]
    fn configured_prefixes_and_enterprise() {
        let p = RemotePolicy::new(
            &["file:///srv/git/".into(), "http://127.0.0.1:9/".into()],
            "https://ghe.corp.example/api/v3",
        );
        assert!(p.check("file:///srv/git/acme/api.git").is_ok());
        assert!(p.check("file:///srv/git/../etc").is_err());
        assert!(p.check("file:///srv/gitx/a").is_err());
        assert!(p.check("http://127.0.0.1:9/acme/api.git").is_ok());
        assert!(!p.sends_token_to("http://127.0.0.1:9/acme/api.git"));
        assert!(p.sends_token_to("https://ghe.corp.example/acme/api.git"));
        assert!(
            p.check("https://ghe.corp.example/acme/api.git").is_err(),
            "an explicit list replaces the default"
        );
        assert_eq!(
            github_web_url("https://api.github.com"),
            "https://github.com/"
        );
        assert_eq!(
            github_web_url("http://ghe.local/api/v3"),
            "http://ghe.local/"
        );
        let plain = RemotePolicy::new(&[], "http://ghe.local/api/v3");
        assert!(!plain.sends_token_to("http://ghe.local/a/b.git"));
    }

    #[test]
    fn credentials_only_for_the_host_they_belong_to() {
        let prefix = "https://github.com/";
        assert!(credentials_for("https://github.com/acme/api.git", prefix));
        assert!(credentials_for(
            "https://GitHub.com:443/acme/api.git",
            prefix
        ));
        for other in [
            "https://evil.example/acme/api.git",
            "http://github.com/acme/api.git",
            "https://github.com:8443/acme/api.git",
            "https://github.com.evil.example/x",
            "not a url",
        ] {
            assert!(!credentials_for(other, prefix), "{other}");
        }
        assert!(!credentials_for("http://ghe.local/x", "http://ghe.local/"));
        let p = RemotePolicy::new(
            &[
                "https://GHE.corp.example/".into(),
                "file:///srv/git/".into(),
            ],
            "https://api.github.com",
        );
        assert_eq!(p.allowed_hosts(), vec!["ghe.corp.example".to_string()]);
    }

    #[test]
    fn refusals_say_what_to_configure() {
        let p = RemotePolicy::new(&[], "https://api.github.com");
        let err = p.check("file:///etc").unwrap_err().to_string();
        assert!(err.contains("mirrors.allowed_remotes"), "{err}");
    }
}
