//! `lifeboat { state { ... } }`: where the state lives. SQLite (the default)
//! takes `path`; DynamoDB takes `table`, `region`, `account` and `workspace`.
//! The keys of the backend not in use are allowed and checked all the same:
//! they say where `lifeboat state migrate --to` copies the state, before
//! `backend` is switched to it.

use std::collections::BTreeMap;

use hcl_edit::structure::Block;

use super::{account_reference, start, DeclaredAccount, Decoder};
use crate::config::{StateBackend, StateSettings};
use crate::source::Source;
use crate::validate;

const STATE_ATTRS: &[&str] = &["backend", "path", "table", "region", "account", "workspace"];
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
    }
    let dynamodb = backend == Some(StateBackend::Dynamodb);
    out.path = d.text(&scope, "path", false);
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
    // A table names where the state goes, which needs its region even
    // while the state is still in SQLite.
    let needs_region = dynamodb || out.table.is_some();
    out.region = d
        .string(&scope, "region", needs_region)
        .and_then(|(r, at)| {
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
