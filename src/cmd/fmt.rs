//! `lifeboat fmt [--check] [FILES]`: configuration files in canonical form.
//! It needs no valid configuration: a file that does not parse is reported
//! and the others are still formatted.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::files::write_atomically;
use crate::output::print_diagnostics;

pub fn run(dir: &Path, check: bool, files: &[PathBuf]) -> Result<u8> {
    let files: Vec<PathBuf> = if files.is_empty() {
        config_files(dir)?
    } else {
        files.to_vec()
    };
    let mut unformatted = 0;
    let mut errors = 0;
    for f in &files {
        let text = match lifeboat_schema::read_source(f, f) {
            Ok(text) => text,
            Err(d) => {
                print_diagnostics(&lifeboat_schema::Diagnostics(vec![d]));
                errors += 1;
                continue;
            }
        };
        match lifeboat_schema::format_source(f, &text) {
            Err(d) => {
                print_diagnostics(&d);
                errors += 1;
            }
            Ok(out) if out != text => {
                unformatted += 1;
                if !check {
                    write_atomically(f, out.as_bytes())?;
                }
                println!("{}", f.display());
            }
            Ok(_) => {}
        }
    }
    if errors > 0 {
        return Ok(1);
    }
    if check && unformatted > 0 {
        eprintln!("{unformatted} file(s) need formatting; run `lifeboat fmt`.");
        return Ok(1);
    }
    Ok(0)
}

/// Every configuration file of `dir`, in name order.
fn config_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        // Named as diagnostics name them: `main.lb.hcl`, not `./main.lb.hcl`.
        .filter_map(|e| {
            e.ok().map(|e| {
                if dir == Path::new(".") {
                    PathBuf::from(e.file_name())
                } else {
                    e.path()
                }
            })
        })
        .filter(|p| p.to_string_lossy().ends_with(lifeboat_schema::FILE_SUFFIX) && p.is_file())
        .collect();
    v.sort();
    Ok(v)
}
