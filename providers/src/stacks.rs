//! CloudFormation stacks and S3 template uploads for VPC clones: one SDK call
//! per trait method, answers converted into the engine's types.

use async_trait::async_trait;
use aws_sdk_cloudformation::types::Tag;
use aws_sdk_cloudformation::Client as CfnClient;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client as S3Client;
use lifeboat_engine::cloud::{
    CloudResult, Objects, StackEvent, StackInfo, Stacks, Tags, TemplateSource,
};

use crate::convert::time_from_sdk;
use crate::error::{is_missing_stack, is_no_stack_update, ErrorContext};

pub(crate) struct AwsStacks {
    client: CfnClient,
    ctx: ErrorContext,
}

impl AwsStacks {
    pub(crate) fn new(client: CfnClient, ctx: ErrorContext) -> Self {
        Self { client, ctx }
    }
}

#[async_trait]
impl Stacks for AwsStacks {
    async fn create_stack(
        &self,
        name: &str,
        template: &TemplateSource,
        tags: &Tags,
    ) -> CloudResult<String> {
        let mut req = self.client.create_stack().stack_name(name);
        req = match template {
            TemplateSource::Body(b) => req.template_body(b),
            TemplateSource::Url(u) => req.template_url(u),
        };
        for (k, v) in tags {
            req = req.tags(Tag::builder().key(k).value(v).build());
        }
        let out = req
            .send()
            .await
            .map_err(|e| self.ctx.sdk("cloudformation:CreateStack", Some(name), &e))?;
        Ok(out.stack_id().unwrap_or(name).to_owned())
    }

    async fn update_stack(&self, name: &str, template: &TemplateSource) -> CloudResult<bool> {
        let mut req = self.client.update_stack().stack_name(name);
        req = match template {
            TemplateSource::Body(b) => req.template_body(b),
            TemplateSource::Url(u) => req.template_url(u),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let err = self.ctx.sdk("cloudformation:UpdateStack", Some(name), &e);
                if is_no_stack_update(&err) {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn delete_stack(&self, name: &str) -> CloudResult<()> {
        match self.client.delete_stack().stack_name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = self.ctx.sdk("cloudformation:DeleteStack", Some(name), &e);
                if is_missing_stack(&err) {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn describe_stack(&self, name: &str) -> CloudResult<Option<StackInfo>> {
        let out = match self.client.describe_stacks().stack_name(name).send().await {
            Ok(out) => out,
            Err(e) => {
                let err = self
                    .ctx
                    .sdk("cloudformation:DescribeStacks", Some(name), &e);
                return if is_missing_stack(&err) {
                    Ok(None)
                } else {
                    Err(err)
                };
            }
        };
        Ok(out.stacks().first().map(|s| StackInfo {
            name: s.stack_name().unwrap_or(name).to_owned(),
            id: s.stack_id().unwrap_or_default().to_owned(),
            status: s
                .stack_status()
                .map(|st| st.as_str().to_owned())
                .unwrap_or_default(),
            reason: s.stack_status_reason().map(str::to_owned),
        }))
    }

    async fn stack_events(&self, name: &str) -> CloudResult<Vec<StackEvent>> {
        let out = match self
            .client
            .describe_stack_events()
            .stack_name(name)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let err = self
                    .ctx
                    .sdk("cloudformation:DescribeStackEvents", Some(name), &e);
                return if is_missing_stack(&err) {
                    Ok(vec![])
                } else {
                    Err(err)
                };
            }
        };
        let mut events: Vec<StackEvent> = out
            .stack_events()
            .iter()
            .map(|e| StackEvent {
                at: time_from_sdk(e.timestamp()),
                logical_id: e.logical_resource_id().unwrap_or_default().to_owned(),
                resource_type: e.resource_type().unwrap_or_default().to_owned(),
                status: e
                    .resource_status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                reason: e.resource_status_reason().map(str::to_owned),
            })
            .collect();
        // Newest first, whatever order the service used.
        events.sort_by_key(|e| std::cmp::Reverse(e.at));
        Ok(events)
    }
}

pub(crate) struct AwsObjects {
    client: S3Client,
    ctx: ErrorContext,
    /// The AWS account id a bucket written to must belong to
    /// (`ExpectedBucketOwner`): a template or report is never handed to a
    /// bucket of the same name in someone else's account, where it could
    /// be read, or a template swapped before CloudFormation reads it.
    owner: String,
}

impl AwsObjects {
    pub(crate) fn new(client: S3Client, ctx: ErrorContext, owner: String) -> Self {
        Self { client, ctx, owner }
    }
}

#[async_trait]
impl Objects for AwsObjects {
    /// The URL is the virtual-hosted global form, which CloudFormation (and
    /// the emulator) accept for a `TemplateURL`.
    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> CloudResult<String> {
        self.client
            .put_object()
            .bucket(bucket)
            .expected_bucket_owner(&self.owner)
            .key(key)
            .content_type(if key.ends_with(".csv") {
                "text/csv"
            } else {
                "application/json"
            })
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| {
                self.ctx
                    .sdk("s3:PutObject", Some(&format!("s3://{bucket}/{key}")), &e)
            })?;
        Ok(format!("https://{bucket}.s3.amazonaws.com/{key}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// The emulator ignores `ExpectedBucketOwner`, so the header is checked
    /// on the request itself, sent to a listener that answers 200.
    #[tokio::test]
    async fn every_put_names_the_bucket_owner_it_expects() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Never waits for ever: a client that does not come fails the test.
        listener.set_nonblocking(true).unwrap();
        let seen = std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let mut conn = loop {
                match listener.accept() {
                    Ok((conn, _)) => break conn,
                    Err(_) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Err(e) => panic!("no request came: {e}"),
                }
            };
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(std::time::Duration::from_secs(20)))
                .unwrap();
            let mut head = Vec::new();
            let mut chunk = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&chunk[..n]);
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .unwrap();
            String::from_utf8_lossy(&head).to_lowercase()
        });
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "AKIDEXAMPLE",
                "not-a-secret",
                None,
                None,
                "test",
            ))
            .build();
        let ctx = ErrorContext {
            account: "main".into(),
            region: "us-east-1".into(),
            assumes_role: false,
            credentials: "static".into(),
        };
        let objects = AwsObjects::new(S3Client::from_conf(conf), ctx, "123456789012".into());
        objects
            .put_object("reports", "daily.csv", b"a,b\n".to_vec())
            .await
            .unwrap();
        let head = seen.join().unwrap();
        assert!(
            head.contains("x-amz-expected-bucket-owner: 123456789012"),
            "{head}"
        );
    }
}
