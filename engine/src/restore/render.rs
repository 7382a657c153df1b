//! A restore plan for people: what will be created, from which artifact,
//! with which settings, and what differs from the original.

use std::fmt::Write;

use super::plan::RestorePlan;
use crate::state::ArtifactKind;

/// The address-like name of what a restore creates: `restored_instance["i-…"]`.
pub fn address(kind: &str, target: &str) -> String {
    format!("restored_{kind}[{target:?}]")
}

fn age(p: &RestorePlan, now: chrono::DateTime<chrono::Utc>) -> String {
    let mins = (now - p.backup_started).num_minutes().max(0);
    match mins {
        m if m < 120 => format!("{m} min ago"),
        m if m < 48 * 60 => format!("{} h ago", m / 60),
        m => format!("{} days ago", m / (24 * 60)),
    }
}

pub fn human(p: &RestorePlan, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut s = header(p, now);
    shares(&mut s, p);
    let count = image(&mut s, p) + launch(&mut s, p) + volume(&mut s, p) + database(&mut s, p);
    if !p.notes.is_empty() {
        let _ = writeln!(s);
        for n in &p.notes {
            let _ = writeln!(s, "  note: {n}");
        }
    }
    let _ = writeln!(
        s,
        "\nRestore: {count} to create, 0 to change, 0 to destroy."
    );
    s
}

fn header(p: &RestorePlan, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut s = String::new();
    let from = if p.source == "local" {
        format!(
            "its own artifacts in {} of account {}",
            p.artifacts_region, p.artifacts_account
        )
    } else {
        format!("the DR copies in {}", p.source)
    };
    let _ = writeln!(
        s,
        "Restore {} of {} {} from backup.{}[{:?}] (taken {}, {}), using {from}, into account {} ({}).\n",
        p.id,
        p.kind.noun(),
        p.target,
        p.policy,
        p.backup_id,
        p.backup_started.to_rfc3339(),
        age(p, now),
        p.account,
        p.region
    );
    s
}

fn shares(s: &mut String, p: &RestorePlan) {
    for sh in &p.shares {
        let what = match sh.kind {
            ArtifactKind::Ebs => "snapshot",
            ArtifactKind::Image => "image",
            ArtifactKind::DbSnapshot => "db_snapshot",
            ArtifactKind::DbClusterSnapshot => "db_cluster_snapshot",
        };
        let _ = writeln!(
            s,
            "  ~ {what}[{:?}]  shared with account {} for the restore",
            sh.id,
            p.share_with.as_deref().unwrap_or_default()
        );
    }
}

fn image(s: &mut String, p: &RestorePlan) -> usize {
    let Some(i) = &p.image else { return 0 };
    let _ = writeln!(
        s,
        "  + {}  image {} ({}, root {}), deregistered once the instance runs",
        address("image", &p.target),
        i.name,
        i.architecture,
        i.root_device
    );
    for m in &i.mappings {
        let _ = writeln!(
            s,
            "      {} <- {}{}{}",
            m.device,
            m.snapshot_id,
            m.volume_type
                .as_ref()
                .map(|t| format!(" {t}"))
                .unwrap_or_default(),
            m.size_gib.map(|g| format!(" {g} GiB")).unwrap_or_default()
        );
    }
    1
}

fn launch(s: &mut String, p: &RestorePlan) -> usize {
    let Some(l) = &p.launch else { return 0 };
    let image = if l.image_id.is_empty() {
        "the image above".to_string()
    } else {
        l.image_id.clone()
    };
    let groups = if l.security_groups.is_empty() {
        String::new()
    } else {
        format!(", groups {}", l.security_groups.join(","))
    };
    let _ = writeln!(
        s,
        "  + {}  {} from {image} in {}{groups}{}{}",
        address("instance", &p.target),
        l.instance_type,
        l.subnet_id.as_deref().unwrap_or("the default subnet"),
        l.key_name
            .as_ref()
            .map(|k| format!(", key {k}"))
            .unwrap_or_default(),
        l.private_ip
            .as_ref()
            .map(|ip| format!(", address {ip}"))
            .unwrap_or_default()
    );
    1
}

fn volume(s: &mut String, p: &RestorePlan) -> usize {
    let Some(v) = &p.volume else { return 0 };
    let _ = writeln!(
        s,
        "  + {}  {} {} in {} from {}",
        address("volume", &p.target),
        v.volume_type,
        v.size_gib
            .map(|g| format!("{g} GiB"))
            .unwrap_or_else(|| "snapshot-sized".into()),
        v.availability_zone,
        v.snapshot_id
    );
    if let Some(a) = &p.attach {
        let _ = writeln!(
            s,
            "      attached to {} at {}{}",
            a.instance_id,
            a.device,
            a.swap_out
                .as_ref()
                .map(|o| format!(", after detaching {o} (kept, tagged)"))
                .unwrap_or_default()
        );
    }
    1
}

fn database(s: &mut String, p: &RestorePlan) -> usize {
    let Some(d) = &p.database else { return 0 };
    let _ = writeln!(
        s,
        "  + {}  {} {} from {}",
        address("db", &p.target),
        d.identifier,
        d.class.as_deref().unwrap_or("(class of the snapshot)"),
        d.snapshot
    );
    for (m, c) in &p.members {
        let _ = writeln!(s, "      instance {m} ({c})");
    }
    1 + p.members.len()
}
