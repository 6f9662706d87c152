//! Mapping object_store's errors onto [`StorageError`].
//!
//! object_store has already retried transient failures (see `RetryConfig` in `store.rs`) by the
//! time an error reaches us, so a network, timeout, throttling or 5xx failure here becomes
//! [`StorageError::Unavailable`].

use std::error::Error as StdError;
use std::fmt;

use object_store::client::{HttpError, HttpErrorKind};

use crate::error::StorageError;

const BACKEND: &str = "s3";

/// Maps an object_store error about `key` (printed in messages) to a [`StorageError`].
///
/// `AlreadyExists` and `Precondition` map to `AlreadyExists` and `Conflict`; callers that mean
/// something else by them (the idempotent put, the reference CAS) match them before calling this.
pub(crate) fn map_error(error: object_store::Error, key: &dyn fmt::Display) -> StorageError {
    use object_store::Error as E;
    if mentions(&error, "NoSuchBucket") {
        return StorageError::InvalidConfig(format!("S3 bucket does not exist (while accessing {key}): {error}"));
    }
    // No credentials could be found: none in the URI or the environment, and the instance-metadata
    // lookup (object_store's last resort) failed.
    let metadata_lookup = mentions(&error, "/latest/api/token") || mentions(&error, "/latest/meta-data");
    if metadata_lookup || (mentions(&error, "credential") && !mentions(&error, "status code")) {
        return StorageError::InvalidConfig(format!(
            "no S3 credentials for {key}: give `access` and `secret` in the URI or set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY (they were looked up from the environment and instance metadata): {}",
            chain(&error)
        ));
    }
    // A refusal of the credentials arrives as a generic error carrying a 401/403 or an S3 error code.
    if refused_credentials(&error) {
        return StorageError::InvalidConfig(format!(
            "S3 refused the credentials or access to {key}; check `access`, `secret` (or the AWS_* environment), \
             `region` and the bucket policy: {}",
            chain(&error)
        ));
    }
    match error {
        E::NotFound { .. } => StorageError::not_found(key),
        E::AlreadyExists { .. } => StorageError::already_exists(key),
        E::Precondition { .. } => StorageError::conflict(key),
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => StorageError::InvalidConfig(format!(
            "S3 refused access to {key}; check `access`, `secret`, `region` and the bucket policy: {error}"
        )),
        E::UnknownConfigurationKey { .. } => StorageError::InvalidConfig(error.to_string()),
        E::NotImplemented { .. } => StorageError::Other {
            backend: BACKEND,
            message: format!("the S3 server does not support an operation Floe needs (conditional writes?) on {key}"),
            source: Some(Box::new(error)),
        },
        other if is_transient(&other) => StorageError::Unavailable {
            backend: BACKEND,
            message: format!("{key}: gave up after retries"),
            source: Some(Box::new(other)),
        },
        other => StorageError::Other { backend: BACKEND, message: key.to_string(), source: Some(Box::new(other)) },
    }
}

/// Whether the failure may pass if tried again later: a transport failure (connect, request,
/// timeout, interrupted), or an HTTP status of 408, 429 or 5xx.
fn is_transient(error: &object_store::Error) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(http) = e.downcast_ref::<HttpError>() {
            return matches!(
                http.kind(),
                HttpErrorKind::Connect | HttpErrorKind::Request | HttpErrorKind::Timeout | HttpErrorKind::Interrupted
            );
        }
        // object_store keeps the status-carrying retry error private; its message is stable:
        // "Server returned non-2xx status code: 503 Service Unavailable: ...".
        if let Some(status) = status_in_message(&e.to_string()) {
            return status == 408 || status == 429 || status >= 500;
        }
        current = e.source();
    }
    false
}

/// Whether object_store sent the request more than once before failing. Its retry error is private,
/// but its message says "..., after N retries, max_retries: ..." exactly when N > 0.
pub(crate) fn was_retried(error: &object_store::Error) -> bool {
    mentions(error, " retries, max_retries: ")
}

fn status_in_message(message: &str) -> Option<u16> {
    let (_, rest) = message.split_once("status code: ")?;
    rest.get(..3)?.parse().ok()
}

/// Whether the server refused the request's credentials or its access rights (HTTP 401/403, or the S3
/// error codes for a bad key, a bad signature or a denied access).
fn refused_credentials(error: &object_store::Error) -> bool {
    const CODES: [&str; 5] =
        ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"];
    any_in_chain(error, |message| {
        CODES.iter().any(|code| message.contains(code)) || matches!(status_in_message(message), Some(401 | 403))
    })
}

/// The messages of an error and its causes, joined (object_store's own message omits the cause).
fn chain(error: &object_store::Error) -> String {
    let mut out = error.to_string();
    let mut current = StdError::source(error);
    while let Some(e) = current {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        current = e.source();
    }
    out
}

/// Whether any error in the chain mentions `needle` (S3 error codes travel in the response body).
fn mentions(error: &object_store::Error, needle: &str) -> bool {
    any_in_chain(error, |message| message.contains(needle))
}

/// Whether the message of the error or of any of its causes satisfies `test`.
fn any_in_chain(error: &object_store::Error, test: impl Fn(&str) -> bool) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = current {
        if test(&e.to_string()) {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Msg(&'static str);
    impl fmt::Display for Msg {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Msg {}

    fn generic(message: &'static str) -> object_store::Error {
        object_store::Error::Generic { store: "S3", source: Box::new(Msg(message)) }
    }

    #[test]
    fn classifies_by_kind_and_status() {
        let key = "k";
        let e = map_error(generic("Server returned non-2xx status code: 503 Service Unavailable: slow down"), &key);
        assert!(matches!(e, StorageError::Unavailable { .. }), "{e:?}");
        let e = map_error(generic("Server returned non-2xx status code: 400 Bad Request: no"), &key);
        assert!(matches!(e, StorageError::Other { .. }), "{e:?}");
        let http = HttpError::new(HttpErrorKind::Connect, Msg("connection refused"));
        let e = map_error(object_store::Error::Generic { store: "S3", source: Box::new(http) }, &key);
        assert!(matches!(e, StorageError::Unavailable { .. }), "{e:?}");
        let e = map_error(generic("status code: 404 Not Found: <Code>NoSuchBucket</Code>"), &key);
        assert!(matches!(e, StorageError::InvalidConfig(_)), "{e:?}");
        let nf = object_store::Error::NotFound { path: "p".into(), source: Box::new(Msg("404")) };
        assert!(map_error(nf, &key).is_not_found());
        let pre = object_store::Error::Precondition { path: "p".into(), source: Box::new(Msg("412")) };
        assert!(map_error(pre, &key).is_conflict());
    }
}
