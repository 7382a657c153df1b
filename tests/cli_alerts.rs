//! Policy run options against the emulator with the real binary: a failing
//! before script under `success = "strict"` is retried, ends in a backup
//! that is not a valid generation and opens an alert (listed by `alerts`
//! and `status`, published to SNS and read back through an SQS queue
//! subscribed to the topic); `backups show` prints the script's stderr; the
//! next passing run closes the alert.

mod support;

use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region};
use support::{Env, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

struct Topic {
    rt: tokio::runtime::Runtime,
    sqs: aws_sdk_sqs::Client,
    arn: String,
    queue_url: String,
}

impl Topic {
    /// An SNS topic with an SQS queue subscribed to it.
    fn create(endpoint: &str) -> Topic {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let creds = Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "tests");
        let sns = aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .endpoint_url(endpoint)
                .credentials_provider(creds.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .endpoint_url(endpoint)
                .credentials_provider(creds)
                .build(),
        );
        let (arn, queue_url) = rt.block_on(async {
            let arn = sns
                .create_topic()
                .name("lifeboat-alerts")
                .send()
                .await
                .unwrap()
                .topic_arn()
                .unwrap()
                .to_string();
            let queue_url = sqs
                .create_queue()
                .queue_name("alerts-inbox")
                .send()
                .await
                .unwrap()
                .queue_url()
                .unwrap()
                .to_string();
            let attrs = sqs
                .get_queue_attributes()
                .queue_url(&queue_url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send()
                .await
                .unwrap();
            let queue_arn = attrs
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
                .unwrap()
                .clone();
            sns.subscribe()
                .topic_arn(&arn)
                .protocol("sqs")
                .endpoint(queue_arn)
                .send()
                .await
                .unwrap();
            (arn, queue_url)
        });
        Topic {
            rt,
            sqs,
            arn,
            queue_url,
        }
    }

    /// The (subject, message) of every notification received so far.
    fn drain(&self) -> Vec<(String, String)> {
        self.rt.block_on(async {
            let mut out = Vec::new();
            loop {
                let got = self
                    .sqs
                    .receive_message()
                    .queue_url(&self.queue_url)
                    .max_number_of_messages(10)
                    .send()
                    .await
                    .unwrap();
                let msgs = got.messages();
                if msgs.is_empty() {
                    return out;
                }
                for m in msgs {
                    // SNS wraps the notification in a JSON envelope.
                    let body: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
                    out.push((
                        body["Subject"].as_str().unwrap_or_default().to_string(),
                        body["Message"].as_str().unwrap().to_string(),
                    ));
                    self.sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(m.receipt_handle().unwrap())
                        .send()
                        .await
                        .unwrap();
                }
            }
        })
    }
}

fn config(instance: &str, topic: &str) -> String {
    format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

notifications {{
  sns_topic = "{topic}"
  account   = account.main
  region    = "us-east-1"
}}

schedule "hourly" {{
  start = "2026-11-22T00:17"
  every = "1h"
}}

policy "web" {{
  account     = account.main
  generations = 2
  schedules   = [schedule.hourly]
  success     = "strict"

  retries {{
    count = 1
    wait  = "1s"
  }}

  scripts {{
    before  = "scripts/before.sh"
    timeout = "10s"
  }}

  instance "{instance}" {{
    region = "us-east-1"
  }}
}}
"#
    )
}

#[test]
fn a_failing_before_script_is_retried_opens_an_alert_and_the_next_success_closes_it() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::start();
    let topic = Topic::create(&env.emulator.endpoint());
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(&a.id, &topic.arn));
    env.ws.write(
        "scripts/before.sh",
        "#!/bin/sh\nif [ -f broken ]; then echo \"cannot freeze $LIFEBOAT_POLICY ($2)\" >&2; exit 2; fi\n",
    );
    let script = env.ws.path().join("scripts/before.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.ws.write("broken", "");
    env.apply();
    env.run(&["--now", "2026-11-22T10:20:00Z", "plan"])
        .ok()
        .stdout_has("Next runs:\n  policy.web  2026-11-22T11:17:00Z");

    let run = env
        .run(&["--now", "2026-11-22T10:20:00Z", "run", "--once"])
        .code(1);
    run.stdout_has("attempt_failed")
        .stdout_has("alert_open")
        .stdout_has("attempts=2");
    // Two attempts, each a backup that is not a valid generation.
    let backups = env.backups(&[]);
    assert_eq!(backups.len(), 2, "{backups:?}");
    assert!(
        backups.iter().all(|b| b["status"] == "partial"),
        "{backups:?}"
    );

    let alerts = env.run(&["alerts", "--json"]).ok().json();
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["policy"], "web");

    let status = env
        .run(&["--now", "2026-11-22T10:30:00Z", "status", "--json"])
        .ok()
        .json();
    assert_eq!(status[0]["policy"], "web");
    assert_eq!(status[0]["last_status"], "partial");
    assert_eq!(status[0]["next_run"], "2026-11-22T11:17:00Z");
    assert_eq!(status[0]["consecutive_failures"], 1);
    assert_eq!(status[0]["open_alerts"].as_array().unwrap().len(), 1);
    env.run(&["--now", "2026-11-22T10:30:00Z", "status"])
        .ok()
        .stdout_has("1 open")
        .stdout_has("2026-11-22T11:17:00Z");

    let id = backups[0]["id"].as_str().unwrap();
    env.run(&["backups", "show", id])
        .ok()
        .stdout_has("before  failed  exit status 2")
        .stdout_has(&format!("cannot freeze web ({id})"));

    let sent = topic.drain();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, "Lifeboat alert opened: policy web");
    assert!(
        sent[0].1.starts_with("ALERT OPENED\npolicy: web\n"),
        "{}",
        sent[0].1
    );

    // Fixed: the next slot's run succeeds and closes the alert.
    std::fs::remove_file(env.ws.path().join("broken")).unwrap();
    env.run(&["--now", "2026-11-22T11:20:00Z", "run", "--once"])
        .ok()
        .stdout_has("alert_close");
    let alerts = env.run(&["alerts", "--json"]).ok().json();
    assert!(alerts.as_array().unwrap().is_empty());
    env.run(&["alerts"]).ok().stdout_has("No open alerts.");
    let sent = topic.drain();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, "Lifeboat alert closed: policy web");
    assert!(sent[0].1.contains("ALERT CLOSED\npolicy: web\n"));
}
