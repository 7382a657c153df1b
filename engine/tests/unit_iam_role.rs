//! The managed DR role over the in-memory fake: what the emulator cannot
//! answer (its GetCallerIdentity is always an IAM user). Credentials acting
//! through an assumed-role session have the role behind the session
//! trusted, never the session; a federated user cannot be trusted and the
//! plan says so; planning makes no IAM write; apply creates the role and
//! the next plan has nothing to do.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_engine::cloud::Cloud;
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::observe;
use lifeboat_engine::plan::{planner, Action, Plan};
use lifeboat_engine::state::{SharedStore, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_engine::Address;
use lifeboat_schema::Config;

const CONFIG: &str = r#"
account "main" {
  regions = ["us-east-1"]
}

account "vault" {
  type    = "dr"
  regions = ["us-east-1"]
  manage_role {
    name    = "lifeboat-dr"
    trusted = account.main
  }
}
"#;

fn now() -> DateTime<Utc> {
    "2026-12-01T10:00:00Z".parse().unwrap()
}

struct Bench {
    fake: FakeCloud,
    store: SharedStore,
    config: Config,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new(caller: &str) -> Bench {
        let fake = FakeCloud::new(2);
        fake.world
            .lock()
            .unwrap()
            .iam
            .callers
            .insert("main".into(), caller.into());
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(Store::open(&dir.path().join("s.db")).unwrap()));
        let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), CONFIG.into())])
            .unwrap_or_else(|d| panic!("{d}"))
            .config;
        Bench {
            fake,
            store,
            config,
            _dir: dir,
        }
    }

    fn cloud(&self) -> Arc<dyn Cloud> {
        Arc::new(self.fake.clone())
    }

    async fn plan(&self) -> Plan {
        let state = self.store.lock().unwrap().load().unwrap();
        let obs = observe::observe(self.cloud(), &self.config, &state)
            .await
            .unwrap();
        planner::plan(&self.config, &state, &obs, now()).unwrap()
    }

    async fn apply(&self, plan: &Plan) -> apply::Report {
        let state = self.store.lock().unwrap().load().unwrap();
        let exec = Arc::new(Executor {
            cloud: self.cloud(),
            accounts: planner::known_accounts(&self.config, &state).unwrap(),
            store: self.store.clone(),
            now: now(),
            lock_id: None,
            stop: Default::default(),
        });
        apply::apply(plan, exec, 4, |_, _| {}).await
    }

    fn writes(&self) -> usize {
        let w = self.fake.world.lock().unwrap();
        ["CreateRole", "UpdateAssumeRolePolicy", "PutRolePolicy"]
            .iter()
            .map(|a| w.calls_of(a))
            .sum()
    }
}

#[tokio::test]
async fn a_session_is_trusted_as_its_role_and_the_role_converges() {
    let b = Bench::new("arn:aws:sts::111122223333:assumed-role/backup-runner/i-0abc");
    let plan = b.plan().await;
    assert_eq!(b.writes(), 0, "planning makes no IAM write");
    let role = plan
        .changes
        .iter()
        .find(|c| c.address == Address::iam_role("vault"))
        .expect("the role is planned");
    assert_eq!(role.action, Action::Create);
    let after = role.after.as_ref().unwrap();
    assert_eq!(
        after["trusted_principal"],
        "arn:aws:iam::111122223333:role/backup-runner"
    );
    assert_eq!(
        after["trust"]["Statement"][0]["Principal"]["AWS"][0],
        "arn:aws:iam::111122223333:role/backup-runner"
    );

    let report = b.apply(&plan).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    {
        let w = b.fake.world.lock().unwrap();
        let r = &w.iam.roles[&("vault".to_string(), "lifeboat-dr".to_string())];
        assert!(r.trust.contains("role/backup-runner"));
        assert!(!r.trust.contains("assumed-role"));
        let permissions = &r.policies["lifeboat-dr"];
        assert!(permissions.contains("ec2:CopySnapshot"));
        assert!(!permissions.contains("ec2:DeleteSnapshot"));
        assert_eq!(r.tags["lifeboat:managed-role"], "vault");
    }
    assert!(b.plan().await.is_empty(), "converged");

    // The trust edited outside Lifeboat: planned back as an update.
    b.fake
        .world
        .lock()
        .unwrap()
        .iam
        .roles
        .get_mut(&("vault".to_string(), "lifeboat-dr".to_string()))
        .unwrap()
        .trust = r#"{"Version":"2012-10-17","Statement":[]}"#.into();
    let plan = b.plan().await;
    let role = &plan.changes[0];
    assert_eq!(role.action, Action::Update);
    assert_eq!(
        role.reason.as_deref(),
        Some("trust document differs from role lifeboat-dr in AWS")
    );
    assert_eq!(b.apply(&plan).await.failed(), 0);
    assert!(b.plan().await.is_empty());
}

#[tokio::test]
async fn a_federated_user_cannot_be_trusted_and_the_plan_says_so() {
    let b = Bench::new("arn:aws:sts::111122223333:federated-user/bob");
    let plan = b.plan().await;
    assert!(
        !plan
            .changes
            .iter()
            .any(|c| c.address == Address::iam_role("vault")),
        "nothing planned for the role"
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("iam_role.vault is not planned") && w.contains("federated-user")),
        "{:?}",
        plan.warnings
    );
}
