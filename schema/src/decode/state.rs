//! `lifeboat { state { ... } }`: where the state lives. SQLite (the default)
//! takes `path`; DynamoDB takes `table`, `region`, `account` and `workspace`.
//! A key of the other backend is an error rather than ignored, so that a
//! configuration switched between backends cannot keep a setting that no
//! longer does anything.

use std::collections::BTreeMap;

use hcl_edit::structure::Block;

use super::{account_reference, start, DeclaredAccount, Decoder, Scope};
use crate::config::{StateBackend, StateSettings};
use crate::source::Source;
use crate::validate;

const STATE_ATTRS: &[&str] = &["backend", "path", "table", "region", "account", "workspace"];
const SQLITE_ONLY: &[&str] = &["path"];
const DYNAMODB_ONLY: &[&str] = &["table", "region", "account", "workspace"];
const BACKENDS: &[&str] = &["sqlite", "dynamodb"];

pub(super) fn decode_state(
    d: &mut Decoder,
    src: &Source,
    block: &Block,
    accounts: &BTreeMap<String, DeclaredAccount>,
) -> StateSettings {
    d.no_labels(src, block);
    let scope = d.scope(
        src,
        &block.body,
        "lifeboat.state".into(),
        start(&block.ident),
        STATE_ATTRS,
        &[],
    );
    let mut out = StateSettings::default();
    // `None` after an invalid backend: which keys belong is unknown then,
    // so only the values themselves are checked.
    let backend = match d.get(&scope, "backend", false) {
        None => Some(StateBackend::Sqlite),
        Some(_) => d
            .choice(&scope, "backend", BACKENDS)
            .map(|i| [StateBackend::Sqlite, StateBackend::Dynamodb][i]),
    };
    if let Some(b) = backend {
        out.backend = b;
        let (foreign, name) = match b {
            StateBackend::Sqlite => (DYNAMODB_ONLY, "sqlite"),
            StateBackend::Dynamodb => (SQLITE_ONLY, "dynamodb"),
        };
        for attr in foreign {
            not_for_backend(d, &scope, attr, name);
        }
    }
    let dynamodb = backend == Some(StateBackend::Dynamodb);
    if backend != Some(StateBackend::Dynamodb) {
        out.path = d.text(&scope, "path", false);
    }
    if backend == Some(StateBackend::Sqlite) {
        return out;
    }
    out.table = d.string(&scope, "table", dynamodb).and_then(|(t, at)| {
        if is_table_name(&t) {
            return Some(t);
        }
        d.error(
            src,
            at,
            "Invalid table name",
            format!(
                "\"table\" in {} must be 3 to 255 letters, digits or any of \"_.-\" (what DynamoDB accepts as a table name), not {t:?}",
                scope.what
            ),
        );
        None
    });
    out.region = d.string(&scope, "region", dynamodb).and_then(|(r, at)| {
        if validate::is_region(&r) {
            return Some(r);
        }
        d.error(
            src,
            at,
            "Invalid region",
            format!(
                "{r:?} in {} is not an AWS region name; expected a name like \"us-east-1\"",
                scope.what
            ),
        );
        None
    });
    if d.get(&scope, "account", false).is_some() {
        out.account = account_reference(d, &scope, accounts).map(str::to_string);
    }
    if let Some((w, at)) = d.string(&scope, "workspace", false) {
        if is_workspace_name(&w) {
            out.workspace = w;
        } else {
            d.error(
                src,
                at,
                "Invalid workspace name",
                format!(
                    "\"workspace\" in {} must be 1 to 64 letters, digits or any of \"_.-\", not {w:?}",
                    scope.what
                ),
            );
        }
    }
    out
}

/// Reports `attr`, when set, as belonging to the other backend.
fn not_for_backend(d: &mut Decoder, scope: &Scope<'_>, attr: &str, backend: &str) {
    let Some(a) = d.get(scope, attr, false) else {
        return;
    };
    let (owner, hint) = match backend {
        "sqlite" => (
            "dynamodb",
            "; set backend = \"dynamodb\" to keep the state in DynamoDB",
        ),
        _ => (
            "sqlite",
            "; a DynamoDB state lives in \"table\", not in a file",
        ),
    };
    d.error(
        scope.src,
        start(&a.key),
        "Attribute not allowed here",
        format!(
            "{attr:?} in {} applies to the {owner} backend only, not to {backend}{hint}",
            scope.what
        ),
    );
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// A name DynamoDB takes for a table.
fn is_table_name(s: &str) -> bool {
    (3..=255).contains(&s.len()) && s.chars().all(is_name_char)
}

/// A workspace name: short, and safe inside the table's keys and in file
/// names.
fn is_workspace_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(is_name_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_workspace_names() {
        assert!(is_table_name("lifeboat-state"));
        assert!(is_table_name("a.b"));
        assert!(!is_table_name("ab"));
        assert!(!is_table_name(&"a".repeat(256)));
        assert!(is_table_name(&"a".repeat(255)));
        assert!(!is_table_name("life boat"));
        assert!(!is_table_name("état-lifeboat"));
        assert!(is_workspace_name("prod"));
        assert!(is_workspace_name(&"w".repeat(64)));
        assert!(!is_workspace_name(&"w".repeat(65)));
        assert!(!is_workspace_name(""));
        assert!(!is_workspace_name("prod/eu"));
    }
}
