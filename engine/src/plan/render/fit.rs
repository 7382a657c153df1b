//! The Markdown view fitted to one pull-request comment. GitHub refuses a
//! comment over 65,536 characters, and the plan of ten thousand targets is
//! megabytes. Over the cap the view keeps what a reviewer must see (the
//! counts, the banners, every destructive change), fills the room left with
//! the other changes in order, folds the remainder per kind of change, and
//! says what it folded. It never drops a destructive change silently: when
//! those alone do not fit, it says how many it left out.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{
    markdown, md_details, md_power, md_row, md_top, md_warning, no_changes, MD_TABLE_HEAD, MD_TITLE,
};
use crate::plan::{Action, Plan};
use crate::Address;

/// The default cap: under GitHub's 65,536 characters with room for what a
/// CI job adds around the plan (a bytes cap is also a characters cap).
pub const MARKDOWN_MAX_BYTES: usize = 60_000;

/// [`markdown`], within `max_bytes` when the counts and banners fit in it.
/// `full_view` is the command that shows the whole plan (for example
/// `lifeboat show plan.json`), named in every fold line. A plan whose whole
/// view fits is rendered unchanged.
pub fn markdown_within(plan: &Plan, max_bytes: usize, full_view: &str) -> String {
    let whole = markdown(plan);
    if whole.len() <= max_bytes {
        return whole;
    }
    let mut fit = Fitting::new(plan, max_bytes, full_view);
    fit.choose();
    fit.render()
}

/// Does this change destroy something a reviewer must see?
fn destructive(action: Action) -> bool {
    match action {
        Action::Delete | Action::Replace => true,
        Action::Create | Action::Update | Action::Read | Action::Move => false,
    }
}

/// What is kept, and the room left while choosing.
struct Fitting<'p> {
    plan: &'p Plan,
    max_bytes: usize,
    full_view: &'p str,
    room: usize,
    rows: Vec<String>,
    kept_rows: Vec<bool>,
    notes: Vec<String>,
    kept_notes: Vec<bool>,
    details: Vec<Option<String>>,
    kept_details: Vec<bool>,
}

impl<'p> Fitting<'p> {
    fn new(plan: &'p Plan, max_bytes: usize, full_view: &'p str) -> Fitting<'p> {
        let rows: Vec<String> = plan.changes.iter().map(md_row).collect();
        let notes: Vec<String> = plan
            .power
            .iter()
            .map(md_power)
            .chain(plan.warnings.iter().map(|w| md_warning(w)))
            .collect();
        let details: Vec<Option<String>> = plan.changes.iter().map(md_details).collect();
        let mut fit = Fitting {
            plan,
            max_bytes,
            full_view,
            room: 0,
            kept_rows: vec![false; rows.len()],
            kept_notes: vec![false; notes.len()],
            kept_details: vec![false; details.len()],
            rows,
            notes,
            details,
        };
        // Room for the worst trailer: every count at its largest, so the
        // real one, written last, always fits in what was set aside.
        let worst = fit.trailer_bounds();
        let always = fit.always().len();
        fit.room = max_bytes.saturating_sub(always + worst);
        fit
    }

    /// What is kept at any size: the title, the counts and the banners.
    fn always(&self) -> String {
        let mut out = String::from(MD_TITLE);
        if self.plan.is_empty() {
            out.push_str(no_changes(self.plan));
        } else {
            out.push_str(&md_top(self.plan));
            out.push_str(MD_TABLE_HEAD);
        }
        out
    }

    fn take(&mut self, bytes: usize) -> bool {
        if bytes > self.room {
            return false;
        }
        self.room -= bytes;
        true
    }

    /// Destructive rows first, then notes, then updates with their diffs,
    /// then the other rows in order: each while it fits, stopping at the
    /// first that does not, so what is kept of each is a prefix. Updates
    /// go before creates because a reviewer reads what changes in place;
    /// a long run of creates reads well enough as a count.
    fn choose(&mut self) {
        let action = |i: usize| self.plan.changes[i].action;
        let (destroys, others): (Vec<usize>, Vec<usize>) =
            (0..self.rows.len()).partition(|&i| destructive(action(i)));
        let (updates, others): (Vec<usize>, Vec<usize>) = others
            .into_iter()
            .partition(|&i| action(i) == Action::Update);
        self.keep_rows(&destroys);
        for i in 0..self.notes.len() {
            if !self.take(self.notes[i].len()) {
                break;
            }
            self.kept_notes[i] = true;
        }
        self.keep_rows(&updates);
        for &i in &updates {
            let Some(len) = self.details[i].as_ref().map(String::len) else {
                continue;
            };
            if !self.kept_rows[i] || !self.take(len) {
                break;
            }
            self.kept_details[i] = true;
        }
        self.keep_rows(&others);
    }

    fn keep_rows(&mut self, rows: &[usize]) {
        for &i in rows {
            if !self.take(self.rows[i].len()) {
                break;
            }
            self.kept_rows[i] = true;
        }
    }

    /// The trailer as large as it can be: every change, note and diff
    /// counted as folded or left out.
    fn trailer_bounds(&self) -> usize {
        let folded = self.groups(|_| true);
        let destroys = self
            .plan
            .changes
            .iter()
            .filter(|c| destructive(c.action))
            .count();
        let diffs = self.details.iter().flatten().count();
        let (left_out, notice) = self.trailer(destroys, &folded, self.notes.len(), diffs);
        left_out.len() + notice.len()
    }

    /// Folded changes counted per (action, kind of address).
    fn groups(&self, folded: impl Fn(usize) -> bool) -> BTreeMap<(Action, usize), usize> {
        let mut groups = BTreeMap::new();
        for (i, c) in self.plan.changes.iter().enumerate() {
            if destructive(c.action) || !folded(i) {
                continue;
            }
            *groups
                .entry((c.action, kind_index(&c.address)))
                .or_insert(0) += 1;
        }
        groups
    }

    /// The caution about destructive changes left out (empty when none
    /// is) and the notice of what is folded (empty when nothing is).
    fn trailer(
        &self,
        left_out: usize,
        folded: &BTreeMap<(Action, usize), usize>,
        notes: usize,
        diffs: usize,
    ) -> (String, String) {
        let full_view = self.full_view;
        let cap = thousands(self.max_bytes);
        let mut caution = String::new();
        if left_out > 0 {
            writeln!(
                caution,
                "> [!CAUTION]\n> **{} more destructive change(s) (deletes and replaces) are not listed**: they do not fit in one comment of {cap} bytes. See the full plan with `{full_view}`.\n",
                thousands(left_out)
            )
            .unwrap();
        }
        let mut lines = Vec::new();
        for (&(action, kind), &n) in folded {
            let (one, many) = KINDS[kind];
            let (act_one, act_many) = action_words(action);
            let (act, what) = if n == 1 {
                (act_one, one)
            } else {
                (act_many, many)
            };
            lines.push(format!(
                "… and {} more {act} of {what}, folded; see the full plan with `{full_view}`",
                thousands(n)
            ));
        }
        if notes > 0 {
            lines.push(format!("… and {} more note(s), folded", thousands(notes)));
        }
        if diffs > 0 {
            lines.push(format!(
                "… and the diffs of {} update(s), folded",
                thousands(diffs)
            ));
        }
        let mut notice = String::new();
        if !lines.is_empty() {
            let listed = if left_out > 0 {
                "some destructive changes are left out (see above)"
            } else {
                "every destructive change is listed"
            };
            write!(
                notice,
                "\n> [!IMPORTANT]\n> This plan is folded to fit one comment of {cap} bytes; {listed}. Folded:\n>\n"
            )
            .unwrap();
            for l in lines {
                writeln!(notice, "> - {l}").unwrap();
            }
        }
        (caution, notice)
    }

    fn render(&self) -> String {
        let left_out = self
            .plan
            .changes
            .iter()
            .zip(&self.kept_rows)
            .filter(|(c, kept)| destructive(c.action) && !**kept)
            .count();
        let folded = self.groups(|i| !self.kept_rows[i]);
        let notes = self.kept_notes.iter().filter(|k| !**k).count();
        let diffs = (0..self.details.len())
            .filter(|&i| self.details[i].is_some() && !self.kept_details[i])
            .count();
        let (caution, notice) = self.trailer(left_out, &folded, notes, diffs);

        let mut out = String::from(MD_TITLE);
        let power = self.plan.power.len();
        for (note, _) in self
            .kept(&self.notes, &self.kept_notes)
            .take_while(|(_, i)| *i < power)
        {
            out.push_str(note);
        }
        if self.plan.is_empty() {
            out.push_str(no_changes(self.plan));
            out.push_str(&notice);
            return out;
        }
        out.push_str(&md_top(self.plan));
        out.push_str(&caution);
        for (note, _) in self
            .kept(&self.notes, &self.kept_notes)
            .filter(|(_, i)| *i >= power)
        {
            out.push_str(note);
        }
        out.push_str(MD_TABLE_HEAD);
        for (row, _) in self.kept(&self.rows, &self.kept_rows) {
            out.push_str(row);
        }
        out.push_str(&notice);
        for (i, d) in self.details.iter().enumerate() {
            if let (Some(d), true) = (d, self.kept_details[i]) {
                out.push_str(d);
            }
        }
        out
    }

    fn kept<'a>(
        &self,
        items: &'a [String],
        kept: &'a [bool],
    ) -> impl Iterator<Item = (&'a String, usize)> + 'a {
        items
            .iter()
            .zip(kept)
            .enumerate()
            .filter(|(_, (_, k))| **k)
            .map(|(i, (s, _))| (s, i))
    }
}

/// Each kind of address in the operator's words, singular and plural,
/// indexed by [`kind_index`].
const KINDS: [(&str, &str); 12] = [
    ("an account", "accounts"),
    ("a policy", "policies"),
    ("a backup target", "backup targets"),
    ("a backup", "backups"),
    ("a snapshot", "snapshots"),
    ("an AMI", "AMIs"),
    ("a DB snapshot", "DB snapshots"),
    ("a DB cluster snapshot", "DB cluster snapshots"),
    ("a VPC clone", "VPC clones"),
    ("a DR copy", "DR copies"),
    ("an IAM role", "IAM roles"),
    ("a resource-control target", "resource-control targets"),
];

fn kind_index(a: &Address) -> usize {
    match a {
        Address::Account { .. } => 0,
        Address::Policy { .. } => 1,
        Address::Target { .. } => 2,
        Address::Backup { .. } => 3,
        Address::Snapshot { .. } => 4,
        Address::Image { .. } => 5,
        Address::DbSnapshot { .. } => 6,
        Address::DbClusterSnapshot { .. } => 7,
        Address::VpcClone { .. } => 8,
        Address::DrCopy { .. } => 9,
        Address::IamRole { .. } => 10,
        Address::ControlTarget { .. } => 11,
    }
}

/// A folded change's action, singular and plural ("1 more create of a
/// policy", "9 more creates of policies").
fn action_words(a: Action) -> (&'static str, &'static str) {
    match a {
        Action::Create => ("create", "creates"),
        Action::Update => ("update", "updates"),
        Action::Delete => ("delete", "deletes"),
        Action::Replace => ("replace", "replaces"),
        Action::Read => ("catalog forget", "catalog forgets"),
        Action::Move => ("move", "moves"),
    }
}

/// 9412 as "9,412".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
#[path = "fit_tests.rs"]
mod tests;
