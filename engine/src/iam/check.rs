//! The secured-DR check: which principals of an account (users and roles)
//! are allowed an action the account's `secured { prohibited }` lists.
//!
//! The account's users, groups, roles and customer managed policies come
//! from GetAccountAuthorizationDetails, paged. A user's policies are its
//! inline and attached ones and those of its groups; a role's its inline
//! and attached ones; a managed policy counts by its default version.
//!
//! Evaluation, and what it leaves out:
//! - An `Allow` statement grants a prohibited pattern when one of its
//!   `Action` patterns matches an action the prohibited pattern matches
//!   (`*` and `?` in either, case-insensitive), or when its `NotAction`
//!   leaves such an action out. Any `Resource` counts as granting.
//! - A statement with a `Condition` is taken as applying; the finding says
//!   it is conditional.
//! - An explicit `Deny` of the same principal wins when it covers what the
//!   Allow grants of the pattern (the whole prohibited pattern, or the
//!   granting action pattern), on every resource (`Resource` `*`) and
//!   without a condition; a narrower Deny does not hide the finding.
//! - Service control policies, permission boundaries, session policies and
//!   resource policies are not evaluated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::{Account, Config};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::document::{self, covers, overlaps};
use crate::cloud::iam::{AuthorizationEntry, ManagedPolicy, PrincipalDetail};
use crate::cloud::{collect_pages, Cloud, CloudError};
use crate::runmode::notify;
use crate::state::{SecuredCheck, SharedStore, StateError};

/// Where a principal's policy comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicySource {
    /// Inline in the principal.
    Inline,
    /// A managed policy attached to the principal.
    Managed,
    /// Inline in a group the user is in.
    GroupInline,
    /// A managed policy attached to a group the user is in.
    GroupManaged,
}

impl PolicySource {
    pub fn as_str(&self) -> &'static str {
        match self {
            PolicySource::Inline => "inline",
            PolicySource::Managed => "managed",
            PolicySource::GroupInline => "group inline",
            PolicySource::GroupManaged => "group managed",
        }
    }
}

/// One principal allowed one prohibited pattern by one policy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    /// `user` or `role`.
    pub principal_type: String,
    pub principal: String,
    pub principal_arn: String,
    pub policy: String,
    pub source: PolicySource,
    /// The group the policy comes through, for a group's policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The statement's action pattern that grants it (`NotAction [..]` for
    /// a statement that grants by leaving out).
    pub action: String,
    /// The prohibited pattern it matches.
    pub prohibited: String,
    /// The statement has a condition, taken as met.
    pub conditional: bool,
}

/// The result of checking one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub account: String,
    /// Users and roles.
    pub principals: usize,
    /// Inline policies and managed policies read.
    pub policies: usize,
    pub findings: Vec<Finding>,
    /// Policies that could not be evaluated (not listed, or not a
    /// readable document), named with the principal or group using them.
    pub unread: Vec<String>,
}

impl Report {
    /// No finding, and every policy evaluated: a policy that could not be
    /// read may grant anything, so its account is never called clean.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty() && self.unread.is_empty()
    }

    /// `account vault: clean (3 principals, 5 policies checked)` or
    /// `account vault: 2 finding(s) ...`.
    pub fn summary(&self) -> String {
        let counts = format!(
            "{} principals, {} policies checked",
            self.principals, self.policies
        );
        if self.is_clean() {
            return format!("account {}: clean ({counts})", self.account);
        }
        if self.findings.is_empty() {
            return format!(
                "account {}: not clean: {} policy(ies) could not be evaluated and may grant a prohibited action ({counts})",
                self.account,
                self.unread.len()
            );
        }
        let who: BTreeSet<&str> = self
            .findings
            .iter()
            .map(|f| f.principal_arn.as_str())
            .collect();
        format!(
            "account {}: {} finding(s): {} principal(s) allowed prohibited actions ({counts})",
            self.account,
            self.findings.len(),
            who.len()
        )
    }
}

/// A policy as a principal has it.
struct Held<'a> {
    name: &'a str,
    source: PolicySource,
    group: Option<&'a str>,
    doc: Value,
}

/// What of `prohibited` one Allow statement grants: each of its `Action`
/// patterns that overlaps it (`Some(pattern)`), or, for a `NotAction` that
/// leaves part of it out, that statement (`None`: no pattern a Deny could
/// cover on its own). Each with the text a finding shows.
fn statement_grants(s: &Value, prohibited: &str) -> Vec<(String, Option<String>)> {
    if let Some(actions) = s.get("Action") {
        return document::strings(actions)
            .into_iter()
            .filter(|a| overlaps(a, prohibited))
            .map(|a| (a.clone(), Some(a)))
            .collect();
    }
    let not = s
        .get("NotAction")
        .map(document::strings)
        .unwrap_or_default();
    if s.get("NotAction").is_none() || not.iter().any(|n| covers(n, prohibited)) {
        return Vec::new();
    }
    vec![(format!("NotAction [{}]", not.join(", ")), None)]
}

/// Does a Deny statement take away every action of `prohibited`, on every
/// resource, unconditionally?
fn statement_denies(s: &Value, prohibited: &str) -> bool {
    if s.get("Condition").is_some() || s.get("NotResource").is_some() {
        return false;
    }
    let everywhere = s
        .get("Resource")
        .is_none_or(|r| document::strings(r).iter().any(|x| x == "*"));
    if !everywhere {
        return false;
    }
    if let Some(actions) = s.get("Action") {
        return document::strings(actions)
            .iter()
            .any(|a| covers(a, prohibited));
    }
    match s.get("NotAction") {
        Some(not) => !document::strings(not)
            .iter()
            .any(|n| overlaps(n, prohibited)),
        None => false,
    }
}

fn statements(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    }
}

fn effect(s: &Value) -> &str {
    s.get("Effect").and_then(Value::as_str).unwrap_or_default()
}

/// The findings of one principal's policies.
fn principal_findings(
    kind: &str,
    p: &PrincipalDetail,
    held: &[Held<'_>],
    prohibited: &[String],
) -> Vec<Finding> {
    let denies: Vec<&Value> = held
        .iter()
        .flat_map(|h| statements(&h.doc))
        .filter(|s| effect(s).eq_ignore_ascii_case("deny"))
        .collect();
    // A Deny wins when it covers all the statement grants of the pattern:
    // the whole prohibited pattern, or the granting pattern itself.
    let denied = |pattern: &str| denies.iter().any(|d| statement_denies(d, pattern));
    let mut out = Vec::new();
    for pattern in prohibited {
        if denied(pattern) {
            continue;
        }
        for h in held {
            for s in statements(&h.doc) {
                if !effect(s).eq_ignore_ascii_case("allow") {
                    continue;
                }
                let granted = statement_grants(s, pattern)
                    .into_iter()
                    .find(|(_, by)| by.as_deref().is_none_or(|a| !denied(a)));
                let Some((action, _)) = granted else {
                    continue;
                };
                out.push(Finding {
                    principal_type: kind.into(),
                    principal: p.name.clone(),
                    principal_arn: p.arn.clone(),
                    policy: h.name.to_string(),
                    source: h.source.clone(),
                    group: h.group.map(str::to_string),
                    action,
                    prohibited: pattern.clone(),
                    conditional: s.get("Condition").is_some(),
                });
            }
        }
    }
    out
}

/// The account's details, indexed.
struct Details<'a> {
    groups: BTreeMap<&'a str, &'a PrincipalDetail>,
    managed: BTreeMap<&'a str, &'a ManagedPolicy>,
    /// Policies that could not be read, with why.
    unread: BTreeSet<String>,
}

impl<'a> Details<'a> {
    fn read(&mut self, owner: &str, name: &str, text: Option<&str>) -> Option<Value> {
        let why = match text.map(document::parse) {
            Some(Ok(v)) => return Some(v),
            Some(Err(why)) => why,
            None => "not in the account's details".to_string(),
        };
        self.unread.insert(format!("{name} of {owner}: {why}"));
        None
    }

    /// The policies of `p` (a principal or a group), their sources given.
    fn held(
        &mut self,
        p: &'a PrincipalDetail,
        inline: PolicySource,
        attached: PolicySource,
        group: Option<&'a str>,
    ) -> Vec<Held<'a>> {
        let mut out = Vec::new();
        for i in &p.inline {
            if let Some(doc) = self.read(&p.arn, &i.name, Some(&i.document)) {
                out.push(Held {
                    name: &i.name,
                    source: inline.clone(),
                    group,
                    doc,
                });
            }
        }
        for arn in &p.attached {
            let m = self.managed.get(arn.as_str()).copied();
            // A policy's name is the last part of its ARN, for a listing
            // that leaves the name out (the emulator does).
            let name = match m {
                Some(m) if !m.name.is_empty() => m.name.as_str(),
                _ => arn.rsplit('/').next().unwrap_or(arn),
            };
            let text = m.and_then(|m| m.document.as_deref());
            if let Some(doc) = self.read(&p.arn, name, text) {
                out.push(Held {
                    name,
                    source: attached.clone(),
                    group,
                    doc,
                });
            }
        }
        out
    }

    /// A user's or role's own policies and its groups'.
    fn all_held(&mut self, p: &'a PrincipalDetail) -> Vec<Held<'a>> {
        let mut held = self.held(p, PolicySource::Inline, PolicySource::Managed, None);
        for g in &p.groups {
            match self.groups.get(g.as_str()).copied() {
                Some(gd) => held.extend(self.held(
                    gd,
                    PolicySource::GroupInline,
                    PolicySource::GroupManaged,
                    Some(g),
                )),
                None => {
                    self.unread.insert(format!(
                        "group {g} of {}: not in the account's details",
                        p.arn
                    ));
                }
            }
        }
        held
    }
}

/// Evaluates an account's authorization details against `prohibited`.
pub fn evaluate(account: &str, entries: &[AuthorizationEntry], prohibited: &[String]) -> Report {
    let mut principals: Vec<(&str, &PrincipalDetail)> = Vec::new();
    let mut d = Details {
        groups: BTreeMap::new(),
        managed: BTreeMap::new(),
        unread: BTreeSet::new(),
    };
    for e in entries {
        match e {
            AuthorizationEntry::User(u) => principals.push(("user", u)),
            AuthorizationEntry::Role(r) => principals.push(("role", r)),
            AuthorizationEntry::Group(g) => {
                d.groups.insert(g.name.as_str(), g);
            }
            AuthorizationEntry::Policy(p) => {
                d.managed.insert(p.arn.as_str(), p);
            }
        }
    }
    let inline: usize = principals
        .iter()
        .map(|(_, p)| p.inline.len())
        .sum::<usize>()
        + d.groups.values().map(|g| g.inline.len()).sum::<usize>();
    let policies = inline + d.managed.len();
    let mut findings = Vec::new();
    for (kind, p) in &principals {
        let held = d.all_held(p);
        findings.extend(principal_findings(kind, p, &held, prohibited));
    }
    findings.sort();
    findings.dedup();
    Report {
        account: account.to_string(),
        principals: principals.len(),
        policies,
        findings,
        unread: d.unread.into_iter().collect(),
    }
}

/// Why a check could not be made or recorded.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("account {0} has no secured block")]
    NotSecured(String),
    #[error("the alert could not be published: {0}")]
    Notify(#[from] notify::NotifyError),
}

/// IAM writes that let a principal give itself (or a principal it can
/// become) any action, a prohibited one included: always checked beside
/// the account's own `prohibited`, so that an account is never called
/// clean while someone there can grant themselves a delete.
pub const ESCALATION: &[&str] = &[
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:PutUserPolicy",
    "iam:AttachUserPolicy",
    "iam:PutGroupPolicy",
    "iam:AttachGroupPolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:UpdateAssumeRolePolicy",
    "iam:AddUserToGroup",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:PassRole",
    // Taking away a Deny (or a group that holds one) gives back what it
    // denied.
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:DeleteUserPolicy",
    "iam:DetachUserPolicy",
    "iam:DeleteGroupPolicy",
    "iam:DetachGroupPolicy",
    "iam:RemoveUserFromGroup",
    "iam:DeletePolicyVersion",
];

/// Reads `account`'s authorization details (every page) and evaluates them
/// against its `prohibited` patterns and [`ESCALATION`].
pub async fn check(cloud: &Arc<dyn Cloud>, account: &Account) -> Result<Report, CheckError> {
    let secured = account
        .secured
        .as_ref()
        .ok_or_else(|| CheckError::NotSecured(account.name.clone()))?;
    let iam = cloud.iam(account).await?;
    let entries = collect_pages(|t| iam.authorization_details_page(t)).await?;
    let mut patterns = secured.prohibited.clone();
    for e in ESCALATION {
        if !patterns.iter().any(|p| p.eq_ignore_ascii_case(e)) {
            patterns.push(e.to_string());
        }
    }
    let mut report = evaluate(&account.name, &entries, &patterns);
    // Service-linked roles (`/aws-service-role/`) are AWS's, cannot be
    // edited, and carry IAM writes scoped to their service: reporting their
    // escalation actions would keep every account that has one dirty for
    // good. Their prohibited actions are still reported.
    report.findings.retain(|f| {
        let configured = secured
            .prohibited
            .iter()
            .any(|p| p.eq_ignore_ascii_case(&f.prohibited));
        configured || !f.principal_arn.contains(":role/aws-service-role/")
    });
    Ok(report)
}

/// The owner of an account's secured-check alert in the alerts table
/// (whose owners are otherwise policy names, which cannot hold a dot).
pub fn alert_owner(account: &str) -> String {
    format!("account.{account}")
}

/// What recording a check did to its alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertChange {
    Opened,
    Closed,
    Unchanged,
}

/// The alert's text: the summary and the first findings.
fn alert_message(r: &Report) -> String {
    let mut lines = vec![r.summary()];
    for u in r.unread.iter().take(10) {
        lines.push(format!("not evaluated: {u}"));
    }
    for f in r.findings.iter().take(10) {
        lines.push(format!(
            "{} {} allowed {} ({}) by {} policy {}",
            f.principal_type,
            f.principal,
            f.prohibited,
            f.action,
            f.source.as_str(),
            f.policy
        ));
    }
    if r.findings.len() > 10 {
        lines.push(format!("... and {} more", r.findings.len() - 10));
    }
    lines.join("; ")
}

/// Records a check: its time and counts, an alert opened by findings
/// (once; it stays open while findings remain) or closed by a clean check,
/// published when a `notifications` block is configured. Returns what
/// happened to the alert; a failed publish is returned as an error after
/// the state is written.
pub async fn record(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    config: &Config,
    report: &Report,
    now: DateTime<Utc>,
) -> Result<AlertChange, CheckError> {
    let owner = alert_owner(&report.account);
    let (change, message) = {
        let mut s = store.lock().expect("store");
        s.record_secured_check(&SecuredCheck {
            account: report.account.clone(),
            checked_at: now,
            findings: report.findings.len() as u64,
            principals: report.principals as u64,
            policies: report.policies as u64,
        })?;
        if report.is_clean() {
            let closed = s.close_policy_alerts(&owner, None, now)?;
            match closed.first() {
                Some(a) => (
                    AlertChange::Closed,
                    Some((
                        format!("Lifeboat alert closed: {owner}"),
                        format!(
                            "ALERT CLOSED\n{owner}\nalert: {}\nopened: {}\nclosed: {}\n{}\n",
                            a.id,
                            a.opened.to_rfc3339(),
                            now.to_rfc3339(),
                            report.summary()
                        ),
                    )),
                ),
                None => (AlertChange::Unchanged, None),
            }
        } else {
            match s.open_policy_alert(&owner, now, &alert_message(report))? {
                Some(a) => (
                    AlertChange::Opened,
                    Some((
                        format!("Lifeboat alert opened: {owner}"),
                        format!(
                            "ALERT OPENED\n{owner}\nalert: {}\nopened: {}\nreason: {}\n",
                            a.id,
                            a.opened.to_rfc3339(),
                            a.message
                        ),
                    )),
                ),
                None => (AlertChange::Unchanged, None),
            }
        }
    };
    if let (Some(n), Some((subject, text))) = (&config.notifications, message) {
        notify::publish(cloud, store, n, &subject, &text).await?;
    }
    Ok(change)
}

/// Records a check of `account` that could not be made: its time (so that
/// run mode tries again one interval later, not at every wake-up) and an
/// alert, published when newly opened: a check that cannot run (read rights
/// removed, a broken role) must not pass for a clean account.
pub async fn record_failure(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    config: &Config,
    account: &str,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), CheckError> {
    let owner = alert_owner(account);
    let opened = {
        let mut s = store.lock().expect("store");
        s.record_secured_check(&SecuredCheck {
            account: account.to_string(),
            checked_at: now,
            findings: 0,
            principals: 0,
            policies: 0,
        })?;
        s.open_policy_alert(
            &owner,
            now,
            &format!("the secured-DR check of account {account} could not be made: {error}"),
        )?
    };
    if let (Some(n), Some(a)) = (&config.notifications, opened) {
        let text = format!(
            "ALERT OPENED\n{owner}\nalert: {}\nopened: {}\nreason: {}\n",
            a.id,
            a.opened.to_rfc3339(),
            a.message
        );
        notify::publish(
            cloud,
            store,
            n,
            &format!("Lifeboat alert opened: {owner}"),
            &text,
        )
        .await?;
    }
    Ok(())
}
