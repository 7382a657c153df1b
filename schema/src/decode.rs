//! From syntax trees to [`Config`]: every block, attribute and value checked
//! against the language, every problem collected (never only the first).
//!
//! Values are literals only (strings, numbers, bools, lists) plus the
//! `account.NAME` reference: a configuration is data, so anything computed
//! (functions, interpolation, operators) is reported as unsupported rather
//! than half-evaluated.

use std::collections::HashMap;

use hcl_edit::expr::{Array, Expression, TraversalOperator};
use hcl_edit::structure::{Attribute, Block, BlockLabel, Body, Structure};
use hcl_edit::template::Element;
use hcl_edit::Span;

use crate::config::*;
use crate::diag::Diagnostic;
use crate::source::Source;
use crate::validate::{self, did_you_mean};

mod account;
mod db_targets;
mod dr;
mod dr_lock;
mod moved;
mod options;
mod policy;
mod recovery;
mod recovery_order;
mod recovery_step;
mod resource_control;
mod schedule;
mod select;
mod state;
mod vpc_capture;
mod vpc_clone;

use account::{account_reference, DeclaredAccount};
use policy::target_region;

const TOP_BLOCKS: &[&str] = &[
    "lifeboat",
    "account",
    "policy",
    "schedule",
    "vpc_capture",
    "vpc_clone",
    "notifications",
    "moved",
    "recovery_scenario",
    "resource_control_group",
];
fn start<T: Span>(node: &T) -> usize {
    node.span().map_or(0, |r| r.start)
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plain_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A value as the language sees it.
enum Value<'a> {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    List(&'a Array),
    /// `a.b.c`: a variable followed by attribute accesses only.
    Ref(Vec<String>),
    Object,
    /// Why the expression is not supported.
    Unsupported(String),
}

impl Value<'_> {
    fn of(expr: &Expression) -> Value<'_> {
        match expr {
            Expression::Null(_) => Value::Null,
            Expression::Bool(b) => Value::Bool(*b.value()),
            Expression::Number(n) => Value::Num(n.value().as_f64().unwrap_or(f64::NAN)),
            Expression::String(s) => Value::Str(s.value().clone()),
            Expression::Array(a) => Value::List(a),
            Expression::Object(_) => Value::Object,
            Expression::StringTemplate(t) => literal_template(t.iter()).map_or_else(
                || Value::Unsupported(
                    "string interpolation (\"${...}\") and template directives (\"%{...}\") are not supported; write the value literally"
                        .into(),
                ),
                Value::Str,
            ),
            Expression::HeredocTemplate(h) => literal_template(h.template.iter()).map_or_else(
                || Value::Unsupported(
                    "interpolation (\"${...}\") and directives (\"%{...}\") in heredocs are not supported; write the value literally"
                        .into(),
                ),
                Value::Str,
            ),
            Expression::Parenthesis(p) => Value::of(p.inner()),
            Expression::Variable(v) => Value::Ref(vec![v.value().to_string()]),
            Expression::Traversal(t) => {
                let mut path = match &t.expr {
                    Expression::Variable(v) => vec![v.value().to_string()],
                    _ => return Value::Unsupported("only references of the form account.NAME are supported".into()),
                };
                for op in &t.operators {
                    match op.value() {
                        TraversalOperator::GetAttr(name) => path.push(name.value().to_string()),
                        _ => {
                            return Value::Unsupported(
                                "indexes and splats (\"[...]\", \".*\") are not supported; only references of the form account.NAME are"
                                    .into(),
                            )
                        }
                    }
                }
                Value::Ref(path)
            }
            Expression::FuncCall(f) => Value::Unsupported(format!(
                "function calls such as \"{}(...)\" are not supported; write the value literally",
                f.name.name.value()
            )),
            Expression::Conditional(_) => Value::Unsupported(
                "conditional expressions (\"a ? b : c\") are not supported; write the value literally".into(),
            ),
            Expression::UnaryOp(_) | Expression::BinaryOp(_) => Value::Unsupported(
                "operators are not supported; write the value literally".into(),
            ),
            Expression::ForExpr(_) => {
                Value::Unsupported("\"for\" expressions are not supported; write the value literally".into())
            }
        }
    }

    /// For "must be X, not Y" messages.
    fn describe(&self) -> String {
        match self {
            Value::Str(s) => format!("the string {s:?}"),
            Value::Num(n) => format!("the number {n}"),
            Value::Bool(b) => format!("the bool {b}"),
            Value::Null => "null".into(),
            Value::List(_) => "a list".into(),
            Value::Ref(p) => format!("the reference {}", p.join(".")),
            Value::Object => "an object".into(),
            Value::Unsupported(_) => "an expression".into(),
        }
    }
}

fn literal_template<'a>(mut elements: impl Iterator<Item = &'a Element>) -> Option<String> {
    elements.try_fold(String::new(), |mut acc, e| match e {
        Element::Literal(s) => {
            acc.push_str(s.value());
            Some(acc)
        }
        _ => None,
    })
}

/// The attributes and blocks of one block body, checked against what the
/// block type allows.
struct Scope<'a> {
    src: &'a Source,
    /// `policy "web"`, `instance "i-..." of policy "web"`: names the block in details.
    what: String,
    /// Where "missing" problems point: the block's type keyword.
    at: usize,
    attrs: HashMap<&'a str, &'a Attribute>,
    blocks: Vec<&'a Block>,
}

/// The one block named `kind` in `scope`, reporting any second one where
/// it is, with where the first is.
fn only_block<'a>(d: &mut Decoder, scope: &Scope<'a>, kind: &str) -> Option<&'a Block> {
    let mut found: Option<&Block> = None;
    for b in scope
        .blocks
        .iter()
        .filter(|b| b.ident.value().as_str() == kind)
    {
        match found {
            Some(first) => d.error(
                scope.src,
                start(&b.ident),
                "Duplicate block",
                format!(
                    "{} has at most one {kind} block; the first is at {}",
                    scope.what,
                    scope.src.short_location(start(&first.ident))
                ),
            ),
            None => found = Some(b),
        }
    }
    found
}

pub(crate) struct Decoder {
    pub diags: Vec<Diagnostic>,
    complete: bool,
}

impl Decoder {
    fn error(&mut self, src: &Source, offset: usize, summary: &str, detail: String) {
        self.diags.push(Diagnostic::error(
            summary,
            detail,
            Some(src.location(offset)),
        ));
    }

    fn warning(&mut self, src: &Source, offset: usize, summary: &str, detail: String) {
        self.diags.push(Diagnostic::warning(
            summary,
            detail,
            Some(src.location(offset)),
        ));
    }

    /// Sorts a body into attributes and blocks, reporting names the block does not allow.
    fn scope<'a>(
        &mut self,
        src: &'a Source,
        body: &'a Body,
        what: String,
        at: usize,
        attr_names: &[&str],
        block_names: &[&str],
    ) -> Scope<'a> {
        let mut scope = Scope {
            src,
            what,
            at,
            attrs: HashMap::new(),
            blocks: Vec::new(),
        };
        let candidates = || attr_names.iter().chain(block_names).copied();
        for s in body.iter() {
            match s {
                Structure::Attribute(a) => {
                    let name = a.key.value().as_str();
                    if attr_names.contains(&name) {
                        scope.attrs.insert(name, a);
                    } else if block_names.contains(&name) {
                        self.error(
                            src,
                            start(&a.key),
                            "Block expected",
                            format!(
                                "{name:?} is a block, not an attribute: write {name} {{ ... }}"
                            ),
                        );
                    } else {
                        self.error(
                            src,
                            start(&a.key),
                            "Unknown attribute",
                            format!(
                                "{} has no attribute {name:?}{}",
                                scope.what,
                                did_you_mean(name, candidates())
                            ),
                        );
                    }
                }
                Structure::Block(b) => {
                    let name = b.ident.value().as_str();
                    if block_names.contains(&name) {
                        scope.blocks.push(b);
                    } else if attr_names.contains(&name) {
                        self.error(
                            src,
                            start(&b.ident),
                            "Attribute expected",
                            format!("{name:?} is an attribute, not a block: write {name} = ..."),
                        );
                    } else {
                        let allowed = if block_names.is_empty() {
                            "it contains no blocks".to_string()
                        } else {
                            format!("it may contain {} blocks", plain_list(block_names))
                        };
                        self.error(
                            src,
                            start(&b.ident),
                            "Unsupported block type",
                            format!(
                                "{} cannot contain {name:?} blocks; {allowed}{}",
                                scope.what,
                                did_you_mean(name, candidates())
                            ),
                        );
                    }
                }
            }
        }
        scope
    }

    /// The attribute, unless absent or null (null means "not set", as in Terraform).
    fn get<'a>(&mut self, scope: &Scope<'a>, name: &str, required: bool) -> Option<&'a Attribute> {
        match scope.attrs.get(name) {
            Some(a) if !matches!(a.value, Expression::Null(_)) => Some(a),
            _ => {
                if required {
                    self.error(
                        scope.src,
                        scope.at,
                        "Missing required attribute",
                        format!("{} must set {name:?}", scope.what),
                    );
                }
                None
            }
        }
    }

    /// The value of an attribute, or `None` after reporting an unsupported expression.
    fn value<'a>(&mut self, scope: &Scope<'_>, expr: &'a Expression) -> Option<Value<'a>> {
        match Value::of(expr) {
            Value::Unsupported(why) => {
                self.error(scope.src, start(expr), "Unsupported expression", why);
                None
            }
            v => Some(v),
        }
    }

    fn wrong_type(
        &mut self,
        scope: &Scope<'_>,
        expr: &Expression,
        name: &str,
        expected: &str,
        got: &Value<'_>,
    ) {
        let hint = match (expected, got) {
            ("a string", Value::Ref(p)) if p.len() == 1 => {
                format!("; write \"{}\" in quotes", p[0])
            }
            _ => String::new(),
        };
        self.error(
            scope.src,
            start(expr),
            "Incorrect type",
            format!(
                "{name:?} in {} must be {expected}, not {}{hint}",
                scope.what,
                got.describe()
            ),
        );
    }

    fn expr_string(&mut self, scope: &Scope<'_>, expr: &Expression, name: &str) -> Option<String> {
        match self.value(scope, expr)? {
            Value::Str(s) => Some(s),
            v => {
                self.wrong_type(scope, expr, name, "a string", &v);
                None
            }
        }
    }

    fn string(&mut self, scope: &Scope<'_>, name: &str, required: bool) -> Option<(String, usize)> {
        let a = self.get(scope, name, required)?;
        let s = self.expr_string(scope, &a.value, name)?;
        Some((s, start(&a.value)))
    }

    /// A string that must not be empty.
    fn text(&mut self, scope: &Scope<'_>, name: &str, required: bool) -> Option<String> {
        let (s, at) = self.string(scope, name, required)?;
        if s.trim().is_empty() {
            self.error(
                scope.src,
                at,
                "Empty value",
                format!("{name:?} in {} must not be empty", scope.what),
            );
            return None;
        }
        Some(s)
    }

    fn bool(&mut self, scope: &Scope<'_>, name: &str) -> Option<bool> {
        let a = self.get(scope, name, false)?;
        match self.value(scope, &a.value)? {
            Value::Bool(b) => Some(b),
            v => {
                let hint = match &v {
                    Value::Str(s) if s == "true" || s == "false" => {
                        format!("; write {s} without quotes")
                    }
                    _ => String::new(),
                };
                self.error(
                    scope.src,
                    start(&a.value),
                    "Incorrect type",
                    format!(
                        "{name:?} in {} must be a bool (true or false), not {}{hint}",
                        scope.what,
                        v.describe()
                    ),
                );
                None
            }
        }
    }

    fn whole_number(
        &mut self,
        scope: &Scope<'_>,
        name: &str,
        required: bool,
    ) -> Option<(f64, usize)> {
        let a = self.get(scope, name, required)?;
        let at = start(&a.value);
        match self.value(scope, &a.value)? {
            Value::Num(n) if n.fract() == 0.0 => Some((n, at)),
            Value::Num(n) => {
                self.error(
                    scope.src,
                    at,
                    "Incorrect type",
                    format!("{name:?} in {} must be a whole number, not {n}", scope.what),
                );
                None
            }
            v => {
                let hint = match &v {
                    Value::Str(s) if s.trim().parse::<f64>().is_ok() => {
                        format!("; write {} without quotes", s.trim())
                    }
                    _ => String::new(),
                };
                self.error(
                    scope.src,
                    at,
                    "Incorrect type",
                    format!(
                        "{name:?} in {} must be a whole number, not {}{hint}",
                        scope.what,
                        v.describe()
                    ),
                );
                None
            }
        }
    }

    /// A string out of a fixed set; returns its index in `allowed`.
    fn choice(&mut self, scope: &Scope<'_>, name: &str, allowed: &[&str]) -> Option<usize> {
        let (s, at) = self.string(scope, name, false)?;
        match allowed.iter().position(|a| *a == s) {
            Some(i) => Some(i),
            None => {
                self.error(
                    scope.src,
                    at,
                    "Invalid value",
                    format!(
                        "{name:?} in {} must be one of {}, not {s:?}{}",
                        scope.what,
                        quoted_list(allowed),
                        did_you_mean(&s, allowed.iter().copied())
                    ),
                );
                None
            }
        }
    }

    /// A list of strings, each with its offset; reports non-string elements.
    fn string_list(
        &mut self,
        scope: &Scope<'_>,
        name: &str,
        required: bool,
    ) -> Option<Vec<(String, usize)>> {
        let a = self.get(scope, name, required)?;
        let list = match self.value(scope, &a.value)? {
            Value::List(l) => l,
            v => {
                let hint = match &v {
                    Value::Str(s) => format!("; write [{s:?}]"),
                    _ => String::new(),
                };
                self.error(
                    scope.src,
                    start(&a.value),
                    "Incorrect type",
                    format!(
                        "{name:?} in {} must be a list of strings, not {}{hint}",
                        scope.what,
                        v.describe()
                    ),
                );
                return None;
            }
        };
        let mut out = Vec::new();
        let mut ok = true;
        for e in list.iter() {
            match self.value(scope, e) {
                Some(Value::Str(s)) => out.push((s, start(e))),
                Some(v) => {
                    self.error(
                        scope.src,
                        start(e),
                        "Incorrect type",
                        format!(
                            "the elements of {name:?} in {} must be strings, not {}",
                            scope.what,
                            v.describe()
                        ),
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn duplicates_in_list(
        &mut self,
        scope: &Scope<'_>,
        name: &str,
        items: &[(String, usize)],
    ) -> bool {
        let mut seen = HashMap::new();
        let mut ok = true;
        for (s, at) in items {
            if let Some(first) = seen.insert(s.as_str(), *at) {
                seen.insert(s.as_str(), first);
                self.error(
                    scope.src,
                    *at,
                    "Duplicate value",
                    format!(
                        "{s:?} is listed more than once in {name:?} of {}",
                        scope.what
                    ),
                );
                ok = false;
            }
        }
        ok
    }

    fn no_labels(&mut self, src: &Source, block: &Block) {
        if let Some(first) = block.labels.first() {
            let kind = block.ident.value().as_str();
            self.error(
                src,
                start(first),
                "Wrong number of labels",
                format!(
                    "{kind} blocks take no labels, found {}: write {kind} {{ ... }}",
                    block.labels.len()
                ),
            );
        }
    }

    /// The one label of `account "NAME"`, `instance "ID"`, ...
    fn one_label<'a>(
        &mut self,
        src: &Source,
        block: &'a Block,
        meaning: &str,
        example: &str,
    ) -> Option<&'a BlockLabel> {
        let kind = block.ident.value().as_str();
        match block.labels.as_slice() {
            [] => {
                self.error(
                    src,
                    start(&block.ident),
                    "Missing block label",
                    format!("{kind} blocks need one label, the {meaning}, as in {kind} {example:?} {{ ... }}"),
                );
                None
            }
            [one] => Some(one),
            [first, second, ..] => {
                self.error(
                    src,
                    start(second),
                    "Wrong number of labels",
                    format!(
                        "{kind} blocks take one label, the {meaning}, found {}: write {kind} {example:?} {{ ... }}",
                        block.labels.len()
                    ),
                );
                Some(first)
            }
        }
    }

    /// A block name (account, policy) checked against the name pattern.
    fn name_label(
        &mut self,
        src: &Source,
        block: &Block,
        example: &str,
    ) -> Option<(String, usize)> {
        let kind = block.ident.value().as_str();
        let label = self.one_label(src, block, &format!("{kind} name"), example)?;
        let name = label.as_str();
        if !validate::is_valid_name(name) {
            self.error(
                src,
                start(label),
                "Invalid name",
                format!(
                    "{name:?} is not a valid {kind} name: names start with a letter or \"_\" and contain only letters, digits, \"_\" and \"-\""
                ),
            );
            return None;
        }
        Some((name.to_string(), start(label)))
    }
}

/// Decodes the files of one configuration together. `complete` is false when
/// some file did not parse: references into it cannot be checked then.
pub(crate) fn decode(files: &[(&Source, &Body)], complete: bool) -> (Config, Vec<Diagnostic>) {
    let mut d = Decoder {
        diags: Vec::new(),
        complete,
    };
    let mut lifeboat: Vec<(usize, &Block)> = Vec::new();
    let mut accounts: Vec<(usize, &Block)> = Vec::new();
    let mut policies: Vec<(usize, &Block)> = Vec::new();
    let mut schedules: Vec<(usize, &Block)> = Vec::new();
    let mut vpc_captures: Vec<(usize, &Block)> = Vec::new();
    let mut vpc_clones: Vec<(usize, &Block)> = Vec::new();
    let mut notifications: Vec<(usize, &Block)> = Vec::new();
    let mut moves: Vec<(usize, &Block)> = Vec::new();
    let mut scenarios: Vec<(usize, &Block)> = Vec::new();
    let mut control_groups: Vec<(usize, &Block)> = Vec::new();
    for (i, (src, body)) in files.iter().enumerate() {
        let scope = d.scope(src, body, "a configuration".into(), 0, &[], TOP_BLOCKS);
        debug_assert!(scope.attrs.is_empty());
        for b in scope.blocks {
            match b.ident.value().as_str() {
                "lifeboat" => lifeboat.push((i, b)),
                "account" => accounts.push((i, b)),
                "schedule" => schedules.push((i, b)),
                "vpc_capture" => vpc_captures.push((i, b)),
                "vpc_clone" => vpc_clones.push((i, b)),
                "notifications" => notifications.push((i, b)),
                "moved" => moves.push((i, b)),
                "recovery_scenario" => scenarios.push((i, b)),
                "resource_control_group" => control_groups.push((i, b)),
                _ => policies.push((i, b)),
            }
        }
    }

    let mut config = Config::default();
    let mut state_block = None;
    if let Some(&(i, first)) = lifeboat.first() {
        let (state, retention) = settings_state(&mut d, files[i].0, first);
        state_block = state.map(|b| (files[i].0, b));
        config.settings.report_retention_secs = retention;
        for &(j, b) in &lifeboat[1..] {
            d.error(
                files[j].0,
                start(&b.ident),
                "Duplicate block",
                format!(
                    "a configuration has at most one lifeboat block; the first is at {}",
                    files[i].0.short_location(start(&first.ident))
                ),
            );
        }
    }

    let declared = account::decode_accounts(&mut d, files, &accounts);
    if let Some((src, b)) = state_block {
        config.settings.state = state::decode_state(&mut d, src, b, &declared);
    }

    let (decoded_schedules, schedule_names) = schedule::decode_schedules(&mut d, files, &schedules);
    config.schedules = decoded_schedules;
    config.policies = policy::decode_policies(&mut d, files, &policies, &declared, &schedule_names);
    config.vpc_captures = vpc_capture::decode_vpc_captures(&mut d, files, &vpc_captures, &declared);
    config.vpc_clones = vpc_clone::decode_vpc_clones(
        &mut d,
        files,
        &vpc_clones,
        &declared,
        &config.vpc_captures,
        &vpc_clone::declared_labels(&vpc_captures),
    );
    config.notifications = options::decode_notifications(&mut d, files, &notifications, &declared);
    config.moved = moved::decode_moved(&mut d, files, &moves, &config.policies);
    config.recovery_scenarios = recovery::decode_recovery_scenarios(
        &mut d,
        files,
        &scenarios,
        &recovery::Known {
            accounts: &declared,
            clones: &config.vpc_clones,
            declared_clones: &vpc_clone::declared_labels(&vpc_clones),
        },
    );
    config.resource_control_groups =
        resource_control::decode_groups(&mut d, files, &control_groups, &declared);
    config.accounts = declared
        .into_iter()
        .map(|(name, a)| (name, a.account))
        .collect();
    (config, d.diags)
}

/// The lifeboat block: its one `state` block, decoded by [`state::decode_state`]
/// once the accounts it may refer to are declared, and its
/// `report_retention`.
fn settings_state<'a>(
    d: &mut Decoder,
    src: &'a Source,
    block: &'a Block,
) -> (Option<&'a Block>, Option<u64>) {
    d.no_labels(src, block);
    let scope = d.scope(
        src,
        &block.body,
        "the lifeboat block".into(),
        start(&block.ident),
        &["report_retention"],
        &["state"],
    );
    let retention = d.duration(&scope, "report_retention", false);
    let mut first_state: Option<&Block> = None;
    for b in scope.blocks {
        if let Some(first) = first_state {
            d.error(
                src,
                start(&b.ident),
                "Duplicate block",
                format!(
                    "the lifeboat block has at most one state block; the first is at {}",
                    src.short_location(start(&first.ident))
                ),
            );
            continue;
        }
        first_state = Some(b);
    }
    (first_state, retention)
}
