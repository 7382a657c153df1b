//! Export of a captured VPC as a CloudFormation template that recreates its
//! network in another region or account.
//!
//! CONTRACT (shared by `lifeboat vpc export` and the `vpc_clone` planner):
//! the signatures below are fixed; the body is being written.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::vpc::CaptureDoc;

/// CloudFormation's limit for an inline TemplateBody, in bytes.
pub const TEMPLATE_BODY_LIMIT: usize = 51_200;

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
pub fn export(doc: &CaptureDoc, opts: &ExportOptions) -> Result<Export, ExportError> {
    let _ = (doc, opts);
    todo!("vpc_export::export")
}
