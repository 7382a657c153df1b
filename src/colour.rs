//! Colour in what a person reads on a terminal: the plan's change symbols,
//! the `Error:` and `Warning:` prefixes, the carets under a configuration
//! problem. Never when the stream is a file or a pipe (CI logs, `| less`,
//! tests), nor when the operator said no (`--no-color`, or `NO_COLOR` set to
//! anything, as no-color.org asks, or a `TERM=dumb` terminal).
//!
//! Six SGR codes written by hand rather than a styling crate: the choice of
//! whether to colour is Lifeboat's own rule either way, and a tone is one
//! escape code before the text and one reset after it.

use std::ffi::OsStr;
use std::fmt::Display;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use lifeboat_engine::plan::render::{Style, Tone};

/// Whether the operator allows colour at all; set once by [`init`].
static ALLOWED: AtomicBool = AtomicBool::new(false);

/// Records the operator's choice, before anything is printed.
pub fn init(no_color_flag: bool) {
    let allowed = allowed(
        no_color_flag,
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    );
    ALLOWED.store(allowed, Ordering::Relaxed);
}

/// The operator's side of the choice: `--no-color`, `NO_COLOR` with any
/// non-empty value (an empty one counts as unset, as no-color.org says), a
/// terminal that says it shows no colour.
fn allowed(no_color_flag: bool, no_color: Option<&OsStr>, term: Option<&OsStr>) -> bool {
    !no_color_flag && no_color.is_none_or(OsStr::is_empty) && term != Some(OsStr::new("dumb"))
}

/// Colour for a stream: allowed, and the stream is a terminal.
fn chosen(allowed: bool, terminal: bool) -> bool {
    allowed && terminal
}

/// Whether standard output is coloured.
pub fn on_stdout() -> bool {
    chosen(
        ALLOWED.load(Ordering::Relaxed),
        std::io::stdout().is_terminal(),
    )
}

/// Whether standard error is coloured.
pub fn on_stderr() -> bool {
    chosen(
        ALLOWED.load(Ordering::Relaxed),
        std::io::stderr().is_terminal(),
    )
}

/// The plan's style for standard output.
pub fn stdout_style() -> Style {
    style(on_stdout())
}

/// The style for standard error.
pub fn stderr_style() -> Style {
    style(on_stderr())
}

fn style(coloured: bool) -> Style {
    if coloured {
        Style::painted(ansi)
    } else {
        Style::plain()
    }
}

/// `text` in the colour of `tone`, between an SGR code and a reset.
pub fn ansi(tone: Tone, text: &str) -> String {
    let code = match tone {
        Tone::Create => "32",
        Tone::Update | Tone::Warning => "33",
        Tone::Delete | Tone::Replace => "31",
        Tone::Forget | Tone::Move => "36",
        Tone::Danger => "1;31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// `Error: MESSAGE` on standard error, the prefix in red on a terminal.
pub fn error(message: impl Display) {
    eprintln!("{} {message}", stderr_style().paint(Tone::Danger, "Error:"));
}

/// `Warning: MESSAGE` on standard error, the prefix in yellow on a terminal.
pub fn warning(message: impl Display) {
    eprintln!(
        "{} {message}",
        stderr_style().paint(Tone::Warning, "Warning:")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_and_never_when_the_operator_says_no() {
        let none = None;
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        let xterm = Some(OsStr::new("xterm-256color"));
        let dumb = Some(OsStr::new("dumb"));
        // (--no-color, NO_COLOR, TERM, a terminal) -> coloured
        let cases = [
            (false, none, xterm, true, true),
            (false, none, none, true, true),
            (false, none, xterm, false, false),
            (true, none, xterm, true, false),
            (false, set, xterm, true, false),
            (false, Some(OsStr::new("0")), xterm, true, false),
            (false, empty, xterm, true, true),
            (false, none, dumb, true, false),
            (true, set, xterm, false, false),
        ];
        for (flag, no_color, term, terminal, expected) in cases {
            assert_eq!(
                chosen(allowed(flag, no_color, term), terminal),
                expected,
                "--no-color {flag}, NO_COLOR {no_color:?}, TERM {term:?}, terminal {terminal}"
            );
        }
    }

    #[test]
    fn each_tone_is_one_code_and_a_reset() {
        assert_eq!(ansi(Tone::Create, "+"), "\x1b[32m+\x1b[0m");
        assert_eq!(ansi(Tone::Replace, "-/+"), "\x1b[31m-/+\x1b[0m");
        assert_eq!(ansi(Tone::Danger, "Error:"), "\x1b[1;31mError:\x1b[0m");
    }
}
