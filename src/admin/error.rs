//! The admin API's failures as plain data: HTTP status, error code, description and the offending
//! field. Pure (no Worker types) so validation can be unit-tested natively; `admin/mod.rs` turns
//! one into the JSON response `{"error", "error_description", "field"}`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, error: &'static str, description: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            description: description.into(),
            field: None,
        }
    }

    /// 400 `invalid_request`: the body is not what the API can read at all (not JSON, not an
    /// object, bad query parameter).
    pub fn invalid_request(description: impl Into<String>) -> ApiError {
        ApiError::new(400, "invalid_request", description)
    }

    /// 400 `invalid_field`: one named field broke a rule.
    pub fn invalid_field(field: &str, description: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field.to_string()),
            ..ApiError::new(400, "invalid_field", description)
        }
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(404, "not_found", format!("no such {what}"))
    }

    pub fn conflict(field: &str, description: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field.to_string()),
            ..ApiError::new(409, "conflict", description)
        }
    }
}
