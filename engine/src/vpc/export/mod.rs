//! Export of a captured VPC as a CloudFormation template that recreates its
//! network in another region or account (`lifeboat vpc export` and the
//! `vpc_clone` planner share it; the decisions are in docs/vpc-export.md).
//!
//! [`export`] walks the capture one resource family at a time, each in its
//! own file: `network` (the VPC and its subnets), `regional` (DHCP options,
//! prefix lists, and what is never recreated: peering, transit gateways),
//! `gateways` (internet, egress-only, NAT and VPN gateways, customer
//! gateways, VPN connections), `security` (security groups and their rules,
//! network ACLs) and `routes` (route tables, routes, propagation). `zones`
//! maps availability zones and `naming` makes logical ids and references.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cloud::Tags;
use crate::vpc::document::CaptureDoc;

mod gateways;
mod naming;
pub(crate) use naming::TAG_ORIGINAL_ID;
mod network;
mod regional;
mod routes;
mod security;
#[cfg(test)]
mod tests;
mod zones;

use naming::{r, TAG_CAPTURED_AT, TAG_ORIGINAL_REGION, VPC_LID};
use zones::zone_map;

/// CloudFormation's limit for an inline TemplateBody, in bytes.
pub const TEMPLATE_BODY_LIMIT: usize = 51_200;

/// CloudFormation's limit of resources in one template. A larger export is
/// still returned (the count is in [`Export::resource_counts`]); callers
/// warn, since CreateStack will refuse it.
pub const RESOURCE_LIMIT: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// The region the capture was taken in.
    pub source_region: String,
    /// When the capture was taken (tagged on every resource).
    pub captured_at: DateTime<Utc>,
    /// Where the template will be deployed.
    pub to_region: String,
    /// The availability zones of `to_region`, as DescribeAvailabilityZones
    /// lists them (e.g. `us-west-2a`, `us-west-2b`).
    pub to_zones: Vec<String>,
    /// The clone's Name tag; default: the original name + " (cloned)".
    pub name: Option<String>,
}

/// Something of the source network the template does not carry, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeftOut {
    /// What, e.g. `route rtb-0abc 10.1.0.0/16 -> pcx-0def`.
    pub what: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// The template (JSON), deterministic for the same inputs.
    pub template: serde_json::Value,
    pub left_out: Vec<LeftOut>,
    /// Resources in the template by CloudFormation type.
    pub resource_counts: BTreeMap<String, usize>,
}

impl Export {
    /// The template as deployable text: pretty JSON with a trailing newline.
    pub fn text(&self) -> String {
        serde_json::to_string_pretty(&self.template).expect("templates serialise") + "\n"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The destination has fewer zones than the source uses (by letter).
    #[error("{0}")]
    Zones(String),
}

/// Builds the template for `doc`.
///
/// Pure and deterministic: logical ids come from the original ids (or, for
/// rules and routes, from a hash of their content), resources are kept in a
/// sorted map, and everything the template does not carry is returned in
/// [`Export::left_out`], sorted.
pub fn export(doc: &CaptureDoc, opts: &ExportOptions) -> Result<Export, ExportError> {
    let zones = zone_map(doc, opts)?;
    let mut b = Builder {
        doc,
        opts,
        zones,
        resources: BTreeMap::new(),
        left_out: Vec::new(),
    };
    b.vpc();
    b.dhcp_options();
    b.prefix_lists();
    b.subnets();
    b.gateways();
    b.nat_gateways();
    b.security_groups();
    b.route_tables();
    b.network_acls();
    b.vpn();
    b.not_carried();
    b.finish()
}

/// The template being built: every family adds its resources and logs
/// what it cannot carry.
struct Builder<'a> {
    doc: &'a CaptureDoc,
    opts: &'a ExportOptions,
    zones: BTreeMap<String, String>,
    resources: BTreeMap<String, Value>,
    left_out: Vec<LeftOut>,
}

impl Builder<'_> {
    fn leave(&mut self, what: impl Into<String>, reason: impl Into<String>) {
        self.left_out.push(LeftOut {
            what: what.into(),
            reason: reason.into(),
        });
    }

    fn add(&mut self, lid: &str, kind: &str, properties: Value, depends_on: &[String]) {
        let mut res = json!({
            "Type": kind,
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": properties,
        });
        let mut deps: Vec<&String> = depends_on.iter().collect();
        deps.sort();
        deps.dedup();
        if !deps.is_empty() {
            res["DependsOn"] = json!(deps);
        }
        // Ids of one type never share their bare form, so a clash is a
        // bug; in a release build it gets a deterministic suffix instead.
        debug_assert!(
            !self.resources.contains_key(lid),
            "logical id {lid} used twice"
        );
        let mut key = lid.to_string();
        let mut n = 2;
        while self.resources.contains_key(&key) {
            key = format!("{lid}N{n}");
            n += 1;
        }
        self.resources.insert(key, res);
    }

    /// The tags of a recreated resource: its own (minus `aws:*`), the
    /// original id, region and capture time, and `name` when given.
    fn tags(&self, original_id: &str, own: &Tags, name: Option<String>) -> Value {
        let mut t: BTreeMap<String, String> = own
            .iter()
            .filter(|(k, _)| !k.starts_with("aws:"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        t.insert(TAG_ORIGINAL_ID.into(), original_id.into());
        t.insert(TAG_ORIGINAL_REGION.into(), self.opts.source_region.clone());
        t.insert(
            TAG_CAPTURED_AT.into(),
            self.opts
                .captured_at
                .to_rfc3339_opts(SecondsFormat::Secs, true),
        );
        if let Some(n) = name {
            t.insert("Name".into(), n);
        }
        Value::Array(
            t.into_iter()
                .map(|(k, v)| json!({ "Key": k, "Value": v }))
                .collect(),
        )
    }

    fn finish(mut self) -> Result<Export, ExportError> {
        self.left_out.sort();
        self.left_out.dedup();
        let mut resource_counts = BTreeMap::new();
        for v in self.resources.values() {
            let kind = v["Type"].as_str().expect("every resource has a type");
            *resource_counts.entry(kind.to_string()).or_insert(0) += 1;
        }
        let captured = self
            .opts
            .captured_at
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let template = json!({
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": format!(
                "Lifeboat clone of {} ({}, captured {captured}) for {}",
                self.doc.vpc.id, self.opts.source_region, self.opts.to_region
            ),
            "Metadata": {
                "Lifeboat": {
                    "SourceVpc": self.doc.vpc.id,
                    "SourceRegion": self.opts.source_region,
                    "CapturedAt": captured,
                    "LeftOut": self.left_out.iter().map(|l| format!("{}: {}", l.what, l.reason)).collect::<Vec<_>>(),
                }
            },
            "Resources": self.resources,
            "Outputs": {
                "VpcId": { "Description": "The clone's VPC", "Value": r(VPC_LID) },
            },
        });
        Ok(Export {
            template,
            left_out: self.left_out,
            resource_counts,
        })
    }
}
