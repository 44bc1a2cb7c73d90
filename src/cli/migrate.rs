//! `tokentally migrate`: bring the database schema up to date.

use std::path::PathBuf;

use super::{init_tracing, load_config, process_env};
use crate::store::Store;

pub async fn run(config_path: Option<&PathBuf>) -> anyhow::Result<()> {
    let config = load_config(config_path, &process_env())?;
    init_tracing(&config.log);
    let store = Store::connect_with(&config.database_url, config.sqlite_synchronous).await?;
    store.migrate().await?;
    store.close().await;
    eprintln!("database schema is up to date");
    Ok(())
}
