//! `POST /contacts/import?org_id=<node>[&sheet=][&encoding=][&kind=staff][&dry_run=true][&format=xlsx]`:
//! a roster or staff list as multipart (`file` field) or as the raw body. Good rows go in (or, in a
//! dry run, are counted); the reply is the report, or with `format=xlsx` the upload with an error
//! column.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::auth::ADMIN;
use super::error::{ApiQuery, AppError};
use super::{Actor, AppState};
use crate::import::{Encoding, ImportError, ImportOptions, ListKind, error_workbook, import_file};
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
    encoding: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    dry_run: bool,
    format: Option<String>,
}

/// The workbook's media type, for the `format=xlsx` reply.
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

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
) -> Result<Response, AppError> {
    actor.require(ADMIN)?;
    actor.target_org(&s, p.org_id, "org_id").await?;
    let encoding = match p.encoding.as_deref() {
        Some(e) => Some(Encoding::parse(e).ok_or_else(|| {
            AppError::field(
                "encoding",
                "bảng mã không hỗ trợ: dùng utf-8, utf-16, windows-1258 hoặc tcvn3",
            )
        })?),
        None => None,
    };
    let kind = match p.kind.as_deref() {
        Some(k) => Some(
            ListKind::parse(k)
                .ok_or_else(|| AppError::field("kind", "kind là roster hoặc staff"))?,
        ),
        None => None,
    };
    let xlsx = match p.format.as_deref() {
        None | Some("json") => false,
        // The workbook replaces the report: only for a dry run, so that no import is ever
        // committed with its figures unseen.
        Some("xlsx") if p.dry_run => true,
        Some("xlsx") => {
            return Err(AppError::field(
                "format",
                "format=xlsx chỉ dùng với dry_run=true: tải tệp lỗi khi chạy thử, rồi nhập thật",
            ));
        }
        Some(_) => return Err(AppError::field("format", "format là json hoặc xlsx")),
    };
    let bytes = file_bytes(req, &s).await?;
    let opts = ImportOptions {
        sheet: p.sheet,
        encoding,
        kind,
        dry_run: p.dry_run,
    };
    let report = import_as(&actor, &s, p.org_id, &bytes, &opts).await?;
    if !xlsx {
        return Ok(Json(report).into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, XLSX),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"loi-can-sua.xlsx\"",
            ),
        ],
        errors_workbook(bytes, report).await?,
    )
        .into_response())
}

/// The upload with its error column, built off the async workers (CPU work on the upload).
pub(crate) async fn errors_workbook(
    bytes: Bytes,
    report: crate::import::ImportReport,
) -> Result<Vec<u8>, AppError> {
    tokio::task::spawn_blocking(move || error_workbook(&bytes, &report))
        .await
        .map_err(|e| AppError::internal(e.to_string()))?
        .map_err(AppError::internal)
}

/// An import (or its dry run) into a node, as the API and the import page do it: admins of the
/// node or above; a real import is audited.
pub(crate) async fn import_as(
    actor: &Actor,
    s: &AppState,
    org_id: i64,
    bytes: &[u8],
    opts: &ImportOptions,
) -> Result<crate::import::ImportReport, AppError> {
    actor.require(ADMIN)?;
    actor.target_org(s, org_id, "org_id").await?;
    let report = import_file(s.store.as_ref(), org_id, bytes, opts, |_, _| {})
        .await
        .map_err(|e| match e {
            ImportError::Table(e) => AppError::field("file", e.to_string()),
            ImportError::Header(e) => AppError::field("file", e.to_string()),
            e @ (ImportError::NotASchool | ImportError::StaffIntoClass) => {
                AppError::field("org_id", e.to_string())
            }
            ImportError::Store(StoreError::Invalid(_)) => {
                AppError::field("org_id", "đơn vị này không nhận danh sách này")
            }
            ImportError::Store(StoreError::NotFound(_)) => {
                AppError::field("org_id", "đơn vị không tồn tại")
            }
            ImportError::Store(e) => e.into(),
        })?;
    if !opts.dry_run {
        actor
            .audit(
                s,
                Some(org_id),
                "contacts.import",
                "org",
                Some(org_id),
                serde_json::json!({"rows": report.rows, "imported": report.imported, "rejected": report.rejected.len(), "cell_errors": report.cell_errors.len()}),
            )
            .await;
    }
    Ok(report)
}
