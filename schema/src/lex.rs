//! A small HCL tokenizer and the "prescan" built on it.
//!
//! hcl-edit parses standard HCL, which is stricter than the language Lifeboat
//! documents in two places: it accepts at most one attribute in a one-line
//! block (`select { tag = "team"  value = "web" }` is an error there), and it
//! rejects a repeated attribute as a syntax error, which would hide every other
//! problem of the file. The prescan finds both on the token stream and
//! describes a rewrite of the text that hcl-edit accepts:
//!
//! - newlines inserted between attributes that share a line (and after the
//!   `{` / before the `}` of such a block), which only changes layout;
//! - repeated attributes blanked out (every byte but newlines becomes a
//!   space, so offsets and line numbers stay put), reported separately.
//!
//! Working on tokens rather than raw text is what makes this safe: strings,
//! heredocs and comments are single tokens, so nothing inside them is touched.
//! When the token stream is not what the prescan expects it stops, keeps what
//! it found so far, and leaves the error to hcl-edit, which has the better
//! messages for real syntax errors.

use std::collections::HashMap;
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Space,
    Newline,
    LineComment,
    BlockComment,
    Ident,
    Number,
    /// A quoted string, template sequences included.
    Str,
    /// From `<<` to the end of the closing marker.
    Heredoc,
    Punct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

/// Only unterminated strings, comments and heredocs fail: hcl-edit reports
/// those at the start of the file, so our position is the better one. And
/// nesting past [`MAX_NESTING`], which hcl-edit must never see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    pub offset: usize,
    pub message: String,
    /// Nested past [`MAX_NESTING`]: hcl-edit (and the prescan) descend once
    /// per level on the stack, so such a text is refused without parsing.
    pub too_deep: bool,
}

/// The deepest nesting of blocks, brackets, parentheses and template
/// sequences a file may have. Lifeboat's configurations need a handful of
/// levels; the parsers recurse once per level, and a text nested thousands
/// deep would overflow the stack instead of getting a diagnostic.
pub(crate) const MAX_NESTING: usize = 32;

fn too_deep(offset: usize) -> LexError {
    LexError {
        offset,
        message: format!(
            "nested too deeply: more than {MAX_NESTING} levels of blocks, brackets, parentheses or templates"
        ),
        too_deep: true,
    }
}

const MULTI_PUNCT: [&str; 8] = ["...", "==", "!=", "<=", ">=", "=>", "&&", "||"];

pub(crate) fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

pub(crate) fn is_ident_continue(c: char) -> bool {
    c == '_' || c == '-' || c.is_alphanumeric()
}

struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Open blocks, brackets, parentheses and template sequences here.
    depth: usize,
}

/// Splits `text` into tokens covering every byte.
pub(crate) fn lex(text: &str) -> Result<Vec<Token>, LexError> {
    let mut lx = Lexer {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let mut out = Vec::new();
    while lx.pos < lx.bytes.len() {
        out.push(lx.token()?);
    }
    Ok(out)
}

impl Lexer<'_> {
    fn peek_char(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn starts_with(&self, s: &str) -> bool {
        self.text[self.pos..].starts_with(s)
    }

    fn token(&mut self) -> Result<Token, LexError> {
        let start = self.pos;
        let kind = self.scan()?;
        Ok(Token {
            kind,
            start,
            end: self.pos,
        })
    }

    fn scan(&mut self) -> Result<Tok, LexError> {
        let start = self.pos;
        let c = self.peek_char().expect("scan called at end of input");
        if self.starts_with("\r\n") {
            self.pos += 2;
            return Ok(Tok::Newline);
        }
        match c {
            '\n' => {
                self.pos += 1;
                Ok(Tok::Newline)
            }
            ' ' | '\t' | '\r' => {
                while matches!(self.bytes.get(self.pos), Some(b' ' | b'\t'))
                    || (self.bytes.get(self.pos) == Some(&b'\r') && !self.starts_with("\r\n"))
                {
                    self.pos += 1;
                }
                Ok(Tok::Space)
            }
            '#' => {
                self.line_comment();
                Ok(Tok::LineComment)
            }
            '/' if self.starts_with("//") => {
                self.line_comment();
                Ok(Tok::LineComment)
            }
            '/' if self.starts_with("/*") => match self.text[start + 2..].find("*/") {
                Some(i) => {
                    self.pos = start + 2 + i + 2;
                    Ok(Tok::BlockComment)
                }
                None => Err(LexError {
                    offset: start,
                    message: "unterminated comment: \"/*\" has no matching \"*/\"".into(),
                    too_deep: false,
                }),
            },
            '"' => {
                self.string()?;
                Ok(Tok::Str)
            }
            '<' if self.heredoc_marker().is_some() => {
                self.heredoc()?;
                Ok(Tok::Heredoc)
            }
            c if c.is_ascii_digit() => {
                self.number();
                Ok(Tok::Number)
            }
            c if is_ident_start(c) => {
                self.pos += c.len_utf8();
                while let Some(c) = self.peek_char() {
                    if !is_ident_continue(c) {
                        break;
                    }
                    self.pos += c.len_utf8();
                }
                Ok(Tok::Ident)
            }
            _ => {
                if let Some(p) = MULTI_PUNCT.iter().find(|p| self.starts_with(p)) {
                    self.pos += p.len();
                    return Ok(Tok::Punct);
                }
                // Anything else is a one-character token: what is not HCL
                // is for hcl-edit to report, with its own message.
                self.pos += c.len_utf8();
                match c {
                    '{' | '[' | '(' => self.open(start)?,
                    '}' | ']' | ')' => self.depth = self.depth.saturating_sub(1),
                    _ => {}
                }
                Ok(Tok::Punct)
            }
        }
    }

    /// One more level of nesting, opened at `offset`.
    fn open(&mut self, offset: usize) -> Result<(), LexError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(too_deep(offset));
        }
        Ok(())
    }

    fn line_comment(&mut self) {
        let rest = &self.text[self.pos..];
        let mut end = rest.find('\n').unwrap_or(rest.len());
        if rest[..end].ends_with('\r') {
            end -= 1;
        }
        self.pos += end;
    }

    fn number(&mut self) {
        let digits = |lx: &mut Self| {
            while lx.bytes.get(lx.pos).is_some_and(u8::is_ascii_digit) {
                lx.pos += 1;
            }
        };
        digits(self);
        if self.bytes.get(self.pos) == Some(&b'.')
            && self.bytes.get(self.pos + 1).is_some_and(u8::is_ascii_digit)
        {
            self.pos += 1;
            digits(self);
        }
        if matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            let mut p = self.pos + 1;
            if matches!(self.bytes.get(p), Some(b'+' | b'-')) {
                p += 1;
            }
            if self.bytes.get(p).is_some_and(u8::is_ascii_digit) {
                self.pos = p;
                digits(self);
            }
        }
    }

    /// A quoted string, from its opening quote; template sequences may nest
    /// further strings and braces.
    fn string(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        let unterminated = || LexError {
            offset: start,
            message: "unterminated string: a quoted string must end on the line where it starts"
                .into(),
            too_deep: false,
        };
        self.pos += 1;
        loop {
            match self.bytes.get(self.pos) {
                None | Some(b'\n') => return Err(unterminated()),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    if matches!(self.bytes.get(self.pos + 1), None | Some(b'\n')) {
                        return Err(unterminated());
                    }
                    self.pos += 2;
                }
                Some(b'$' | b'%') if self.starts_with("$${") || self.starts_with("%%{") => {
                    self.pos += 3;
                }
                Some(b'$' | b'%') if self.bytes.get(self.pos + 1) == Some(&b'{') => {
                    // The sequence's closing `}` closes this level again.
                    self.open(self.pos)?;
                    self.pos += 2;
                    self.template_sequence(start)?;
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// The inside of `${ ... }` or `%{ ... }`, up to and including the closing brace.
    fn template_sequence(&mut self, string_start: usize) -> Result<(), LexError> {
        let mut depth = 0usize;
        while self.pos < self.bytes.len() {
            let t = self.token()?;
            if t.kind == Tok::Punct {
                match &self.text[t.start..t.end] {
                    "{" => depth += 1,
                    "}" if depth == 0 => return Ok(()),
                    "}" => depth -= 1,
                    _ => {}
                }
            }
        }
        Err(LexError {
            offset: string_start,
            message: "unterminated template sequence: \"${\" has no matching \"}\"".into(),
            too_deep: false,
        })
    }

    /// `<<MARKER` or `<<-MARKER` followed by a line ending: the marker's range.
    fn heredoc_marker(&self) -> Option<Range<usize>> {
        let rest = &self.text[self.pos..];
        let after = rest.strip_prefix("<<")?;
        let after = after.strip_prefix('-').unwrap_or(after);
        let mstart = rest.len() - after.len();
        let first = after.chars().next()?;
        if !is_ident_start(first) {
            return None;
        }
        let len = after
            .char_indices()
            .find(|&(_, c)| !is_ident_continue(c))
            .map_or(after.len(), |(i, _)| i);
        let tail = &after[len..];
        (tail.starts_with('\n') || tail.starts_with("\r\n"))
            .then(|| self.pos + mstart..self.pos + mstart + len)
    }

    fn heredoc(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        let marker = self.heredoc_marker().expect("checked by the caller");
        let name = &self.text[marker.clone()];
        let mut line_start = marker.end + self.text[marker.end..].find('\n').unwrap_or(0) + 1;
        while line_start < self.text.len() {
            let rest = &self.text[line_start..];
            let line_len = rest.find('\n').unwrap_or(rest.len());
            let line = &rest[..line_len];
            if line.trim() == name {
                let lead = line.len() - line.trim_start().len();
                self.pos = line_start + lead + name.len();
                // hcl-edit parses the templates inside; counting every
                // bracket of the body over-counts, which only matters for
                // bodies no configuration has.
                let mut depth = self.depth;
                for (i, b) in self.text[start..line_start].bytes().enumerate() {
                    match b {
                        b'{' | b'[' | b'(' => depth += 1,
                        b'}' | b']' | b')' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                    if depth > MAX_NESTING {
                        return Err(too_deep(start + i));
                    }
                }
                return Ok(());
            }
            line_start += line_len + 1;
        }
        Err(LexError {
            offset: start,
            message: format!("unterminated heredoc: no line closes it with {name:?}"),
            too_deep: false,
        })
    }
}

/// An attribute repeated in one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Duplicate {
    pub name: String,
    /// Offset of the repeated key, and of the first one.
    pub at: usize,
    pub first: usize,
}

/// The rewrite the prescan asks for; all offsets are into the original text.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prescan {
    /// Where to insert a `\n`, sorted.
    pub inserts: Vec<usize>,
    /// Ranges to blank out (repeated attributes).
    pub blanks: Vec<Range<usize>>,
    pub duplicates: Vec<Duplicate>,
    /// Set when the text does not even tokenize.
    pub lex_error: Option<LexError>,
}

impl Prescan {
    /// The text hcl-edit gets to see.
    pub fn apply(&self, text: &str) -> String {
        let mut bytes = text.as_bytes().to_vec();
        for r in &self.blanks {
            for b in &mut bytes[r.clone()] {
                // Keeping `\r` and `\n` keeps line numbers; every other byte,
                // multi-byte UTF-8 included, becomes a space.
                if *b != b'\n' && *b != b'\r' {
                    *b = b' ';
                }
            }
        }
        let blanked = String::from_utf8(bytes).expect("only ASCII bytes replaced whole chars");
        let mut out = String::with_capacity(blanked.len() + self.inserts.len());
        let mut last = 0;
        for &p in &self.inserts {
            out.push_str(&blanked[last..p]);
            out.push('\n');
            last = p;
        }
        out.push_str(&blanked[last..]);
        out
    }

    /// Maps an offset of [`Prescan::apply`]'s text back to the original.
    pub fn original_offset(&self, offset: usize) -> usize {
        let before = self
            .inserts
            .iter()
            .enumerate()
            .take_while(|&(k, &p)| p + k < offset)
            .count();
        offset - before
    }
}

pub(crate) fn prescan(text: &str) -> Prescan {
    let tokens = match lex(text) {
        Ok(t) => t,
        Err(e) => {
            return Prescan {
                lex_error: Some(e),
                ..Prescan::default()
            }
        }
    };
    let mut p = Parser {
        text,
        tokens: &tokens,
        pos: 0,
        out: Prescan::default(),
    };
    // On `None` the text is not what we understand: keep what was found (it
    // is all before the problem) and let hcl-edit report the problem.
    let _ = p.body(false);
    let mut out = p.out;
    out.inserts.sort_unstable();
    out.inserts.dedup();
    out
}

struct Parser<'a> {
    text: &'a str,
    tokens: &'a [Token],
    pos: usize,
    out: Prescan,
}

/// One attribute found by the prescan: its name, key offset and the end of its value.
struct Attr {
    name: String,
    key: usize,
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.pos).copied()
    }

    fn is_punct(&self, t: Option<Token>, s: &str) -> bool {
        t.is_some_and(|t| t.kind == Tok::Punct && &self.text[t.start..t.end] == s)
    }

    /// Skips what may stand between two tokens of one line.
    fn skip_inline(&mut self) {
        while self
            .peek()
            .is_some_and(|t| matches!(t.kind, Tok::Space | Tok::BlockComment))
        {
            self.pos += 1;
        }
    }

    fn skip_all_trivia(&mut self) {
        while self.peek().is_some_and(|t| {
            matches!(
                t.kind,
                Tok::Space | Tok::BlockComment | Tok::LineComment | Tok::Newline
            )
        }) {
            self.pos += 1;
        }
    }

    /// The next non-inline token after `pos`, without moving.
    fn peek_after_inline(&self, mut pos: usize) -> Option<Token> {
        while let Some(t) = self.tokens.get(pos) {
            if !matches!(t.kind, Tok::Space | Tok::BlockComment) {
                return Some(*t);
            }
            pos += 1;
        }
        None
    }

    fn record(&mut self, seen: &mut HashMap<String, usize>, attr: &Attr) {
        if let Some(&first) = seen.get(&attr.name) {
            self.out.duplicates.push(Duplicate {
                name: attr.name.clone(),
                at: attr.key,
                first,
            });
            self.out.blanks.push(attr.key..attr.end);
        } else {
            seen.insert(attr.name.clone(), attr.key);
        }
    }

    /// A body: the file's, or a multi-line block's up to (not including) its `}`.
    fn body(&mut self, nested: bool) -> Option<()> {
        let mut seen = HashMap::new();
        loop {
            self.skip_all_trivia();
            let t = match self.peek() {
                None => return (!nested).then_some(()),
                Some(t) if nested && self.is_punct(Some(t), "}") => return Some(()),
                Some(t) if t.kind == Tok::Ident => t,
                Some(_) => return None,
            };
            self.pos += 1;
            self.skip_inline();
            let next = self.peek();
            if self.is_punct(next, "=") {
                self.pos += 1;
                let mut key = t;
                loop {
                    let end = self.expr();
                    let attr = Attr {
                        name: self.text[key.start..key.end].to_string(),
                        key: key.start,
                        end,
                    };
                    self.record(&mut seen, &attr);
                    // Another attribute on the same line: split it off.
                    match self.peek() {
                        Some(n) if n.kind == Tok::Ident => {
                            self.out.inserts.push(n.start);
                            key = n;
                            self.pos += 1;
                            self.skip_inline();
                            self.pos += 1; // the `=`, checked by `expr`
                        }
                        _ => break,
                    }
                }
            } else {
                while self
                    .peek()
                    .is_some_and(|t| matches!(t.kind, Tok::Str | Tok::Ident))
                {
                    self.pos += 1;
                    self.skip_inline();
                }
                if !self.is_punct(self.peek(), "{") {
                    return None;
                }
                self.block_body()?;
            }
            self.end_of_line()?;
        }
    }

    fn end_of_line(&mut self) -> Option<()> {
        self.skip_inline();
        if self.peek().is_some_and(|t| t.kind == Tok::LineComment) {
            self.pos += 1;
        }
        match self.peek() {
            None => Some(()),
            Some(t) if t.kind == Tok::Newline => Some(()),
            Some(_) => None,
        }
    }

    /// From a block's `{` to just after its `}`.
    fn block_body(&mut self) -> Option<()> {
        let open = self.peek()?;
        self.pos += 1;
        self.skip_inline();
        if self
            .peek()
            .is_some_and(|t| matches!(t.kind, Tok::Newline | Tok::LineComment))
        {
            self.body(true)?;
            self.pos += 1; // the `}`
            return Some(());
        }
        // A one-line body: hcl-edit takes at most one attribute there, so
        // anything more (or a nested block) is put on lines of its own.
        let mut attrs = Vec::new();
        let mut starts = Vec::new();
        let mut nested_block = false;
        loop {
            self.skip_inline();
            let t = self.peek()?;
            if self.is_punct(Some(t), "}") {
                break;
            }
            if t.kind != Tok::Ident {
                return None;
            }
            starts.push(t.start);
            self.pos += 1;
            self.skip_inline();
            if self.is_punct(self.peek(), "=") {
                self.pos += 1;
                let end = self.expr();
                attrs.push(Attr {
                    name: self.text[t.start..t.end].to_string(),
                    key: t.start,
                    end,
                });
                continue;
            }
            while self
                .peek()
                .is_some_and(|t| matches!(t.kind, Tok::Str | Tok::Ident))
            {
                self.pos += 1;
                self.skip_inline();
            }
            if !self.is_punct(self.peek(), "{") {
                return None;
            }
            self.block_body()?;
            nested_block = true;
        }
        let close = self.peek()?;
        self.pos += 1;
        let mut seen = HashMap::new();
        for attr in &attrs {
            self.record(&mut seen, attr);
        }
        if starts.len() > 1 || nested_block {
            self.out.inserts.push(open.end);
            self.out.inserts.extend(&starts[1..]);
            self.out.inserts.push(close.start);
        }
        Some(())
    }

    /// An attribute's value, after its `=`. Stops before the line ending, a
    /// line comment, the `}` of a one-line block, or the key of another
    /// attribute on the same line. Returns where the value ends (where it
    /// would start when it is missing: hcl-edit reports that).
    fn expr(&mut self) -> usize {
        let mut depth = 0usize;
        let mut last_end = None;
        while let Some(t) = self.peek() {
            match t.kind {
                Tok::Newline | Tok::LineComment if depth == 0 => break,
                Tok::Space | Tok::BlockComment | Tok::Newline | Tok::LineComment => {}
                Tok::Punct => match &self.text[t.start..t.end] {
                    "{" | "[" | "(" => depth += 1,
                    "}" | "]" | ")" if depth == 0 => break,
                    "}" | "]" | ")" => depth -= 1,
                    _ => {}
                },
                // `KEY =` (a single `=`) cannot continue an expression: it
                // starts the next attribute.
                Tok::Ident
                    if depth == 0
                        && last_end.is_some()
                        && self.is_punct(self.peek_after_inline(self.pos + 1), "=") =>
                {
                    break
                }
                _ => {}
            }
            if !matches!(
                t.kind,
                Tok::Space | Tok::BlockComment | Tok::Newline | Tok::LineComment
            ) {
                last_end = Some(t.end);
            }
            self.pos += 1;
        }
        last_end.unwrap_or_else(|| {
            self.tokens
                .get(self.pos.saturating_sub(1))
                .map_or(0, |t| t.end)
        })
    }
}

/// Removes spaces at the end of lines, leaving strings, heredocs and
/// comments alone (each is one token). `None` when `text` does not tokenize.
pub(crate) fn strip_trailing_spaces(text: &str) -> Option<String> {
    let tokens = lex(text).ok()?;
    let mut out = String::with_capacity(text.len());
    for (i, t) in tokens.iter().enumerate() {
        let at_eol = tokens.get(i + 1).is_none_or(|n| n.kind == Tok::Newline);
        if t.kind == Tok::Space && at_eol {
            continue;
        }
        out.push_str(&text[t.start..t.end]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Tok, &str)> {
        lex(text)
            .unwrap()
            .into_iter()
            .map(|t| (t.kind, &text[t.start..t.end]))
            .collect()
    }

    #[test]
    fn strings_keep_templates_and_braces_inside() {
        let toks = kinds(r#"a = "x${ "}" }y\"" # c"#);
        assert_eq!(toks[4], (Tok::Str, r#""x${ "}" }y\"""#));
        assert_eq!(toks[6], (Tok::LineComment, "# c"));
    }

    #[test]
    fn heredoc_is_one_token() {
        let text = "a = <<-EOT\n  x = 1 }\n  EOT\nb = 2\n";
        let toks = kinds(text);
        assert_eq!(toks[4], (Tok::Heredoc, "<<-EOT\n  x = 1 }\n  EOT"));
        assert_eq!(toks[5].0, Tok::Newline);
    }

    #[test]
    fn unterminated_string_is_reported_where_it_starts() {
        let err = lex("a = 1\nb = \"x\nc = 2\n").unwrap_err();
        assert_eq!(err.offset, 10);
    }

    #[test]
    fn one_line_block_is_split() {
        let text = "select { tag = \"t\"  value = \"v\" }\n";
        let p = prescan(text);
        assert_eq!(
            p.apply(text),
            "select {\n tag = \"t\"  \nvalue = \"v\" \n}\n"
        );
        assert_eq!(p.original_offset(p.apply(text).find("value").unwrap()), 20);
    }

    #[test]
    fn nested_one_line_blocks_are_split() {
        let text = "a { b { c = 1 } }\n";
        let p = prescan(text);
        assert_eq!(p.apply(text), "a {\n b { c = 1 } \n}\n");
        let text = "a { b { c = 1  d = 2 } }\n";
        let p = prescan(text);
        assert_eq!(p.apply(text), "a {\n b {\n c = 1  \nd = 2 \n} \n}\n");
    }

    #[test]
    fn attributes_sharing_a_line_are_split() {
        let text = "a {\n  x = [1, 2]  y = f(z) # c\n}\n";
        let p = prescan(text);
        assert_eq!(p.apply(text), "a {\n  x = [1, 2]  \ny = f(z) # c\n}\n");
    }

    #[test]
    fn duplicates_are_blanked() {
        let text = "a {\n  x = 1\n  x = [\n 2]\n}\n";
        let p = prescan(text);
        assert_eq!(p.duplicates.len(), 1);
        assert_eq!(p.apply(text), "a {\n  x = 1\n       \n   \n}\n");
    }

    #[test]
    fn trailing_spaces_outside_strings() {
        let text = "a = 1  \nb = <<EOT\nx  \nEOT\n";
        assert_eq!(
            strip_trailing_spaces(text).unwrap(),
            "a = 1\nb = <<EOT\nx  \nEOT\n"
        );
    }
}
