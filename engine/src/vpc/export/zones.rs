//! Availability zones: where each subnet goes in the destination region.

use std::collections::BTreeMap;

use super::{ExportError, ExportOptions};
use crate::vpc::document::CaptureDoc;

/// Maps every zone the capture's subnets use to a destination zone.
///
/// A zone name (`us-east-1b`) keeps its suffix after the region name (`b`,
/// or `-bos-1a` for a Local Zone) and must exist in the destination as
/// `<to_region><suffix>`. A zone id (`use1-az2`) does not say which zone
/// name it is in the source account; it is mapped to the destination's zone
/// of the same ordinal (the second zone for `az2`), which keeps subnets that
/// were in distinct zones in distinct zones.
pub(super) fn zone_map(
    doc: &CaptureDoc,
    opts: &ExportOptions,
) -> Result<BTreeMap<String, String>, ExportError> {
    let mut dest: Vec<&str> = opts.to_zones.iter().map(String::as_str).collect();
    dest.sort();
    dest.dedup();
    // Standard zones of the destination (`us-west-2a`), for ordinal mapping.
    let standard: Vec<&str> = dest
        .iter()
        .copied()
        .filter(|z| {
            z.strip_prefix(opts.to_region.as_str())
                .is_some_and(|s| s.len() == 1 && s.chars().all(|c| c.is_ascii_lowercase()))
        })
        .collect();
    let mut out = BTreeMap::new();
    let mut missing: Vec<String> = Vec::new();
    let used: std::collections::BTreeSet<&str> = doc
        .subnets
        .iter()
        .map(|s| s.availability_zone.as_str())
        .collect();
    for az in used {
        if let Some(suffix) = az.strip_prefix(opts.source_region.as_str()) {
            let want = format!("{}{suffix}", opts.to_region);
            if dest.contains(&want.as_str()) {
                out.insert(az.to_string(), want);
            } else {
                missing.push(format!("{} (for {az})", suffix.trim_start_matches('-')));
            }
        } else if let Some(n) = az_id_ordinal(az) {
            match standard.get(n - 1) {
                Some(z) => {
                    out.insert(az.to_string(), z.to_string());
                }
                None => missing.push(format!("number {n} (for zone id {az})")),
            }
        } else {
            missing.push(format!(
                "matching {az:?} (not a zone of {})",
                opts.source_region
            ));
        }
    }
    if missing.is_empty() {
        return Ok(out);
    }
    Err(ExportError::Zones(format!(
        "{} has no zone {} that the subnets of {} use; its zones are: {}",
        opts.to_region,
        missing.join(", "),
        doc.vpc.id,
        if dest.is_empty() {
            "none listed".to_string()
        } else {
            dest.join(", ")
        }
    )))
}

/// `use1-az2` -> 2.
fn az_id_ordinal(az: &str) -> Option<usize> {
    let (_, n) = az.rsplit_once("-az")?;
    n.parse().ok().filter(|n| *n > 0)
}
