//! Logical ids, references and the tags that record a resource's origin.

use serde::Serialize;
use serde_json::{json, Value};

/// The id without its type prefix and with only ASCII letters and digits:
/// `subnet-0abc` -> `0abc`.
pub(super) fn bare(id: &str) -> String {
    let rest = id.split_once('-').map_or(id, |(_, r)| r);
    rest.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// A short content hash for logical ids of things that have no id of
/// their own (rules, routes, CIDR blocks).
pub(super) fn short_hash(v: &impl Serialize) -> String {
    let text = serde_json::to_string(v).expect("serialises");
    crate::vpc::document::hex_sha256(text.as_bytes())[..10].to_string()
}

pub(super) fn lid(kind: &str, id: &str) -> String {
    format!("{kind}{}", bare(id))
}

/// For kinds that hold several types of original (an attachment of an
/// internet or a VPN gateway): the whole id, prefix included.
pub(super) fn lid_full(kind: &str, id: &str) -> String {
    let id: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{kind}{id}")
}

pub(super) const VPC_LID: &str = "VPC";
pub(crate) const TAG_ORIGINAL_ID: &str = "lifeboat:original-id";
pub(super) const TAG_ORIGINAL_REGION: &str = "lifeboat:original-region";
pub(super) const TAG_CAPTURED_AT: &str = "lifeboat:captured-at";

pub(super) fn r(lid: &str) -> Value {
    json!({ "Ref": lid })
}

pub(super) fn att(lid: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [lid, attribute] })
}
