//! `vpc_clone "NAME" { capture = vpc_capture.X  vpc = "vpc-…"  to_region = "…" … }`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hcl_edit::structure::{Block, Body};

use super::{start, DeclaredAccount, Decoder, Scope, Value};
use crate::config::{VpcCapture, VpcClone};
use crate::source::Source;
use crate::validate;

const VPC_CLONE_ATTRS: &[&str] = &[
    "capture",
    "vpc",
    "to_region",
    "to_account",
    "at",
    "name",
    "template_bucket",
    "timeout",
];

/// How long apply waits for a clone's stack unless `timeout` says otherwise.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30 * 60;

/// `vpc-` followed by 8 or 17 lowercase hex digits.
pub(crate) fn is_vpc_id(s: &str) -> bool {
    s.strip_prefix("vpc-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17)
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// An S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens,
/// starting and ending with a letter or digit.
pub(crate) fn is_bucket_name(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// The labels of every block given (`vpc_capture`, `vpc_clone`), valid or
/// not, so that a reference to a block with errors of its own is not
/// reported again.
pub(super) fn declared_labels(blocks: &[(usize, &Block)]) -> BTreeSet<String> {
    blocks
        .iter()
        .filter_map(|(_, b)| b.labels.first().map(|l| l.as_str().to_string()))
        .collect()
}

pub(super) fn decode_vpc_clones(
    d: &mut Decoder,
    files: &[(&Source, &Body)],
    blocks: &[(usize, &Block)],
    accounts: &BTreeMap<String, DeclaredAccount>,
    captures: &BTreeMap<String, VpcCapture>,
    declared_captures: &BTreeSet<String>,
) -> BTreeMap<String, VpcClone> {
    let mut out = BTreeMap::new();
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    for &(i, b) in blocks {
        let src = files[i].0;
        let (name, clone) = decode_one(d, src, b, accounts, captures, declared_captures);
        let Some((name, at)) = name else { continue };
        if let Some(&(fi, first)) = seen.get(&name) {
            d.error(
                src,
                at,
                "Duplicate vpc_clone",
                format!(
                    "vpc_clone {name:?} is already declared at {}",
                    files[fi].0.short_location(first)
                ),
            );
            continue;
        }
        seen.insert(name.clone(), (i, start(&b.ident)));
        if let Some(c) = clone {
            out.insert(name, c);
        }
    }
    out
}

/// `attr = KIND.NAME`; `Ok(None)` when absent, `Err(())` after reporting.
pub(super) fn reference(
    d: &mut Decoder,
    scope: &Scope<'_>,
    attr_name: &str,
    kind: &str,
    required: bool,
) -> Result<Option<(String, usize)>, ()> {
    let Some(attr) = d.get(scope, attr_name, required) else {
        return if required { Err(()) } else { Ok(None) };
    };
    let at = start(&attr.value);
    match d.value(scope, &attr.value).ok_or(())? {
        Value::Ref(path) if path.len() == 2 && path[0] == kind => Ok(Some((path[1].clone(), at))),
        Value::Str(s) => {
            let example = if validate::is_valid_name(&s) {
                s.clone()
            } else {
                "NAME".into()
            };
            d.error(
                scope.src,
                at,
                "Invalid reference",
                format!(
                    "{attr_name:?} in {} must be a reference to a {kind} block, not a string: write {kind}.{example} without quotes",
                    scope.what
                ),
            );
            Err(())
        }
        v => {
            let got = match &v {
                Value::Ref(p) => p.join("."),
                other => other.describe(),
            };
            d.error(
                scope.src,
                at,
                "Invalid reference",
                format!(
                    "{attr_name:?} in {} must refer to a {kind} block, as in {kind}.NAME; {got} is not a {kind} reference",
                    scope.what
                ),
            );
            Err(())
        }
    }
}

/// Reports a reference to a block that is not declared (unless some file
/// did not parse: it may be declared there).
pub(super) fn undeclared<'a>(
    d: &mut Decoder,
    scope: &Scope<'_>,
    at: usize,
    kind: &str,
    name: &str,
    known: impl Iterator<Item = &'a str> + Clone,
) {
    if !d.complete {
        return;
    }
    let names: Vec<&str> = known.clone().collect();
    let hint = if names.is_empty() {
        String::new()
    } else {
        match validate::suggest(name, known) {
            Some(s) => format!("; did you mean {kind}.{s}?"),
            None => format!("; declared: {}", names.join(", ")),
        }
    };
    d.error(
        scope.src,
        at,
        &format!("Reference to undeclared {kind}"),
        format!(
            "{} refers to {kind}.{name}, but no {kind} {name:?} is declared{hint}",
            scope.what
        ),
    );
}

fn decode_one(
    d: &mut Decoder,
    src: &Source,
    block: &Block,
    accounts: &BTreeMap<String, DeclaredAccount>,
    captures: &BTreeMap<String, VpcCapture>,
    declared_captures: &BTreeSet<String>,
) -> (Option<(String, usize)>, Option<VpcClone>) {
    let name = d.name_label(src, block, "prod-west");
    let what = match &name {
        Some((n, _)) => format!("vpc_clone {n:?}"),
        None => "this vpc_clone".into(),
    };
    let scope = d.scope(
        src,
        &block.body,
        what,
        start(&block.ident),
        VPC_CLONE_ATTRS,
        &[],
    );
    let mut ok = true;

    // capture = vpc_capture.X
    let mut capture: Option<&VpcCapture> = None;
    match reference(d, &scope, "capture", "vpc_capture", true) {
        Ok(Some((c, at))) => match captures.get(&c) {
            Some(found) => capture = Some(found),
            None => {
                ok = false;
                if !declared_captures.contains(&c) {
                    undeclared(
                        d,
                        &scope,
                        at,
                        "vpc_capture",
                        &c,
                        declared_captures.iter().map(String::as_str),
                    );
                }
            }
        },
        _ => ok = false,
    }

    let vpc = source_vpc(d, &scope);

    let to_region = destination_region(d, &scope);

    // to_account = account.X (default: the capture's account)
    let to_account = match reference(d, &scope, "to_account", "account", false) {
        Ok(Some((a, at))) => {
            if accounts.contains_key(&a) {
                Some(a)
            } else {
                undeclared(
                    d,
                    &scope,
                    at,
                    "account",
                    &a,
                    accounts.keys().map(String::as_str),
                );
                ok = false;
                None
            }
        }
        Ok(None) => capture.map(|c| c.account.clone()),
        Err(()) => {
            ok = false;
            None
        }
    };

    let at = pinned_time(d, &scope);
    ok &= at.is_ok();
    let at = at.unwrap_or(None);

    let clone_name = d.text(&scope, "name", false);
    ok &= clone_name.is_some() || d.get(&scope, "name", false).is_none();

    let template_bucket = template_bucket(d, &scope);
    ok &= template_bucket.is_ok();
    let template_bucket = template_bucket.unwrap_or(None);

    // Seconds to hours and beyond, like every other timeout; not zero.
    let timeout_seconds = d.duration(&scope, "timeout", false);
    ok &= timeout_seconds.is_some() || !scope.attrs.contains_key("timeout");
    let timeout_seconds = timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);

    let clone = match (&name, capture, vpc, to_region, to_account) {
        (Some((n, _)), Some(c), Some(vpc), Some(to_region), Some(to_account)) if ok => {
            Some(VpcClone {
                name: n.clone(),
                capture: c.name.clone(),
                vpc,
                to_region,
                to_account,
                at,
                clone_name,
                template_bucket,
                timeout_seconds,
                location: src.location(start(&block.ident)),
            })
        }
        _ => None,
    };
    let name = name.map(|(n, _)| (n, start(block.labels.first().expect("named"))));
    (name, clone)
}

/// `vpc = "vpc-…"`: the captured VPC to clone.
fn source_vpc(d: &mut Decoder, scope: &Scope<'_>) -> Option<String> {
    match d.string(scope, "vpc", true) {
        Some((v, _)) if is_vpc_id(&v) => Some(v),
        Some((v, at)) => {
            d.error(
                scope.src,
                at,
                "Invalid VPC id",
                format!(
                    "{v:?} in {} is not a VPC id; expected \"vpc-\" followed by 8 or 17 lowercase hex digits, as in \"vpc-0123456789abcdef0\"",
                    scope.what
                ),
            );
            None
        }
        None => None,
    }
}

/// `to_region`: any valid region name; it need not be one of the account's
/// backup regions (those say where Lifeboat looks for targets).
fn destination_region(d: &mut Decoder, scope: &Scope<'_>) -> Option<String> {
    match d.string(scope, "to_region", true) {
        Some((r, _)) if validate::is_region(&r) => Some(r),
        Some((r, at)) => {
            d.error(
                scope.src,
                at,
                "Invalid region",
                format!(
                    "{r:?} in {} is not an AWS region name; expected a name like \"us-west-2\"",
                    scope.what
                ),
            );
            None
        }
        None => None,
    }
}

/// `at = "latest" | RFC 3339`: `Ok(None)` for the latest version, `Err` after reporting.
fn pinned_time(
    d: &mut Decoder,
    scope: &Scope<'_>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ()> {
    match d.string(scope, "at", false) {
        None => Ok(None),
        Some((s, _)) if s == "latest" => Ok(None),
        Some((s, pos)) => match chrono::DateTime::parse_from_rfc3339(&s) {
            Ok(t) => Ok(Some(t.with_timezone(&chrono::Utc))),
            Err(_) => {
                d.error(
                    scope.src,
                    pos,
                    "Invalid time",
                    format!(
                        "\"at\" in {} must be \"latest\" or an RFC 3339 time such as \"2026-11-22T10:00:00Z\", not {s:?}",
                        scope.what
                    ),
                );
                Err(())
            }
        },
    }
}

/// `template_bucket`: `Err` after reporting a name S3 would refuse.
fn template_bucket(d: &mut Decoder, scope: &Scope<'_>) -> Result<Option<String>, ()> {
    match d.string(scope, "template_bucket", false) {
        Some((b, _)) if is_bucket_name(&b) => Ok(Some(b)),
        Some((b, pos)) => {
            d.error(
                scope.src,
                pos,
                "Invalid bucket name",
                format!(
                    "{b:?} in {} is not an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit",
                    scope.what
                ),
            );
            Err(())
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_clone(timeout: &str) -> Result<u64, String> {
        let text = format!(
            "account \"main\" {{\n  regions = [\"us-east-1\"]\n}}\n\
             vpc_capture \"prod\" {{\n  account = account.main\n}}\n\
             vpc_clone \"west\" {{\n  capture = vpc_capture.prod\n  vpc = \"vpc-0123abcd\"\n  to_region = \"us-west-2\"\n{timeout}}}\n"
        );
        crate::load_sources(&[("main.lb.hcl".into(), text)])
            .map(|l| l.config.vpc_clones["west"].timeout_seconds)
            .map_err(|d| d.to_string())
    }

    #[test]
    fn the_timeout_is_a_duration_longer_than_zero() {
        assert_eq!(load_clone(""), Ok(DEFAULT_TIMEOUT_SECONDS));
        // Seconds and weeks, like every other duration (minutes to days only before).
        assert_eq!(load_clone("  timeout = \"90s\"\n"), Ok(90));
        assert_eq!(load_clone("  timeout = \"1w\"\n"), Ok(604_800));
        assert_eq!(load_clone("  timeout = \"2h\"\n"), Ok(7200));
        let err = load_clone("  timeout = \"0m\"\n").unwrap_err();
        assert!(
            err.contains("\"timeout\" in vpc_clone \"west\" must be longer than zero"),
            "{err}"
        );
        let err = load_clone("  timeout = \"1.5h\"\n").unwrap_err();
        assert!(
            err.contains("\"timeout\" in vpc_clone \"west\" must be a whole number followed by s, m, h, d or w"),
            "{err}"
        );
    }

    #[test]
    fn vpc_ids_and_buckets() {
        assert!(is_vpc_id("vpc-0123abcd"));
        assert!(is_vpc_id("vpc-0123456789abcdef0"));
        for bad in [
            "vpc-",
            "vpc-0123",
            "vpc-0123ABCD",
            "subnet-0123abcd",
            "vpc-0123abcdx",
        ] {
            assert!(!is_vpc_id(bad), "{bad}");
        }
        assert!(is_bucket_name("lifeboat-templates-west"));
        for bad in ["ab", "Upper", "-start", "end-", "under_score"] {
            assert!(!is_bucket_name(bad), "{bad}");
        }
    }
}
