//! A policy's `dr { .. }` block: which regions and which account receive
//! copies of its backups, how many copies each keeps, and what key an
//! encrypted copy uses.

use std::collections::BTreeMap;

use hcl_edit::structure::Block;

use super::account::account_reference_in;
use super::{start, DeclaredAccount, Decoder, Scope};
use crate::config::{
    AccountKind, CrossAccount, Dr, DrRegion, KeyDetection, DEFAULT_DR_TIMEOUT_SECS,
    MAX_DR_CONCURRENCY,
};
use crate::validate;

const DR_ATTRS: &[&str] = &[
    "every",
    "timeout",
    "regions",
    "generations",
    "concurrency",
    "encryption_key_detection",
];
const CROSS_ACCOUNT_ATTRS: &[&str] = &["to", "regions", "keep_original"];

/// The policy's one `dr` block, if it has one. `account` is the policy's
/// own account (a cross-account copy must go elsewhere).
pub(super) fn decode_dr(
    d: &mut Decoder,
    scope: &Scope<'_>,
    account: Option<&str>,
    accounts: &BTreeMap<String, DeclaredAccount>,
) -> Option<Dr> {
    let src = scope.src;
    let blocks: Vec<&Block> = scope
        .blocks
        .iter()
        .copied()
        .filter(|b| b.ident.value().as_str() == "dr")
        .collect();
    let (&first, rest) = blocks.split_first()?;
    for b in rest {
        d.error(
            src,
            start(&b.ident),
            "Duplicate block",
            format!("{} has at most one dr block", scope.what),
        );
    }
    d.no_labels(src, first);
    let s = d.scope(
        src,
        &first.body,
        format!("the dr block of {}", scope.what),
        start(&first.ident),
        DR_ATTRS,
        &["cross_account", "lock"],
    );
    let every = bounded(d, &s, "every", 1.0, 1000.0).unwrap_or(1);
    let timeout_secs = d
        .duration(&s, "timeout", false)
        .unwrap_or(DEFAULT_DR_TIMEOUT_SECS);
    let regions = regions(d, &s, false)
        .into_iter()
        .filter_map(|r| match r {
            DrRegion::Named(n) => Some(n),
            DrRegion::Original => None,
        })
        .collect::<Vec<_>>();
    let generations = bounded(d, &s, "generations", 1.0, 10_000.0);
    let concurrency = bounded(d, &s, "concurrency", 1.0, f64::from(MAX_DR_CONCURRENCY));
    let encryption_key_detection = match d.choice(
        &s,
        "encryption_key_detection",
        &["strict", "default", "default_alert"],
    ) {
        Some(1) => KeyDetection::Default,
        Some(2) => KeyDetection::DefaultAlert,
        _ => KeyDetection::Strict,
    };
    let cross_account = cross_account(d, &s, account, accounts);
    let lock = super::dr_lock::decode_lock(d, &s);
    let copies_somewhere = s
        .blocks
        .iter()
        .any(|b| b.ident.value().as_str() == "cross_account");
    if regions.is_empty() && !copies_somewhere && !s.attrs.contains_key("regions") {
        d.warning(
            src,
            start(&first.ident),
            "DR copies nothing",
            format!(
                "{} names no \"regions\" and no cross_account block, so no backup is copied",
                s.what
            ),
        );
    }
    Some(Dr {
        every,
        timeout_secs,
        regions,
        generations,
        concurrency,
        cross_account,
        encryption_key_detection,
        lock,
    })
}

fn bounded(d: &mut Decoder, s: &Scope<'_>, name: &str, min: f64, max: f64) -> Option<u32> {
    let (n, at) = d.whole_number(s, name, false)?;
    if n < min || n > max {
        d.error(
            s.src,
            at,
            "Value out of range",
            format!(
                "{name:?} in {} must be between {min} and {max}, not {n}",
                s.what
            ),
        );
        return None;
    }
    Some(n as u32)
}

/// `regions = [..]`: region names, and `"original"` where `original` allows it.
fn regions(d: &mut Decoder, s: &Scope<'_>, original: bool) -> Vec<DrRegion> {
    let Some(list) = d.string_list(s, "regions", false) else {
        return Vec::new();
    };
    d.duplicates_in_list(s, "regions", &list);
    let mut out = Vec::new();
    for (r, at) in list {
        if original && r == "original" {
            out.push(DrRegion::Original);
        } else if validate::is_region(&r) {
            if !out.contains(&DrRegion::Named(r.clone())) {
                out.push(DrRegion::Named(r));
            }
        } else {
            let also = if original {
                " or \"original\" (each backup's own region)"
            } else {
                ""
            };
            d.error(
                s.src,
                at,
                "Invalid region",
                format!(
                    "{r:?} in \"regions\" of {} is not an AWS region name such as \"us-west-2\"{also}",
                    s.what
                ),
            );
        }
    }
    out
}

fn cross_account(
    d: &mut Decoder,
    s: &Scope<'_>,
    account: Option<&str>,
    accounts: &BTreeMap<String, DeclaredAccount>,
) -> Option<CrossAccount> {
    let src = s.src;
    let blocks: Vec<&Block> = s
        .blocks
        .iter()
        .copied()
        .filter(|b| b.ident.value().as_str() == "cross_account")
        .collect();
    let (&first, rest) = blocks.split_first()?;
    for b in rest {
        d.error(
            src,
            start(&b.ident),
            "Duplicate block",
            format!("{} has at most one cross_account block", s.what),
        );
    }
    d.no_labels(src, first);
    let c = d.scope(
        src,
        &first.body,
        format!("the cross_account block of {}", s.what),
        start(&first.ident),
        CROSS_ACCOUNT_ATTRS,
        &[],
    );
    let to = account_reference_in(d, &c, accounts, "to");
    let mut regions = regions(d, &c, true);
    if regions.is_empty() {
        regions.push(DrRegion::Original);
    }
    let keep_original = d.bool(&c, "keep_original").unwrap_or(true);
    let to = to?;
    if Some(to) == account {
        let at = start(&c.attrs["to"].value);
        d.error(
            src,
            at,
            "Invalid reference",
            format!(
                "\"to\" in {} is the policy's own account; copies to other regions of it go in the dr block's \"regions\"",
                c.what
            ),
        );
        return None;
    }
    if let Some(dest) = accounts.get(to) {
        if dest.account.kind != AccountKind::Dr {
            let at = start(&c.attrs["to"].value);
            d.warning(
                src,
                at,
                "Copies to a backup account",
                format!(
                    "{} copies to account {to:?}, which is not declared type = \"dr\"; a DR account keeps copies apart from the accounts they protect",
                    c.what
                ),
            );
        }
    }
    Some(CrossAccount {
        to: to.to_string(),
        regions,
        keep_original,
    })
}
