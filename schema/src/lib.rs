//! HCL configuration for Lifeboat: loading `*.lb.hcl` files, checking them,
//! and turning them into a typed [`Config`].
//!
//! Owns: the configuration language (blocks, attributes, references such as
//! `account.prod`), [`Diagnostic`]s with `file:line:col`, and the canonical
//! formatter behind `lifeboat fmt`.
//!
//! Must not import: the engine, the providers, any AWS SDK crate, tokio or
//! SQLite. The schema is pure: text in, typed values or diagnostics out.

pub mod config;
mod decode;
pub mod diag;
mod fmt;
mod lex;
mod source;
pub mod validate;

pub use config::*;
pub use diag::{Diagnostic, Diagnostics, Location, Severity};

use std::path::{Path, PathBuf};

/// The file suffix that makes a file part of a configuration.
pub const FILE_SUFFIX: &str = ".lb.hcl";

/// A loaded configuration with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Warnings only; errors make [`load_dir`] return `Err`.
    pub warnings: Diagnostics,
    /// The files read, sorted.
    pub files: Vec<PathBuf>,
}

/// Reads every `*.lb.hcl` file of `dir` (not recursive), checks it and
/// returns the typed configuration, or every diagnostic found.
///
/// Files are read in name order; diagnostics name them as `dir/NAME`
/// (just `NAME` when `dir` is `.`).
pub fn load_dir(dir: &Path) -> Result<Loaded, Diagnostics> {
    let cannot_read = |detail: String| {
        Diagnostics(vec![Diagnostic::error(
            "Cannot read configuration",
            detail,
            None,
        )])
    };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| cannot_read(format!("cannot read directory {}: {e}", dir.display())))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry
            .map_err(|e| cannot_read(format!("cannot read directory {}: {e}", dir.display())))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // Metadata (not the entry's file type) so that symlinks to files count.
        if name.ends_with(FILE_SUFFIX) && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file())
        {
            names.push(name.to_string());
        }
    }
    names.sort();
    if names.is_empty() {
        return Err(Diagnostics(vec![Diagnostic::error(
            "No configuration files",
            format!("there are no *{FILE_SUFFIX} files in {}", dir.display()),
            None,
        )]));
    }
    let mut sources = Vec::new();
    let mut problems = Diagnostics::default();
    for name in names {
        let shown = if dir == Path::new(".") || dir.as_os_str().is_empty() {
            PathBuf::from(&name)
        } else {
            dir.join(&name)
        };
        match std::fs::read_to_string(dir.join(&name)) {
            Ok(text) => sources.push((shown, text)),
            Err(e) => problems.push(Diagnostic::error(
                "Cannot read configuration",
                format!("cannot read {}: {e}", shown.display()),
                None,
            )),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    load_sources(&sources)
}

/// Parses and checks configuration sources held in memory: `(file name, text)` pairs.
///
/// The files form one configuration, taken in path order (which decides what
/// counts as the "first" of two duplicate declarations).
pub fn load_sources(sources: &[(PathBuf, String)]) -> Result<Loaded, Diagnostics> {
    if sources.is_empty() {
        return Err(Diagnostics(vec![Diagnostic::error(
            "No configuration files",
            "no configuration files were given",
            None,
        )]));
    }
    let mut sorted: Vec<&(PathBuf, String)> = sources.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let sources: Vec<source::Source> = sorted
        .iter()
        .map(|(path, text)| source::Source::new(path, text))
        .collect();

    let mut diags = Diagnostics::default();
    let mut bodies = Vec::new();
    for src in &sources {
        diags.0.extend(src.duplicate_diagnostics());
        match src.parse() {
            Ok(body) => bodies.push((src, body)),
            Err(d) => diags.push(d),
        }
    }
    let complete = bodies.len() == sources.len();
    let trees: Vec<_> = bodies.iter().map(|(s, b)| (*s, b)).collect();
    let (config, found) = decode::decode(&trees, complete);
    diags.0.extend(found);
    diags.sort();
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(Loaded {
        config,
        warnings: diags,
        files: sorted.into_iter().map(|(p, _)| p.clone()).collect(),
    })
}

/// Returns the canonical form of one file's text, or its syntax errors.
///
/// See the `fmt` module for the rules. Only syntax is checked: a file that
/// formats may still have diagnostics from [`load_sources`].
pub fn format_source(file: &Path, text: &str) -> Result<String, Diagnostics> {
    fmt::format(file, text)
}
