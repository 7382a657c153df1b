//! `account "NAME" { type  regions  profile  allow_delete  account_id  assume_role { .. }
//! manage_role { .. }  secured { .. } }` and the `account = account.NAME`
//! references other blocks make to one.

use std::collections::BTreeMap;

use hcl_edit::structure::{Block, Body};

use super::{only_block, start, Decoder, Scope, Value};
use crate::config::{
    Account, AccountKind, AssumeRole, ManageRole, ResourceKind, Secured, TagScan,
    SEALED_EXTERNAL_ID,
};
use crate::source::Source;
use crate::validate;

const ACCOUNT_ATTRS: &[&str] = &["type", "regions", "profile", "allow_delete", "account_id"];
const ACCOUNT_BLOCKS: &[&str] = &["assume_role", "manage_role", "secured", "tag_scan"];

/// An account as declared, with what policies need to check against it.
pub(super) struct DeclaredAccount {
    pub(super) account: Account,
    src_index: usize,
    at: usize,
    /// False when `regions` has problems of its own: region checks of
    /// targets are skipped then rather than piling up errors.
    pub(super) regions_ok: bool,
}

/// The `account` blocks by name; a name declared twice keeps the first.
pub(super) fn decode_accounts(
    d: &mut Decoder,
    files: &[(&Source, &Body)],
    blocks: &[(usize, &Block)],
) -> BTreeMap<String, DeclaredAccount> {
    let mut declared: BTreeMap<String, DeclaredAccount> = BTreeMap::new();
    // `manage_role` names another account: decoded once all are declared.
    let mut roles: Vec<(usize, String, &Block)> = Vec::new();
    for &(i, b) in blocks {
        let src = files[i].0;
        let Some((account, regions_ok, role)) = decode_account(d, src, b) else {
            continue;
        };
        if let Some(first) = declared.get(&account.name) {
            d.error(
                src,
                start(b.labels.first().expect("named")),
                "Duplicate account",
                format!(
                    "account {:?} is already declared at {}",
                    account.name,
                    files[first.src_index].0.short_location(first.at)
                ),
            );
            continue;
        }
        if let Some(role) = role {
            roles.push((i, account.name.clone(), role));
        }
        declared.insert(
            account.name.clone(),
            DeclaredAccount {
                account,
                src_index: i,
                at: start(&b.ident),
                regions_ok,
            },
        );
    }
    for (i, name, block) in roles {
        let role = manage_role(d, files[i].0, &name, block, &declared);
        if let Some(a) = declared.get_mut(&name) {
            a.account.manage_role = role;
        }
    }
    declared
}

/// `None` when the account has no usable name; otherwise the account (with
/// defaults where values were wrong), whether its regions are usable, and
/// its `manage_role` block, decoded once every account is declared.
fn decode_account<'a>(
    d: &mut Decoder,
    src: &'a Source,
    block: &'a Block,
) -> Option<(Account, bool, Option<&'a Block>)> {
    let name = d.name_label(src, block, "main");
    let what = match &name {
        Some((n, _)) => format!("account {n:?}"),
        None => "this account".into(),
    };
    let scope = d.scope(
        src,
        &block.body,
        what,
        start(&block.ident),
        ACCOUNT_ATTRS,
        ACCOUNT_BLOCKS,
    );
    let kind = match d.choice(&scope, "type", &["backup", "dr"]) {
        Some(1) => AccountKind::Dr,
        _ => AccountKind::Backup,
    };
    let (regions, regions_ok) = account_regions(d, &scope);
    let profile = d.text(&scope, "profile", false);
    let allow_delete = d
        .bool(&scope, "allow_delete")
        .unwrap_or(kind == AccountKind::Backup);
    let assume_role = decode_assume_role(d, &scope);
    let account_id = account_id(d, &scope);
    let role = only_block(d, &scope, "manage_role");
    if let Some(b) = role {
        dr_only(d, &scope, b, kind);
    }
    let secured = only_block(d, &scope, "secured").and_then(|b| {
        dr_only(d, &scope, b, kind);
        secured(d, &scope, b)
    });
    if let (Some(r), Some(s)) = (role, &secured) {
        if allow_delete && kind == AccountKind::Dr {
            role_against_secured(d, &scope, r, s);
        }
    }

    let tag_scan = only_block(d, &scope, "tag_scan").and_then(|b| {
        if kind == AccountKind::Dr {
            d.error(
                src,
                start(&b.ident),
                "Block not allowed",
                format!(
                    "{} is a DR account: it runs no policies, so there are no tags to scan for",
                    scope.what
                ),
            );
        }
        tag_scan(d, &scope, b, &regions)
    });

    let (name, _) = name?;
    Some((
        Account {
            name,
            kind,
            regions,
            profile,
            assume_role,
            allow_delete,
            account_id,
            manage_role: None,
            secured,
            tag_scan,
            location: src.location(start(&block.ident)),
        },
        regions_ok,
        role,
    ))
}

/// `manage_role` and `secured` belong to DR accounts: the role is what the
/// copies are made with, the check guards the copies kept there.
fn dr_only(d: &mut Decoder, scope: &Scope<'_>, b: &Block, kind: AccountKind) {
    if kind == AccountKind::Dr {
        return;
    }
    let block = b.ident.value().as_str();
    d.error(
        scope.src,
        start(&b.ident),
        "Block only in DR accounts",
        format!(
            "{} has a {block} block, but only accounts declared type = \"dr\" may have one",
            scope.what
        ),
    );
}

/// The deletes the managed role is given with `allow_delete = true`.
const ROLE_DELETES: &[&str] = &[
    "ec2:DeleteSnapshot",
    "ec2:DeregisterImage",
    "rds:DeleteDBSnapshot",
    "rds:DeleteDBClusterSnapshot",
];

/// With `allow_delete = true` the managed role may delete copies: a
/// `secured` block prohibiting those actions would report Lifeboat's own
/// role at every check. Said once, where the role is declared.
fn role_against_secured(d: &mut Decoder, scope: &Scope<'_>, role: &Block, s: &Secured) {
    let clash: Vec<&str> = ROLE_DELETES
        .iter()
        .copied()
        .filter(|a| s.prohibited.iter().any(|p| validate::action_matches(p, a)))
        .collect();
    if clash.is_empty() {
        return;
    }
    d.warning(
        scope.src,
        start(&role.ident),
        "Managed role allowed prohibited actions",
        format!(
            "{} has allow_delete = true, so its managed role is allowed {}, which its secured block prohibits: every check will report the role; set allow_delete = false or prohibit other actions",
            scope.what,
            clash.join(", ")
        ),
    );
}

/// `manage_role { name  trusted }` of account `account`, resolved against
/// every declared account.
fn manage_role(
    d: &mut Decoder,
    src: &Source,
    account: &str,
    b: &Block,
    declared: &BTreeMap<String, DeclaredAccount>,
) -> Option<ManageRole> {
    d.no_labels(src, b);
    let s = d.scope(
        src,
        &b.body,
        format!("manage_role of account {account:?}"),
        start(&b.ident),
        &["name", "trusted"],
        &[],
    );
    let name = d.string(&s, "name", true).and_then(|(n, at)| {
        if validate::is_role_name(&n) {
            return Some(n);
        }
        d.error(
            src,
            at,
            "Invalid role name",
            format!("{n:?} is not an IAM role name: 1 to 64 letters, digits or any of \"+=,.@_-\""),
        );
        None
    });
    let trusted = account_reference_in(d, &s, declared, "trusted")?;
    if trusted == account {
        let at = start(&s.attrs["trusted"].value);
        d.error(
            src,
            at,
            "Role trusts its own account",
            format!(
                "\"trusted\" in {} names the account the role is made in; name the account whose backups are copied here, as in account.main",
                s.what
            ),
        );
        return None;
    }
    Some(ManageRole {
        name: name?,
        trusted: trusted.to_string(),
    })
}

/// `secured { prohibited  check_every }`.
fn secured(d: &mut Decoder, scope: &Scope<'_>, b: &Block) -> Option<Secured> {
    let src = scope.src;
    d.no_labels(src, b);
    let s = d.scope(
        src,
        &b.body,
        format!("secured of {}", scope.what),
        start(&b.ident),
        &["prohibited", "check_every"],
        &[],
    );
    let check_every_secs = d.duration(&s, "check_every", false).filter(|secs| {
        if *secs >= 60 {
            return true;
        }
        let at = start(&s.attrs["check_every"].value);
        d.error(
            src,
            at,
            "Value out of range",
            format!("\"check_every\" in {} must be at least a minute", s.what),
        );
        false
    });
    let list = d.string_list(&s, "prohibited", true)?;
    if list.is_empty() {
        d.error(
            src,
            start(&s.attrs["prohibited"].value),
            "Empty value",
            format!(
                "\"prohibited\" in {} must list at least one action, as in [\"ec2:DeleteSnapshot\"]",
                s.what
            ),
        );
        return None;
    }
    let mut ok = d.duplicates_in_list(&s, "prohibited", &list);
    for (p, at) in &list {
        if !validate::is_action_pattern(p) {
            d.error(
                src,
                *at,
                "Invalid action",
                format!(
                    "{p:?} in \"prohibited\" of {} is not an IAM action; write service:Action, as in \"ec2:DeleteSnapshot\" (\"*\" and \"?\" match any characters)",
                    s.what
                ),
            );
            ok = false;
        }
    }
    ok.then(|| Secured {
        prohibited: list.into_iter().map(|(p, _)| p).collect(),
        check_every_secs,
    })
}

/// `tag_scan { regions  kinds  every }`: regions among the account's, kinds
/// among [`ResourceKind`], `every` at least a minute.
fn tag_scan(
    d: &mut Decoder,
    scope: &Scope<'_>,
    b: &Block,
    account_regions: &[String],
) -> Option<TagScan> {
    let src = scope.src;
    d.no_labels(src, b);
    let s = d.scope(
        src,
        &b.body,
        format!("tag_scan of {}", scope.what),
        start(&b.ident),
        &["regions", "kinds", "every"],
        &[],
    );
    let mut ok = true;
    let every_secs = d.duration(&s, "every", false);
    if let (Some(secs), Some(a)) = (every_secs, s.attrs.get("every")) {
        if secs < 60 {
            d.error(
                src,
                start(&a.value),
                "Value out of range",
                format!("\"every\" in {} must be at least a minute", s.what),
            );
            ok = false;
        }
    }
    let regions = d.string_list(&s, "regions", false).unwrap_or_default();
    ok &= d.duplicates_in_list(&s, "regions", &regions);
    for (r, at) in &regions {
        if !account_regions.is_empty() && !account_regions.contains(r) {
            d.error(
                src,
                *at,
                "Unknown region",
                format!(
                    "{r:?} in \"regions\" of {} is not one of the account's regions ({})",
                    s.what,
                    account_regions.join(", ")
                ),
            );
            ok = false;
        }
    }
    if let (true, Some(a)) = (regions.is_empty(), s.attrs.get("regions")) {
        d.error(
            src,
            start(&a.value),
            "Empty value",
            format!(
                "\"regions\" in {} lists no region; leave it out to scan every region of the account",
                s.what
            ),
        );
        ok = false;
    }
    let kinds = match d.string_list(&s, "kinds", false) {
        None => TagScan::DEFAULT_KINDS.to_vec(),
        Some(list) => {
            ok &= d.duplicates_in_list(&s, "kinds", &list);
            if let (true, Some(a)) = (list.is_empty(), s.attrs.get("kinds")) {
                d.error(
                    src,
                    start(&a.value),
                    "Empty value",
                    format!("\"kinds\" in {} lists no kind of resource", s.what),
                );
                ok = false;
            }
            let mut kinds = Vec::new();
            for (k, at) in &list {
                match ResourceKind::parse(k) {
                    Some(kind) if !kinds.contains(&kind) => kinds.push(kind),
                    Some(_) => {}
                    None => {
                        let known: Vec<&str> =
                            ResourceKind::ALL.iter().map(|k| k.as_str()).collect();
                        d.error(
                            src,
                            *at,
                            "Unknown kind",
                            format!(
                                "{k:?} in \"kinds\" of {} is not a kind of resource; use {}",
                                s.what,
                                known.join(", ")
                            ),
                        );
                        ok = false;
                    }
                }
            }
            kinds
        }
    };
    ok.then(|| TagScan {
        regions: regions.into_iter().map(|(r, _)| r).collect(),
        kinds,
        every_secs,
    })
}

/// The account's `regions` and whether they are usable: listed, not empty,
/// each a region name, none twice.
fn account_regions(d: &mut Decoder, scope: &Scope<'_>) -> (Vec<String>, bool) {
    let Some(list) = d.string_list(scope, "regions", true) else {
        return (Vec::new(), false);
    };
    let src = scope.src;
    let mut regions_ok = true;
    if list.is_empty() {
        let at = start(&scope.attrs["regions"].value);
        d.error(
            src,
            at,
            "Empty value",
            format!(
                "\"regions\" in {} must list at least one region",
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
        }
    }
    regions_ok &= d.duplicates_in_list(scope, "regions", &list);
    (list.into_iter().map(|(r, _)| r).collect(), regions_ok)
}

/// The account's `account_id` pin, when it is twelve digits (a string:
/// written as a number, leading zeros would be lost).
fn account_id(d: &mut Decoder, scope: &Scope<'_>) -> Option<String> {
    let (id, at) = d.string(scope, "account_id", false)?;
    if validate::is_account_id(&id) {
        return Some(id);
    }
    d.error(
        scope.src,
        at,
        "Invalid account id",
        format!(
            "\"account_id\" in {} must be an AWS account id of exactly 12 digits, as in \"123456789012\", not {id:?}",
            scope.what
        ),
    );
    None
}

/// The account's one `assume_role` block, when it has a valid role ARN.
fn decode_assume_role(d: &mut Decoder, scope: &Scope<'_>) -> Option<AssumeRole> {
    let src = scope.src;
    let mut assume_role: Option<AssumeRole> = None;
    let mut first_role: Option<&Block> = None;
    let blocks = scope
        .blocks
        .iter()
        .filter(|b| b.ident.value().as_str() == "assume_role");
    for b in blocks {
        if let Some(first) = first_role {
            d.error(
                src,
                start(&b.ident),
                "Duplicate block",
                format!(
                    "{} has at most one assume_role block; the first is at {}",
                    scope.what,
                    src.short_location(start(&first.ident))
                ),
            );
            continue;
        }
        first_role = Some(b);
        assume_role = assume_role_block(d, scope, b);
    }
    assume_role
}

/// `assume_role { role_arn  external_id  session_name }` of the account `scope`.
fn assume_role_block(d: &mut Decoder, scope: &Scope<'_>, b: &Block) -> Option<AssumeRole> {
    let src = scope.src;
    d.no_labels(src, b);
    let role = d.scope(
        src,
        &b.body,
        format!("assume_role of {}", scope.what),
        start(&b.ident),
        &["role_arn", "external_id", "session_name"],
        &[],
    );
    let role_arn = d.string(&role, "role_arn", true).and_then(|(arn, at)| {
        if validate::is_role_arn(&arn) {
            Some(arn)
        } else {
            d.error(
                src,
                at,
                "Invalid role ARN",
                format!(
                    "{arn:?} is not an IAM role ARN; expected arn:aws:iam::<12-digit account id>:role/<name>"
                ),
            );
            None
        }
    });
    // The id is never repeated in a message: diagnostics reach CI logs.
    let external_id = d.string(&role, "external_id", false).and_then(|(id, at)| {
        let problem = if id.starts_with(SEALED_EXTERNAL_ID) {
            Some("is a digest Lifeboat keeps in its state in place of an id; give the id itself")
        } else if !(2..=1224).contains(&id.chars().count()) {
            Some("must be 2 to 1224 characters long, as AWS takes it")
        } else if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c))
        {
            Some("may hold only letters, digits and any of \"_+=,.@:/-\", as AWS takes it")
        } else {
            None
        };
        match problem {
            Some(why) => {
                d.error(
                    src,
                    at,
                    "Invalid external id",
                    format!("\"external_id\" in {} {why}", role.what),
                );
                None
            }
            None => Some(id),
        }
    });
    let session_name = d.string(&role, "session_name", false).and_then(|(s, at)| {
        if validate::is_session_name(&s) {
            Some(s)
        } else {
            d.error(
                src,
                at,
                "Invalid value",
                format!(
                    "\"session_name\" in {} must be 2 to 64 letters, digits or any of \"+=,.@_-\", not {s:?}",
                    role.what
                ),
            );
            None
        }
    });
    role_arn.map(|role_arn| AssumeRole {
        role_arn,
        external_id,
        session_name,
    })
}

/// `account = account.NAME`, resolved against the declared accounts.
pub(super) fn account_reference<'a>(
    d: &mut Decoder,
    scope: &Scope<'_>,
    accounts: &'a BTreeMap<String, DeclaredAccount>,
) -> Option<&'a str> {
    account_reference_in(d, scope, accounts, "account")
}

/// `ATTR = account.NAME` (a required attribute), resolved against the
/// declared accounts.
pub(super) fn account_reference_in<'a>(
    d: &mut Decoder,
    scope: &Scope<'_>,
    accounts: &'a BTreeMap<String, DeclaredAccount>,
    attr_name: &str,
) -> Option<&'a str> {
    let attr = d.get(scope, attr_name, true)?;
    let at = start(&attr.value);
    let names: Vec<&str> = accounts.keys().map(String::as_str).collect();
    match d.value(scope, &attr.value)? {
        Value::Ref(path) if path.len() == 2 && path[0] == "account" => {
            match accounts.get_key_value(&path[1]) {
                Some((name, _)) => Some(name.as_str()),
                None if !d.complete => None,
                None => {
                    let known = if names.is_empty() {
                        String::new()
                    } else {
                        match validate::suggest(&path[1], names.iter().copied()) {
                            Some(s) => format!("; did you mean account.{s}?"),
                            None => format!("; declared accounts: {}", names.join(", ")),
                        }
                    };
                    d.error(
                        scope.src,
                        at,
                        "Reference to undeclared account",
                        format!(
                            "{} refers to account.{}, but no account {:?} is declared{known}",
                            scope.what, path[1], path[1]
                        ),
                    );
                    None
                }
            }
        }
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
                    "{attr_name:?} in {} must be a reference to an account block, not a string: write account.{example} without quotes",
                    scope.what
                ),
            );
            None
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
                format!("{attr_name:?} in {} must refer to an account, as in account.main; {got} is not an account reference", scope.what),
            );
            None
        }
    }
}
