use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::naming::{TAG_CAPTURED_AT, TAG_ORIGINAL_ID, TAG_ORIGINAL_REGION};
use super::*;

/// Runs cfn-lint (installed with the emulator by
/// `scripts/emulator-env.sh`) on a template and fails on errors. Without
/// the binary it says so and passes. Shared by the golden tests and the
/// integration test (as a copy: integration tests cannot see `cfg(test)`).
fn cfn_lint(template: &str, region: &str) {
    let bin = Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("../.venv/bin/cfn-lint");
    if !bin.exists() {
        eprintln!(
            "skipping cfn-lint: {} is not installed (run scripts/emulator-env.sh)",
            bin.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template.json");
    std::fs::write(&path, template).unwrap();
    let out = std::process::Command::new(&bin)
        .args(["--regions", region, "--format", "parseable", "--"])
        .arg(&path)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(1);
    // cfn-lint's exit code is a bit mask: 1 fatal, 2 errors, 4 warnings,
    // 8 informational.
    assert!(
        code & 3 == 0,
        "cfn-lint found errors (exit {code}):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("../testdata/vpc_export")
}

fn options(v: &Value) -> ExportOptions {
    ExportOptions {
        source_region: v["source_region"].as_str().unwrap().into(),
        captured_at: v["captured_at"].as_str().unwrap().parse().unwrap(),
        to_region: v["to_region"].as_str().unwrap().into(),
        to_zones: v["to_zones"]
            .as_array()
            .unwrap()
            .iter()
            .map(|z| z.as_str().unwrap().to_string())
            .collect(),
        name: v["name"].as_str().map(str::to_string),
    }
}

fn case(name: &str) -> (CaptureDoc, ExportOptions) {
    let d = dir().join(name);
    let doc: CaptureDoc =
        serde_json::from_str(&std::fs::read_to_string(d.join("capture.json")).unwrap()).unwrap();
    let opts: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("options.json")).unwrap()).unwrap();
    (doc, options(&opts))
}

fn left_out_text(e: &Export) -> String {
    e.left_out
        .iter()
        .map(|l| format!("{}\n    {}\n", l.what, l.reason))
        .collect()
}

fn golden(path: &Path, text: &str) {
    if std::env::var_os("LIFEBOAT_BLESS").is_some() {
        std::fs::write(path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (LIFEBOAT_BLESS=1 writes it)", path.display()));
    assert!(
        want == text,
        "{} differs from the golden file:\n{}",
        path.display(),
        crate::vpc::capture::diff_documents(&want, text, "golden", "now")
    );
}

/// Every case in testdata/vpc_export/: the template, the left-out log
/// and the resource counts match the golden files, and cfn-lint finds
/// no error in the template.
#[test]
fn exports_match_the_golden_files_and_pass_cfn_lint() {
    let mut cases: Vec<_> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            e.path()
                .join("capture.json")
                .exists()
                .then(|| e.file_name())
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 2, "{cases:?}");
    for c in cases {
        let name = c.to_str().unwrap();
        let (doc, opts) = case(name);
        let e = export(&doc, &opts).unwrap();
        let d = dir().join(name);
        golden(&d.join("template.json"), &e.text());
        golden(&d.join("left_out.txt"), &left_out_text(&e));
        golden(
            &d.join("counts.json"),
            &(serde_json::to_string_pretty(&e.resource_counts).unwrap() + "\n"),
        );
        cfn_lint(&e.text(), &opts.to_region);
    }
}

#[test]
fn the_same_capture_gives_the_same_bytes() {
    let (doc, opts) = case("full");
    let a = export(&doc, &opts).unwrap();
    let b = export(&doc.clone(), &opts.clone()).unwrap();
    assert_eq!(a.text(), b.text());
    assert_eq!(a.left_out, b.left_out);
}

fn resources(e: &Export) -> &serde_json::Map<String, Value> {
    e.template["Resources"].as_object().unwrap()
}

#[test]
fn every_resource_is_retained_and_no_original_id_is_referenced() {
    let (doc, opts) = case("full");
    let e = export(&doc, &opts).unwrap();
    let total: usize = e.resource_counts.values().sum();
    assert_eq!(total, resources(&e).len());
    for (id, r) in resources(&e) {
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
        assert_eq!(r["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(r["UpdateReplacePolicy"], "Retain", "{id}");
        // Original ids appear only in tags.
        let mut props = r["Properties"].clone();
        if let Some(p) = props.as_object_mut() {
            p.remove("Tags");
        }
        let text = props.to_string();
        for prefix in [
            "\"vpc-",
            "\"subnet-",
            "\"sg-",
            "\"igw-",
            "\"rtb-",
            "\"nat-",
            "\"vgw-",
            "\"cgw-",
            "\"pl-",
        ] {
            assert!(!text.contains(prefix), "{id} names an original id: {text}");
        }
    }
}

#[test]
fn tags_record_the_origin_and_drop_aws_tags() {
    let (doc, opts) = case("full");
    let e = export(&doc, &opts).unwrap();
    let tags = &resources(&e)["VPC"]["Properties"]["Tags"];
    let get = |k: &str| {
        tags.as_array()
            .unwrap()
            .iter()
            .find(|t| t["Key"] == k)
            .map(|t| t["Value"].as_str().unwrap().to_string())
    };
    assert_eq!(get("Name").as_deref(), Some("prod (cloned)"));
    assert_eq!(get("team").as_deref(), Some("platform"));
    assert_eq!(get(TAG_ORIGINAL_ID).as_deref(), Some("vpc-0a1"));
    assert_eq!(get(TAG_ORIGINAL_REGION).as_deref(), Some("us-east-1"));
    assert_eq!(
        get(TAG_CAPTURED_AT).as_deref(),
        Some("2026-11-22T01:00:00Z")
    );
    assert_eq!(get("aws:cloudformation:stack-name"), None);

    let mut named = opts.clone();
    named.name = Some("prod west".into());
    let e = export(&doc, &named).unwrap();
    assert!(resources(&e)["VPC"]["Properties"]["Tags"]
        .to_string()
        .contains("\"prod west\""));
    let mut unnamed = doc.clone();
    unnamed.vpc.tags.clear();
    let e = export(&unnamed, &opts).unwrap();
    assert!(resources(&e)["VPC"]["Properties"]["Tags"]
        .to_string()
        .contains("\"vpc-0a1 (cloned)\""));
}

#[test]
fn zones_map_by_letter_and_a_missing_letter_is_an_error() {
    let (doc, mut opts) = case("full");
    let e = export(&doc, &opts).unwrap();
    assert_eq!(
        resources(&e)["Subnet0c3"]["Properties"]["AvailabilityZone"],
        "us-west-2c"
    );
    opts.to_zones = vec!["us-west-2a".into(), "us-west-2b".into()];
    let err = export(&doc, &opts).unwrap_err();
    let ExportError::Zones(msg) = &err;
    assert!(msg.contains("no zone c (for us-east-1c)"), "{msg}");
    assert!(msg.contains("us-west-2a, us-west-2b"), "{msg}");
}

#[test]
fn zone_ids_map_to_the_zone_of_the_same_number() {
    let (mut doc, opts) = case("full");
    doc.subnets[0].availability_zone = "use1-az2".into();
    let e = export(&doc, &opts).unwrap();
    assert_eq!(
        resources(&e)["Subnet0a1"]["Properties"]["AvailabilityZone"],
        "us-west-2b"
    );
    doc.subnets[0].availability_zone = "use1-az6".into();
    let ExportError::Zones(msg) = export(&doc, &opts).unwrap_err();
    assert!(
        msg.contains("zone number 6 (for zone id use1-az6)"),
        "{msg}"
    );
}

#[test]
fn rules_between_groups_of_the_vpc_become_references_in_separate_resources() {
    let (doc, opts) = case("full");
    let e = export(&doc, &opts).unwrap();
    let res = resources(&e);
    let ingress: Vec<&Value> = res
        .iter()
        .filter(|(k, v)| {
            k.starts_with("SecurityGroup0db") && v["Type"] == "AWS::EC2::SecurityGroupIngress"
        })
        .map(|(_, v)| v)
        .collect();
    let sources: Vec<String> = ingress
        .iter()
        .map(|v| v["Properties"]["SourceSecurityGroupId"].to_string())
        .collect();
    assert!(
        sources.contains(&r#"{"Ref":"SecurityGroup0web"}"#.to_string()),
        "{sources:?}"
    );
    assert!(
        sources.contains(&r#"{"Ref":"SecurityGroup0db"}"#.to_string()),
        "{sources:?}"
    );
    assert_eq!(
        ingress.len(),
        2,
        "the other account's and the peer's group are left out"
    );
    // The default group is not recreated; its extra rule goes on the
    // clone's default group.
    assert!(!res.contains_key("SecurityGroup0d0"));
    assert!(res
        .values()
        .any(|v| v["Properties"]["GroupId"]
            == json!({"Fn::GetAtt": ["VPC", "DefaultSecurityGroup"]})));
    // web keeps AWS's allow-all egress, listed inline with its own.
    let web = &res["SecurityGroup0web"]["Properties"];
    assert_eq!(web["SecurityGroupEgress"][0]["CidrIp"], "0.0.0.0/0");
    // A group without egress rules loses the allow-all one.
    let none = &res["SecurityGroup0out"]["Properties"];
    assert_eq!(none["SecurityGroupEgress"][0]["CidrIp"], "127.0.0.1/32");
    let lo = left_out_text(&e);
    assert!(
        lo.contains("security group sg-0db ingress tcp 5432 222222222222/sg-0ff"),
        "{lo}"
    );
    assert!(lo.contains("peered through pcx-0a1"), "{lo}");
    assert!(
        lo.contains("security group sg-0web ingress tcp 80 pl-0aws"),
        "{lo}"
    );
    assert!(lo.contains("sg-0d0 (default) missing rule: egress"), "{lo}");
}

#[test]
fn routes_that_cannot_be_carried_are_logged_one_by_one() {
    let (doc, opts) = case("full");
    let e = export(&doc, &opts).unwrap();
    let lo = left_out_text(&e);
    for want in [
        "route rtb-0main 10.50.0.0/16 -> pcx-0a1",
        "route rtb-0main 10.60.0.0/16 -> tgw-0a1",
        "route rtb-0main 10.70.0.0/16 -> i-0a1",
        "route rtb-0main 10.71.0.0/16 -> eni-0a1",
        "route rtb-0main 10.72.0.0/16 -> no target",
        "route rtb-0main 10.73.0.0/16 -> nat-0gone",
        "route rtb-0main 10.74.0.0/16 -> cagw-0a1",
        "route rtb-0main 10.75.0.0/16 -> lgw-0a1",
        "route rtb-0main 192.168.50.0/24 -> vgw-0a1",
        "route rtb-0main pl-0aws -> vpce-0a1",
        "peering connection pcx-0a1 with vpc-0peer",
        "transit gateway tgw-0a1",
        "transit gateway attachment tgw-attach-0a1",
        "vpn connection vpn-0tgw",
        "customer gateway cgw-0b2",
        "nat gateway nat-0pub secondary address 198.51.100.8",
    ] {
        assert!(lo.contains(want), "{want} missing from:\n{lo}");
    }
    let routes: Vec<&Value> = resources(&e)
        .values()
        .filter(|v| v["Type"] == "AWS::EC2::Route")
        .collect();
    // igw, nat, vgw, eigw (IPv6) and the own prefix list via the private NAT.
    assert_eq!(routes.len(), 5, "{routes:?}");
}

#[test]
fn the_main_table_is_associated_explicitly_with_the_implicit_subnets() {
    let (doc, opts) = case("full");
    let e = export(&doc, &opts).unwrap();
    let res = resources(&e);
    for s in ["Subnet0b2", "Subnet0c3"] {
        let a = &res[&format!("SubnetRouteTableAssociation{}", &s[6..])];
        assert_eq!(
            a["Properties"]["RouteTableId"],
            json!({"Ref": "RouteTable0main"})
        );
    }
    assert_eq!(
        res["SubnetRouteTableAssociation0a1"]["Properties"]["RouteTableId"],
        json!({"Ref": "RouteTable0pub"})
    );
}
