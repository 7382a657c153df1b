//! IAM policy documents as values: canonical JSON (keys sorted, action and
//! resource lists sorted and deduplicated, one string and a one-element
//! list alike) so that a document read back from AWS compares equal to the
//! one written, and plan diffs do not depend on how AWS formats it; and
//! the matching of action patterns with `*` and `?`.

use serde_json::{Map, Value};

/// The policy language version every document Lifeboat writes carries.
pub const VERSION: &str = "2012-10-17";

/// The statement fields whose value is a list of strings that IAM treats as
/// a set.
const SET_FIELDS: &[&str] = &["Action", "NotAction", "Resource", "NotResource"];

/// Reads a policy document as IAM returns it: JSON, or URL-encoded JSON
/// (GetRole, GetRolePolicy and GetAccountAuthorizationDetails encode it).
pub fn parse(text: &str) -> Result<Value, String> {
    if let Ok(v) = serde_json::from_str(text) {
        return Ok(v);
    }
    let decoded = percent_decode(text).ok_or("not JSON, and not URL-encoded JSON")?;
    serde_json::from_str(&decoded)
        .or_else(|_| serde_json::from_str(&decoded.replace('+', " ")))
        .map_err(|e| format!("not a JSON policy document: {e}"))
}

/// `%XX` escapes decoded; `None` when an escape is malformed or the bytes
/// are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The canonical form of a document: maps with sorted keys, the set fields
/// of statements (and a principal's ARNs) as sorted lists without repeats,
/// a lone statement as a list of one.
pub fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                let x = &m[k];
                let value = if SET_FIELDS.contains(&k.as_str()) || k == "AWS" {
                    sorted_set(x)
                } else if k == "Statement" && x.is_object() {
                    Value::Array(vec![canonical(x)])
                } else {
                    canonical(x)
                };
                out.insert(k.clone(), value);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn sorted_set(v: &Value) -> Value {
    let mut items: Vec<String> = strings(v);
    items.sort();
    items.dedup();
    Value::Array(items.into_iter().map(Value::String).collect())
}

/// A string, or the strings of a list (other values are left out).
pub fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The compact text of a canonical document, as sent to AWS.
pub fn text(v: &Value) -> String {
    serde_json::to_string(&canonical(v)).expect("documents serialise")
}

/// One symbol of an action pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sym {
    Any,
    One,
    Lit(char),
}

fn symbols(p: &str) -> Vec<Sym> {
    p.chars()
        .map(|c| match c {
            '*' => Sym::Any,
            '?' => Sym::One,
            c => Sym::Lit(c.to_ascii_lowercase()),
        })
        .collect()
}

/// Is there an action both patterns match? IAM compares actions without
/// regard to case; `*` matches any run of characters, `?` one. `ec2:Delete*`
/// and `*:DeleteSnapshot` overlap; `ec2:Delete*` and `rds:*` do not.
pub fn overlaps(a: &str, b: &str) -> bool {
    let (a, b) = (symbols(a), symbols(b));
    // Reachability over pairs of positions: the product of the two
    // patterns' automata, a `*` either passing or taking a character.
    let (n, m) = (a.len(), b.len());
    let mut seen = vec![false; (n + 1) * (m + 1)];
    let mut todo = vec![(0usize, 0usize)];
    while let Some((i, j)) = todo.pop() {
        if std::mem::replace(&mut seen[i * (m + 1) + j], true) {
            continue;
        }
        if i == n && j == m {
            return true;
        }
        let mut push = |x: usize, y: usize| {
            if !seen[x * (m + 1) + y] {
                todo.push((x, y));
            }
        };
        if i < n && a[i] == Sym::Any {
            push(i + 1, j);
        }
        if j < m && b[j] == Sym::Any {
            push(i, j + 1);
        }
        if i < n && j < m {
            let same_char = match (a[i], b[j]) {
                (Sym::Lit(x), Sym::Lit(y)) => x == y,
                _ => true,
            };
            if same_char {
                // A `*` that takes a character stays where it is.
                let x = if a[i] == Sym::Any { i } else { i + 1 };
                let y = if b[j] == Sym::Any { j } else { j + 1 };
                push(x, y);
            }
        }
    }
    false
}

/// Does `general` match every action `specific` matches? Exact for
/// actions without wildcards; for a pattern, `specific`'s own `*` and `?`
/// must be matched by a `*` (or, for `?`, a `?`) of `general`, which never
/// says yes wrongly but may say no for an exotic pair.
pub fn covers(general: &str, specific: &str) -> bool {
    let (g, s) = (symbols(general), symbols(specific));
    let (n, m) = (g.len(), s.len());
    // dp[i][j]: g[i..] covers s[j..].
    let mut dp = vec![vec![false; m + 1]; n + 1];
    dp[n][m] = true;
    for i in (0..n).rev() {
        for j in (0..=m).rev() {
            dp[i][j] = match g[i] {
                Sym::Any => dp[i + 1][j] || (j < m && dp[i][j + 1]),
                Sym::One => j < m && s[j] != Sym::Any && dp[i + 1][j + 1],
                Sym::Lit(c) => j < m && s[j] == Sym::Lit(c) && dp[i + 1][j + 1],
            };
        }
    }
    dp[0][0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn url_encoded_documents_read_as_json() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"}]}"#;
        let encoded: String = doc
            .bytes()
            .map(|b| match b {
                b'{' | b'}' | b'"' | b':' | b',' | b'[' | b']' | b'*' => format!("%{b:02X}"),
                b => (b as char).to_string(),
            })
            .collect();
        assert_eq!(parse(&encoded).unwrap(), parse(doc).unwrap());
        assert!(parse("%ZZ").is_err());
        assert!(parse("not a policy").is_err());
    }

    #[test]
    fn canonical_documents_do_not_depend_on_order_or_form() {
        let a = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow",
            "Action": ["rds:B", "ec2:A", "ec2:A"], "Resource": "*"}});
        let b = json!({"Statement": [{"Resource": ["*"], "Action": ["ec2:A", "rds:B"],
            "Effect": "Allow"}], "Version": "2012-10-17"});
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(text(&a), text(&b));
        assert!(text(&a).starts_with(r#"{"Statement":[{"Action":["ec2:A","rds:B"]"#));
    }

    #[test]
    fn patterns_overlap_when_some_action_matches_both() {
        let yes = [
            ("ec2:DeleteSnapshot", "ec2:DeleteSnapshot"),
            ("EC2:deletesnapshot", "ec2:DeleteSnapshot"),
            ("ec2:Delete*", "ec2:DeleteSnapshot"),
            ("*", "rds:DeleteDBSnapshot"),
            ("ec2:*", "ec2:Delete*"),
            ("*:DeleteSnapshot", "ec2:Delete*"),
            ("ec2:Delete?napshot", "ec2:DeleteSnapshot"),
            ("ec2:*Snapshot", "ec2:Delete*"),
        ];
        for (a, b) in yes {
            assert!(overlaps(a, b), "{a} / {b}");
            assert!(overlaps(b, a), "{b} / {a}");
        }
        let no = [
            ("ec2:Delete*", "rds:DeleteDBSnapshot"),
            ("ec2:DescribeSnapshots", "ec2:DeleteSnapshot"),
            ("ec2:Delete?", "ec2:DeleteSnapshot"),
            ("s3:*", "ec2:*"),
        ];
        for (a, b) in no {
            assert!(!overlaps(a, b), "{a} / {b}");
            assert!(!overlaps(b, a), "{b} / {a}");
        }
    }

    #[test]
    fn a_pattern_covers_what_it_matches_entirely() {
        assert!(covers("*", "ec2:Delete*"));
        assert!(covers("ec2:*", "ec2:DeleteSnapshot"));
        assert!(covers("ec2:Delete*", "EC2:Delete*"));
        assert!(covers("ec2:DeleteSnapshot", "ec2:deletesnapshot"));
        assert!(!covers("ec2:DeleteSnapshot", "ec2:Delete*"));
        assert!(!covers("ec2:Delete?*", "ec2:Delete*"));
        assert!(!covers("rds:*", "ec2:DeleteSnapshot"));
    }
}
