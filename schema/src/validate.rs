//! Shape checks for names and AWS identifiers, and "did you mean" suggestions.
//!
//! These are syntactic: they catch typos before any AWS call is made, not
//! whether the region, instance or role exists.

/// Block names (`account "NAME"`, `policy "NAME"`): `[A-Za-z_][A-Za-z0-9_-]*`,
/// so that `account.NAME` is a valid reference and names are safe in addresses.
pub fn is_valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The longest policy name. A policy's name is part of the AMI names (at
/// most 128 characters) and DB snapshot identifiers (at most 255) of its
/// backups, next to the target id and the backup id; at this length the
/// backup id always fits whole (see `engine::backup::names`).
pub const MAX_POLICY_NAME: usize = 40;

/// What is left of a policy name in DB snapshot identifiers (which hold
/// only lowercase letters, digits and single hyphens): lowercase, every
/// other character a hyphen, runs of hyphens as one, none at the ends. Two
/// policies with the same key would name their DB snapshots alike.
pub fn policy_name_key(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    out.trim_end_matches('-').to_string()
}

const REGION_AREAS: [&str; 10] = ["af", "ap", "ca", "cn", "eu", "il", "me", "mx", "sa", "us"];
const REGION_PARTITIONS: [&str; 5] = ["gov", "iso", "isob", "isoe", "isof"];
const REGION_DIRECTIONS: [&str; 9] = [
    "north",
    "south",
    "east",
    "west",
    "central",
    "northeast",
    "northwest",
    "southeast",
    "southwest",
];

/// An AWS region name such as `us-east-1`, `ap-southeast-1`, `us-gov-west-1`.
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let (area, rest) = match parts.as_slice() {
        [area, rest @ ..] => (area, rest),
        [] => return false,
    };
    let rest = match rest {
        [p, rest @ ..] if REGION_PARTITIONS.contains(p) => rest,
        _ => rest,
    };
    match rest {
        [dir, num] => {
            REGION_AREAS.contains(area)
                && REGION_DIRECTIONS.contains(dir)
                && (1..=2).contains(&num.len())
                && num.bytes().all(|b| b.is_ascii_digit())
                && !num.starts_with('0')
        }
        _ => false,
    }
}

fn is_hex_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|h| {
        (h.len() == 8 || h.len() == 17)
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `i-` followed by 8 or 17 lowercase hex digits.
pub fn is_instance_id(s: &str) -> bool {
    is_hex_id(s, "i-")
}

/// `vol-` followed by 8 or 17 lowercase hex digits.
pub fn is_volume_id(s: &str) -> bool {
    is_hex_id(s, "vol-")
}

/// `subnet-` followed by 8 or 17 lowercase hex digits.
pub fn is_subnet_id(s: &str) -> bool {
    is_hex_id(s, "subnet-")
}

/// `sg-` followed by 8 or 17 lowercase hex digits.
pub fn is_security_group_id(s: &str) -> bool {
    is_hex_id(s, "sg-")
}

/// `arn:aws[-cn|-us-gov]:iam::<12 digits>:role/<path/>name`.
/// An AWS account id: exactly twelve digits.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

pub fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    let Some(path) = resource.strip_prefix("role/") else {
        return false;
    };
    let segments: Vec<&str> = path.split('/').collect();
    let name = segments.last().copied().unwrap_or("");
    *arn == "arn"
        && ["aws", "aws-cn", "aws-us-gov"].contains(partition)
        && *service == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && segments.iter().all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
        })
        && name.len() <= 64
}

/// IAM role names: 1 to 64 of `[A-Za-z0-9+=,.@_-]`.
pub fn is_role_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// An IAM action pattern as policies write it: `service:Action`, the
/// service a lowercase name (`ec2`, `rds`, `kms`), the action letters and
/// digits, either part with `*` and `?` wildcards; `*` alone is every
/// action.
pub fn is_action_pattern(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let Some((service, action)) = s.split_once(':') else {
        return false;
    };
    let wild = |c: char| c == '*' || c == '?';
    !service.is_empty()
        && !action.is_empty()
        && service
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || wild(c))
        && action.chars().all(|c| c.is_ascii_alphanumeric() || wild(c))
}

/// Does the action pattern `pattern` (`*` and `?` wildcards) match the
/// action `action`? IAM compares actions without regard to case.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let a: Vec<char> = action.to_ascii_lowercase().chars().collect();
    // dp[j]: p[..i] matches a[..j].
    let mut dp = vec![false; a.len() + 1];
    dp[0] = true;
    for &c in &p {
        let mut next = vec![false; a.len() + 1];
        for j in 0..=a.len() {
            next[j] = match c {
                '*' => dp[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && dp[j - 1],
                c => j > 0 && dp[j - 1] && a[j - 1] == c,
            };
        }
        dp = next;
    }
    dp[a.len()]
}

/// STS role session names: 2 to 64 of `[A-Za-z0-9+=,.@_-]`.
pub fn is_session_name(s: &str) -> bool {
    (2..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `name`, if it is close enough to be a likely typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let max = match name.chars().count() {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .map(|c| (edit_distance(&name.to_lowercase(), c), c))
        .filter(|&(d, _)| d <= max)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// `; did you mean "x"?` or nothing.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(name, candidates)
        .map(|s| format!("; did you mean {s:?}?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for r in [
            "us-east-1",
            "eu-west-2",
            "ap-southeast-1",
            "us-gov-west-1",
            "cn-north-1",
            "cn-northwest-1",
            "il-central-1",
            "ap-east-2",
            "us-isob-east-1",
        ] {
            assert!(is_region(r), "{r}");
        }
        for r in [
            "",
            "us-east",
            "us-east-01",
            "US-EAST-1",
            "xx-east-1",
            "us-est-1",
            "us-east-1a",
            "us--east-1",
            "eu-gov-iso-west-1",
        ] {
            assert!(!is_region(r), "{r}");
        }
    }

    #[test]
    fn ids() {
        assert!(is_instance_id("i-0123456789abcdef0"));
        assert!(is_instance_id("i-0123abcd"));
        assert!(!is_instance_id("i-0123ABCD"));
        assert!(!is_instance_id("i-0123abc"));
        assert!(!is_instance_id("vol-0123abcd"));
        assert!(is_volume_id("vol-0123456789abcdef0"));
        assert!(!is_volume_id("vol-xyz"));
    }

    #[test]
    fn role_arns() {
        assert!(is_role_arn("arn:aws:iam::111122223333:role/lifeboat"));
        assert!(is_role_arn(
            "arn:aws-us-gov:iam::111122223333:role/ops/lifeboat"
        ));
        assert!(is_role_arn(
            "arn:aws-cn:iam::111122223333:role/a+b=c,d.e@f_g-h"
        ));
        assert!(!is_role_arn("arn:aws:iam::11112222333:role/lifeboat"));
        assert!(!is_role_arn("arn:aws:iam::111122223333:user/lifeboat"));
        assert!(!is_role_arn("arn:aws:iam:us-east-1:111122223333:role/x"));
        assert!(!is_role_arn("arn:aws:iam::111122223333:role/"));
        assert!(!is_role_arn("arn:aws:iam::111122223333:role/x/"));
        assert!(!is_role_arn("arn:aws:s3::111122223333:role/x"));
    }

    #[test]
    fn role_names_and_action_patterns() {
        assert!(is_role_name("lifeboat-dr"));
        assert!(is_role_name("a+b=c,d.e@f_g-h"));
        assert!(!is_role_name(""));
        assert!(!is_role_name("has space"));
        assert!(!is_role_name("path/name"));
        assert!(!is_role_name(&"r".repeat(65)));
        for ok in [
            "ec2:DeleteSnapshot",
            "ec2:Delete*",
            "*",
            "rds:*",
            "ec2:Delete?napshot",
            "s3:*Object",
        ] {
            assert!(is_action_pattern(ok), "{ok}");
        }
        for bad in [
            "",
            "ec2",
            "ec2:",
            ":Delete",
            "EC2:DeleteSnapshot",
            "ec2:Delete Snapshot",
            "ec2:a:b",
        ] {
            assert!(!is_action_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn action_patterns_match_actions() {
        assert!(action_matches("ec2:DeleteSnapshot", "ec2:DeleteSnapshot"));
        assert!(action_matches("EC2:delete*", "ec2:DeleteSnapshot"));
        assert!(action_matches("*", "rds:DeleteDBSnapshot"));
        assert!(action_matches(
            "rds:Delete?BSnapshot",
            "rds:DeleteDBSnapshot"
        ));
        assert!(!action_matches("rds:Delete*", "ec2:DeleteSnapshot"));
        assert!(!action_matches("ec2:Delete", "ec2:DeleteSnapshot"));
    }

    #[test]
    fn suggestions() {
        let c = ["generations", "account", "enabled"];
        assert_eq!(suggest("generation", c), Some("generations"));
        assert_eq!(suggest("acount", c), Some("account"));
        assert_eq!(suggest("schedule", c), None);
    }

    #[test]
    fn policy_name_keys_fold_what_db_snapshot_ids_cannot_tell_apart() {
        assert_eq!(policy_name_key("Web_App"), "web-app");
        assert_eq!(policy_name_key("web-app"), "web-app");
        assert_eq!(policy_name_key("_vault--copy-"), "vault-copy");
        assert_ne!(policy_name_key("web"), policy_name_key("web2"));
    }

    #[test]
    fn names() {
        assert!(is_valid_name("main"));
        assert!(is_valid_name("_a-b_1"));
        assert!(!is_valid_name("1a"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name(""));
    }
}
