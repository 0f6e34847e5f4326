//! ConnectWise error bodies as the sandbox sends them (`{code, message, errors[]}`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// One entry of `errors[]` in a 400 answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        FieldError {
            code,
            field: field.to_string(),
            message: message.into(),
        }
    }
    /// A required field left out (`MissingRequiredField`, as real instances answer).
    pub fn required(field: &str) -> Self {
        FieldError::new(
            "MissingRequiredField",
            field,
            format!("The {field} field is required."),
        )
    }
    /// Text over its limit, counted in UTF-16 code units as .NET does (`MaxLengthField`).
    pub fn too_long(field: &str, max: usize) -> Self {
        FieldError::new(
            "MaxLengthField",
            field,
            format!("The field {field} must be a string with a maximum length of {max}."),
        )
    }
    /// A reference to a record that does not exist (`NotFound` on the field).
    pub fn missing_reference(field: &str, message: impl Into<String>) -> Self {
        FieldError::new("NotFound", field, message)
    }
}

/// A non-2xx answer in ConnectWise's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiError {
    /// 400 `InvalidObject` with the field errors of `resource`.
    pub fn invalid(resource: &str, errors: Vec<FieldError>) -> Self {
        let errors: Vec<Value> = errors
            .into_iter()
            .map(|e| json!({"code": e.code, "message": e.message, "resource": resource, "field": e.field}))
            .collect();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({"code": "InvalidObject", "message": format!("{resource} object is invalid"), "errors": errors}),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({"code": "InvalidObject", "message": message.into()}),
        }
    }
    /// 400 `ApiFindCondition`: a `conditions`/`childConditions`/`orderBy` the server cannot use.
    pub fn find_condition(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({"code": "ApiFindCondition", "message": message.into()}),
        }
    }
    /// 403 `Security`: the API member's security role lacks the right the call needs.
    pub fn security() -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            body: json!({"code": "Security", "message": "You do not have security permission to perform this action."}),
        }
    }
    /// 500 `ConnectWiseApi` for a value .NET cannot convert (permanent despite the status).
    pub fn conversion(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: json!({"code": "ConnectWiseApi", "message": message.into()}),
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            body: json!({"code": "NotFound", "message": message.into()}),
        }
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            body: json!({"code": "Unauthorized", "message": message.into()}),
        }
    }
    pub fn in_use(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::CONFLICT,
            body: json!({"code": "RecordInUse", "message": message.into()}),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
