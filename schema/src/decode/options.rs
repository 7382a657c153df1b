//! A policy's run options (`retries`, `timeout`, `failures_to_alert`,
//! `success`, `scripts`) and the top-level `notifications` block.

use std::collections::BTreeMap;

use hcl_edit::structure::{Block, Body};

use super::{account_reference, only_block, start, DeclaredAccount, Decoder, Scope};
use crate::config::{
    Notifications, PolicyOptions, Retries, ScheduledReports, Scripts, SuccessRule, PASSABLE_AWS_ENV,
};
use crate::duration::{parse_duration, DurationError, DURATION_UNITS, MAX_DURATION_DAYS};
use crate::source::Source;

/// The policy blocks decoded here, skipped by the target loop.
pub(super) const POLICY_OPTION_BLOCKS: &[&str] = &["retries", "scripts"];

/// The most retries a policy may ask for.
const MAX_RETRIES: f64 = 100.0;

impl Decoder {
    /// A duration attribute (`"10m"`), in seconds; `None` when absent or
    /// after reporting it.
    pub(super) fn duration(
        &mut self,
        scope: &Scope<'_>,
        name: &str,
        allow_zero: bool,
    ) -> Option<u64> {
        let (s, at) = self.string(scope, name, false)?;
        match parse_duration(&s).map(|d| d.as_secs()) {
            Ok(0) if !allow_zero => {
                self.error(
                    scope.src,
                    at,
                    "Value out of range",
                    format!("{name:?} in {} must be longer than zero", scope.what),
                );
                None
            }
            Ok(n) => Some(n),
            Err(DurationError::TooLong(_)) => {
                self.error(
                    scope.src,
                    at,
                    "Value out of range",
                    format!(
                        "{name:?} in {} is {s:?}: duration too long (at most {MAX_DURATION_DAYS} days)",
                        scope.what
                    ),
                );
                None
            }
            Err(DurationError::Malformed(_)) => {
                self.error(
                    scope.src,
                    at,
                    "Invalid duration",
                    format!(
                        "{name:?} in {} must be a whole number followed by {DURATION_UNITS} (for example \"10m\"), not {s:?}",
                        scope.what
                    ),
                );
                None
            }
        }
    }

    fn bounded(&mut self, scope: &Scope<'_>, name: &str, min: f64, max: f64) -> Option<u32> {
        let (n, at) = self.whole_number(scope, name, false)?;
        if n < min || n > max {
            self.error(
                scope.src,
                at,
                "Value out of range",
                format!(
                    "{name:?} in {} must be between {min} and {max}, not {n}",
                    scope.what
                ),
            );
            return None;
        }
        Some(n as u32)
    }
}

/// The run options of the policy whose attributes and blocks are `scope`.
pub(super) fn decode_policy_options(d: &mut Decoder, scope: &Scope<'_>) -> PolicyOptions {
    let src = scope.src;
    let mut o = PolicyOptions {
        timeout_secs: d.duration(scope, "timeout", false),
        departed_retention_secs: d.duration(scope, "departed_retention", false),
        failures_to_alert: d
            .bounded(scope, "failures_to_alert", 1.0, 1000.0)
            .unwrap_or(1),
        success: match d.choice(scope, "success", &["strict", "snapshots_only"]) {
            Some(1) => SuccessRule::SnapshotsOnly,
            _ => SuccessRule::Strict,
        },
        ..PolicyOptions::default()
    };
    let mut seen: Vec<&str> = Vec::new();
    for b in &scope.blocks {
        let kind = b.ident.value().as_str();
        if !POLICY_OPTION_BLOCKS.contains(&kind) {
            continue;
        }
        d.no_labels(src, b);
        if seen.contains(&kind) {
            d.error(
                src,
                start(&b.ident),
                "Duplicate block",
                format!("{} has at most one {kind} block", scope.what),
            );
            continue;
        }
        seen.push(kind);
        let what = format!("the {kind} block of {}", scope.what);
        if kind == "retries" {
            let r = d.scope(src, &b.body, what, start(&b.ident), &["count", "wait"], &[]);
            o.retries = Retries {
                count: d.bounded(&r, "count", 0.0, MAX_RETRIES).unwrap_or(0),
                wait_secs: d.duration(&r, "wait", true).unwrap_or(0),
            };
        } else {
            let s = d.scope(
                src,
                &b.body,
                what,
                start(&b.ident),
                &[
                    "before",
                    "after",
                    "complete",
                    "timeout",
                    "collect_output",
                    "pass_env",
                ],
                &[],
            );
            let scripts = Scripts {
                before: d.text(&s, "before", false),
                after: d.text(&s, "after", false),
                complete: d.text(&s, "complete", false),
                timeout_secs: d.duration(&s, "timeout", false).unwrap_or(30),
                collect_output: d.bool(&s, "collect_output").unwrap_or(true),
                pass_env: pass_env(d, &s),
            };
            if scripts.before.is_none() && scripts.after.is_none() && scripts.complete.is_none() {
                d.warning(
                    src,
                    start(&b.ident),
                    "Scripts block runs nothing",
                    format!(
                        "{} sets none of \"before\", \"after\" and \"complete\"",
                        s.what
                    ),
                );
            }
            o.scripts = Some(scripts);
        }
    }
    o
}

/// `pass_env = [..]` of a scripts block: variable names, none that
/// Lifeboat sets itself (`LIFEBOAT_`) and no AWS credential.
fn pass_env(d: &mut Decoder, s: &Scope<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, at) in d.string_list(s, "pass_env", false).unwrap_or_default() {
        let mut chars = name.chars();
        let well_formed = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        let why = if !well_formed {
            format!("{name:?} is not an environment variable's name")
        } else if name.starts_with("LIFEBOAT_") {
            format!("{name:?}: the LIFEBOAT_ variables a script gets are Lifeboat's to set")
        } else if name.starts_with("AWS_") && !PASSABLE_AWS_ENV.contains(&name.as_str()) {
            format!(
                "{name:?} is not passed to a script: a script never gets the runner's AWS credentials (it may get {}; give it a profile of its own)",
                PASSABLE_AWS_ENV.join(", ")
            )
        } else {
            out.push(name);
            continue;
        };
        d.error(s.src, at, "Invalid value", format!("{why}, in {}", s.what));
    }
    out
}

/// The one `notifications` block of a configuration, if any.
pub(super) fn decode_notifications(
    d: &mut Decoder,
    files: &[(&Source, &Body)],
    blocks: &[(usize, &Block)],
    accounts: &BTreeMap<String, DeclaredAccount>,
) -> Option<Notifications> {
    let &(i, first) = blocks.first()?;
    for &(j, b) in &blocks[1..] {
        d.error(
            files[j].0,
            start(&b.ident),
            "Duplicate block",
            format!(
                "a configuration has at most one notifications block; the first is at {}",
                files[i].0.short_location(start(&first.ident))
            ),
        );
    }
    let src = files[i].0;
    d.no_labels(src, first);
    let scope = d.scope(
        src,
        &first.body,
        "the notifications block".into(),
        start(&first.ident),
        &["sns_topic", "account", "region", "daily_summary"],
        &["reports"],
    );
    let reports = decode_reports(d, src, &scope);
    let topic = d.string(&scope, "sns_topic", true);
    if let Some((t, at)) = &topic {
        if !t.starts_with("arn:") || t.split(':').count() != 6 {
            d.error(
                src,
                *at,
                "Invalid topic",
                format!("\"sns_topic\" must be an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME), not {t:?}"),
            );
        }
    }
    let account = account_reference(d, &scope, accounts).map(str::to_string);
    let region = d.text(&scope, "region", true);
    let daily = d.string(&scope, "daily_summary", false).and_then(|(s, at)| {
        if chrono::NaiveTime::parse_from_str(&s, "%H:%M").is_ok() && s.len() == 5 {
            Some(s)
        } else {
            d.error(
                src,
                at,
                "Invalid time",
                format!("\"daily_summary\" must be a time of day as HH:MM (for example \"08:00\"), not {s:?}"),
            );
            None
        }
    });
    Some(Notifications {
        sns_topic: topic?.0,
        account: account?,
        region: region?,
        daily_summary: daily,
        reports,
    })
}

/// The notifications block's one `reports` block, if any.
fn decode_reports(d: &mut Decoder, src: &Source, parent: &Scope<'_>) -> Option<ScheduledReports> {
    let first = only_block(d, parent, "reports")?;
    d.no_labels(src, first);
    let scope = d.scope(
        src,
        &first.body,
        "the reports block".into(),
        start(&first.ident),
        &["bucket", "prefix", "every"],
        &[],
    );
    let bucket = d.text(&scope, "bucket", true);
    let prefix = d
        .string(&scope, "prefix", false)
        .map(|(p, _)| p.trim_matches('/').to_string())
        .unwrap_or_default();
    let every = match scope.attrs.contains_key("every") {
        true => d.duration(&scope, "every", false).and_then(|secs| {
            // Each report lists every instance, volume and database of
            // every account and region: more often than this would spend
            // the backups' own EC2 and RDS request budget.
            if secs >= MIN_REPORT_EVERY_SECS {
                return Some(secs);
            }
            let at = d.string(&scope, "every", false)?.1;
            d.error(
                src,
                at,
                "Value out of range",
                format!(
                    "\"every\" in the reports block must be at least {} minutes",
                    MIN_REPORT_EVERY_SECS / 60
                ),
            );
            None
        }),
        false => Some(86_400),
    };
    Some(ScheduledReports {
        bucket: bucket?,
        prefix,
        every_secs: every?,
    })
}

/// The shortest `every` of scheduled reports.
const MIN_REPORT_EVERY_SECS: u64 = 300;

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<crate::Config, String> {
        crate::load_sources(&[("main.lb.hcl".into(), text.to_string())])
            .map(|l| l.config)
            .map_err(|d| d.to_string())
    }

    const HEAD: &str = "account \"main\" {\n  regions = [\"us-east-1\"]\n}\n";

    #[test]
    fn policy_options_decode_with_their_defaults() {
        let c = load(&format!(
            "{HEAD}policy \"web\" {{\n account = account.main\n generations = 1\n timeout = \"2h\"\n success = \"snapshots_only\"\n retries {{\n count = 3\n wait = \"10m\"\n }}\n scripts {{\n before = \"b.sh\"\n }}\n}}\n\
             notifications {{\n sns_topic = \"arn:aws:sns:us-east-1:123456789012:t\"\n account = account.main\n region = \"us-east-1\"\n daily_summary = \"08:00\"\n}}\n"
        ))
        .unwrap();
        let o = &c.policies["web"].options;
        assert_eq!(o.timeout_secs, Some(7200));
        assert_eq!(o.success, SuccessRule::SnapshotsOnly);
        assert_eq!(o.failures_to_alert, 1);
        assert_eq!(
            o.retries,
            Retries {
                count: 3,
                wait_secs: 600
            }
        );
        let s = o.scripts.as_ref().unwrap();
        assert_eq!(s.before.as_deref(), Some("b.sh"));
        assert_eq!((s.timeout_secs, s.collect_output), (30, true));
        let n = c.notifications.unwrap();
        assert_eq!(n.account, "main");
        assert_eq!(n.daily_summary.as_deref(), Some("08:00"));
        // No options: the defaults, left out of the serialised policy.
        let c = load(&format!(
            "{HEAD}policy \"web\" {{\n account = account.main\n generations = 1\n}}\n"
        ))
        .unwrap();
        assert!(c.policies["web"].options.is_default());
        assert!(!serde_json::to_string(&c).unwrap().contains("options"));
    }

    #[test]
    fn bad_policy_options_are_diagnosed() {
        let err = load(&format!(
            "{HEAD}policy \"web\" {{\n account = account.main\n generations = 1\n timeout = \"2 hours\"\n failures_to_alert = 0\n success = \"lenient\"\n retries {{\n count = -1\n wait = \"5x\"\n }}\n}}\n\
             notifications {{\n sns_topic = \"topic\"\n account = account.main\n region = \"us-east-1\"\n daily_summary = \"8am\"\n}}\n"
        ))
        .unwrap_err();
        for needle in [
            "\"timeout\" in policy \"web\" must be a whole number followed by s, m, h, d or w",
            "\"failures_to_alert\" in policy \"web\" must be between 1 and 1000",
            "\"success\" in policy \"web\" must be one of",
            "\"count\" in the retries block of policy \"web\" must be between 0 and 100",
            "\"wait\" in the retries block",
            "must be an SNS topic ARN",
            "\"daily_summary\" must be a time of day",
        ] {
            assert!(err.contains(needle), "{needle:?} not in:\n{err}");
        }
    }

    #[test]
    fn durations_past_the_longest_are_diagnosed_where_written() {
        let err = load(&format!(
            "{HEAD}policy \"web\" {{\n account = account.main\n generations = 1\n timeout = \"99999999999999999w\"\n retries {{\n count = 2\n wait = \"300000000d\"\n }}\n}}\n"
        ))
        .unwrap_err();
        for needle in [
            "main.lb.hcl:7:12: error: Value out of range",
            "main.lb.hcl:10:9: error: Value out of range",
            "\"wait\" in the retries block of policy \"web\" is \"300000000d\": duration too long (at most 3650 days)",
        ] {
            assert!(err.contains(needle), "{needle:?} not in:\n{err}");
        }
        assert!(err.contains("\"timeout\" in policy \"web\""), "{err}");
        assert!(err.contains("duration too long"), "{err}");
    }

    #[test]
    fn report_retention_defaults_to_90_days_and_a_bad_one_is_diagnosed_where_written() {
        let c = load(HEAD).unwrap();
        assert_eq!(c.settings.report_retention().as_secs(), 90 * 86_400);
        assert!(c.settings.report_retention_secs.is_none());
        let c = load(&format!(
            "lifeboat {{\n report_retention = \"30d\"\n}}\n{HEAD}"
        ))
        .unwrap();
        assert_eq!(c.settings.report_retention().as_secs(), 30 * 86_400);
        let err = load(&format!(
            "lifeboat {{\n report_retention = \"ninety days\"\n}}\n{HEAD}"
        ))
        .unwrap_err();
        assert!(err.contains("main.lb.hcl:2:21: error:"), "{err}");
        assert!(err.contains("report_retention"), "{err}");
    }

    #[test]
    fn a_reports_block_names_its_bucket_and_defaults_to_daily() {
        let c = load(&format!(
            "{HEAD}notifications {{\n sns_topic = \"arn:aws:sns:us-east-1:123456789012:t\"\n account = account.main\n region = \"us-east-1\"\n reports {{\n bucket = \"b\"\n prefix = \"/lifeboat/reports/\"\n }}\n}}\n"
        ))
        .unwrap();
        let r = c.notifications.unwrap().reports.unwrap();
        assert_eq!(
            (r.bucket.as_str(), r.prefix.as_str(), r.every_secs),
            ("b", "lifeboat/reports", 86_400)
        );
        let err = load(&format!(
            "{HEAD}notifications {{\n sns_topic = \"arn:aws:sns:us-east-1:123456789012:t\"\n account = account.main\n region = \"us-east-1\"\n reports {{\n every = \"0s\"\n }}\n}}\n"
        ))
        .unwrap_err();
        assert!(err.contains("\"bucket\""), "{err}");
        assert!(err.contains("main.lb.hcl:9:10"), "{err}");
        let err = load(&format!(
            "{HEAD}notifications {{\n sns_topic = \"arn:aws:sns:us-east-1:123456789012:t\"\n account = account.main\n region = \"us-east-1\"\n reports {{\n bucket = \"b\"\n every = \"1s\"\n }}\n}}\n"
        ))
        .unwrap_err();
        assert!(err.contains("at least 5 minutes"), "{err}");
    }
}
