//! The plan as a dependency graph (petgraph): an edge `a -> b` means `a`
//! must finish before `b` starts. Deletes point the other way round from
//! creates (targets before their policy, snapshots before their backup), as
//! the planner records in each change's `depends_on`.

use std::collections::BTreeMap;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::addr::Address;
use crate::plan::Plan;

pub struct PlanGraph {
    pub graph: DiGraph<usize, ()>,
    pub nodes: Vec<NodeIndex>,
}

/// Builds the graph; node weights are indexes into `plan.changes`.
pub fn build(plan: &Plan) -> PlanGraph {
    let mut graph = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..plan.changes.len()).map(|i| graph.add_node(i)).collect();
    let index: BTreeMap<&Address, usize> = plan
        .changes
        .iter()
        .enumerate()
        .map(|(i, c)| (&c.address, i))
        .collect();
    for (i, c) in plan.changes.iter().enumerate() {
        for d in &c.depends_on {
            if let Some(&j) = index.get(d) {
                graph.add_edge(nodes[j], nodes[i], ());
            }
        }
    }
    PlanGraph { graph, nodes }
}

/// Graphviz DOT, one node per change labelled with its action and address.
pub fn to_dot(plan: &Plan) -> String {
    let g = build(plan);
    let mut out = String::from(
        "digraph plan {\n  rankdir = LR;\n  node [shape = box, fontname = \"monospace\"];\n",
    );
    for (i, c) in plan.changes.iter().enumerate() {
        let label = format!("{} {}", c.action.symbol(), c.address).replace('"', "\\\"");
        out.push_str(&format!("  n{i} [label = \"{label}\"];\n"));
    }
    for e in g.graph.raw_edges() {
        out.push_str(&format!(
            "  n{} -> n{};\n",
            g.graph[e.source()],
            g.graph[e.target()]
        ));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Change, Effect};

    fn change(addr: &str, deps: &[&str]) -> Change {
        Change {
            address: addr.parse().unwrap(),
            action: Action::Create,
            effect: Effect::Control,
            reason: None,
            before: None,
            after: None,
            depends_on: deps.iter().map(|d| d.parse().unwrap()).collect(),
            alert: None,
        }
    }

    #[test]
    fn edges_follow_depends_on() {
        let plan = Plan::new(
            "l".into(),
            0,
            "d".into(),
            chrono::Utc::now(),
            vec![
                change("policy.web", &["account.main"]),
                change("account.main", &[]),
            ],
            vec![],
        );
        let dot = to_dot(&plan);
        assert!(dot.contains("n0 [label = \"+ account.main\"]"), "{dot}");
        assert!(dot.contains("n0 -> n1;"), "{dot}");
        assert!(!petgraph::algo::is_cyclic_directed(&build(&plan).graph));
    }
}
