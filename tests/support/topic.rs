//! An SNS topic in the emulator with an SQS queue subscribed to it, so a
//! test reads back what lifeboat published.

use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region};

use super::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

pub struct Topic {
    rt: tokio::runtime::Runtime,
    sqs: aws_sdk_sqs::Client,
    pub arn: String,
    queue_url: String,
}

impl Topic {
    /// An SNS topic with an SQS queue subscribed to it.
    pub fn create(endpoint: &str) -> Topic {
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
    pub fn drain(&self) -> Vec<(String, String)> {
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
