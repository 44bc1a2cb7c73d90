use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tokentally::cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let result = runtime.block_on(tokentally::cli::run(cli));
    // A git fetch blocked in a read (libgit2 cannot be interrupted there) must not
    // hold the process after a shutdown: its thread is abandoned.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Not eprintln!: it panics when stderr is a closed pipe.
            tokentally::cli::say(format_args!("error: {err:#}"));
            ExitCode::from(2)
        }
    }
}
