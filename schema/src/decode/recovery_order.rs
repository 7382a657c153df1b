//! The `after` graph of a scenario's steps must have an order: a cycle is
//! reported with every step on it.

use std::collections::HashMap;

use super::recovery_step::DecodedStep;
use super::{Decoder, Scope};

/// Reports each cycle found (at the `after` entry that closes it); true
/// when there is none. Entries naming no step are skipped (reported
/// elsewhere). Iterative, so a long chain of steps cannot exhaust the stack.
pub(super) fn no_cycle(d: &mut Decoder, s: &Scope<'_>, steps: &[DecodedStep]) -> bool {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, x)| (x.name.as_str(), i))
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Seen {
        Not,
        OnPath,
        Done,
    }
    let mut seen = vec![Seen::Not; steps.len()];
    let mut ok = true;
    for root in 0..steps.len() {
        if seen[root] != Seen::Not {
            continue;
        }
        seen[root] = Seen::OnPath;
        // (step, index of the next `after` entry to follow)
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(top) = path.last_mut() {
            let (n, e) = *top;
            let Some((name, at)) = steps[n].after.get(e) else {
                seen[n] = Seen::Done;
                path.pop();
                continue;
            };
            top.1 += 1;
            let Some(&m) = index.get(name.as_str()) else {
                continue;
            };
            match seen[m] {
                Seen::Not => {
                    seen[m] = Seen::OnPath;
                    path.push((m, 0));
                }
                Seen::OnPath => {
                    let from = path.iter().position(|&(x, _)| x == m).unwrap_or(0);
                    let mut chain: Vec<String> = path[from..]
                        .iter()
                        .map(|&(x, _)| format!("{:?}", steps[x].name))
                        .collect();
                    chain.push(format!("{:?}", steps[m].name));
                    d.error(
                        s.src,
                        *at,
                        "Cycle in after",
                        format!(
                            "the steps of {} wait for each other: {}; no order satisfies that",
                            s.what,
                            chain.join(" after ")
                        ),
                    );
                    ok = false;
                }
                Seen::Done => {}
            }
        }
    }
    ok
}
