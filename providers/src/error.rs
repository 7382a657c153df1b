//! The one place where SDK errors become [`CloudError`]s.
//!
//! The classification is a pure function of the AWS error code and the HTTP
//! status ([`classify`]) so that the table is unit-tested without a network;
//! [`ErrorContext::sdk`] is the thin layer that pulls code, status and
//! message out of an `SdkError` and says which account, region and action
//! failed.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use lifeboat_engine::cloud::{Call, CloudError, ErrorKind};

/// Action name used when the assumed-role credentials cannot be obtained.
pub(crate) const ASSUME_ROLE: &str = "sts:AssumeRole";

/// Classifies an AWS failure by its error code and HTTP status.
///
/// The code decides when there is one; the status is only consulted for
/// codes this table does not know and for answers without a code.
pub(crate) fn classify(code: Option<&str>, status: Option<u16>) -> ErrorKind {
    let Some(code) = code.filter(|c| !c.is_empty()) else {
        // No code: the service did not give a verdict we can read (a proxy
        // page, an HTML 500, a cut-off body). 503/429 still mean "slow down".
        return match status {
            Some(503 | 429) => ErrorKind::Throttled,
            _ => ErrorKind::Transport,
        };
    };

    // NotFound first: `InvalidSnapshot.NotFound` is about existence, not
    // about a malformed request, and deleting it counts as done.
    if code.ends_with(".NotFound") || code.contains("NotFound") {
        return ErrorKind::NotFound;
    }
    // DeregisterImage of an AMI already deregistered; IAM's word for a
    // role or policy that does not exist.
    if code == "InvalidAMIID.Unavailable" || code == "NoSuchEntity" {
        return ErrorKind::NotFound;
    }

    match code {
        // The SDK already retried these with backoff; what reaches us is
        // "still throttled after the retry budget".
        "RequestLimitExceeded"
        | "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "TooManyRequestsException"
        | "ServiceUnavailable"
        | "SlowDown"
        | "EC2ThrottledException"
        | "PriorRequestNotComplete"
        // Per-volume snapshot *rate* (one snapshot per volume every ~15 s):
        // nothing is wrong with the volume, waiting alone fixes it, exactly
        // like API throttling — so the engine's backoff path is the right one.
        | "SnapshotCreationPerVolumeRateExceeded"
        // Too many snapshots *pending* in the region: this clears as other
        // snapshots complete, within minutes. The backup's create calls
        // back off for as long as its timeout allows, which is the wait
        // this needs; failing the target at once would lose the backup.
        | "ConcurrentSnapshotLimitExceeded"
        | "PendingSnapshotLimitExceeded" => return ErrorKind::Throttled,

        "UnauthorizedOperation"
        | "AuthFailure"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "UnrecognizedClientException"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "RequestExpired"
        | "OptInRequired"
        | "Blocked" => return ErrorKind::AccessDenied,

        "IncorrectState"
        | "IncorrectInstanceState"
        | "ConcurrentTagAccess"
        | "IdempotentParameterMismatch"
        // CloudFormation: CreateStack of a name that exists.
        | "AlreadyExistsException"
        // IAM: CreateRole of a name that exists.
        | "EntityAlreadyExists"
        // RDS: a snapshot id taken, a database or snapshot busy (backing up,
        // modifying, stopped for a cluster snapshot).
        | "DBSnapshotAlreadyExists"
        | "DBClusterSnapshotAlreadyExistsFault"
        // RDS: a restore's identifier taken (by an earlier run of it).
        | "DBInstanceAlreadyExists"
        | "DBClusterAlreadyExistsFault"
        | "InvalidDBInstanceState"
        | "InvalidDBClusterStateFault"
        | "InvalidDBSnapshotState"
        | "InvalidDBClusterSnapshotStateFault" => return ErrorKind::Conflict,

        "MissingParameter"
        | "UnknownParameter"
        | "ValidationError"
        | "ValidationException"
        | "MalformedQueryString"
        | "InvalidAction"
        | "UnsupportedOperation"
        | "Unsupported" => return ErrorKind::Invalid,
        _ => {}
    }

    if code.starts_with("AccessDenied") {
        return ErrorKind::AccessDenied;
    }
    if code.contains("InUse") || code.starts_with("IncorrectState") {
        return ErrorKind::Conflict;
    }
    // After NotFound, InUse and the credential codes (`InvalidClientTokenId`)
    // were taken out: the remaining `Invalid*` codes (`InvalidParameterValue`,
    // `InvalidSnapshotID.Malformed`, `InvalidVolume.ZoneMismatch`) reject the
    // request itself.
    if code.starts_with("Invalid") {
        return ErrorKind::Invalid;
    }

    match status {
        Some(503 | 429) => ErrorKind::Throttled,
        _ => ErrorKind::Other,
    }
}

/// CloudFormation answers UpdateStack of an unchanged template with a
/// ValidationError, which for Lifeboat means "already up to date".
pub(crate) fn is_no_stack_update(err: &CloudError) -> bool {
    err.code.as_deref() == Some("ValidationError")
        && err.message.contains("No updates are to be performed")
}

/// CloudFormation answers DescribeStacks (and DescribeStackEvents) of a
/// missing stack with a ValidationError "Stack with id X does not exist".
pub(crate) fn is_missing_stack(err: &CloudError) -> bool {
    err.code.as_deref() == Some("ValidationError") && err.message.contains("does not exist")
}

/// Classifies a credential-provider failure that happened before any
/// request to the target service was sent.
fn classify_credentials(err: &CredentialsError) -> ErrorKind {
    match err {
        CredentialsError::CredentialsNotLoaded(_) => ErrorKind::AccessDenied,
        CredentialsError::ProviderTimedOut(_) => ErrorKind::Transport,
        CredentialsError::InvalidConfiguration(_) => ErrorKind::Invalid,
        _ => ErrorKind::Other,
    }
}

/// Where a call was made: everything a [`CloudError`] needs besides the
/// failure itself.
#[derive(Debug, Clone)]
pub(crate) struct ErrorContext {
    /// The account's name in the configuration (never its credentials).
    pub account: String,
    pub region: String,
    /// Whether the account's credentials come from an assumed role, so that
    /// a credential failure is reported as `sts:AssumeRole`.
    pub assumes_role: bool,
    /// Where the credentials come from, for messages: `profile "ops"`,
    /// `the default credential chain`. Names only, never key material.
    pub credentials: String,
}

impl ErrorContext {
    /// The list call `action` made here, as a page names it.
    pub fn call(&self, action: &str) -> Call {
        Call {
            account: self.account.clone(),
            region: self.region.clone(),
            action: action.to_owned(),
        }
    }

    pub fn error(
        &self,
        kind: ErrorKind,
        action: &str,
        resource: Option<&str>,
        code: Option<String>,
        message: String,
    ) -> CloudError {
        CloudError {
            kind,
            account: self.account.clone(),
            region: self.region.clone(),
            action: action.to_owned(),
            resource: resource.map(str::to_owned),
            code,
            message,
        }
    }

    /// Maps a failed SDK call (`action` like `ec2:CreateSnapshots`).
    pub fn sdk<E>(
        &self,
        action: &str,
        resource: Option<&str>,
        err: &SdkError<E, HttpResponse>,
    ) -> CloudError
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        match err {
            SdkError::ServiceError(service) => {
                let code = err.code().map(str::to_owned);
                let status = service.raw().status().as_u16();
                let kind = classify(code.as_deref(), Some(status));
                let message = match err.message() {
                    Some(m) if !m.is_empty() => m.to_owned(),
                    _ => format!("HTTP {status}: {}", DisplayErrorContext(err)),
                };
                self.error(kind, action, resource, code, message)
            }
            SdkError::ResponseError(response) => {
                let status = response.raw().status().as_u16();
                let kind = classify(None, Some(status));
                let message = format!("HTTP {status}: {}", DisplayErrorContext(err));
                self.error(kind, action, resource, None, message)
            }
            SdkError::DispatchFailure(_) => {
                // Credentials are resolved just before sending, so their
                // failures arrive here, wrapped; report them as what they are.
                if let Some(mapped) = self.credential_failure(action, resource, err) {
                    return mapped;
                }
                let message = DisplayErrorContext(err).to_string();
                self.error(ErrorKind::Transport, action, resource, None, message)
            }
            SdkError::TimeoutError(_) => {
                let message = DisplayErrorContext(err).to_string();
                self.error(ErrorKind::Transport, action, resource, None, message)
            }
            // The request could not even be built (missing field, bad
            // region/endpoint): a malformed request from our side.
            _ => {
                let message = DisplayErrorContext(err).to_string();
                self.error(ErrorKind::Invalid, action, resource, None, message)
            }
        }
    }

    /// Looks through an error's causes for a credential-provider failure.
    /// An STS AssumeRole error inside is mapped on its own (with its code);
    /// otherwise the outermost [`CredentialsError`] decides the kind.
    fn credential_failure(
        &self,
        action: &str,
        resource: Option<&str>,
        err: &(dyn StdError + 'static),
    ) -> Option<CloudError> {
        let mut credentials: Option<&CredentialsError> = None;
        let mut cause = err.source();
        while let Some(e) = cause {
            if let Some(sts) = e.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>() {
                return Some(self.sdk(ASSUME_ROLE, None, sts));
            }
            if credentials.is_none() {
                credentials = e.downcast_ref::<CredentialsError>();
            }
            cause = e.source();
        }
        let credentials = credentials?;
        let action = if self.assumes_role {
            ASSUME_ROLE
        } else {
            action
        };
        let message = format!(
            "could not load credentials from {}: {}",
            self.credentials,
            DisplayErrorContext(credentials)
        );
        Some(self.error(
            classify_credentials(credentials),
            action,
            resource,
            None,
            message,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        use ErrorKind::*;
        let cases: &[(Option<&str>, Option<u16>, ErrorKind)] = &[
            (Some("InvalidSnapshot.NotFound"), Some(400), NotFound),
            (Some("InvalidInstanceID.NotFound"), Some(400), NotFound),
            (Some("InvalidVolume.NotFound"), Some(400), NotFound),
            (Some("NoSuchEntity"), Some(404), NotFound),
            (Some("ResourceNotFoundException"), Some(400), NotFound),
            (Some("RequestLimitExceeded"), Some(503), Throttled),
            (Some("Throttling"), Some(400), Throttled),
            (Some("ThrottlingException"), Some(400), Throttled),
            (Some("RequestThrottled"), Some(400), Throttled),
            (Some("ServiceUnavailable"), Some(503), Throttled),
            (Some("SlowDown"), Some(503), Throttled),
            (
                Some("SnapshotCreationPerVolumeRateExceeded"),
                Some(400),
                Throttled,
            ),
            (Some("UnauthorizedOperation"), Some(403), AccessDenied),
            (Some("AccessDenied"), Some(403), AccessDenied),
            (Some("AccessDeniedException"), Some(400), AccessDenied),
            (Some("AuthFailure"), Some(401), AccessDenied),
            (Some("InvalidClientTokenId"), Some(403), AccessDenied),
            (Some("SignatureDoesNotMatch"), Some(403), AccessDenied),
            (Some("IncorrectState"), Some(400), Conflict),
            (Some("IncorrectInstanceState"), Some(400), Conflict),
            (Some("InvalidSnapshot.InUse"), Some(400), Conflict),
            (Some("VolumeInUse"), Some(400), Conflict),
            (
                Some("ConcurrentSnapshotLimitExceeded"),
                Some(400),
                Throttled,
            ),
            (Some("PendingSnapshotLimitExceeded"), Some(400), Throttled),
            (Some("InvalidAMIID.Unavailable"), Some(400), NotFound),
            (Some("InvalidAMIID.NotFound"), Some(400), NotFound),
            (Some("DBSnapshotNotFound"), Some(404), NotFound),
            (Some("DBClusterSnapshotNotFoundFault"), Some(404), NotFound),
            (Some("DBInstanceNotFound"), Some(404), NotFound),
            (Some("DBSnapshotAlreadyExists"), Some(400), Conflict),
            (Some("DBInstanceAlreadyExists"), Some(400), Conflict),
            (Some("DBClusterAlreadyExistsFault"), Some(400), Conflict),
            (Some("DBClusterNotFoundFault"), Some(404), NotFound),
            (Some("InvalidDBInstanceState"), Some(400), Conflict),
            (
                Some("InvalidDBClusterSnapshotStateFault"),
                Some(400),
                Conflict,
            ),
            // KMS (ListAliases of a key that is not there, or not ours).
            (Some("NotFoundException"), Some(400), NotFound),
            (Some("InvalidMarkerException"), Some(400), Invalid),
            (Some("InvalidParameterValue"), Some(400), Invalid),
            (Some("InvalidParameterCombination"), Some(400), Invalid),
            (Some("MissingParameter"), Some(400), Invalid),
            (Some("InvalidSnapshotID.Malformed"), Some(400), Invalid),
            (Some("InvalidVolume.ZoneMismatch"), Some(400), Invalid),
            (Some("InternalError"), Some(500), Other),
            (Some("SomethingNew"), Some(400), Other),
            (Some("SomethingNew"), Some(503), Throttled),
            (None, Some(503), Throttled),
            (None, Some(429), Throttled),
            (None, Some(500), Transport),
            (Some(""), Some(500), Transport),
            (None, None, Transport),
        ];
        for (code, status, want) in cases {
            assert_eq!(
                classify(*code, *status),
                *want,
                "code {code:?} status {status:?}"
            );
        }
    }

    #[test]
    fn credential_failures_are_reported_as_such() {
        let ctx = ErrorContext {
            account: "prod".into(),
            region: "us-east-1".into(),
            assumes_role: false,
            credentials: "profile \"prod\"".into(),
        };
        let cred = CredentialsError::not_loaded("no providers in chain provided credentials");
        let wrapped = std::io::Error::other(cred);
        // The chain is walked from the top-level error's source.
        struct Outer(std::io::Error);
        impl std::fmt::Debug for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("outer")
            }
        }
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("outer")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                self.0.get_ref().map(|e| e as _)
            }
        }
        let outer = Outer(wrapped);
        let got = ctx
            .credential_failure("ec2:DescribeInstances", None, &outer)
            .unwrap();
        assert_eq!(got.kind, ErrorKind::AccessDenied);
        assert_eq!(got.action, "ec2:DescribeInstances");
        assert_eq!(got.account, "prod");
        assert!(
            got.message
                .starts_with("could not load credentials from profile \"prod\": "),
            "{}",
            got.message
        );

        let ctx = ErrorContext {
            assumes_role: true,
            ..ctx
        };
        let got = ctx
            .credential_failure("ec2:DescribeInstances", None, &outer)
            .unwrap();
        assert_eq!(got.action, ASSUME_ROLE);

        let plain = std::io::Error::other("connection refused");
        assert!(ctx
            .credential_failure("ec2:DescribeInstances", None, &plain)
            .is_none());
    }
}
