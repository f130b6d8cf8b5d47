//! Field-level validation errors, so that every door (API, CLI, import) can name the field at fault.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// One or more fields at fault.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", .errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
pub struct ValidationError {
    pub errors: Vec<FieldError>,
}

impl ValidationError {
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            errors: vec![FieldError {
                field: field.into(),
                message: message.into(),
            }],
        }
    }
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }
    /// `Ok(v)` when nothing was pushed.
    pub fn into_result<T>(self, v: T) -> Result<T, ValidationError> {
        if self.errors.is_empty() {
            Ok(v)
        } else {
            Err(self)
        }
    }
}
