//! Every request a client sends, counted per service and action in the
//! engine's [`CallCounts`], with whether AWS throttled it. An SDK
//! interceptor sees each attempt, the SDK's own retries included, which a
//! wrapper around the engine's ports could not: a throttle the SDK retried
//! away never reaches the caller.

use std::sync::Arc;

use aws_sdk_ec2::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use lifeboat_engine::cloud::calls::CallCounts;
use lifeboat_engine::cloud::ErrorKind;

use crate::error::classify;

/// Counts each attempt of every operation of the client it is given to.
#[derive(Debug, Clone)]
pub(crate) struct Counting(pub Arc<CallCounts>);

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "LifeboatCallCounting"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(op) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let throttled = context.response().is_some_and(|r| {
            let status = r.status().as_u16();
            status >= 400
                && throttled(
                    status,
                    r.headers().get("x-amzn-errortype"),
                    r.body().bytes().unwrap_or_default(),
                )
        });
        self.0.record(op.service(), op.name(), throttled);
        Ok(())
    }
}

/// Whether an error answer says "slow down", by the same table that
/// classifies the errors callers see ([`classify`]).
fn throttled(status: u16, error_type: Option<&str>, body: &[u8]) -> bool {
    let code = error_code(error_type, body);
    classify(code.as_deref(), Some(status)) == ErrorKind::Throttled
}

/// The AWS error code of an error answer: the `x-amzn-ErrorType` header
/// (JSON protocols), `<Code>` (query and XML protocols: EC2, RDS, IAM, STS,
/// SNS, CloudFormation, S3) or a JSON body's `__type` / `code`.
fn error_code(error_type: Option<&str>, body: &[u8]) -> Option<String> {
    let cut = |s: &str| {
        let s = s.split(':').next().unwrap_or(s);
        s.rsplit('#').next().unwrap_or(s).trim().to_owned()
    };
    if let Some(t) = error_type.filter(|t| !t.is_empty()) {
        return Some(cut(t));
    }
    // Error bodies are small; a large body is not an error document.
    let text = std::str::from_utf8(&body[..body.len().min(64 * 1024)]).ok()?;
    if let Some(start) = text.find("<Code>") {
        let rest = &text[start + "<Code>".len()..];
        return rest
            .find("</Code>")
            .map(|end| rest[..end].trim().to_owned());
    }
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    ["__type", "code", "Code"]
        .iter()
        .find_map(|k| v.get(k).and_then(|c| c.as_str()))
        .map(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_are_read_from_each_protocol_s_error_answer() {
        let ec2 = b"<Response><Errors><Error><Code>RequestLimitExceeded</Code>\
            <Message>Request limit exceeded.</Message></Error></Errors></Response>";
        assert!(throttled(503, None, ec2));
        let rds = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
            </Error></ErrorResponse>";
        assert!(throttled(400, None, rds));
        let kms = br#"{"__type":"com.amazonaws.kms#ThrottlingException","message":"slow"}"#;
        assert!(throttled(400, None, kms));
        assert!(throttled(
            400,
            Some("ThrottlingException:http://internal.amazon.com/"),
            b""
        ));
        // No code at all: 429 and 503 still mean "slow down".
        assert!(throttled(429, None, b"<html>busy</html>"));
    }

    #[test]
    fn other_errors_are_not_throttles() {
        let missing = b"<Response><Errors><Error><Code>InvalidSnapshot.NotFound</Code>\
            </Error></Errors></Response>";
        assert!(!throttled(400, None, missing));
        let denied = br#"{"__type":"AccessDeniedException","message":"no"}"#;
        assert!(!throttled(400, None, denied));
        assert!(!throttled(500, None, b"<html>Internal Server Error</html>"));
        assert_eq!(
            error_code(None, b"<Error><Code> SlowDown </Code></Error>").as_deref(),
            Some("SlowDown")
        );
    }
}
