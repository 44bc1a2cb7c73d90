//! The configuration file `serve` writes on its first run.

use std::path::Path;

use super::ConfigError;
use crate::secret::random_hex;

/// Creates a first-run config file with a random webhook secret, readable
/// only by its owner, recording the address `serve` was started on.
///
/// Fails if the file already exists, so an existing secret is never replaced.
pub fn write_first_run_file(path: &Path, listen: std::net::SocketAddr) -> Result<(), ConfigError> {
    let secret = random_hex(32);
    let text = format!(
        "# tokentally configuration, written on first run.\n\
         # Every option and its TOKENTALLY_* environment variable is listed in the README\n\
         # (and `tokentally config` prints the configuration in effect).\n\
         listen = \"{listen}\"\n\
         database_url = \"sqlite://tokentally.db\"\n\
         \n\
         [github]\n\
         # Enter this value as the secret of the GitHub webhook. Add a second\n\
         # secret to the list to rotate it without downtime.\n\
         webhook_secrets = [\"{secret}\"]\n"
    );
    let write_err = |source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(write_err)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(write_err)?;
    file.sync_all().map_err(write_err)
}
