//! From syntax trees to [`Config`]: every block, attribute and value checked
//! against the language, every problem collected (never only the first).
//!
//! Values are literals only (strings, numbers, bools, lists) plus the
//! `account.NAME` reference: a configuration is data, so anything computed
//! (functions, interpolation, operators) is reported as unsupported rather
//! than half-evaluated.

use std::collections::{BTreeMap, HashMap};

use hcl_edit::expr::{Array, Expression, TraversalOperator};
use hcl_edit::structure::{Attribute, Block, BlockLabel, Body, Structure};
use hcl_edit::template::Element;
use hcl_edit::Span;

use crate::config::*;
use crate::diag::Diagnostic;
use crate::source::Source;
use crate::validate::{self, did_you_mean};

mod db_targets;
mod options;
mod schedule;
mod vpc_capture;
mod vpc_clone;

const TOP_BLOCKS: &[&str] = &[
    "lifeboat",
    "account",
    "policy",
    "schedule",
    "vpc_capture",
    "vpc_clone",
    "notifications",
];
const MAX_GENERATIONS: f64 = 10_000.0;

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

/// An account as declared, with what policies need to check against it.
struct DeclaredAccount {
    account: Account,
    src_index: usize,
    at: usize,
    /// False when `regions` has problems of its own: region checks of
    /// targets are skipped then rather than piling up errors.
    regions_ok: bool,
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
                _ => policies.push((i, b)),
            }
        }
    }

    let mut config = Config::default();
    if let Some(&(i, first)) = lifeboat.first() {
        config.settings = decode_settings(&mut d, files[i].0, first);
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

    let mut declared: BTreeMap<String, DeclaredAccount> = BTreeMap::new();
    for &(i, b) in &accounts {
        let src = files[i].0;
        let Some((account, regions_ok)) = decode_account(&mut d, src, b) else {
            continue;
        };
        if let Some(first) = declared.get(&account.name) {
            d.error(
                src,
                start(b.labels.first().expect("named")),
                "Duplicate account",
                format!(
                    "account {:?} is already declared at {}",
                    account.name,
                    files[first.src_index].0.short_location(first.at)
                ),
            );
            continue;
        }
        declared.insert(
            account.name.clone(),
            DeclaredAccount {
                account,
                src_index: i,
                at: start(&b.ident),
                regions_ok,
            },
        );
    }

    let (decoded_schedules, schedule_names) = schedule::decode_schedules(&mut d, files, &schedules);
    config.schedules = decoded_schedules;
    let mut policy_at: HashMap<String, (usize, usize)> = HashMap::new();
    for &(i, b) in &policies {
        let src = files[i].0;
        let (name, policy) = decode_policy(&mut d, src, b, &declared, &schedule_names);
        let Some(name) = name else { continue };
        if let Some(&(fi, at)) = policy_at.get(&name) {
            d.error(
                src,
                start(b.labels.first().expect("named")),
                "Duplicate policy",
                format!(
                    "policy {name:?} is already declared at {}",
                    files[fi].0.short_location(at)
                ),
            );
            continue;
        }
        policy_at.insert(name, (i, start(&b.ident)));
        if let Some(policy) = policy {
            config.policies.insert(policy.name.clone(), policy);
        }
    }
    config.vpc_captures = vpc_capture::decode_vpc_captures(&mut d, files, &vpc_captures, &declared);
    config.vpc_clones = vpc_clone::decode_vpc_clones(
        &mut d,
        files,
        &vpc_clones,
        &declared,
        &config.vpc_captures,
        &vpc_clone::declared_capture_names(&vpc_captures),
    );
    config.notifications = options::decode_notifications(&mut d, files, &notifications, &declared);
    config.accounts = declared
        .into_iter()
        .map(|(name, a)| (name, a.account))
        .collect();
    (config, d.diags)
}

fn decode_settings(d: &mut Decoder, src: &Source, block: &Block) -> Settings {
    d.no_labels(src, block);
    let scope = d.scope(
        src,
        &block.body,
        "the lifeboat block".into(),
        start(&block.ident),
        &[],
        &["state"],
    );
    let mut settings = Settings::default();
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
        d.no_labels(src, b);
        let state = d.scope(
            src,
            &b.body,
            "lifeboat.state".into(),
            start(&b.ident),
            &["backend", "path"],
            &[],
        );
        if let Some(i) = d.choice(&state, "backend", &["sqlite"]) {
            settings.state.backend = [StateBackend::Sqlite][i];
        }
        settings.state.path = d.text(&state, "path", false);
    }
    settings
}

const ACCOUNT_ATTRS: &[&str] = &["type", "regions", "profile", "allow_delete"];

/// `None` when the account has no usable name; otherwise the account (with
/// defaults where values were wrong) and whether its regions are usable.
fn decode_account(d: &mut Decoder, src: &Source, block: &Block) -> Option<(Account, bool)> {
    let name = d.name_label(src, block, "main");
    let what = match &name {
        Some((n, _)) => format!("account {n:?}"),
        None => "this account".into(),
    };
    let scope = d.scope(
        src,
        &block.body,
        what,
        start(&block.ident),
        ACCOUNT_ATTRS,
        &["assume_role"],
    );
    let kind = match d.choice(&scope, "type", &["backup", "dr"]) {
        Some(1) => AccountKind::Dr,
        _ => AccountKind::Backup,
    };
    let mut regions_ok = false;
    let mut regions = Vec::new();
    if let Some(list) = d.string_list(&scope, "regions", true) {
        regions_ok = true;
        if list.is_empty() {
            let at = start(&scope.attrs["regions"].value);
            d.error(
                src,
                at,
                "Empty value",
                format!(
                    "\"regions\" in {} must list at least one region",
                    scope.what
                ),
            );
            regions_ok = false;
        }
        for (r, at) in &list {
            if !validate::is_region(r) {
                d.error(
                    src,
                    *at,
                    "Invalid region",
                    format!(
                        "{r:?} in {} is not an AWS region name; expected a name like \"us-east-1\"",
                        scope.what
                    ),
                );
                regions_ok = false;
            }
        }
        regions_ok &= d.duplicates_in_list(&scope, "regions", &list);
        regions = list.into_iter().map(|(r, _)| r).collect();
    }
    let profile = d.text(&scope, "profile", false);
    let allow_delete = d
        .bool(&scope, "allow_delete")
        .unwrap_or(kind == AccountKind::Backup);

    let mut assume_role: Option<AssumeRole> = None;
    let mut first_role: Option<&Block> = None;
    for b in &scope.blocks {
        if let Some(first) = first_role {
            d.error(
                src,
                start(&b.ident),
                "Duplicate block",
                format!(
                    "{} has at most one assume_role block; the first is at {}",
                    scope.what,
                    src.short_location(start(&first.ident))
                ),
            );
            continue;
        }
        first_role = Some(b);
        d.no_labels(src, b);
        let role = d.scope(
            src,
            &b.body,
            format!("assume_role of {}", scope.what),
            start(&b.ident),
            &["role_arn", "external_id", "session_name"],
            &[],
        );
        let role_arn = d.string(&role, "role_arn", true).and_then(|(arn, at)| {
            if validate::is_role_arn(&arn) {
                Some(arn)
            } else {
                d.error(
                    src,
                    at,
                    "Invalid role ARN",
                    format!(
                        "{arn:?} is not an IAM role ARN; expected arn:aws:iam::<12-digit account id>:role/<name>"
                    ),
                );
                None
            }
        });
        let external_id = d.text(&role, "external_id", false);
        let session_name = d.string(&role, "session_name", false).and_then(|(s, at)| {
            if validate::is_session_name(&s) {
                Some(s)
            } else {
                d.error(
                    src,
                    at,
                    "Invalid value",
                    format!(
                        "\"session_name\" in {} must be 2 to 64 letters, digits or any of \"+=,.@_-\", not {s:?}",
                        role.what
                    ),
                );
                None
            }
        });
        assume_role = role_arn.map(|role_arn| AssumeRole {
            role_arn,
            external_id,
            session_name,
        });
    }

    let (name, _) = name?;
    Some((
        Account {
            name,
            kind,
            regions,
            profile,
            assume_role,
            allow_delete,
            location: src.location(start(&block.ident)),
        },
        regions_ok,
    ))
}

const POLICY_ATTRS: &[&str] = &[
    "account",
    "generations",
    "enabled",
    "description",
    "auto_remove_targets",
    "schedules",
    "timeout",
    "failures_to_alert",
    "success",
];
const POLICY_BLOCKS: &[&str] = &[
    "instance", "volume", "rds", "aurora", "select", "retries", "scripts",
];

fn decode_policy(
    d: &mut Decoder,
    src: &Source,
    block: &Block,
    accounts: &BTreeMap<String, DeclaredAccount>,
    schedule_names: &std::collections::BTreeSet<String>,
) -> (Option<String>, Option<Policy>) {
    let name = d.name_label(src, block, "web");
    let what = match &name {
        Some((n, _)) => format!("policy {n:?}"),
        None => "this policy".into(),
    };
    let scope = d.scope(
        src,
        &block.body,
        what,
        start(&block.ident),
        POLICY_ATTRS,
        POLICY_BLOCKS,
    );

    let account = account_reference(d, &scope, accounts);
    let generations = d
        .whole_number(&scope, "generations", true)
        .and_then(|(n, at)| {
            if n < 1.0 {
                d.error(
                    src,
                    at,
                    "Value out of range",
                    format!(
                        "\"generations\" in {} must be at least 1, not {n}",
                        scope.what
                    ),
                );
                None
            } else if n > MAX_GENERATIONS {
                d.error(
                    src,
                    at,
                    "Value out of range",
                    format!(
                        "\"generations\" in {} must be at most {MAX_GENERATIONS}, not {n}",
                        scope.what
                    ),
                );
                None
            } else {
                Some(n as u32)
            }
        });
    let enabled = d.bool(&scope, "enabled").unwrap_or(true);
    let schedules = schedule::policy_schedules(d, &scope, schedule_names);
    let options = options::decode_policy_options(d, &scope);
    let description = d.string(&scope, "description", false).map(|(s, _)| s);
    let auto_remove_targets = match d.choice(&scope, "auto_remove_targets", &["no", "yes", "alert"])
    {
        Some(1) => AutoRemove::Yes,
        Some(2) => AutoRemove::Alert,
        _ => AutoRemove::No,
    };

    let mut instances = Vec::new();
    let mut volumes = Vec::new();
    let (mut rds, mut aurora) = (Vec::new(), Vec::new());
    let mut selectors: Vec<TagSelector> = Vec::new();
    let mut targets_at: HashMap<String, usize> = HashMap::new();
    for b in &scope.blocks {
        let kind = b.ident.value().as_str();
        if kind == "rds" || kind == "aurora" {
            let acct = account.and_then(|a| accounts.get(a));
            let t = db_targets::decode_db_target(d, src, b, &scope.what, acct, &mut targets_at);
            match t {
                Some(t) if kind == "rds" => rds.push(t),
                Some(t) => aurora.push(t),
                None => {}
            }
            continue;
        }
        if options::POLICY_OPTION_BLOCKS.contains(&kind) {
            continue;
        }
        if kind == "select" {
            d.no_labels(src, b);
            let sel = d.scope(
                src,
                &b.body,
                format!("a select block of {}", scope.what),
                start(&b.ident),
                &["tag", "value"],
                &[],
            );
            let tag = d.text(&sel, "tag", true);
            let value = d.string(&sel, "value", false).map(|(s, _)| s);
            if let Some(tag) = tag {
                let selector = TagSelector { tag, value };
                if selectors.contains(&selector) {
                    d.warning(
                        src,
                        start(&b.ident),
                        "Duplicate selector",
                        format!("{} selects {selector} more than once", scope.what),
                    );
                } else {
                    selectors.push(selector);
                }
            }
            continue;
        }

        let (meaning, example, valid, shape): (_, _, fn(&str) -> bool, _) = if kind == "instance" {
            (
                "instance id",
                "i-0123456789abcdef0",
                validate::is_instance_id,
                "\"i-\"",
            )
        } else {
            (
                "volume id",
                "vol-0123456789abcdef0",
                validate::is_volume_id,
                "\"vol-\"",
            )
        };
        let id = d.one_label(src, b, meaning, example).and_then(|label| {
            let id = label.as_str();
            if !valid(id) {
                let summary = if kind == "instance" { "Invalid instance id" } else { "Invalid volume id" };
                d.error(
                    src,
                    start(label),
                    summary,
                    format!("{id:?} is not an EC2 {meaning}; expected {shape} followed by 8 or 17 lowercase hexadecimal digits"),
                );
                return None;
            }
            if let Some(&first) = targets_at.get(id) {
                d.error(
                    src,
                    start(label),
                    "Duplicate target",
                    format!("{kind} {id:?} already appears in {} at {}", scope.what, src.short_location(first)),
                );
                return None;
            }
            targets_at.insert(id.to_string(), start(label));
            Some(id.to_string())
        });
        let what = match &id {
            Some(id) => format!("{kind} {id:?} of {}", scope.what),
            None => format!("this {kind} of {}", scope.what),
        };
        let attrs: &[&str] = if kind == "instance" {
            &[
                "region",
                "volumes",
                "exclude_volumes",
                "mode",
                "ami_rotation",
            ]
        } else {
            &["region"]
        };
        let t = d.scope(src, &b.body, what, start(&b.ident), attrs, &[]);
        let region = target_region(d, &t, account.and_then(|a| accounts.get(a)));
        if kind == "volume" {
            if let (Some(id), Some(region)) = (id, region) {
                volumes.push(VolumeTarget { id, region });
            }
            continue;
        }
        let choice = match d.choice(&t, "volumes", &["all", "root", "data"]) {
            Some(1) => VolumeChoice::Root,
            Some(2) => VolumeChoice::Data,
            _ => VolumeChoice::All,
        };
        let mut exclude = Vec::new();
        if let Some(list) = d.string_list(&t, "exclude_volumes", false) {
            for (v, at) in &list {
                if !validate::is_volume_id(v) {
                    d.error(
                        src,
                        *at,
                        "Invalid volume id",
                        format!("{v:?} is not an EC2 volume id; expected \"vol-\" followed by 8 or 17 lowercase hexadecimal digits"),
                    );
                }
            }
            d.duplicates_in_list(&t, "exclude_volumes", &list);
            exclude = list.into_iter().map(|(v, _)| v).collect();
        }
        let mode = match d.choice(
            &t,
            "mode",
            &["snapshots", "initial_ami", "ami", "ami_reboot"],
        ) {
            Some(1) => InstanceMode::InitialAmi,
            Some(2) => InstanceMode::Ami,
            Some(3) => InstanceMode::AmiReboot,
            _ => InstanceMode::Snapshots,
        };
        let ami_rotation = db_targets::ami_rotation(d, &t);
        if let (Some(id), Some(region)) = (id, region) {
            instances.push(InstanceTarget {
                id,
                region,
                volumes: choice,
                exclude_volumes: exclude,
                mode,
                ami_rotation,
            });
        }
    }

    let Some((name, _)) = name else {
        return (None, None);
    };
    if scope.blocks.is_empty() {
        d.warning(
            src,
            start(&block.ident),
            "Policy backs up nothing",
            format!("policy {name:?} has no instance, volume, rds, aurora or select block, so its backups will be empty"),
        );
    }
    let policy = account
        .zip(generations)
        .map(|(account, generations)| Policy {
            name: name.clone(),
            account: account.to_string(),
            generations,
            enabled,
            description,
            instances,
            volumes,
            rds,
            aurora,
            selectors,
            auto_remove_targets,
            schedules,
            options,
            location: src.location(start(&block.ident)),
        });
    (Some(name), policy)
}

/// `account = account.NAME`, resolved against the declared accounts.
fn account_reference<'a>(
    d: &mut Decoder,
    scope: &Scope<'_>,
    accounts: &'a BTreeMap<String, DeclaredAccount>,
) -> Option<&'a str> {
    let attr = d.get(scope, "account", true)?;
    let at = start(&attr.value);
    let names: Vec<&str> = accounts.keys().map(String::as_str).collect();
    match d.value(scope, &attr.value)? {
        Value::Ref(path) if path.len() == 2 && path[0] == "account" => {
            match accounts.get_key_value(&path[1]) {
                Some((name, _)) => Some(name.as_str()),
                None if !d.complete => None,
                None => {
                    let known = if names.is_empty() {
                        String::new()
                    } else {
                        match validate::suggest(&path[1], names.iter().copied()) {
                            Some(s) => format!("; did you mean account.{s}?"),
                            None => format!("; declared accounts: {}", names.join(", ")),
                        }
                    };
                    d.error(
                        scope.src,
                        at,
                        "Reference to undeclared account",
                        format!(
                            "{} refers to account.{}, but no account {:?} is declared{known}",
                            scope.what, path[1], path[1]
                        ),
                    );
                    None
                }
            }
        }
        Value::Str(s) => {
            let example = if validate::is_valid_name(&s) {
                s.clone()
            } else {
                "NAME".into()
            };
            d.error(
                scope.src,
                at,
                "Invalid reference",
                format!(
                    "\"account\" in {} must be a reference to an account block, not a string: write account.{example} without quotes",
                    scope.what
                ),
            );
            None
        }
        v => {
            let got = match &v {
                Value::Ref(p) => p.join("."),
                other => other.describe(),
            };
            d.error(
                scope.src,
                at,
                "Invalid reference",
                format!("\"account\" in {} must refer to an account, as in account.main; {got} is not an account reference", scope.what),
            );
            None
        }
    }
}

/// A target's region: as written, or the account's only region.
fn target_region(
    d: &mut Decoder,
    t: &Scope<'_>,
    account: Option<&DeclaredAccount>,
) -> Option<String> {
    let usable = account.filter(|a| a.regions_ok);
    let Some((region, at)) = d.string(t, "region", false) else {
        if t.attrs.contains_key("region") {
            return None; // wrong type, already reported
        }
        let a = usable?;
        return match a.account.regions.as_slice() {
            [only] => Some(only.clone()),
            many => {
                d.error(
                    t.src,
                    t.at,
                    "Missing required attribute",
                    format!(
                        "{} must set \"region\": account {:?} has more than one region ({})",
                        t.what,
                        a.account.name,
                        many.join(", ")
                    ),
                );
                None
            }
        };
    };
    if !validate::is_region(&region) {
        d.error(
            t.src,
            at,
            "Invalid region",
            format!(
                "{region:?} in {} is not an AWS region name; expected a name like \"us-east-1\"",
                t.what
            ),
        );
        return None;
    }
    if let Some(a) = usable {
        if !a.account.regions.contains(&region) {
            d.error(
                t.src,
                at,
                "Region not in account",
                format!(
                    "{} is in {region:?}, which is not a region of account {:?} ({})",
                    t.what,
                    a.account.name,
                    a.account.regions.join(", ")
                ),
            );
            return None;
        }
    }
    Some(region)
}
