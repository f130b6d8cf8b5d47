//! The one API error type: every failure becomes `{"error":{"code","message","details"}}` with the
//! right status, and the JSON/path/query extractors that reject malformed requests the same way.

use axum::extract::FromRequest;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::domain::validation::ValidationError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
}

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AppError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
        }
    }
    /// 404 for an object named by its kind (`"contact"`, `"campaign"`, ...), said in Vietnamese.
    pub fn not_found(what: &str) -> Self {
        let noun = match what {
            "org" | "organisation" => "đơn vị",
            "contact" => "liên hệ",
            "campaign" => "chiến dịch",
            "template" => "mẫu tin",
            "user" => "người dùng",
            "token" => "mã truy cập (token)",
            "run" => "lượt gửi",
            "channel action" | "run action" => "thao tác",
            _ => "dữ liệu yêu cầu",
        };
        AppError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Không tìm thấy {noun}"),
        )
    }
    /// An unknown route (any method): the JSON error body, like every other error.
    pub fn no_route() -> Self {
        AppError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Không có địa chỉ (route) này trong API",
        )
    }
    /// A known route called with a method it does not take.
    pub fn method_not_allowed() -> Self {
        AppError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Địa chỉ này không nhận phương thức HTTP đã dùng",
        )
    }
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ValidationError::one(field, message).into()
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        AppError::new(StatusCode::CONFLICT, "conflict", message)
    }
    /// Technical words behind the message (a parser's or the store's, in English) as
    /// `details.reason`, for whoever debugs the client.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.details = json!({"reason": reason.into()});
        self
    }
    /// The field errors a validation failure carries, as `field: message` lines (empty for any
    /// other error), for pages that show them beside the form.
    pub fn field_messages(&self) -> Vec<String> {
        self.details
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| {
                        let field = d.get("field").and_then(|f| f.as_str()).unwrap_or("");
                        let msg = d.get("message").and_then(|m| m.as_str()).unwrap_or("");
                        format!("{field}: {msg}")
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A failure of ours: logged in full, answered without its details.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal failure");
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Lỗi hệ thống; chi tiết có trong nhật ký máy chủ",
        )
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(STORAGE_RETRY_AFTER),
            );
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

impl From<ValidationError> for AppError {
    fn from(e: ValidationError) -> Self {
        AppError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
            message: e.to_string(),
            details: serde_json::to_value(&e.errors).unwrap_or(Value::Null),
        }
    }
}

/// What staff read when the database cannot be written: nothing was saved, try again later.
pub const STORAGE_UNAVAILABLE: &str = "Hệ thống tạm thời không ghi được dữ liệu (ổ đĩa đầy hoặc lỗi lưu trữ). \
     Yêu cầu này chưa được lưu; vui lòng thử lại sau ít phút hoặc báo cho người quản trị máy chủ.";

/// Seconds a client is asked to wait before retrying a request refused for storage.
const STORAGE_RETRY_AFTER: &str = "10";

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AppError::not_found(what),
            // The store's own words (English, for developers) go in `details.reason`.
            StoreError::Conflict(m) => {
                AppError::conflict("Dữ liệu trùng với dữ liệu đã có").reason(m)
            }
            StoreError::InvalidReference(m) => AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_reference",
                "Yêu cầu nhắc tới dữ liệu không tồn tại",
            )
            .reason(m),
            StoreError::Invalid(m) => AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "Yêu cầu không hợp lệ",
            )
            .reason(m),
            StoreError::Unavailable(m) => {
                tracing::error!(error = %m, "storage unavailable: request refused");
                AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    STORAGE_UNAVAILABLE,
                )
            }
            e @ (StoreError::Db(_) | StoreError::Corrupt(_)) => AppError::internal(e),
        }
    }
}

impl From<crate::approval::FlowError> for AppError {
    fn from(e: crate::approval::FlowError) -> Self {
        use crate::approval::FlowError;
        match e {
            FlowError::Conflict(m) => AppError::conflict(m),
            FlowError::SelfApproval(m) => AppError::new(StatusCode::FORBIDDEN, "self_approval", m),
            FlowError::NotApproved(m) => AppError::new(StatusCode::CONFLICT, "not_approved", m),
            FlowError::Store(e) => e.into(),
        }
    }
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        let (status, message) = match r {
            JsonRejection::MissingJsonContentType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Nội dung yêu cầu phải là JSON (Content-Type: application/json)",
            ),
            JsonRejection::JsonDataError(_) => {
                let text = r.body_text();
                let message = match json_field(&text) {
                    Some(f) => format!("Trường {f} của dữ liệu JSON sai kiểu hoặc sai giá trị"),
                    None => "Dữ liệu JSON thiếu trường, thừa trường hoặc sai kiểu".to_string(),
                };
                return AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_request", message)
                    .reason(text);
            }
            _ => (
                StatusCode::BAD_REQUEST,
                "Nội dung yêu cầu không phải JSON hợp lệ",
            ),
        };
        AppError::new(status, "bad_request", message).reason(r.body_text())
    }
}

/// The field a JSON data error names (axum: `...target type: kind: unknown variant ...`), if any.
fn json_field(text: &str) -> Option<&str> {
    let rest = text.split_once("target type: ")?.1;
    let (path, _) = rest.split_once(": ")?;
    (!path.is_empty() && !path.contains(' ')).then_some(path)
}

impl From<PathRejection> for AppError {
    fn from(r: PathRejection) -> Self {
        AppError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Tham số trên đường dẫn không hợp lệ",
        )
        .reason(r.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        AppError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Tham số truy vấn (sau dấu ?) không hợp lệ",
        )
        .reason(r.body_text())
    }
}

/// `axum::Json` with JSON errors.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path` with JSON errors.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query` with JSON errors.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);
