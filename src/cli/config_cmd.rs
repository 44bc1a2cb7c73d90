//! `tokentally config`: the configuration in effect (file, environment and
//! defaults merged), secrets redacted.

use std::path::PathBuf;

use super::{load_config, process_env};

pub async fn run(config_path: Option<&PathBuf>) -> anyhow::Result<()> {
    let mut config = load_config(config_path, &process_env())?;
    config.database_url = without_password(&config.database_url);
    // Secrets print as `Secret(…)`: their Debug form never shows them.
    println!("{config:#?}");
    eprintln!("(every option and its TOKENTALLY_* variable: the README's configuration table)");
    Ok(())
}

/// `postgres://user:pw@host/db` → `postgres://user:…@host/db`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:…@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_passwords_are_not_printed() {
        assert_eq!(
            super::without_password("postgres://tally:s3cret@db:5432/tally"),
            "postgres://tally:…@db:5432/tally"
        );
        assert_eq!(
            super::without_password("sqlite://tokentally.db"),
            "sqlite://tokentally.db"
        );
    }
}
