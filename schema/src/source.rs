//! One configuration file: its text, the prescanned text hcl-edit parses, and
//! the mapping from byte offsets back to the line and column the operator sees.

use std::path::{Path, PathBuf};

use hcl_edit::structure::Body;

use crate::diag::{Diagnostic, Location};
use crate::lex::{self, Prescan};

pub(crate) struct Source {
    pub path: PathBuf,
    pub text: String,
    /// What hcl-edit parses; every span of the syntax tree is into this text.
    pub parsed_text: String,
    pub prescan: Prescan,
    line_starts: Vec<usize>,
}

impl Source {
    pub fn new(path: &Path, text: &str) -> Self {
        let prescan = lex::prescan(text);
        let parsed_text = prescan.apply(text);
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            path: path.to_path_buf(),
            text: text.to_string(),
            parsed_text,
            prescan,
            line_starts,
        }
    }

    /// Line and column of an offset into the original text.
    pub fn location_of_original(&self, offset: usize) -> Location {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        Location {
            file: self.path.clone(),
            line,
            col: self.text[start..offset].chars().count() + 1,
        }
    }

    /// Line and column of an offset into [`Source::parsed_text`].
    pub fn location(&self, parsed_offset: usize) -> Location {
        self.location_of_original(self.prescan.original_offset(parsed_offset))
    }

    /// `file:line`, for details that point at another place.
    pub fn short_location(&self, parsed_offset: usize) -> String {
        let loc = self.location(parsed_offset);
        format!("{}:{}", loc.file.display(), loc.line)
    }

    /// The syntax tree, or the syntax error. Repeated attributes are not part
    /// of the tree (see [`crate::lex`]); [`Source::duplicate_diagnostics`]
    /// reports them.
    pub fn parse(&self) -> Result<Body, Diagnostic> {
        if let Some(le) = self.prescan.lex_error.as_ref().filter(|e| e.too_deep) {
            return Err(Diagnostic::error(
                "Syntax error",
                capitalize(&le.message),
                Some(self.location_of_original(le.offset)),
            ));
        }
        hcl_edit::parser::parse_body(&self.parsed_text).map_err(|e| match &self.prescan.lex_error {
            Some(le) => Diagnostic::error(
                "Syntax error",
                capitalize(&le.message),
                Some(self.location_of_original(le.offset)),
            ),
            _ => Diagnostic::error(
                "Syntax error",
                capitalize(e.message()),
                Some(self.location(e.location().offset())),
            ),
        })
    }

    pub fn duplicate_diagnostics(&self) -> Vec<Diagnostic> {
        self.prescan
            .duplicates
            .iter()
            .map(|d| {
                let first = self.location_of_original(d.first);
                Diagnostic::error(
                    "Duplicate attribute",
                    format!(
                        "{:?} is set more than once in the same block; the first is at {}:{}",
                        d.name,
                        first.file.display(),
                        first.line
                    ),
                    Some(self.location_of_original(d.at)),
                )
            })
            .collect()
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
