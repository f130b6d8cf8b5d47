//! `POST /contacts/import?org_id=<school>[&sheet=<name>]`: a roster file as multipart (`file` field) or
//! as the raw body. Good rows go in; the reply lists every rejected row by line and column.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::auth::ADMIN;
use super::error::{ApiQuery, AppError};
use super::{Actor, AppState};
use crate::import::{ImportError, ImportReport, import_roster};
use crate::store::StoreError;

/// Rosters are bigger than JSON requests: 50,000 rows of CSV are a few megabytes.
pub const MAX_FILE: usize = 32 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts/import", post(import))
        .layer(DefaultBodyLimit::max(MAX_FILE))
}

#[derive(Deserialize)]
struct Params {
    org_id: i64,
    sheet: Option<String>,
}

/// The file's bytes: the first multipart part with a file name (or named `file`), else the body.
async fn file_bytes(req: Request, state: &AppState) -> Result<Bytes, AppError> {
    let multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let bad =
        |m: &str, e: String| AppError::new(StatusCode::BAD_REQUEST, "bad_request", m).reason(e);
    if !multipart {
        return Bytes::from_request(req, state)
            .await
            .map_err(|e| bad("không đọc được nội dung yêu cầu", e.to_string()));
    }
    let mut form = Multipart::from_request(req, state)
        .await
        .map_err(|e| bad("nội dung multipart không hợp lệ", e.to_string()))?;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| bad("nội dung multipart không hợp lệ", e.to_string()))?
    {
        if field.name() == Some("file") || field.file_name().is_some() {
            return field
                .bytes()
                .await
                .map_err(|e| bad("không đọc được tệp danh sách", e.to_string()));
        }
    }
    Err(AppError::field(
        "file",
        "thiếu tệp danh sách (trường \"file\")",
    ))
}

async fn import(
    actor: Actor,
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<Params>,
    req: Request,
) -> Result<Json<ImportReport>, AppError> {
    actor.require(ADMIN)?;
    actor.target_org(&s, p.org_id, "org_id").await?;
    let bytes = file_bytes(req, &s).await?;
    let report = import_roster(
        s.store.as_ref(),
        p.org_id,
        &bytes,
        p.sheet.as_deref(),
        |_, _| {},
    )
    .await
    .map_err(|e| match e {
        ImportError::Table(e) => AppError::field("file", e.to_string()),
        ImportError::Header(e) => AppError::field("file", e.to_string()),
        ImportError::Store(StoreError::NotFound(_)) => {
            AppError::field("org_id", "đơn vị không tồn tại")
        }
        ImportError::Store(StoreError::Invalid(_)) => {
            AppError::field("org_id", "chỉ nhập danh sách vào một trường học")
        }
        ImportError::Store(e) => e.into(),
    })?;
    actor
        .audit(
            &s,
            Some(p.org_id),
            "contacts.import",
            "org",
            Some(p.org_id),
            serde_json::json!({"rows": report.rows, "imported": report.imported, "rejected": report.rejected.len(), "cell_errors": report.cell_errors.len()}),
        )
        .await;
    Ok(Json(report))
}
