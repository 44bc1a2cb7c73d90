//! `tokentally migrate`: bring the database schema up to date.

use std::path::PathBuf;

use super::{init_tracing, load_config, process_env};
use crate::store::Store;

pub async fn run(config_path: Option<&PathBuf>) -> anyhow::Result<()> {
    let config = load_config(config_path, &process_env())?;
    init_tracing(&config);
    let new_file = crate::store::sqlite_file(&config.database_url).filter(|f| !f.exists());
    let store = Store::connect_with(&config.database_url, config.connect_options())
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot open the database configured by `database_url` ({}): {e}",
                crate::store::describe_url(&config.database_url)
            )
        })?;
    store.migrate().await?;
    store.close().await;
    if let Some(file) = new_file {
        super::say(format_args!("created a new database at {}", file.display()));
    }
    super::say("database schema is up to date");
    Ok(())
}
