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
pub mod duration;
mod fmt;
mod lex;
mod source;
pub mod validate;

pub use config::*;
pub use diag::{Diagnostic, Diagnostics, Location, Severity};
pub use duration::{format_duration, parse_duration, DurationError};

use std::path::{Path, PathBuf};

/// The file suffix that makes a file part of a configuration.
pub const FILE_SUFFIX: &str = ".lb.hcl";

/// The most bytes a configuration holds: each file, and all of its files
/// together. Real configurations are kilobytes; the parser keeps a tree
/// many times the text's size, so a file past this (a generated file run
/// wild, a log dropped in by mistake, a hostile pull request) is refused
/// before it is read whole instead of exhausting memory.
pub const MAX_CONFIG_BYTES: u64 = 10 << 20;

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
    let mut total = 0u64;
    for name in names {
        let shown = shown_path(dir, &name);
        match read_source(&dir.join(&name), &shown) {
            Ok(text) => {
                total += text.len() as u64;
                sources.push((shown, text));
            }
            Err(d) => problems.push(d),
        }
        // Files past the limit are not read at all.
        if total > MAX_CONFIG_BYTES {
            break;
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    load_sources(&sources)
}

/// Reads one configuration file, named `shown` in diagnostics, reading
/// no more than one byte past [`MAX_CONFIG_BYTES`]: a file larger than its
/// metadata says (a device, a file still growing) is bounded by the read.
pub fn read_source(path: &Path, shown: &Path) -> Result<String, Diagnostic> {
    use std::io::Read;
    let cannot_read = |e: std::io::Error| {
        Diagnostic::error(
            "Cannot read configuration",
            format!("cannot read {}: {e}", shown.display()),
            None,
        )
    };
    let file = std::fs::File::open(path).map_err(cannot_read)?;
    let reported = file.metadata().map_or(0, |m| m.len());
    if reported > MAX_CONFIG_BYTES {
        return Err(too_large(shown, reported));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_large(shown, bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|_| {
        cannot_read(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })
}

fn too_large(shown: &Path, bytes: u64) -> Diagnostic {
    Diagnostic::error(
        "Configuration file too large",
        format!(
            "{} holds {}, more than the {} MiB a configuration file may hold; is it a configuration file?",
            shown.display(),
            mebibytes(bytes),
            MAX_CONFIG_BYTES >> 20
        ),
        None,
    )
}

/// `10.5 MiB`, or `more than 10 MiB` for a size only known to be past the limit.
fn mebibytes(bytes: u64) -> String {
    if bytes == MAX_CONFIG_BYTES + 1 {
        return format!("more than {} MiB", MAX_CONFIG_BYTES >> 20);
    }
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

/// How diagnostics name a file of `dir`: `dir/NAME`, or `NAME` for `.`.
fn shown_path(dir: &Path, name: &str) -> PathBuf {
    if dir == Path::new(".") || dir.as_os_str().is_empty() {
        PathBuf::from(name)
    } else {
        dir.join(name)
    }
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
    check_sizes(&sorted)?;
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

/// Each file, and the files together, within [`MAX_CONFIG_BYTES`]; the
/// sum is named at the file that crosses it.
fn check_sizes(sources: &[&(PathBuf, String)]) -> Result<(), Diagnostics> {
    let mut total = 0u64;
    for (path, text) in sources {
        let len = text.len() as u64;
        if len > MAX_CONFIG_BYTES {
            return Err(Diagnostics(vec![too_large(path, len)]));
        }
        total += len;
        if total > MAX_CONFIG_BYTES {
            return Err(Diagnostics(vec![Diagnostic::error(
                "Configuration too large",
                format!(
                    "the configuration's files hold {} together up to {}, more than the {} MiB a configuration may hold",
                    mebibytes(total),
                    path.display(),
                    MAX_CONFIG_BYTES >> 20
                ),
                None,
            )]));
        }
    }
    Ok(())
}

/// Returns the canonical form of one file's text, or its syntax errors.
///
/// See the `fmt` module for the rules. Only syntax is checked: a file that
/// formats may still have diagnostics from [`load_sources`].
pub fn format_source(file: &Path, text: &str) -> Result<String, Diagnostics> {
    fmt::format(file, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "account \"main\" {\n  regions = [\"us-east-1\"]\n}\n";
    const POLICY: &str =
        "policy \"web\" {\n  account     = account.main\n  generations = 2\n  select { tag = \"a\" }\n}\n";

    #[test]
    fn load_dir_reads_lb_hcl_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.lb.hcl"), POLICY).unwrap();
        std::fs::write(dir.path().join("a.lb.hcl"), ACCOUNT).unwrap();
        std::fs::write(dir.path().join("notes.hcl"), "not = [valid").unwrap();
        std::fs::create_dir(dir.path().join("sub.lb.hcl")).unwrap();
        std::fs::create_dir(dir.path().join("nested")).unwrap();
        std::fs::write(dir.path().join("nested/x.lb.hcl"), "broken {").unwrap();
        let loaded = load_dir(dir.path()).unwrap();
        assert_eq!(
            loaded.files,
            vec![dir.path().join("a.lb.hcl"), dir.path().join("b.lb.hcl")]
        );
        assert_eq!(loaded.config.policies["web"].account, "main");
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn load_dir_names_files_under_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.lb.hcl"), "account \"x\" {}\n").unwrap();
        let err = load_dir(dir.path()).unwrap_err();
        let loc = err.0[0].location.clone().unwrap();
        assert_eq!(loc.file, dir.path().join("main.lb.hcl"));
        assert_eq!((loc.line, loc.col), (1, 1));
    }

    #[test]
    fn load_dir_without_files_is_one_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_dir(dir.path()).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].summary, "No configuration files");
        assert!(err.0[0].detail.contains(&dir.path().display().to_string()));
        let err = load_dir(&dir.path().join("missing")).unwrap_err();
        assert_eq!(err.0[0].summary, "Cannot read configuration");
    }

    #[test]
    fn paths_are_shown_as_given() {
        assert_eq!(
            shown_path(Path::new("."), "main.lb.hcl"),
            PathBuf::from("main.lb.hcl")
        );
        assert_eq!(
            shown_path(Path::new(""), "main.lb.hcl"),
            PathBuf::from("main.lb.hcl")
        );
        assert_eq!(
            shown_path(Path::new("conf"), "main.lb.hcl"),
            PathBuf::from("conf/main.lb.hcl")
        );
    }

    #[test]
    fn load_sources_takes_files_in_path_order_and_sorts_diagnostics() {
        let bad = "account \"main\" {\n  regions = [\"nowhere\"]\n}\n";
        let err = load_sources(&[
            (PathBuf::from("z.lb.hcl"), bad.to_string()),
            (PathBuf::from("a.lb.hcl"), bad.to_string()),
        ])
        .unwrap_err();
        let shown: Vec<String> = err
            .0
            .iter()
            .map(|d| d.location.clone().unwrap().to_string())
            .collect();
        assert_eq!(shown, ["a.lb.hcl:2:14", "z.lb.hcl:1:9", "z.lb.hcl:2:14"]);
        assert_eq!(err.0[1].summary, "Duplicate account");
        assert!(load_sources(&[]).is_err());
    }

    #[test]
    fn warnings_alone_do_not_fail() {
        let loaded = load_sources(&[(
            PathBuf::from("m.lb.hcl"),
            format!(
                "{ACCOUNT}policy \"p\" {{\n  account     = account.main\n  generations = 1\n}}\n"
            ),
        )])
        .unwrap();
        assert_eq!(loaded.warnings.0.len(), 1);
        assert_eq!(loaded.warnings.0[0].severity, Severity::Warning);
        assert!(loaded.config.policies.contains_key("p"));
    }

    #[test]
    fn format_is_idempotent_on_the_design_sketch_style() {
        let text = "account \"prod\" {\n  type = \"backup\"\n  regions = [\"us-east-1\", \"us-west-2\"]\n  assume_role { role_arn = \"arn:aws:iam::111122223333:role/lifeboat\"  external_id = \"lifeboat-x\" }\n}\naccount \"vault\" { type = \"dr\"  allow_delete = false  regions = [\"eu-west-1\"] }\n";
        let once = format_source(Path::new("x.lb.hcl"), text).unwrap();
        assert_eq!(format_source(Path::new("x.lb.hcl"), &once).unwrap(), once);
        let a = load_sources(&[(PathBuf::from("x.lb.hcl"), text.to_string())]).unwrap();
        let b = load_sources(&[(PathBuf::from("x.lb.hcl"), once)]).unwrap();
        // Locations differ (the blocks moved); what is serialised must not.
        assert_eq!(
            serde_json::to_value(&a.config).unwrap(),
            serde_json::to_value(&b.config).unwrap()
        );
    }

    #[test]
    fn a_configuration_past_ten_mebibytes_is_refused_naming_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.lb.hcl"), ACCOUNT).unwrap();
        // Comments: text the parser would otherwise take in whole.
        let big = "# x\n".repeat((MAX_CONFIG_BYTES as usize) / 4 + 1);
        std::fs::write(dir.path().join("big.lb.hcl"), &big).unwrap();
        let err = load_dir(dir.path()).unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        assert_eq!(err.0[0].summary, "Configuration file too large");
        let named = dir.path().join("big.lb.hcl").display().to_string();
        assert!(err.0[0].detail.starts_with(&named), "{err}");
        assert!(
            err.0[0].detail.contains("10.0 MiB, more than the 10 MiB"),
            "{err}"
        );

        // Two files within the limit each, past it together.
        let half = "# x\n".repeat((MAX_CONFIG_BYTES as usize) / 8 + 1);
        let err = load_sources(&[
            (PathBuf::from("a.lb.hcl"), format!("{ACCOUNT}{half}")),
            (PathBuf::from("b.lb.hcl"), half.clone()),
        ])
        .unwrap_err();
        assert_eq!(err.0[0].summary, "Configuration too large", "{err}");
        assert!(err.0[0].detail.contains("up to b.lb.hcl"), "{err}");

        // Exactly at the limit is still a configuration.
        let at = "#".repeat(MAX_CONFIG_BYTES as usize - ACCOUNT.len() - 1) + "\n";
        let loaded = load_sources(&[(PathBuf::from("a.lb.hcl"), format!("{ACCOUNT}{at}"))]);
        assert!(loaded.is_ok(), "{:?}", loaded.err());
    }

    #[test]
    fn a_file_is_read_no_further_than_the_limit() {
        // /dev/zero reports no size and never ends.
        let err = read_source(Path::new("/dev/zero"), Path::new("zero.lb.hcl")).unwrap_err();
        assert_eq!(err.summary, "Configuration file too large");
        assert!(err.detail.contains("more than 10 MiB"), "{err}");
    }

    /// Each way of nesting, `depth` levels deep, as the value of `x`.
    fn nested(depth: usize) -> Vec<String> {
        let arrays = format!("x = {}{}\n", "[".repeat(depth), "]".repeat(depth));
        let objects = format!("x = {}{}\n", "{a = ".repeat(depth), "}".repeat(depth));
        let parens = format!("x = {}1{}\n", "(".repeat(depth), ")".repeat(depth));
        let templates = format!("x = {}{}\n", "\"${".repeat(depth), "}\"".repeat(depth));
        let blocks = format!("{}{}", "b {\n".repeat(depth), "}\n".repeat(depth));
        let heredoc = format!("x = <<EOT\n{}\nEOT\n", "${[".repeat(depth));
        vec![arrays, objects, parens, templates, blocks, heredoc]
    }

    #[test]
    fn deep_nesting_is_a_diagnostic_not_a_stack_overflow() {
        for text in nested(100_000) {
            let what = &text[..12];
            let err = load_sources(&[(PathBuf::from("deep.lb.hcl"), text.clone())]).unwrap_err();
            let d = &err.0[0];
            assert_eq!(d.summary, "Syntax error", "{what}: {err}");
            assert!(
                d.detail
                    .starts_with("Nested too deeply: more than 32 levels"),
                "{what}: {err}"
            );
            let loc = d.location.clone().unwrap();
            assert_eq!(loc.file, PathBuf::from("deep.lb.hcl"));
            let err = format_source(Path::new("deep.lb.hcl"), &text).unwrap_err();
            assert!(
                err.0[0].detail.starts_with("Nested too deeply"),
                "{what}: {err}"
            );
        }
        // The most nesting allowed still goes through the parser, on a test
        // thread's small stack.
        for text in nested(lex::MAX_NESTING / 2) {
            let r = load_sources(&[(PathBuf::from("deep.lb.hcl"), text.clone())]);
            if let Err(e) = r {
                assert!(!e.to_string().contains("Nested too deeply"), "{text}: {e}");
            }
        }
    }

    #[test]
    fn the_deepest_nesting_allowed_parses_on_a_small_stack() {
        // Heredoc bodies count every bracket: `${[` is two levels there.
        let mut texts = nested(lex::MAX_NESTING);
        texts.pop();
        texts.extend(nested(lex::MAX_NESTING / 2));
        for text in texts {
            let shown = text[..12].to_string();
            let r = std::thread::Builder::new()
                .stack_size(1 << 20)
                .spawn(move || {
                    let loaded = load_sources(&[(PathBuf::from("d.lb.hcl"), text.clone())]);
                    let formatted = format_source(Path::new("d.lb.hcl"), &text);
                    (loaded.err(), formatted.err())
                })
                .unwrap()
                .join()
                .unwrap();
            for e in [r.0, r.1].into_iter().flatten() {
                assert!(!e.to_string().contains("Nested too deeply"), "{shown}: {e}");
            }
        }
    }
}
