//! `lifeboat validate`: the configuration loads and the schedule lints run
//! at the workspace's time. Every problem is reported at once, as text on
//! stderr (the default), as data (`--json`, for tools), or as GitHub
//! Actions workflow commands (`--format github`), which a pull request
//! shows as annotations on the offending lines.

use std::path::Path;

use anyhow::Result;
use chrono::{DateTime, Utc};
use lifeboat_schema::{Diagnostic, Diagnostics, Severity};
use serde_json::json;

use crate::output::print_diagnostics;

/// How `validate` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// `FILE:LINE:COL: error: SUMMARY` and the detail, on stderr.
    #[default]
    Text,
    /// One JSON document on stdout: `valid` and every diagnostic.
    Json,
    /// `::error file=…,line=…,col=…::` lines on stdout.
    Github,
}

pub fn run(dir: &Path, now: Option<DateTime<Utc>>, format: Format) -> Result<u8> {
    let (valid, diags) = match lifeboat_schema::load_dir(dir) {
        Ok(loaded) => {
            let mut diags = loaded.warnings;
            let at = now.unwrap_or_else(Utc::now);
            diags.extend(Diagnostics(lifeboat_engine::runmode::schedule::lint(
                &loaded.config,
                at,
            )));
            (true, diags)
        }
        Err(diags) => (false, diags),
    };
    match format {
        Format::Text => {
            print_diagnostics(&diags);
            if valid {
                println!("Configuration is valid.");
            } else {
                let n = diags.errors().count();
                eprintln!("{n} error(s) in the configuration.");
            }
        }
        Format::Json => {
            let list: Vec<_> = diags.0.iter().map(as_json).collect();
            let doc =
                json!({ "valid": valid, "errors": diags.errors().count(), "diagnostics": list });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Github => {
            for d in &diags.0 {
                println!("{}", workflow_command(d));
            }
            if valid {
                println!("Configuration is valid.");
            }
        }
    }
    Ok(if valid { 0 } else { 1 })
}

fn severity(d: &Diagnostic) -> &'static str {
    match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn as_json(d: &Diagnostic) -> serde_json::Value {
    json!({
        "file": d.location.as_ref().map(|l| l.file.display().to_string()),
        "line": d.location.as_ref().map(|l| l.line),
        "column": d.location.as_ref().map(|l| l.col),
        "severity": severity(d),
        "summary": d.summary,
        "detail": d.detail,
    })
}

/// `::error file=F,line=L,col=C,title=SUMMARY::DETAIL`, escaped as GitHub
/// reads workflow commands: a property value may not hold `:` or `,`, and
/// neither part a line break or a bare `%`.
fn workflow_command(d: &Diagnostic) -> String {
    let data = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    let property = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
    let mut props = Vec::new();
    if let Some(l) = &d.location {
        props.push(format!("file={}", property(&l.file.display().to_string())));
        props.push(format!("line={}", l.line));
        props.push(format!("col={}", l.col));
    }
    props.push(format!("title={}", property(&d.summary)));
    let message = if d.detail.is_empty() {
        &d.summary
    } else {
        &d.detail
    };
    format!("::{} {}::{}", severity(d), props.join(","), data(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_escape_what_github_would_misread() {
        let d = Diagnostic {
            severity: Severity::Error,
            summary: "Unknown attribute: a, b".into(),
            detail: "100% wrong\nsecond line".into(),
            location: Some(lifeboat_schema::Location {
                file: "dir,x/main.lb.hcl".into(),
                line: 3,
                col: 5,
            }),
        };
        assert_eq!(
            workflow_command(&d),
            "::error file=dir%2Cx/main.lb.hcl,line=3,col=5,title=Unknown attribute%3A a%2C b::100%25 wrong%0Asecond line"
        );
    }
}
