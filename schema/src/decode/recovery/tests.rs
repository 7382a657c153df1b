use std::path::PathBuf;

use crate::config::{Config, RecoverFrom, StepKind};

const HEAD: &str = "account \"main\" {\n  regions = [\"us-east-1\"]\n}\n\
    account \"vault\" {\n  type = \"dr\"\n  regions = [\"us-west-2\"]\n}\n";

fn load(text: &str) -> Result<Config, String> {
    crate::load_sources(&[(PathBuf::from("main.lb.hcl"), format!("{HEAD}{text}"))])
        .map(|l| l.config)
        .map_err(|d| d.to_string())
}

fn scenario(body: &str) -> String {
    format!("recovery_scenario \"s\" {{\n{body}\n}}\n")
}

#[test]
fn waves_run_each_step_after_the_steps_it_names() {
    let c = load(&scenario(
        "step \"app\" {\n instances = [\"i-01234567\"]\n after = [\"db\", \"cache\"]\n}\n\
         step \"data\" {\n volumes = [\"vol-01234567\"]\n after = [\"app\"]\n}\n\
         step \"db\" { rds = \"orders\" }\n\
         step \"cache\" { aurora = \"sessions\" }\n\
         step \"logs\" { volumes = [\"vol-89abcdef\"] }",
    ))
    .unwrap();
    let s = c.recovery_scenario("s").unwrap();
    let waves: Vec<Vec<&str>> = s
        .waves()
        .iter()
        .map(|w| w.iter().map(|x| x.name.as_str()).collect())
        .collect();
    assert_eq!(
        waves,
        [vec!["db", "cache", "logs"], vec!["app"], vec!["data"]]
    );
    assert_eq!(
        s.step("cache").unwrap().kind,
        StepKind::Aurora("sessions".into())
    );
    assert_eq!(s.step("db").unwrap().kind.keyword(), "rds");
    assert!(c.recovery_scenario("other").is_none());
}

#[test]
fn defaults_leave_the_destination_to_each_backup() {
    let c = load(&scenario(
        "account = null\nstep \"a\" { rds = \"orders\" }\ncheck { script = \"s.sh\" }\ndrill { every = \"1h\" }",
    ))
    .unwrap();
    let s = &c.recovery_scenarios[0];
    assert_eq!((s.account.as_deref(), s.region.as_deref()), (None, None));
    assert_eq!(s.from, RecoverFrom::Local);
    assert_eq!(s.network, None);
    assert_eq!(s.check.as_ref().unwrap().timeout_secs, 600);
    let drill = s.drill.as_ref().unwrap();
    assert_eq!((drill.every_secs, drill.keep_for_secs), (3600, 3600));
    assert_eq!(s.location.to_string(), "main.lb.hcl:8:1");
    assert_eq!(s.steps[0].location.to_string(), "main.lb.hcl:10:1");
}

#[test]
fn drills_come_at_most_hourly_and_are_gone_before_the_next() {
    let drill = |d: &str| {
        load(&scenario(&format!(
            "step \"a\" {{ rds = \"orders\" }}\n{d}"
        )))
    };
    assert!(drill("drill {\n every = \"60m\"\n keep_for = \"1h\"\n}").is_ok());
    let err = drill("drill { every = \"59m\" }").unwrap_err();
    assert!(err.contains("must be at least \"1h\""), "{err}");
    let err = drill("drill {\n every = \"2h\"\n keep_for = \"121m\"\n}").unwrap_err();
    assert!(
        err.contains(
            "\"keep_for\" in the drill block of recovery_scenario \"s\" is longer than \"every\""
        ),
        "{err}"
    );
    let err = drill("drill {\n every = \"2h\"\n keep_for = \"0s\"\n}").unwrap_err();
    assert!(err.contains("must be longer than zero"), "{err}");
    let err = drill("drill { keep_for = \"1h\" }").unwrap_err();
    assert!(
        err.contains("the drill block of recovery_scenario \"s\" must set \"every\""),
        "{err}"
    );
}

#[test]
fn dr_copies_are_found_by_region_or_account() {
    let with = |attrs: &str| {
        load(&scenario(&format!(
            "from = \"dr\"\n{attrs}\nstep \"a\" {{ rds = \"orders\" }}"
        )))
    };
    assert_eq!(
        with("region = \"us-west-2\"").unwrap().recovery_scenarios[0].from,
        RecoverFrom::Dr
    );
    assert!(with("account = account.vault").is_ok());
    let err = with("").unwrap_err();
    assert!(
        err.contains("main.lb.hcl:9:8: error: Missing destination"),
        "{err}"
    );
    // An account with a problem of its own is reported once, not also as missing.
    let err = with("account = account.nowhere").unwrap_err();
    assert!(!err.contains("Missing destination"), "{err}");
    assert!(err.contains("Reference to undeclared account"), "{err}");
}

const CAPTURE: &str = "vpc_capture \"prod\" {\n  account = account.main\n}\n";

#[test]
fn a_network_clone_with_errors_of_its_own_is_reported_once() {
    let clone = "vpc_clone \"west\" {\n capture = vpc_capture.prod\n vpc = \"vpc-bad\"\n to_region = \"us-west-2\"\n}\n";
    let err = load(&format!(
        "{CAPTURE}{clone}{}",
        scenario("network = vpc_clone.west\nstep \"a\" { rds = \"orders\" }")
    ))
    .unwrap_err();
    assert!(err.contains("Invalid VPC id"), "{err}");
    assert!(!err.contains("undeclared vpc_clone"), "{err}");
    let err = load(&scenario(
        "network = \"west\"\nstep \"a\" { rds = \"orders\" }",
    ))
    .unwrap_err();
    assert!(err.contains("write vpc_clone.west without quotes"), "{err}");
}

#[test]
fn references_cross_files_and_wait_for_files_that_did_not_parse() {
    let clone = "vpc_clone \"west\" {\n capture = vpc_capture.prod\n vpc = \"vpc-01234567\"\n to_region = \"us-west-2\"\n to_account = account.vault\n}\n";
    let s = scenario(
        "account = account.vault\nnetwork = vpc_clone.west\nstep \"a\" { rds = \"orders\" }",
    );
    let loaded = crate::load_sources(&[
        (PathBuf::from("a.lb.hcl"), s.clone()),
        (PathBuf::from("b.lb.hcl"), format!("{HEAD}{CAPTURE}{clone}")),
    ])
    .unwrap();
    assert_eq!(
        loaded.config.recovery_scenarios[0].network.as_deref(),
        Some("west")
    );
    let err = crate::load_sources(&[
        (PathBuf::from("a.lb.hcl"), s),
        (PathBuf::from("b.lb.hcl"), format!("{HEAD}{CAPTURE}{clone}")),
        (PathBuf::from("c.lb.hcl"), "broken {".into()),
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("Syntax error"), "{err}");
    assert!(!err.contains("undeclared"), "{err}");
}

#[test]
fn a_long_chain_of_steps_is_ordered_and_its_cycle_named_once() {
    let n = 3000;
    // Each step its own database: a scenario restores a target once.
    let mut body = String::from("step \"s0\" { rds = \"orders\" }\n");
    for i in 1..n {
        body += &format!(
            "step \"s{i}\" {{\n rds = \"orders{i}\"\n after = [\"s{}\"]\n}}\n",
            i - 1
        );
    }
    let c = load(&scenario(&body)).unwrap();
    assert_eq!(c.recovery_scenarios[0].waves().len(), n);
    // Closing the chain: s0 after the last step.
    let body = body.replacen(
        "step \"s0\" { rds = \"orders\" }",
        &format!(
            "step \"s0\" {{\n rds = \"orders\"\n after = [\"s{}\"]\n}}",
            n - 1
        ),
        1,
    );
    let err = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || load(&scenario(&body)).unwrap_err())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(err.matches("Cycle in after").count(), 1, "{err}");
    assert!(
        err.contains(&format!("\"s0\" after \"s{}\" after", n - 1)),
        "{err}"
    );
}

#[test]
fn configurations_without_scenarios_serialise_as_before() {
    let c = load("").unwrap();
    let json = serde_json::to_string(&c).unwrap();
    assert!(!json.contains("recovery_scenarios"), "{json}");
}

#[test]
fn the_documented_example_loads() {
    let docs = include_str!("../../../../docs/configuration.md");
    let section = &docs[docs.find("## `recovery_scenario").unwrap()..];
    let start = section.find("```hcl\n").unwrap() + "```hcl\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let clone = "vpc_clone \"prod-west\" {\n capture = vpc_capture.prod\n vpc = \"vpc-01234567\"\n to_region = \"us-west-2\"\n to_account = account.vault\n}\n";
    let c = load(&format!("{CAPTURE}{clone}{example}")).unwrap();
    let s = c.recovery_scenario("prod-west").unwrap();
    assert_eq!(s.from, RecoverFrom::Dr);
    assert_eq!(s.steps.len(), 2);
}
