//! Printing shared by the commands: diagnostics, time stamps, tables, the
//! outcome of one change, and the exit code of a command that failed.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, SecondsFormat, Utc};
use lifeboat_engine::plan::apply::Outcome;
use lifeboat_engine::plan::render::Tone;
use lifeboat_engine::plan::Action;
use lifeboat_engine::Address;
use lifeboat_schema::Diagnostics;

/// A failure already explained to the user; only the exit code is left.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// The process's exit code for what a command returned. An error not yet
/// explained is printed here, once, and exits 1.
pub fn exit_code(result: Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
                return ExitCode::from(*code);
            }
            // Output written with `?` (the JSON views) meets the closed
            // pipe as an error rather than a panic: the same quiet stop.
            let closed = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if closed {
                return ExitCode::from(BROKEN_PIPE as u8);
            }
            crate::colour::error(format_args!("{e:#}"));
            ExitCode::from(1)
        }
    }
}

/// The exit code of a command that read nothing more once its reader went
/// away (`lifeboat state list | head`): as a program killed by SIGPIPE.
const BROKEN_PIPE: i32 = 128 + 13;

/// For a command that changes nothing: once its standard output is closed
/// by the reader, it stops quietly with [`BROKEN_PIPE`] instead of
/// panicking on the next line it prints. A command that changes state keeps
/// the unwinding panic: it releases the state lock and rolls back what it
/// had open on the way out, which an immediate exit would not.
pub fn stop_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        // `println!` says "failed printing to stdout: Broken pipe"; the
        // shell completions' writer says it its own way.
        if message.contains("Broken pipe") || message.contains("BrokenPipe") {
            std::process::exit(BROKEN_PIPE);
        }
        default(info)
    }));
}

/// Configuration problems on stderr, each with its source line and a caret
/// under the place (see [`crate::snippet`]).
pub fn print_diagnostics(d: &Diagnostics) {
    let text = crate::snippet::diagnostics_text(d, crate::colour::stderr_style());
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// An instant as every command prints it: UTC, to the second.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A table with a header row, columns two spaces apart; the last column is
/// not padded, so that no line ends in blanks.
pub fn print_table<const N: usize>(head: [&str; N], rows: &[[String; N]]) {
    let mut width = head.map(str::len);
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.len());
        }
    }
    let line = |cells: [&str; N]| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(head);
    for r in rows {
        line(r.each_ref().map(String::as_str));
    }
}

/// One line per change as it finishes, for apply and for retention.
pub fn print_outcome(action: Action, addr: &Address, o: &Outcome) {
    let verb = match action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Delete => "deleted",
        Action::Replace => "replaced",
        Action::Read => "forgotten",
        Action::Move => "moved",
    };
    let style = crate::colour::stdout_style();
    match o {
        Outcome::Done => println!("  {addr}: {}", style.paint(Tone::of(action), verb)),
        Outcome::Failed(e) => println!("  {addr}: {}: {e}", style.paint(Tone::Danger, "FAILED")),
        Outcome::Skipped(dep) => println!("  {addr}: skipped ({dep} failed)"),
        Outcome::Interrupted => println!("  {addr}: not started (interrupted)"),
    }
}

/// Asks `question` and reads the answer: only `yes` says yes.
pub fn confirm(question: &str) -> Result<bool> {
    print!("\n{question} Only 'yes' will be accepted: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}
