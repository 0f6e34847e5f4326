//! Provider error: transient (retry) vs permanent (give up, tell the user), PSA message kept.

use std::time::Duration;

/// A failed PSA call. Messages carry the PSA's own text but never a credential.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum PsaError {
    /// Timeouts, connection errors, 5xx, 429: worth retrying (after `retry_after` when given).
    #[error("PSA temporarily unavailable{}: {message}", status_suffix(*.status))]
    Transient {
        status: Option<u16>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Credentials refused (401/403 or a failed token request).
    #[error("PSA refused the credentials{}: {message}", status_suffix(*.status))]
    Auth {
        status: Option<u16>,
        message: String,
    },
    /// The credentials are fine but the PSA user's role lacks a right (ConnectWise 403
    /// `Security`). `message` names the feature and the right to grant; permanent until an
    /// administrator changes the role.
    #[error("the PSA denied permission: {message}")]
    PermissionDenied { message: String },
    /// The referenced object does not exist.
    #[error("not found in the PSA: {message}")]
    NotFound { message: String },
    /// A lookup the PSA does not offer under the name the client uses (e.g. a Kaseya BMS tenant
    /// lookup table whose name Kaseya does not publish): configuration, not a transient fault.
    #[error("lookup {table:?} is not available in the PSA: {message}")]
    LookupUnavailable { table: String, message: String },
    /// Validation and other client errors: retrying the same request will not help.
    #[error("PSA rejected the request{}: {message}", status_suffix(*.status))]
    Permanent {
        status: Option<u16>,
        message: String,
    },
}

fn status_suffix(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

impl PsaError {
    pub fn is_transient(&self) -> bool {
        matches!(self, PsaError::Transient { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PsaError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// CamelCase reason for conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            PsaError::Transient { .. } => "PsaUnavailable",
            PsaError::Auth { .. } => "AuthenticationFailed",
            PsaError::PermissionDenied { .. } => "PermissionDenied",
            PsaError::NotFound { .. } => "NotFound",
            PsaError::Permanent { .. } => "PsaRejected",
            PsaError::LookupUnavailable { .. } => "LookupUnavailable",
        }
    }

    /// Classifies an HTTP status with the PSA's message.
    pub fn from_status(
        status: u16,
        message: impl Into<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        let message = message.into();
        match status {
            401 | 403 => PsaError::Auth {
                status: Some(status),
                message,
            },
            404 => PsaError::NotFound { message },
            408 | 425 | 429 | 500..=599 => PsaError::transient(status, message, retry_after),
            _ => PsaError::permanent(status, message),
        }
    }

    /// A failure worth retrying, answered with HTTP `status`.
    pub fn transient(status: u16, message: String, retry_after: Option<Duration>) -> Self {
        PsaError::Transient {
            status: Some(status),
            message,
            retry_after,
        }
    }

    /// A refusal that repeating will not change, answered with HTTP `status`.
    pub fn permanent(status: u16, message: String) -> Self {
        PsaError::Permanent {
            status: Some(status),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let table = [
            (400, "PsaRejected", false),
            (401, "AuthenticationFailed", false),
            (403, "AuthenticationFailed", false),
            (404, "NotFound", false),
            (409, "PsaRejected", false),
            (429, "PsaUnavailable", true),
            (500, "PsaUnavailable", true),
            (503, "PsaUnavailable", true),
        ];
        for (status, reason, transient) in table {
            let e = PsaError::from_status(status, "m", None);
            assert_eq!(e.reason(), reason, "{status}");
            assert_eq!(e.is_transient(), transient, "{status}");
        }
        let denied = PsaError::PermissionDenied {
            message: "closing tickets needs Service Desk › Close Service Tickets › Edit level"
                .into(),
        };
        assert_eq!(
            (denied.reason(), denied.is_transient()),
            ("PermissionDenied", false)
        );
        let e = PsaError::from_status(429, "slow down", Some(Duration::from_secs(7)));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            e.to_string(),
            "PSA temporarily unavailable (HTTP 429): slow down"
        );
    }
}
