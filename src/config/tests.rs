//! Loading the configuration: defaults, file, environment, and the errors.

use super::*;
use crate::secret::Secret;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn defaults_without_file_or_env() {
    let c = Config::load(None, &env(&[])).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.database_url, "sqlite://tokentally.db");
    assert!(c.github.webhook_secrets.is_empty());
    assert_eq!(c.worker.max_attempts, 8);
    assert_eq!(c.sqlite_synchronous, SqliteSync::Normal);
    assert!(c.mirrors.enabled);
    let c = Config::load(None, &env(&[("TOKENTALLY_MIRRORS_ENABLED", "false")])).unwrap();
    assert!(!c.mirrors.enabled);
    assert!(Config::load(None, &env(&[("TOKENTALLY_MIRRORS_ENABLED", "maybe")])).is_err());
    assert_eq!(c.api.rate_limit_per_minute, 60);
    let c = Config::load(
        None,
        &env(&[("TOKENTALLY_API_RATE_LIMIT_PER_MINUTE", "600")]),
    )
    .unwrap();
    assert_eq!(c.api.rate_limit_per_minute, 600);
    let c = Config::load(None, &env(&[("TOKENTALLY_SQLITE_SYNCHRONOUS", "full")])).unwrap();
    assert_eq!(c.sqlite_synchronous, SqliteSync::Full);
}

#[test]
fn env_overrides_file() {
    let f = file(
        "listen = \"127.0.0.1:9000\"\ndatabase_url = \"sqlite://a.db\"\n\
         [github]\nwebhook_secrets = [\"from-file\"]\n[worker]\nmax_attempts = 3\n",
    );
    let c = Config::load(
        Some(f.path()),
        &env(&[
            ("TOKENTALLY_LISTEN", "127.0.0.1:9100"),
            ("TOKENTALLY_GITHUB_WEBHOOK_SECRET", "new, old"),
            ("TOKENTALLY_WORKER_MAX_ATTEMPTS", "5"),
        ]),
    )
    .unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:9100");
    assert_eq!(
        c.database_url, "sqlite://a.db",
        "file value kept where env is silent"
    );
    let secrets: Vec<&str> = c
        .github
        .webhook_secrets
        .iter()
        .map(Secret::expose)
        .collect();
    assert_eq!(secrets, ["new", "old"]);
    assert_eq!(c.worker.max_attempts, 5);
}

#[test]
fn unknown_key_is_named() {
    let f = file("lisen = \"127.0.0.1:1\"\n");
    let err = Config::load(Some(f.path()), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`lisen`"), "{err}");

    let f = file("[worker]\nmax_attempt = 3\n");
    let err = Config::load(Some(f.path()), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`worker.max_attempt`"), "{err}");
}

#[test]
fn bad_values_name_the_key() {
    let f = file("listen = \"not an address\"\n");
    let err = Config::load(Some(f.path()), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`listen`"), "{err}");

    let f = file("[worker]\nmax_attempts = \"many\"\n");
    let err = Config::load(Some(f.path()), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`worker.max_attempts`"), "{err}");

    let err = Config::load(None, &env(&[("TOKENTALLY_LISTEN", "nowhere")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`listen` (from TOKENTALLY_LISTEN)"), "{err}");

    let err = Config::load(
        None,
        &env(&[("TOKENTALLY_SQLITE_SYNCHRONOUS", "sometimes")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`sqlite_synchronous` (from TOKENTALLY_SQLITE_SYNCHRONOUS)"),
        "{err}"
    );

    let err = Config::load(None, &env(&[("TOKENTALLY_WORKER_MAX_ATTEMPTS", "x")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("TOKENTALLY_WORKER_MAX_ATTEMPTS"), "{err}");

    let err = Config::load(None, &env(&[("TOKENTALLY_DATABASE_URL", "mysql://x")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`database_url` (from TOKENTALLY_DATABASE_URL)"),
        "{err}"
    );

    let f = file("[worker]\nmax_attempts = 0\n");
    let err = Config::load(Some(f.path()), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`worker.max_attempts`"), "{err}");
}

#[test]
fn agents_people_and_paths() {
    let f = file(
        "[[agents]]\nname = \"internal-bot\"\nemails = [\"bot@corp.example\"]\n\
         [[people]]\nname = \"maria\"\nemails = [\"maria@corp.example\"]\ngithub = \"mgarcia\"\n\
         [attribution.paths]\ndocs = [\"handbook/**\"]\n",
    );
    let c = Config::load(Some(f.path()), &env(&[])).unwrap();
    assert_eq!(c.agents[0].name, "internal-bot");
    assert_eq!(c.people[0].github.as_deref(), Some("mgarcia"));
    assert_eq!(c.attribution.paths.docs, ["handbook/**"]);
    assert!(
        !c.attribution.paths.tests.is_empty(),
        "unset lists keep their defaults"
    );

    let f = file("[attribution.paths]\ntests = [\"a[\"]\n");
    let err = Config::load(Some(f.path()), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`attribution.paths`"), "{err}");
    let f = file("[[people]]\nname = \"x\"\nmail = \"x@y\"\n");
    let err = Config::load(Some(f.path()), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("people[0].mail"), "{err}");
}

#[test]
fn mistakes_are_errors_that_say_what_to_write() {
    let err = Config::load(None, &env(&[("TOKENTALLY_LOGG", "debug")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("TOKENTALLY_LOGG") && err.contains("TOKENTALLY_LOG?"),
        "{err}"
    );
    let err = Config::load(None, &env(&[("TOKENTALLY_WORKER_LEASE_SECS", "5")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("TOKENTALLY_WORKER_LEASE_SECONDS"), "{err}");
    // The report command's and the tests' variables are known.
    assert!(
        Config::load(
            None,
            &env(&[
                ("TOKENTALLY_URL", "https://x"),
                ("TOKENTALLY_TOKEN", "tt_x")
            ])
        )
        .is_ok()
    );
    let err = Config::load(None, &env(&[("TOKENTALLY_LOG", "info,[[[")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`log` (from TOKENTALLY_LOG)"), "{err}");
    let f = file("[signals.ci]\nfail = [\"failed\"]\n");
    let err = Config::load(Some(f.path()), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("signals.ci.fail") && err.contains("timed_out"),
        "{err}"
    );
    let c = Config::load(None, &env(&[("TOKENTALLY_LISTEN", "localhost:8080")])).unwrap();
    assert_eq!(c.listen.port(), 8080);
    assert!(c.listen.ip().is_loopback());
    let err = Config::load(None, &env(&[("TOKENTALLY_LISTEN", "localhost")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("localhost:8080"), "gives an example: {err}");
    let c = Config::load(None, &env(&[("TOKENTALLY_LOG_FORMAT", "json")])).unwrap();
    assert_eq!(c.log_format, LogFormat::Json);
}

#[test]
fn scoring_rules_from_config() {
    let f = file(
        "[scoring]\nvesting_days = 7\n[scoring.tiers]\nfix = 12.0\n[scoring.signals.perf_budget]\nfail = 0.8\n",
    );
    let c = Config::load(Some(f.path()), &env(&[])).unwrap();
    assert_eq!(c.scoring.vesting_days, 7);
    assert_eq!(c.scoring.tier("fix"), 12.0);
    assert_eq!(
        c.scoring.tier("feature"),
        8.0,
        "kinds not given keep their default"
    );
    assert_eq!(c.scoring.signals["perf_budget"].pass, 1.0);
    assert_ne!(c.scoring.version(), Config::default().scoring.version());
    let f = file("[scoring.tiers]\nbugfix = 1.0\n");
    let err = Config::load(Some(f.path()), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("scoring.tiers") && err.contains("revert"),
        "{err}"
    );
    let f = file("[scoring]\nvesting_dayz = 7\n");
    let err = Config::load(Some(f.path()), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("scoring.vesting_dayz"), "{err}");
}

#[test]
fn digest_discord_and_github_app_settings() {
    let c = Config::load(None, &env(&[])).unwrap();
    assert_eq!(c.digest.schedule, "0 0 9 * * Mon *");
    assert_eq!(c.digest.top, 10);
    assert_eq!(c.discord.api_url, "https://discord.com");
    assert!(c.discord.all_destinations().is_empty());
    assert!(c.github.pr_comments);
    assert_eq!(c.github.reconcile_interval_seconds, 600);
    let url = "https://discord.com/api/webhooks/42/the-token";
    let c = Config::load(
        None,
        &env(&[
            ("TOKENTALLY_DISCORD_WEBHOOK_URL", url),
            ("TOKENTALLY_DIGEST_TOP", "5"),
            ("TOKENTALLY_GITHUB_PR_COMMENTS", "false"),
        ]),
    )
    .unwrap();
    let all = c.discord.all_destinations();
    assert_eq!(
        (all[0].name.as_str(), all[0].webhook_url.expose()),
        ("team", url)
    );
    assert_eq!(c.digest.top, 5);
    assert!(!c.github.pr_comments);
    let f = file(&format!(
        "[[discord.destinations]]\nname = \"backend\"\nwebhook_url = {url:?}\nrepos = [\"acme/api\"]\n"
    ));
    let c = Config::load(Some(f.path()), &env(&[])).unwrap();
    assert_eq!(c.discord.all_destinations()[0].repos, ["acme/api"]);

    let error = |vars: &[(&str, &str)]| Config::load(None, &env(vars)).unwrap_err().to_string();
    let e = error(&[("TOKENTALLY_DIGEST_SCHEDULE", "0 9 * * 1")]);
    assert!(
        e.contains("digest.schedule") && e.contains("seconds first"),
        "{e}"
    );
    let e = error(&[("TOKENTALLY_TIMEZONE", "Mars/Olympus")]);
    assert!(e.contains("timezone"), "{e}");
    let e = error(&[(
        "TOKENTALLY_DISCORD_WEBHOOK_URL",
        "https://discord.com/api/hooks/secret-token",
    )]);
    assert!(
        e.contains("discord.webhook_url") && !e.contains("secret-token"),
        "{e}"
    );
    let e = error(&[("TOKENTALLY_GITHUB_APP_ID", "12")]);
    assert!(e.contains("private_key"), "{e}");
    let e = error(&[("TOKENTALLY_PUBLIC_URL", "tally.example.com")]);
    assert!(e.contains("public_url"), "{e}");
}

#[test]
fn syntax_error_names_the_file() {
    let f = file("listen = \n");
    let err = Config::load(Some(f.path()), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&f.path().display().to_string()), "{err}");
}

#[test]
fn secrets_never_print() {
    let f =
        file("[github]\nwebhook_secrets = [\"hunter2-very-secret\"]\ntoken = \"ghp_tokenvalue\"\n");
    let c = Config::load(Some(f.path()), &env(&[])).unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
    assert!(!format!("{c:?}").contains("ghp_tokenvalue"));
    assert_eq!(
        c.github.token.as_ref().map(Secret::expose),
        Some("ghp_tokenvalue")
    );
}

#[cfg(unix)]
#[test]
fn first_run_file_is_private_and_loadable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEFAULT_CONFIG_FILE);
    let listen: std::net::SocketAddr = "127.0.0.1:23080".parse().unwrap();
    write_first_run_file(&path, listen).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let c = Config::load(Some(&path), &env(&[])).unwrap();
    assert_eq!(c.github.webhook_secrets.len(), 1);
    assert_eq!(c.github.webhook_secrets[0].expose().len(), 64);
    // It records the address serve was started on (`--listen 127.0.0.1:23080`).
    assert_eq!(c.listen, listen);
    assert!(
        write_first_run_file(&path, listen).is_err(),
        "never overwrites a secret"
    );
}
