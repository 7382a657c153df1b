//! `moved { from = policy.OLD  to = policy.NEW }`: a policy renamed. The
//! plan moves the policy in state with its whole catalog instead of
//! deleting the old one's backups and starting the new one empty.

use std::collections::{BTreeMap, HashMap};

use hcl_edit::structure::{Block, Body};

use super::{start, Decoder, Value};
use crate::config::{Moved, Policy};
use crate::source::Source;

pub(super) fn decode_moved(
    d: &mut Decoder,
    files: &[(&Source, &Body)],
    blocks: &[(usize, &Block)],
    policies: &BTreeMap<String, Policy>,
) -> Vec<Moved> {
    let mut out: Vec<Moved> = Vec::new();
    // Where each name was first used as a `from` and as a `to`.
    let mut froms: HashMap<String, String> = HashMap::new();
    let mut tos: HashMap<String, String> = HashMap::new();
    for &(i, b) in blocks {
        let src = files[i].0;
        d.no_labels(src, b);
        let scope = d.scope(
            src,
            &b.body,
            "the moved block".into(),
            start(&b.ident),
            &["from", "to"],
            &[],
        );
        let from = policy_ref(d, &scope, "from");
        let to = policy_ref(d, &scope, "to");
        let (Some((from, from_at)), Some((to, to_at))) = (from, to) else {
            continue;
        };
        let here = src.short_location(start(&b.ident));
        let mut ok = true;
        if from == to {
            d.error(
                src,
                to_at,
                "Invalid move",
                format!("the moved block moves policy.{from} to itself"),
            );
            ok = false;
        }
        if policies.contains_key(&from) {
            d.error(
                src,
                from_at,
                "Invalid move",
                format!("policy.{from} is still declared; a moved block renames a policy that is no longer in the configuration"),
            );
            ok = false;
        }
        if d.complete && !policies.contains_key(&to) {
            d.error(
                src,
                to_at,
                "Invalid move",
                format!(
                    "policy.{to} is not declared; a moved block must name the policy's new name"
                ),
            );
            ok = false;
        }
        for (name, at, seen, role) in [(&from, from_at, &froms, "from"), (&to, to_at, &tos, "to")] {
            if let Some(first) = seen.get(name) {
                d.error(
                    src,
                    at,
                    "Duplicate move",
                    format!("policy.{name} is already the {role:?} of the moved block at {first}"),
                );
                ok = false;
            }
        }
        if let Some(first) = tos.get(&from).or_else(|| froms.get(&to)) {
            d.error(
                src,
                start(&b.ident),
                "Chained move",
                format!("this move and the one at {first} chain; move policy.{from} straight to its final name"),
            );
            ok = false;
        }
        froms.entry(from.clone()).or_insert_with(|| here.clone());
        tos.entry(to.clone()).or_insert(here);
        if ok {
            out.push(Moved { from, to });
        }
    }
    out
}

/// `policy.NAME`, with where it is written.
fn policy_ref(d: &mut Decoder, scope: &super::Scope<'_>, name: &str) -> Option<(String, usize)> {
    let attr = d.get(scope, name, true)?;
    let at = start(&attr.value);
    match d.value(scope, &attr.value)? {
        Value::Ref(path) if path.len() == 2 && path[0] == "policy" => Some((path[1].clone(), at)),
        other => {
            d.error(
                scope.src,
                at,
                "Invalid reference",
                format!(
                    "{name:?} in {} must be a reference of the form policy.NAME, not {}",
                    scope.what,
                    other.describe()
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::load_sources;

    const BASE: &str = "account \"main\" {\n  regions = [\"us-east-1\"]\n}\npolicy \"new\" {\n  account = account.main\n  generations = 2\n}\n";

    fn load(extra: &str) -> Result<crate::Loaded, crate::Diagnostics> {
        load_sources(&[(PathBuf::from("x.lb.hcl"), format!("{BASE}{extra}"))])
    }

    #[test]
    fn a_move_to_a_declared_policy_is_kept() {
        let loaded = load("moved {\n  from = policy.old\n  to   = policy.new\n}\n").unwrap();
        let m = &loaded.config.moved;
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].from.as_str(), m[0].to.as_str()), ("old", "new"));
    }

    #[test]
    fn bad_moves_are_diagnostics_with_their_place() {
        for (block, needle, at) in [
            ("moved {\n  from = policy.new\n  to   = policy.new\n}\n", "to itself", "x.lb.hcl:10:"),
            ("moved {\n  from = policy.old\n  to   = policy.other\n}\n", "policy.other is not declared", "x.lb.hcl:10:"),
            ("moved {\n  from = \"old\"\n  to   = policy.new\n}\n", "policy.NAME", "x.lb.hcl:9:"),
            ("moved {\n  from = policy.a\n  to   = policy.new\n}\nmoved {\n  from = policy.b\n  to   = policy.new\n}\n", "already the \"to\"", "x.lb.hcl:14:"),
        ] {
            let text = load(block).unwrap_err().to_string();
            assert!(text.contains(needle), "{block}: {text}");
            assert!(text.contains(at), "{block}: {text}");
        }
    }
}
