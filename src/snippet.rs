//! Configuration problems as a person reads them on stderr: the
//! diagnostic's own lines (`FILE:LINE:COL: error: SUMMARY` and the detail,
//! unchanged, which tools and tests read), then the offending source line
//! with a caret under the place, as rustc shows it:
//!
//! ```text
//! main.lb.hcl:3:3: error: Unknown attribute
//!   account "main" has no attribute "colour"
//!    |
//!  3 |   colour  = "blue"
//!    |   ^^^^^^
//! ```
//!
//! A diagnostic's column counts characters; the caret is placed by the
//! width a terminal gives each one before it (a tab four columns, as the
//! line shows it, a wide character two). It underlines the word or quoted
//! string that starts there, one character otherwise.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lifeboat_engine::plan::render::{Style, Tone};
use lifeboat_schema::{Diagnostic, Diagnostics, Severity};
use unicode_width::UnicodeWidthChar;

/// How wide a tab is shown.
const TAB: usize = 4;

/// Every diagnostic with its snippet, the source read once per file; a file
/// that cannot be read again is shown without snippets.
pub fn diagnostics_text(d: &Diagnostics, style: Style) -> String {
    let mut sources: BTreeMap<PathBuf, Option<String>> = BTreeMap::new();
    let mut out = String::new();
    for diag in &d.0 {
        let text = diag.location.as_ref().and_then(|loc| {
            sources
                .entry(loc.file.clone())
                .or_insert_with(|| std::fs::read_to_string(&loc.file).ok())
                .as_deref()
        });
        out.push_str(&diagnostic_text(diag, text, style));
    }
    out
}

/// One diagnostic: its header in `style`, its detail, and the snippet of
/// `source` (the text of its file) when the place is in it.
pub fn diagnostic_text(d: &Diagnostic, source: Option<&str>, style: Style) -> String {
    let (word, tone) = match d.severity {
        Severity::Error => ("error", Tone::Danger),
        Severity::Warning => ("warning", Tone::Warning),
    };
    let word = style.paint(tone, word);
    let mut out = match &d.location {
        Some(loc) => format!("{loc}: {word}: {}\n", d.summary),
        None => format!("{word}: {}\n", d.summary),
    };
    if !d.detail.is_empty() {
        out.push_str(&format!("  {}\n", d.detail));
    }
    let shown = d
        .location
        .as_ref()
        .zip(source)
        .and_then(|(loc, text)| snippet(text, loc.line, loc.col))
        // The one secret a configuration holds stays out of CI logs: a
        // problem on an `external_id` line is shown by its place alone.
        .filter(|s| !s.source.contains("external_id"));
    if let Some(s) = shown {
        let number = s.line.to_string();
        let blank = " ".repeat(number.len());
        let carets = "^".repeat(s.width);
        let carets = style.paint(tone, &carets);
        out.push_str(&format!(" {blank} |\n"));
        if s.source.is_empty() {
            out.push_str(&format!(" {number} |\n"));
        } else {
            out.push_str(&format!(" {number} | {}\n", s.source));
        }
        out.push_str(&format!(" {blank} | {}{carets}\n", " ".repeat(s.pad)));
    }
    out
}

/// A source line as shown, and where its caret goes.
#[derive(Debug, PartialEq, Eq)]
struct Snippet {
    line: usize,
    /// The line with tabs expanded and control characters replaced, no
    /// trailing blanks.
    source: String,
    /// Columns before the caret.
    pad: usize,
    /// Columns of carets, at least one.
    width: usize,
}

/// The snippet of 1-based `line` and `col` (in characters) of `text`; none
/// when the file has no such line (it changed since it was read).
fn snippet(text: &str, line: usize, col: usize) -> Option<Snippet> {
    let raw = text.split('\n').nth(line.checked_sub(1)?)?;
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    let chars: Vec<char> = raw.chars().collect();
    let at = col.saturating_sub(1).min(chars.len());
    let end = at + span_len(&chars[at..]);
    let width = |cs: &[char]| cs.iter().map(|&c| shown_width(c)).sum::<usize>();
    Some(Snippet {
        line,
        source: chars
            .iter()
            .map(|&c| shown(c))
            .collect::<String>()
            .trim_end()
            .to_string(),
        pad: width(&chars[..at]),
        width: width(&chars[at..end]).max(1),
    })
}

/// How many characters the caret underlines from the start of `rest`: a
/// word (an identifier, a number), a quoted string up to its closing quote,
/// or else one character.
fn span_len(rest: &[char]) -> usize {
    let word = |c: &char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
    match rest.first() {
        None => 0,
        Some('"') => {
            let mut escaped = false;
            for (i, &c) in rest.iter().enumerate().skip(1) {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => return i + 1,
                    _ => {}
                }
            }
            1
        }
        Some(c) if word(c) => rest.iter().take_while(|c| word(c)).count(),
        Some(_) => 1,
    }
}

/// A character as the snippet shows it: a tab as spaces, a control
/// character (which could move the cursor) as a replacement character.
fn shown(c: char) -> String {
    match c {
        '\t' => " ".repeat(TAB),
        c if c.is_control() => '\u{FFFD}'.to_string(),
        c => c.to_string(),
    }
}

fn shown_width(c: char) -> usize {
    match c {
        '\t' => TAB,
        c if c.is_control() => 1,
        c => c.width().unwrap_or(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, line: usize, col: usize) -> (String, String) {
        let s = snippet(text, line, col).expect("a snippet");
        (
            s.source,
            format!("{}{}", " ".repeat(s.pad), "^".repeat(s.width)),
        )
    }

    #[test]
    fn the_caret_is_under_the_place_a_terminal_shows() {
        // A word after a tab and a two-byte character.
        let (src, caret) = at("a {\n\té = colour\n}\n", 2, 6);
        assert_eq!(src, "    é = colour");
        assert_eq!(caret, "        ^^^^^^");
        // A wide character counts two columns; a quoted string is
        // underlined to its closing quote, past an escaped one.
        let (src, caret) = at("x = \"日本\\\"q\" y", 1, 5);
        assert_eq!(src, "x = \"日本\\\"q\" y");
        assert_eq!(caret, "    ^^^^^^^^^");
        // A place at the end of a file without a final newline, and on the
        // empty line after a final newline.
        assert_eq!(at("abc", 1, 4), ("abc".into(), "   ^".into()));
        assert_eq!(at("abc\n", 2, 1), (String::new(), "^".into()));
        // A line ending in CRLF; a column past the end of the line.
        assert_eq!(at("ab\r\nc", 1, 9), ("ab".into(), "  ^".into()));
        // Punctuation: one caret; a control character is replaced.
        assert_eq!(
            at("a\u{1b}= {", 1, 3),
            ("a\u{FFFD}= {".into(), "  ^".into())
        );
        // A line the file no longer has.
        assert_eq!(snippet("a\n", 5, 1), None);
        assert_eq!(snippet("a\n", 0, 1), None);
    }
}
