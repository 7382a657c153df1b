//! SNS for alert notifications: one Publish call per message.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use lifeboat_engine::cloud::{CloudResult, Sns};

use crate::error::ErrorContext;

pub(crate) struct AwsSns {
    client: Client,
    ctx: ErrorContext,
}

impl AwsSns {
    pub(crate) fn new(client: Client, ctx: ErrorContext) -> Self {
        Self { client, ctx }
    }
}

#[async_trait]
impl Sns for AwsSns {
    async fn publish(&self, topic_arn: &str, subject: &str, message: &str) -> CloudResult<String> {
        let out = self
            .client
            .publish()
            .topic_arn(topic_arn)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map_err(|e| self.ctx.sdk("sns:Publish", Some(topic_arn), &e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}
