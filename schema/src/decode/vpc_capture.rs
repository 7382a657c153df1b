//! `vpc_capture "NAME" { account = account.X  regions = [..]  every = "4h" }`.

use std::collections::{BTreeMap, HashMap};

use hcl_edit::structure::Block;
use hcl_edit::structure::Body;

use super::{account_reference, start, DeclaredAccount, Decoder};
use crate::config::{Every, EveryUnit, VpcCapture};
use crate::source::Source;
use crate::validate;

const VPC_CAPTURE_ATTRS: &[&str] = &["account", "regions", "every"];

pub(super) fn decode_vpc_captures(
    d: &mut Decoder,
    files: &[(&Source, &Body)],
    blocks: &[(usize, &Block)],
    accounts: &BTreeMap<String, DeclaredAccount>,
) -> BTreeMap<String, VpcCapture> {
    let mut out = BTreeMap::new();
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    for &(i, b) in blocks {
        let src = files[i].0;
        let (name, capture) = decode_one(d, src, b, accounts);
        let Some((name, at)) = name else { continue };
        if let Some(&(fi, first)) = seen.get(&name) {
            d.error(
                src,
                at,
                "Duplicate vpc_capture",
                format!(
                    "vpc_capture {name:?} is already declared at {}",
                    files[fi].0.short_location(first)
                ),
            );
            continue;
        }
        seen.insert(name.clone(), (i, start(&b.ident)));
        if let Some(c) = capture {
            out.insert(name, c);
        }
    }
    out
}

fn decode_one(
    d: &mut Decoder,
    src: &Source,
    block: &Block,
    accounts: &BTreeMap<String, DeclaredAccount>,
) -> (Option<(String, usize)>, Option<VpcCapture>) {
    let name = d.name_label(src, block, "prod");
    let what = match &name {
        Some((n, _)) => format!("vpc_capture {n:?}"),
        None => "this vpc_capture".into(),
    };
    let scope = d.scope(
        src,
        &block.body,
        what,
        start(&block.ident),
        VPC_CAPTURE_ATTRS,
        &[],
    );
    let account = account_reference(d, &scope, accounts);
    let declared = account.and_then(|a| accounts.get(a));

    let mut regions_ok = true;
    let mut regions = Vec::new();
    if let Some(list) = d.string_list(&scope, "regions", false) {
        if list.is_empty() {
            d.error(
                src,
                start(&scope.attrs["regions"].value),
                "Empty value",
                format!(
                    "\"regions\" in {} must list at least one region, or be left out to capture all of the account's regions",
                    scope.what
                ),
            );
            regions_ok = false;
        }
        for (r, at) in &list {
            if !validate::is_region(r) {
                d.error(
                    src,
                    *at,
                    "Invalid region",
                    format!(
                        "{r:?} in {} is not an AWS region name; expected a name like \"us-east-1\"",
                        scope.what
                    ),
                );
                regions_ok = false;
            } else if let Some(a) = declared.filter(|a| a.regions_ok) {
                if !a.account.regions.contains(r) {
                    d.error(
                        src,
                        *at,
                        "Region not in account",
                        format!(
                            "{} captures {r:?}, which is not a region of account {:?} ({})",
                            scope.what,
                            a.account.name,
                            a.account.regions.join(", ")
                        ),
                    );
                    regions_ok = false;
                }
            }
        }
        regions_ok &= d.duplicates_in_list(&scope, "regions", &list);
        regions = list.into_iter().map(|(r, _)| r).collect();
    } else if scope.attrs.contains_key("regions") {
        regions_ok = false; // wrong type, already reported
    }

    let mut every_ok = true;
    let every = match d.string(&scope, "every", false) {
        Some((s, at)) => {
            let every = capture_interval(&s).map_err(|detail| {
                d.error(
                    src,
                    at,
                    "Invalid interval",
                    format!("\"every\" in {} {detail}", scope.what),
                );
            });
            every_ok = every.is_ok();
            every.ok()
        }
        None => None,
    };

    let capture = match (&name, account) {
        (Some((n, _)), Some(account)) if regions_ok && every_ok => Some(VpcCapture {
            name: n.clone(),
            account: account.to_string(),
            regions,
            every,
            location: src.location(start(&block.ident)),
        }),
        _ => None,
    };
    let name = name.map(|(n, _)| (n, start(block.labels.first().expect("named"))));
    (name, capture)
}

/// `every` of a capture: a schedule interval of minutes, hours, days or
/// weeks. Not months: a capture comes due by the time elapsed since the
/// last one, and a month has no fixed length. `Err` completes the sentence
/// "`every` in vpc_capture X ...".
fn capture_interval(s: &str) -> Result<Every, String> {
    match s.parse::<Every>() {
        Ok(e) if e.unit == EveryUnit::Months => Err(format!(
            "cannot be in months: a capture comes due by the time elapsed since the last one; write days or weeks, as in \"30d\", not {s:?}"
        )),
        Ok(e) => Ok(e),
        Err(_) => Err(format!(
            "must be a whole number from 1 to 100000 followed by m (minutes), h (hours), d (days) or w (weeks), as in \"4h\", not {s:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        let every = |count, unit| Ok(Every { count, unit });
        assert_eq!(capture_interval("4h"), every(4, EveryUnit::Hours));
        assert_eq!(capture_interval("30m"), every(30, EveryUnit::Minutes));
        assert_eq!(capture_interval("1d"), every(1, EveryUnit::Days));
        assert_eq!(capture_interval("2w"), every(2, EveryUnit::Weeks));
        assert!(capture_interval("1mo")
            .unwrap_err()
            .starts_with("cannot be in months"));
        for bad in ["", "h", "0h", "4", "1.5h", "-1h", "4H", "100001m", "90s"] {
            let e = capture_interval(bad).unwrap_err();
            assert!(e.starts_with("must be a whole number"), "{bad:?}: {e}");
        }
    }
}
