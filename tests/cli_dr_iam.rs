//! The IAM around disaster recovery, against the emulator (its IAM works
//! per account, here 222222222222 through an assumed role): the managed DR
//! role (`manage_role`) created, updated with line diffs of its documents,
//! and forgotten; the secured-DR check (`lifeboat dr check`) finding
//! principals allowed prohibited actions, in text, JSON and CSV, with its
//! exit codes and alert; `lifeboat iam policy` golden output.

mod support;

use aws_sdk_iam::config::{BehaviorVersion, Credentials, Region};
use support::{Emulator, Env, Workspace, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

const ROLE: &str = "arn:aws:iam::222222222222:role/x";
const OTHER_ROLE: &str = "arn:aws:iam::333333333333:role/backup";

fn config(allow_delete: bool, manage_role: Option<&str>, secured: bool) -> String {
    let role = manage_role
        .map(|trusted| {
            format!("  manage_role {{\n    name    = \"lifeboat-dr\"\n    trusted = account.{trusted}\n  }}\n")
        })
        .unwrap_or_default();
    let secured = if secured {
        "  secured {\n    prohibited = [\"ec2:DeleteSnapshot\", \"ec2:DeregisterImage\", \"rds:DeleteDBSnapshot\"]\n  }\n"
    } else {
        ""
    };
    format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

account "other" {{
  regions = ["us-east-1"]
  assume_role {{
    role_arn = "{OTHER_ROLE}"
  }}
}}

account "vault" {{
  type         = "dr"
  regions      = ["us-east-1"]
  allow_delete = {allow_delete}
  assume_role {{
    role_arn = "{ROLE}"
  }}
{role}{secured}}}
"#
    )
}

/// The test's own IAM client in account 222222222222 (through the role),
/// blocking on a private runtime.
struct Iam {
    rt: tokio::runtime::Runtime,
    client: aws_sdk_iam::Client,
}

fn creds(id: &str, secret: &str, token: Option<String>) -> Credentials {
    Credentials::new(id, secret, token, None, "lifeboat-tests")
}

impl Iam {
    fn new(emulator: &Emulator) -> Iam {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .endpoint_url(emulator.endpoint())
                .credentials_provider(creds(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None))
                .build(),
        );
        let assumed = rt
            .block_on(
                sts.assume_role()
                    .role_arn(ROLE)
                    .role_session_name("tests")
                    .send(),
            )
            .expect("assume role")
            .credentials
            .expect("credentials");
        let client = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .endpoint_url(emulator.endpoint())
                .credentials_provider(creds(
                    &assumed.access_key_id,
                    &assumed.secret_access_key,
                    Some(assumed.session_token),
                ))
                .build(),
        );
        Iam { rt, client }
    }

    fn role_documents(&self, name: &str) -> Option<(serde_json::Value, serde_json::Value)> {
        let role = self
            .rt
            .block_on(self.client.get_role().role_name(name).send())
            .ok()?;
        let trust = role.role()?.assume_role_policy_document()?.to_string();
        let policy = self
            .rt
            .block_on(
                self.client
                    .get_role_policy()
                    .role_name(name)
                    .policy_name("lifeboat-dr")
                    .send(),
            )
            .expect("inline policy");
        Some((decode(&trust), decode(policy.policy_document())))
    }

    fn role(&self, name: &str) {
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        self.rt
            .block_on(
                self.client
                    .create_role()
                    .role_name(name)
                    .assume_role_policy_document(trust)
                    .send(),
            )
            .expect("create role");
    }

    fn inline(&self, role: &str, policy: &str, statements: &str) {
        self.rt
            .block_on(
                self.client
                    .put_role_policy()
                    .role_name(role)
                    .policy_name(policy)
                    .policy_document(doc(statements))
                    .send(),
            )
            .expect("put role policy");
    }

    fn remove_inline(&self, role: &str, policy: &str) {
        self.rt
            .block_on(
                self.client
                    .delete_role_policy()
                    .role_name(role)
                    .policy_name(policy)
                    .send(),
            )
            .expect("delete role policy");
    }
}

fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

/// A document as IAM answers it: JSON, or URL-encoded JSON.
fn decode(text: &str) -> serde_json::Value {
    if let Ok(v) = serde_json::from_str(text) {
        return v;
    }
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    serde_json::from_slice(&out).expect("a JSON document")
}

fn actions(doc: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| match &s["Action"] {
            serde_json::Value::String(a) => vec![a.clone()],
            serde_json::Value::Array(a) => {
                a.iter().map(|x| x.as_str().unwrap().to_string()).collect()
            }
            _ => vec![],
        })
        .collect();
    out.sort();
    out
}

#[test]
fn manage_role_creates_the_role_then_updates_its_documents_as_line_diffs_and_forgets_it() {
    let env = Env::start();
    let iam = Iam::new(&env.emulator);
    env.config(&config(false, Some("main"), false));
    let plan = env.run(&["plan"]).ok();
    plan.stdout_has("+ iam_role.vault");
    env.apply();
    let (trust, permissions) = iam.role_documents("lifeboat-dr").expect("the role exists");
    let principal = trust["Statement"][0]["Principal"]["AWS"].to_string();
    assert!(principal.contains("123456789012"), "trusted: {principal}");
    assert_eq!(trust["Statement"].as_array().unwrap().len(), 1, "{trust}");
    let granted = actions(&permissions);
    for a in [
        "ec2:CopySnapshot",
        "ec2:CopyImage",
        "rds:CopyDBSnapshot",
        "kms:ReEncrypt*",
        "sts:GetCallerIdentity",
    ] {
        assert!(granted.contains(&a.to_string()), "{a} in {granted:?}");
    }
    for a in [
        "ec2:DeleteSnapshot",
        "ec2:DeregisterImage",
        "rds:DeleteDBSnapshot",
    ] {
        assert!(
            !granted.contains(&a.to_string()),
            "no {a} with allow_delete = false"
        );
    }
    env.assert_converged();

    // allow_delete = true: the delete actions join, shown as a line diff.
    env.config(&config(true, Some("main"), false));
    let plan = env.run(&["plan"]).ok();
    plan.stdout_has("~ iam_role.vault");
    plan.stdout_has("permission document");
    plan.stdout_has("+           \"ec2:DeleteSnapshot\"");
    env.apply();
    let (_, permissions) = iam.role_documents("lifeboat-dr").unwrap();
    let granted = actions(&permissions);
    for a in [
        "ec2:DeleteSnapshot",
        "ec2:DeregisterImage",
        "rds:DeleteDBSnapshot",
        "rds:DeleteDBClusterSnapshot",
    ] {
        assert!(granted.contains(&a.to_string()), "{a} in {granted:?}");
    }
    env.assert_converged();

    // Another trusted account: the trust document changes, line by line.
    env.config(&config(true, Some("other"), false));
    let plan = env.run(&["plan"]).ok();
    plan.stdout_has("trust document");
    plan.stdout_has(&format!("+             \"{OTHER_ROLE}\""));
    env.apply();
    let (trust, _) = iam.role_documents("lifeboat-dr").unwrap();
    assert!(trust.to_string().contains(OTHER_ROLE), "{trust}");
    env.assert_converged();

    // A role changed outside Lifeboat is put back.
    iam.rt
        .block_on(
            iam.client
                .put_role_policy()
                .role_name("lifeboat-dr")
                .policy_name("lifeboat-dr")
                .policy_document(doc(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#))
                .send(),
        )
        .unwrap();
    env.run(&["plan"]).ok().stdout_has("~ iam_role.vault");
    env.apply();
    env.assert_converged();

    // manage_role removed: forgotten, the role stays in AWS.
    env.config(&config(true, None, false));
    let plan = env.run(&["plan"]).ok();
    plan.stdout_has("- iam_role.vault");
    plan.stdout_has("leaves it in AWS");
    env.apply();
    assert!(
        iam.role_documents("lifeboat-dr").is_some(),
        "the role stays"
    );
    env.assert_converged();
}

/// Principals with prohibited permissions, and one whose Deny wins.
fn risky(iam: &Iam) {
    iam.role("direct");
    iam.inline(
        "direct",
        "snapshots",
        r#"{"Effect":"Allow","Action":"ec2:DeleteSnapshot","Resource":"*"}"#,
    );
    iam.role("wild");
    iam.inline(
        "wild",
        "deletes",
        r#"{"Effect":"Allow","Action":["ec2:Describe*","ec2:Delete*"],"Resource":"*"}"#,
    );
    iam.role("admin");
    iam.inline(
        "admin",
        "everything",
        r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#,
    );
    iam.role("denied");
    iam.inline(
        "denied",
        "ec2",
        r#"{"Effect":"Allow","Action":"ec2:*","Resource":"*"}"#,
    );
    iam.inline(
        "denied",
        "guard",
        r#"{"Effect":"Deny","Action":["ec2:DeleteSnapshot","ec2:Deregister*"],"Resource":"*"}"#,
    );
    iam.role("reader");
    iam.inline(
        "reader",
        "read",
        r#"{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}"#,
    );
    // A customer managed policy on a role, and on a group with a user.
    let c = &iam.client;
    let arn = iam
        .rt
        .block_on(
            c.create_policy()
                .policy_name("db-cleanup")
                .policy_document(doc(
                    r#"{"Effect":"Allow","Action":"rds:DeleteDBSnapshot","Resource":"*"}"#,
                ))
                .send(),
        )
        .unwrap()
        .policy
        .unwrap()
        .arn
        .unwrap();
    iam.role("managed");
    iam.rt
        .block_on(
            c.attach_role_policy()
                .role_name("managed")
                .policy_arn(&arn)
                .send(),
        )
        .unwrap();
    iam.rt
        .block_on(c.create_group().group_name("ops").send())
        .unwrap();
    iam.rt
        .block_on(
            c.attach_group_policy()
                .group_name("ops")
                .policy_arn(&arn)
                .send(),
        )
        .unwrap();
    iam.rt
        .block_on(c.create_user().user_name("alice").send())
        .unwrap();
    iam.rt
        .block_on(
            c.add_user_to_group()
                .group_name("ops")
                .user_name("alice")
                .send(),
        )
        .unwrap();
}

#[test]
fn dr_check_reports_every_principal_allowed_a_prohibited_action_and_its_alert_opens_and_closes() {
    let env = Env::start();
    let iam = Iam::new(&env.emulator);
    env.config(&config(false, None, true));
    env.apply();
    // A clean account says so.
    let clean = env.run(&["dr", "check"]).code(0);
    clean.stdout_has("account vault: clean (");
    risky(&iam);

    let found = env.run(&["dr", "check", "--csv", "findings.csv"]).code(2);
    found.stdout_has("account vault: ");
    found.stdout_has("Alert opened: account.vault");
    for who in [
        "role direct",
        "role wild",
        "role admin",
        "role managed",
        "user alice",
    ] {
        found.stdout_has(who);
    }
    found.stdout_lacks("role denied");
    found.stdout_lacks("role reader");
    found.stdout_has("db-cleanup [group managed via group ops]");

    let json = env.run(&["dr", "check", "--json"]).code(2).json();
    let findings = json[0]["findings"].as_array().unwrap();
    let pairs: std::collections::BTreeSet<(String, String, String)> = findings
        .iter()
        .map(|f| {
            (
                f["principal"].as_str().unwrap().to_string(),
                f["action"].as_str().unwrap().to_string(),
                f["prohibited"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("direct", "ec2:DeleteSnapshot", "ec2:DeleteSnapshot"),
        ("wild", "ec2:Delete*", "ec2:DeleteSnapshot"),
        ("admin", "*", "ec2:DeleteSnapshot"),
        ("admin", "*", "ec2:DeregisterImage"),
        ("admin", "*", "rds:DeleteDBSnapshot"),
        ("managed", "rds:DeleteDBSnapshot", "rds:DeleteDBSnapshot"),
        ("alice", "rds:DeleteDBSnapshot", "rds:DeleteDBSnapshot"),
    ];
    for (p, a, x) in want {
        assert!(
            pairs.contains(&(p.into(), a.into(), x.into())),
            "{p} {a} {x} in {pairs:?}"
        );
    }
    // Besides the prohibited actions, IAM writes that let a principal give
    // itself one are always reported: admin's `*` has all of them.
    let escalation: Vec<_> = pairs
        .iter()
        .filter(|(_, _, x)| x.starts_with("iam:"))
        .collect();
    assert!(
        escalation.iter().all(|(p, _, _)| p == "admin"),
        "{escalation:?}"
    );
    assert!(
        pairs.contains(&("admin".into(), "*".into(), "iam:PutRolePolicy".into())),
        "{pairs:?}"
    );
    assert_eq!(pairs.len() - escalation.len(), want.len(), "{pairs:?}");
    assert_eq!(json[0]["clean"], false);
    assert_eq!(json[0]["alert"], "unchanged", "the alert stays open, once");
    let alice = findings.iter().find(|f| f["principal"] == "alice").unwrap();
    assert_eq!(alice["principal_type"], "user");
    assert_eq!(alice["source"], "group_managed");
    assert_eq!(alice["group"], "ops");
    assert_eq!(
        alice["principal_arn"],
        "arn:aws:iam::222222222222:user/alice"
    );

    let csv = env.ws.read("findings.csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("account,principal_type,principal,principal_arn,policy,source,group,action,prohibited,conditional")
    );
    assert_eq!(lines.count(), pairs.len(), "{csv}");
    assert!(csv.contains("vault,role,wild,arn:aws:iam::222222222222:role/wild,deletes,inline,,ec2:Delete*,ec2:DeleteSnapshot,false"), "{csv}");

    env.run(&["alerts"]).ok().stdout_has("account.vault");

    // The offending grants removed: clean again, and the alert closes.
    for (role, policy) in [
        ("direct", "snapshots"),
        ("wild", "deletes"),
        ("admin", "everything"),
    ] {
        iam.remove_inline(role, policy);
    }
    let c = &iam.client;
    let arn = "arn:aws:iam::222222222222:policy/db-cleanup";
    iam.rt
        .block_on(
            c.detach_role_policy()
                .role_name("managed")
                .policy_arn(arn)
                .send(),
        )
        .unwrap();
    iam.rt
        .block_on(
            c.detach_group_policy()
                .group_name("ops")
                .policy_arn(arn)
                .send(),
        )
        .unwrap();
    let clean = env.run(&["dr", "check", "--account", "vault"]).code(0);
    clean.stdout_has("account vault: clean (");
    clean.stdout_has("Alert closed: account.vault");
    env.run(&["alerts"]).ok().stdout_has("No open alerts.");

    // Errors exit 1: an account without a secured block.
    env.run(&["dr", "check", "--account", "main"])
        .code(1)
        .stderr_has("no secured block");
}

fn testdata(case: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/iam")
        .join(case)
}

#[test]
fn iam_policy_prints_the_minimal_policy_per_account_as_golden() {
    for case in ["backup-and-vault"] {
        let dir = testdata(case);
        let ws = Workspace::offline();
        ws.write(
            "main.lb.hcl",
            &std::fs::read_to_string(dir.join("main.lb.hcl")).unwrap(),
        );
        for (args, file) in [
            (&["iam", "policy"][..], "expected.txt"),
            (&["iam", "policy", "--json"][..], "expected.json"),
        ] {
            let out = ws.run(args).ok();
            let got = out.all();
            let path = dir.join(file);
            if std::env::var_os("LIFEBOAT_BLESS").is_some_and(|v| v == "1") {
                std::fs::write(&path, &got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                got,
                want,
                "{} differs (LIFEBOAT_BLESS=1 rewrites it)",
                path.display()
            );
        }
        // Each account's document is valid JSON; no delete where
        // allow_delete = false.
        let vault = ws
            .run(&["iam", "policy", "--account", "vault", "--json"])
            .ok()
            .json();
        let all = vault.to_string();
        assert!(all.contains("ec2:CopySnapshot"), "{all}");
        assert!(
            !all.contains("Delete") && !all.contains("Deregister"),
            "{all}"
        );
        let main = ws
            .run(&["iam", "policy", "--account", "main", "--json"])
            .ok()
            .json();
        assert!(main["principal"]["Statement"].is_array());
        assert!(main.to_string().contains("ec2:DeleteSnapshot"));
    }
}

/// The events of a `run --once --log-format json` at `now`.
fn run_once(env: &Env, now: &str) -> Vec<serde_json::Value> {
    env.run(&["--now", now, "run", "--once", "--log-format", "json"])
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn run_mode_checks_a_secured_account_every_check_every_and_opens_its_alert() {
    let env = Env::start();
    let iam = Iam::new(&env.emulator);
    env.config(&config(false, None, true).replace(
        "\"rds:DeleteDBSnapshot\"]\n",
        "\"rds:DeleteDBSnapshot\"]\n    check_every = \"6h\"\n",
    ));
    env.apply();
    iam.role("direct");
    iam.inline(
        "direct",
        "snapshots",
        r#"{"Effect":"Allow","Action":"ec2:DeleteSnapshot","Resource":"*"}"#,
    );
    let checks = |events: &[serde_json::Value]| -> Vec<serde_json::Value> {
        events
            .iter()
            .filter(|e| e["event"] == "secured_check")
            .cloned()
            .collect()
    };
    let first = checks(&run_once(&env, "2026-12-01T10:00:00Z"));
    assert_eq!(first.len(), 1, "never checked: due at once");
    assert_eq!(first[0]["account"], "vault");
    assert_eq!(first[0]["findings"], 1);
    assert_eq!(first[0]["alert"], "opened");
    assert!(
        checks(&run_once(&env, "2026-12-01T15:00:00Z")).is_empty(),
        "not due before check_every"
    );
    iam.remove_inline("direct", "snapshots");
    let again = checks(&run_once(&env, "2026-12-01T16:00:00Z"));
    assert_eq!(again.len(), 1, "due once check_every has passed");
    assert_eq!(again[0]["findings"], 0);
    assert_eq!(again[0]["alert"], "closed");
}
