//! The canonical formatter behind `lifeboat fmt`.
//!
//! It re-prints the hcl-edit syntax tree; comments come from the tree's
//! decor (the whitespace and comments hcl-edit keeps around each node). The
//! rules:
//!
//! - two spaces of indentation per nesting level, one space around `=`;
//! - in a run of single-line attributes of one body (not broken by a blank
//!   line, a block or a multi-line value; comment lines do not break it) the
//!   `=` signs are aligned by padding the keys, and trailing comments are
//!   aligned too;
//! - at most one blank line in a row, none at the start or end of a body,
//!   exactly one between top-level blocks (a comment right above a block
//!   stays attached to it);
//! - a block written on one line stays on one line when it holds a single
//!   attribute and no comment (`volume "vol-1" { region = "us-east-1" }`,
//!   plain HCL); one with more attributes is expanded, one attribute per
//!   line, so that the output is standard HCL that any HCL tool reads;
//!   attributes sharing a line in a multi-line block are split the same way;
//!   an empty block is written `name {}`;
//! - labels are quoted (`account main` becomes `account "main"`);
//! - lists written on one line become `[a, b]`; lists written over several
//!   lines get one element per line with a trailing comma, their comments
//!   kept in place;
//! - strings, numbers, heredocs, references and anything unsupported are
//!   copied as written (so their meaning cannot change); only spaces at the
//!   end of lines outside strings and heredocs are removed;
//! - comments are never dropped or reordered; a comment that shared a line
//!   with the start of an attribute or block moves to its own line above it.
//!
//! The output ends with exactly one newline (an empty file stays empty).

use std::path::Path;

use hcl_edit::expr::{Array, Expression};
use hcl_edit::structure::{Block, BlockLabel, Body, Structure};
use hcl_edit::{Decorate, RawString, Span};

use crate::diag::Diagnostics;
use crate::lex::{self, Tok};
use crate::source::Source;

pub(crate) fn format(path: &Path, text: &str) -> Result<String, Diagnostics> {
    let src = Source::new(path, text);
    let mut diags = Diagnostics(src.duplicate_diagnostics());
    let body = match src.parse() {
        Ok(body) => body,
        Err(d) => {
            diags.push(d);
            diags.sort();
            return Err(diags);
        }
    };
    // A repeated attribute cannot be printed without dropping one of them.
    if !diags.is_empty() {
        diags.sort();
        return Err(diags);
    }
    let f = Formatter {
        text: &src.parsed_text,
    };
    let out = f.body(&body, 0, true);
    let out = lex::strip_trailing_spaces(&out).unwrap_or(out);
    let out = out.trim_end_matches(['\n', ' ']);
    Ok(if out.is_empty() {
        String::new()
    } else {
        format!("{out}\n")
    })
}

/// One line (or, for blocks and multi-line values, one group of lines) of a body.
enum Item {
    Blank,
    /// The comments of one line, joined by a space; a `/* */` comment may
    /// span lines.
    Comment(String),
    Attr {
        key: String,
        value: String,
        comment: Option<String>,
        /// False when a comment sits in the key: padding it would look odd.
        align: bool,
    },
    Block {
        text: String,
        comment: Option<String>,
    },
}

impl Item {
    fn is_single_line_attr(&self) -> bool {
        matches!(self, Item::Attr { value, align: true, .. } if !value.contains('\n'))
    }
}

fn has_comment(raw: Option<&RawString>) -> bool {
    raw.is_some_and(|r| !r.trim().is_empty())
}

fn decor_has_comment(d: &impl Decorate) -> bool {
    has_comment(d.decor().prefix()) || has_comment(d.decor().suffix())
}

/// Comments and line ends of a decor string (which holds nothing else).
enum Trivia {
    Newline,
    Comment(String),
}

fn trivia(raw: Option<&RawString>) -> Vec<Trivia> {
    let Some(raw) = raw else { return Vec::new() };
    let raw: &str = raw;
    let Ok(tokens) = lex::lex(raw) else {
        // Cannot happen for what hcl-edit accepted as decor; if it did, a
        // comment kept as one piece beats a comment lost.
        let kept = raw.trim();
        return if kept.is_empty() {
            Vec::new()
        } else {
            vec![Trivia::Comment(kept.to_string())]
        };
    };
    tokens
        .into_iter()
        .filter_map(|t| match t.kind {
            Tok::Newline => Some(Trivia::Newline),
            Tok::LineComment | Tok::BlockComment => Some(Trivia::Comment(
                // Spaces ending the lines of a block comment mean nothing.
                raw[t.start..t.end]
                    .lines()
                    .map(str::trim_end)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )),
            _ => None,
        })
        .collect()
}

/// The comments of a decor string that lies within one line, joined.
fn inline(raw: Option<&RawString>) -> Option<String> {
    let parts: Vec<String> = trivia(raw)
        .into_iter()
        .filter_map(|t| match t {
            Trivia::Comment(c) => Some(c),
            Trivia::Newline => None,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Blank lines and comment lines of the whitespace before a structure (or
/// before a body's closing brace).
fn leading_items(raw: Option<&RawString>, items: &mut Vec<Item>) {
    let mut line: Vec<String> = Vec::new();
    for t in trivia(raw) {
        match t {
            Trivia::Newline if line.is_empty() => items.push(Item::Blank),
            Trivia::Newline => items.push(Item::Comment(std::mem::take(&mut line).join(" "))),
            Trivia::Comment(c) => line.push(c),
        }
    }
    if !line.is_empty() {
        items.push(Item::Comment(line.join(" ")));
    }
}

fn with_comment(text: String, comment: Option<String>) -> String {
    match comment {
        Some(c) => format!("{text} {c}"),
        None => text,
    }
}

struct Formatter<'a> {
    text: &'a str,
}

impl Formatter<'_> {
    fn verbatim<T: Span>(&self, node: &T) -> String {
        node.span()
            .and_then(|r| self.text.get(r))
            .unwrap_or_default()
            .to_string()
    }

    fn expr(&self, expr: &Expression, indent: usize) -> String {
        match expr {
            Expression::Array(a) => self.array(a, indent),
            _ => self.verbatim(expr),
        }
    }

    fn array(&self, a: &Array, indent: usize) -> String {
        let written = self.verbatim(a);
        if a.iter().any(contains_heredoc) {
            // A heredoc ends at a line of its own; the commas around it are
            // not ours to move.
            return written;
        }
        let comments = a.iter().any(decor_has_comment) || !a.trailing().trim().is_empty();
        if !written.contains('\n') {
            if comments {
                return written;
            }
            let elems: Vec<String> = a.iter().map(|e| self.expr(e, indent)).collect();
            return format!("[{}]", elems.join(", "));
        }
        if a.is_empty() && !comments {
            return "[]".into();
        }

        let mut w = ListWriter {
            out: String::from("["),
            inner: " ".repeat(indent + 2),
            line_ended: false,
            started: false,
            blank: false,
        };
        for e in a.iter() {
            w.trivia(e.decor().prefix());
            w.line(&format!("{},", self.expr(e, indent + 2)));
            w.trivia(e.decor().suffix());
        }
        w.trivia(Some(a.trailing()));
        let mut out = w.out;
        out.push('\n');
        out.push_str(&" ".repeat(indent));
        out.push(']');
        out
    }

    fn label(&self, label: &BlockLabel) -> String {
        match label {
            BlockLabel::String(_) => self.verbatim(label),
            BlockLabel::Ident(i) => format!("\"{}\"", i.value()),
        }
    }

    fn block(&self, b: &Block, indent: usize) -> String {
        let mut head = with_comment(
            b.ident.value().to_string(),
            inline(b.ident.decor().suffix()),
        );
        for l in &b.labels {
            if let Some(c) = inline(l.decor().prefix()) {
                head = format!("{head} {c}");
            }
            head = with_comment(
                format!("{head} {}", self.label(l)),
                inline(l.decor().suffix()),
            );
        }
        let body = &b.body;
        let comments = decor_has_comment(body)
            || body.iter().any(|s| {
                decor_has_comment(s)
                    || s.as_attribute()
                        .is_some_and(|a| decor_has_comment(&a.key) || decor_has_comment(&a.value))
            });
        if body.is_empty() && !comments {
            return format!("{head} {{}}");
        }
        if body.prefer_oneline() && !comments {
            if let [Structure::Attribute(a)] = body.iter().collect::<Vec<_>>().as_slice() {
                let value = self.expr(&a.value, indent);
                if !value.contains('\n') {
                    return format!("{head} {{ {} = {value} }}", a.key.value());
                }
            }
        }
        let head = with_comment(format!("{head} {{"), inline(body.decor().prefix()));
        format!(
            "{head}\n{}{}}}",
            self.body(body, indent + 2, false),
            " ".repeat(indent)
        )
    }

    fn body(&self, body: &Body, indent: usize, top: bool) -> String {
        let mut items: Vec<Item> = Vec::new();
        let mut prev_block = false;
        for (i, s) in body.iter().enumerate() {
            let mut lead = Vec::new();
            leading_items(s.decor().prefix(), &mut lead);
            let is_block = s.is_block();
            if top && i > 0 && (is_block || prev_block) {
                let blanks = lead
                    .iter()
                    .take_while(|it| matches!(it, Item::Blank))
                    .count();
                lead.drain(..blanks);
                lead.insert(0, Item::Blank);
            }
            prev_block = is_block;
            items.extend(lead);
            let comment = inline(s.decor().suffix());
            items.push(match s {
                Structure::Attribute(a) => {
                    let key_comment = inline(a.key.decor().suffix());
                    let align = key_comment.is_none();
                    let key = with_comment(a.key.value().to_string(), key_comment);
                    let mut value = self.expr(&a.value, indent);
                    if let Some(c) = inline(a.value.decor().prefix()) {
                        value = format!("{c} {value}");
                    }
                    if let Some(c) = inline(a.value.decor().suffix()) {
                        value = format!("{value} {c}");
                    }
                    Item::Attr {
                        key,
                        value,
                        comment,
                        align,
                    }
                }
                Structure::Block(b) => Item::Block {
                    text: self.block(b, indent),
                    comment,
                },
            });
        }
        leading_items(body.decor().suffix(), &mut items);

        // At most one blank line in a row, none first or last.
        let mut kept: Vec<Item> = Vec::new();
        for it in items {
            if matches!(it, Item::Blank) && matches!(kept.last(), None | Some(Item::Blank)) {
                continue;
            }
            kept.push(it);
        }
        if matches!(kept.last(), Some(Item::Blank)) {
            kept.pop();
        }

        let widths = alignment(&kept);
        let pad = " ".repeat(indent);
        let mut out = String::new();
        for (it, (key_w, comment_col)) in kept.into_iter().zip(widths) {
            match it {
                Item::Blank => {}
                Item::Comment(c) => {
                    out.push_str(&pad);
                    out.push_str(&c);
                }
                Item::Attr {
                    key,
                    value,
                    comment,
                    ..
                } => {
                    let mut line = format!(
                        "{key}{} = {value}",
                        " ".repeat(key_w.saturating_sub(key.chars().count()))
                    );
                    if let Some(c) = comment {
                        let w = line.chars().count();
                        line.push_str(&" ".repeat(comment_col.saturating_sub(w).max(1)));
                        line.push_str(&c);
                    }
                    out.push_str(&pad);
                    out.push_str(&line);
                }
                Item::Block { text, comment } => {
                    out.push_str(&pad);
                    out.push_str(&with_comment(text, comment));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// For each item: the key width to pad to, and the column of its trailing
/// comment (both 0 when the item is not in an aligned run).
fn alignment(items: &[Item]) -> Vec<(usize, usize)> {
    let mut widths = vec![(0, 0); items.len()];
    let mut i = 0;
    while i < items.len() {
        if !items[i].is_single_line_attr() {
            i += 1;
            continue;
        }
        let mut members = Vec::new();
        let mut j = i;
        while j < items.len() {
            match &items[j] {
                it if it.is_single_line_attr() => members.push(j),
                Item::Comment(_) => {}
                _ => break,
            }
            j += 1;
        }
        let key_w = members
            .iter()
            .filter_map(|&m| match &items[m] {
                Item::Attr { key, .. } => Some(key.chars().count()),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let comment_col = members
            .iter()
            .filter_map(|&m| match &items[m] {
                Item::Attr {
                    value,
                    comment: Some(_),
                    ..
                } => Some(key_w + 3 + value.chars().count() + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        for m in members {
            widths[m] = (key_w, comment_col);
        }
        i = j;
    }
    widths
}

/// Lays out a multi-line list: one element per line, comments where they were.
struct ListWriter {
    out: String,
    inner: String,
    /// The current line has ended (a newline was seen since its content).
    line_ended: bool,
    /// Some element or comment line has been written.
    started: bool,
    /// A blank line is due before the next line.
    blank: bool,
}

impl ListWriter {
    fn line(&mut self, text: &str) {
        if std::mem::take(&mut self.blank) {
            self.out.push('\n');
        }
        self.out.push('\n');
        self.out.push_str(&self.inner);
        self.out.push_str(text);
        self.line_ended = false;
        self.started = true;
    }

    fn trivia(&mut self, raw: Option<&RawString>) {
        for t in trivia(raw) {
            match t {
                Trivia::Newline => {
                    if self.line_ended && self.started {
                        self.blank = true;
                    }
                    self.line_ended = true;
                }
                // A comment that followed an element (or the `[`) on its
                // line stays there.
                Trivia::Comment(c) if !self.line_ended => {
                    self.out.push(' ');
                    self.out.push_str(&c);
                }
                Trivia::Comment(c) => self.line(&c),
            }
        }
    }
}

fn contains_heredoc(e: &Expression) -> bool {
    match e {
        Expression::HeredocTemplate(_) => true,
        Expression::Array(a) => a.iter().any(contains_heredoc),
        _ => false,
    }
}
