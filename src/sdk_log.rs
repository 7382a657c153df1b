//! `LIFEBOAT_LOG`: the AWS SDK's own tracing (each call and its attempts,
//! retries, where credentials came from, the endpoint resolved) on stderr,
//! for an operator finding out why a call failed or hung. Its value is a
//! `tracing` filter (`debug`, `aws_smithy_runtime=debug,info`). Unset or
//! empty, nothing is installed and nothing changes. This is not the run
//! log (`run { log }`, JSON lines of what the runner did): it is the SDK's
//! debugging output, with no stable form.
//!
//! Nothing finer than `debug` is ever shown, whatever the filter asks: at
//! `trace` the SDK prints each client's whole configuration, in which an
//! assumed role's external id stands in clear (measured against the
//! emulator; the secret key, session token and signature are redacted by
//! the SDK at every level).

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// The environment variable that turns the SDK's tracing on.
const VAR: &str = "LIFEBOAT_LOG";

/// The finest level shown.
const CAP: LevelFilter = LevelFilter::DEBUG;

/// Installs the stderr subscriber when `LIFEBOAT_LOG` asks for one.
pub fn init() {
    let Some(value) = std::env::var_os(VAR).filter(|v| !v.is_empty()) else {
        return;
    };
    let filter = match value.to_str().map(EnvFilter::try_new) {
        Some(Ok(filter)) => filter,
        Some(Err(e)) => {
            crate::colour::warning(format_args!("{VAR} is not a filter ({e}); ignored."));
            return;
        }
        None => {
            crate::colour::warning(format_args!("{VAR} is not UTF-8; ignored."));
            return;
        }
    };
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(crate::colour::on_stderr());
    tracing_subscriber::registry()
        .with(filter)
        .with(CAP)
        .with(lines)
        .init();
}
