//! How the terminal view marks what each piece of it is, so that a create,
//! an update and a delete can be told apart at a glance. The renderer only
//! names a piece's [`Tone`]; whether and how a tone is shown (ANSI colour on
//! a terminal, nothing in a file or a pipe) is the caller's [`Style`]. With
//! [`Style::plain`] the view is the plain text its snapshots pin, byte for
//! byte, and the Markdown and JSON views take no style at all.

use std::borrow::Cow;

use crate::plan::Action;

/// What a piece of the terminal view is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// `+`: made new.
    Create,
    /// `~`: changed in place.
    Update,
    /// `-`: removed.
    Delete,
    /// `-/+`: removed and made again.
    Replace,
    /// `<=`: a catalog record forgotten; AWS is not touched.
    Forget,
    /// `>`: moved to another address.
    Move,
    /// A `Warning:` prefix.
    Warning,
    /// What a reader must not miss: an `Error:` prefix, a banner of lost
    /// backups.
    Danger,
}

impl Tone {
    /// The tone of a change's symbol.
    pub fn of(action: Action) -> Tone {
        match action {
            Action::Create => Tone::Create,
            Action::Update => Tone::Update,
            Action::Delete => Tone::Delete,
            Action::Replace => Tone::Replace,
            Action::Read => Tone::Forget,
            Action::Move => Tone::Move,
        }
    }
}

/// Marks `text` of a tone; returns it marked (for example wrapped in
/// escape codes).
pub type Painter = fn(Tone, &str) -> String;

/// Whether and how the terminal view shows tones.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    paint: Option<Painter>,
}

impl Style {
    /// Tones are not shown: the text as written to a file or a pipe.
    pub fn plain() -> Style {
        Style { paint: None }
    }

    /// Tones shown by `paint`.
    pub fn painted(paint: Painter) -> Style {
        Style { paint: Some(paint) }
    }

    /// `text` as this style shows a piece of `tone`.
    pub fn paint<'a>(&self, tone: Tone, text: &'a str) -> Cow<'a, str> {
        match self.paint {
            Some(p) => Cow::Owned(p(tone, text)),
            None => Cow::Borrowed(text),
        }
    }

    /// A diff line (`+ x`, `- x`) with its sign in the tone of what it does;
    /// other lines (hunk headers, context, counts) as they are.
    pub fn diff_line<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let tone = match line.as_bytes().first() {
            Some(b'+') => Tone::Create,
            Some(b'-') => Tone::Delete,
            _ => return Cow::Borrowed(line),
        };
        match self.paint {
            Some(_) => Cow::Owned(format!("{}{}", self.paint(tone, &line[..1]), &line[1..])),
            None => Cow::Borrowed(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brackets(tone: Tone, text: &str) -> String {
        format!("[{tone:?}:{text}]")
    }

    #[test]
    fn a_plain_style_leaves_text_as_it_is_and_a_painted_one_marks_each_tone() {
        let plain = Style::plain();
        assert_eq!(plain.paint(Tone::Delete, "-"), "-");
        assert_eq!(plain.diff_line("+ x"), "+ x");
        let painted = Style::painted(brackets);
        assert_eq!(
            painted.paint(Tone::of(Action::Replace), "-/+"),
            "[Replace:-/+]"
        );
        assert_eq!(painted.diff_line("+ x"), "[Create:+] x");
        assert_eq!(painted.diff_line("- y"), "[Delete:-] y");
        assert_eq!(painted.diff_line("@@ -1,2 +1,2 @@"), "@@ -1,2 +1,2 @@");
        assert_eq!(painted.diff_line(""), "");
    }
}
