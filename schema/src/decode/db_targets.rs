//! The database targets of a policy (`rds "DB-ID" { region }` and
//! `aurora "CLUSTER-ID" { region }`) and the instance's `ami_rotation`.

use std::collections::HashMap;

use hcl_edit::structure::Block;

use super::{start, target_region, DeclaredAccount, Decoder, Scope};
use crate::config::{DbTarget, DEFAULT_AMI_ROTATION_DAYS};
use crate::source::Source;

/// The longest `ami_rotation`, in days (ten years).
const MAX_AMI_ROTATION_DAYS: f64 = 3650.0;

/// An RDS DB instance or cluster identifier: 1 to 63 letters, digits and
/// hyphens, starting with a letter, no two hyphens in a row, no trailing one.
pub(crate) fn is_db_identifier(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// One `rds` or `aurora` block of a policy; `None` after a diagnostic.
pub(super) fn decode_db_target(
    d: &mut Decoder,
    src: &Source,
    b: &Block,
    policy_what: &str,
    account: Option<&DeclaredAccount>,
    targets_at: &mut HashMap<String, usize>,
) -> Option<DbTarget> {
    let kind = b.ident.value().as_str();
    let (meaning, example) = if kind == "rds" {
        ("DB instance identifier", "orders-db")
    } else {
        ("DB cluster identifier", "orders-cluster")
    };
    let id = d.one_label(src, b, meaning, example).and_then(|label| {
        let id = label.as_str();
        if !is_db_identifier(id) {
            d.error(
                src,
                start(label),
                "Invalid database identifier",
                format!("{id:?} is not an RDS {meaning}; expected 1 to 63 letters, digits and single hyphens, starting with a letter"),
            );
            return None;
        }
        // One id, one target address (`policy.NAME.target["ID"]`), whatever
        // its kind: an `rds` and an `aurora` of the same name are refused.
        if let Some(&first) = targets_at.get(id) {
            d.error(
                src,
                start(label),
                "Duplicate target",
                format!(
                    "{id:?} already appears in {policy_what} at {}; each target id may appear once",
                    src.short_location(first)
                ),
            );
            return None;
        }
        targets_at.insert(id.to_string(), start(label));
        Some(id.to_string())
    });
    let what = match &id {
        Some(id) => format!("{kind} {id:?} of {policy_what}"),
        None => format!("this {kind} of {policy_what}"),
    };
    let t = d.scope(src, &b.body, what, start(&b.ident), &["region"], &[]);
    let region = target_region(d, &t, account);
    Some(DbTarget {
        id: id?,
        region: region?,
    })
}

/// `ami_rotation = DAYS` of an instance block (a whole number, 1 to 3650).
pub(super) fn ami_rotation(d: &mut Decoder, t: &Scope<'_>) -> u32 {
    match d.whole_number(t, "ami_rotation", false) {
        Some((n, at)) if !(1.0..=MAX_AMI_ROTATION_DAYS).contains(&n) => {
            d.error(
                t.src,
                at,
                "Value out of range",
                format!(
                    "\"ami_rotation\" in {} is a number of days from 1 to {MAX_AMI_ROTATION_DAYS}, not {n}",
                    t.what
                ),
            );
            DEFAULT_AMI_ROTATION_DAYS
        }
        Some((n, _)) => n as u32,
        None => DEFAULT_AMI_ROTATION_DAYS,
    }
}
