//! Kubernetes `Status` errors: the one error type every handler returns.

use serde_json::{json, Value};

/// One cause of an `Invalid` (422) error, pointing at a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, `FieldValueTypeInvalid`, ...
    pub reason: &'static str,
    /// The message after the field path, e.g. `Required value`.
    pub message: String,
    /// Dotted field path, e.g. `spec.grouping`.
    pub field: String,
}

impl Cause {
    pub fn new(reason: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Cause {
            reason,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The cause as the apiserver prints it: `spec.x: Required value`.
    pub fn render(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

/// What a request failed with; becomes a `Status` object with the matching HTTP code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    NotFound {
        message: String,
        group: String,
        kind: String,
        name: String,
    },
    #[error("{message}")]
    AlreadyExists {
        message: String,
        group: String,
        kind: String,
        name: String,
    },
    #[error("{message}")]
    Conflict {
        message: String,
        group: String,
        kind: String,
        name: String,
    },
    #[error("{message}")]
    Invalid {
        message: String,
        group: String,
        kind: String,
        name: String,
        causes: Vec<Cause>,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Internal(String),
}

/// Names the resource an error is about: `psaconnections.psa-operator.io` or `secrets`.
pub fn qualified(plural: &str, group: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

impl ApiError {
    pub fn not_found(plural: &str, group: &str, name: &str) -> Self {
        ApiError::NotFound {
            message: format!("{} \"{name}\" not found", qualified(plural, group)),
            group: group.into(),
            kind: plural.into(),
            name: name.into(),
        }
    }

    pub fn already_exists(plural: &str, group: &str, name: &str) -> Self {
        ApiError::AlreadyExists {
            message: format!("{} \"{name}\" already exists", qualified(plural, group)),
            group: group.into(),
            kind: plural.into(),
            name: name.into(),
        }
    }

    pub fn conflict(plural: &str, group: &str, name: &str) -> Self {
        ApiError::Conflict {
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(plural, group)
            ),
            group: group.into(),
            kind: plural.into(),
            name: name.into(),
        }
    }

    /// A 422 naming every failing field: `Kind.group "name" is invalid: spec.x: ...`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let what = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let rendered: Vec<String> = causes.iter().map(Cause::render).collect();
        let list = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        ApiError::Invalid {
            message: format!("{what} \"{name}\" is invalid: {list}"),
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
            causes,
        }
    }

    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } => 404,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } => 409,
            ApiError::Invalid { .. } => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::Forbidden(_) => 403,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Gone(_) => 410,
            ApiError::Unauthorized(_) => 401,
            ApiError::Internal(_) => 500,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Gone(_) => "Expired",
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// The `Status` object (`kind: Status`, `status: Failure`).
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            ApiError::NotFound {
                group, kind, name, ..
            }
            | ApiError::AlreadyExists {
                group, kind, name, ..
            }
            | ApiError::Conflict {
                group, kind, name, ..
            } => Some(json!({"name": name, "group": group, "kind": kind})),
            ApiError::Invalid {
                group,
                kind,
                name,
                causes,
                ..
            } => {
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.render(), "field": c.field}))
                    .collect();
                Some(json!({"name": name, "group": group, "kind": kind, "causes": causes}))
            }
            _ => None,
        };
        if let Some(d) = details {
            status["details"] = d;
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_the_qualified_resource() {
        let e = ApiError::not_found("psaconnections", "psa-operator.io", "main");
        let s = e.to_status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(
            s["message"],
            "psaconnections.psa-operator.io \"main\" not found"
        );
        assert_eq!(s["details"]["kind"], "psaconnections");
        let core = ApiError::not_found("secrets", "", "x");
        assert_eq!(core.to_string(), "secrets \"x\" not found");
    }

    #[test]
    fn invalid_lists_causes_with_fields() {
        let one = ApiError::invalid(
            "PsaConnection",
            "psa-operator.io",
            "main",
            vec![Cause::new(
                "FieldValueNotSupported",
                "spec.grouping",
                "Unsupported value: \"X\": supported values: \"User\", \"UserAndAlert\"",
            )],
        );
        assert_eq!(
            one.to_string(),
            "PsaConnection.psa-operator.io \"main\" is invalid: spec.grouping: Unsupported value: \"X\": supported values: \"User\", \"UserAndAlert\""
        );
        let s = one.to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["details"]["causes"][0]["field"], "spec.grouping");
        let two = ApiError::invalid(
            "K",
            "g",
            "n",
            vec![
                Cause::new("FieldValueRequired", "spec.a", "Required value"),
                Cause::new("FieldValueRequired", "spec.b", "Required value"),
            ],
        );
        assert!(two
            .to_string()
            .ends_with("is invalid: [spec.a: Required value, spec.b: Required value]"));
    }
}
