//! The `tokentally` binary as a test runs it: without the runner's own
//! `TOKENTALLY_*` settings.

use std::process::Command;

/// Runs the binary with `--config file` and `args`: (success, stdout, stderr).
pub fn run_with_config(file: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = tokentally()
        .arg("--config")
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

pub fn tokentally() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokentally"));
    // The test runner's own TOKENTALLY_* settings must not leak into the child.
    for (key, _) in std::env::vars() {
        if key.starts_with("TOKENTALLY_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}
