//! Import page: upload an Excel or CSV roster, see the dry run (created, updated, rejected, each bad
//! cell named by sheet, row and column), confirm, see the result; download the upload with its error
//! column. The file waits in the store between the dry run and the confirmation (any instance may
//! take the confirmation), for an hour at most.

use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use minijinja::Value;

use super::login::WebForm;
use super::session::{PageError, Staff};
use super::{base, view};
use crate::api::AppState;
use crate::api::auth::ADMIN;
use crate::api::error::AppError;
use crate::api::import::{errors_workbook, import_as};
use crate::auth::{hash_token, new_token};
use crate::clock::now_ms;
use crate::domain::org::OrgKind;
use crate::domain::session::StashedUpload;
use crate::import::{ImportOptions, ImportReport, ListKind};

/// How long an upload waits for its confirmation.
const STASH_MS: i64 = 3_600_000;
/// Problems listed on the page; the error workbook holds them all.
const SHOWN: usize = 200;

/// The nodes the form offers: the user's own and those right below it (not classes).
pub(super) async fn targets(s: &AppState, staff: &Staff) -> Result<Vec<Value>, PageError> {
    let mut out = Vec::new();
    let own = match staff.actor.0.org_id {
        Some(id) => vec![s.store.get_org(id).await?],
        None => Vec::new(),
    };
    let below = s.store.list_orgs(staff.actor.0.org_id).await?;
    for o in own.iter().chain(below.iter()) {
        if o.kind != OrgKind::Class && staff.actor.0.covers(&o.path) {
            out.push(minijinja::context! { id => o.id, name => o.name });
        }
    }
    Ok(out)
}

fn page(staff: &Staff, status: StatusCode, ctx: Value) -> Result<Response, PageError> {
    let base = base(staff, "Nhập danh sách");
    Ok((
        status,
        view::render("import.html", minijinja::context! { ..ctx, ..base })?,
    )
        .into_response())
}

pub async fn form(State(s): State<AppState>, staff: Staff) -> Result<Response, PageError> {
    staff.actor.require(ADMIN)?;
    let orgs = targets(&s, &staff).await?;
    page(&staff, StatusCode::OK, minijinja::context! { orgs })
}

fn report_ctx(r: &ImportReport, stash: &str, file_name: &str, org_id: i64) -> Value {
    let kinds = [("Từ chối dòng", &r.rejected), ("Bỏ qua ô", &r.cell_errors)];
    let all: Vec<Value> = kinds
        .iter()
        .flat_map(|(kind, list)| {
            list.iter().map(move |e| {
                minijinja::context! {
                    kind, sheet => e.sheet, line => e.line, column => e.column, cell => e.cell,
                    value => e.value, message => e.message,
                }
            })
        })
        .collect();
    let more = all.len().saturating_sub(SHOWN);
    minijinja::context! {
        report => Value::from_serialize(r), problems => all.into_iter().take(SHOWN).collect::<Vec<_>>(),
        more_problems => more, stash, file_name, org_id,
    }
}

/// The API's 422 (a file that cannot be read, a node that takes no roster) on the form itself.
async fn refused(s: &AppState, staff: &Staff, e: AppError) -> Result<Response, PageError> {
    if e.status != StatusCode::UNPROCESSABLE_ENTITY {
        return Err(e.into());
    }
    let details = e.field_messages();
    let orgs = targets(s, staff).await?;
    page(
        staff,
        StatusCode::UNPROCESSABLE_ENTITY,
        minijinja::context! { orgs, error => "Không nhập được tệp này.", details },
    )
}

pub async fn upload(
    State(s): State<AppState>,
    staff: Staff,
    mut form: Multipart,
) -> Result<Response, PageError> {
    let bad = |m: &str| {
        PageError::App(AppError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            m.to_string(),
        ))
    };
    let (mut csrf, mut org, mut kind, mut file) = (String::new(), None, None, None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|_| bad("Biểu mẫu tải tệp không hợp lệ"))?
    {
        match field.name().unwrap_or("") {
            "_csrf" => {
                csrf = field
                    .text()
                    .await
                    .map_err(|_| bad("Biểu mẫu không hợp lệ"))?
            }
            "org_id" => {
                org = field
                    .text()
                    .await
                    .ok()
                    .and_then(|v| v.trim().parse::<i64>().ok())
            }
            "kind" => {
                kind = field
                    .text()
                    .await
                    .ok()
                    .map(|k| k.trim().to_string())
                    .filter(|k| ListKind::parse(k).is_some())
            }
            "file" => {
                let name = field
                    .file_name()
                    .unwrap_or("danh-sach")
                    .chars()
                    .take(200)
                    .collect::<String>();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|_| bad("Không đọc được tệp tải lên"))?;
                file = Some((name, bytes));
            }
            _ => {}
        }
    }
    staff.check_csrf(&csrf)?;
    staff.actor.require(ADMIN)?;
    let (Some(org_id), Some((file_name, bytes))) = (org, file) else {
        let orgs = targets(&s, &staff).await?;
        return page(
            &staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            minijinja::context! { orgs, error => "Cần chọn đơn vị và tệp danh sách." },
        );
    };
    if bytes.is_empty() {
        let orgs = targets(&s, &staff).await?;
        return page(
            &staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            minijinja::context! { orgs, error => "Tệp tải lên trống." },
        );
    }
    let opts = options(kind.as_deref(), true);
    let report = match import_as(&staff.actor, &s, org_id, &bytes, &opts).await {
        Ok(r) => r,
        Err(e) => return refused(&s, &staff, e).await,
    };
    let (stash, id_hash) = new_token();
    let now = now_ms();
    s.store
        .stash_upload(
            &StashedUpload {
                id_hash,
                user_id: staff.actor.0.user_id,
                org_id,
                kind,
                file_name: file_name.clone(),
                bytes: bytes.to_vec(),
                created_at: now,
            },
            now - STASH_MS,
        )
        .await?;
    page(
        &staff,
        StatusCode::OK,
        report_ctx(&report, &stash, &file_name, org_id),
    )
}

fn options(kind: Option<&str>, dry_run: bool) -> ImportOptions {
    ImportOptions {
        sheet: None,
        encoding: None,
        kind: kind.and_then(ListKind::parse),
        dry_run,
    }
}

/// The user's own stashed upload, or a page saying it is gone.
async fn stashed(s: &AppState, staff: &Staff, stash: &str) -> Result<StashedUpload, PageError> {
    let found = if stash.len() <= 100 {
        s.store
            .stashed_upload(
                &hash_token(stash),
                staff.actor.0.user_id,
                now_ms() - STASH_MS,
            )
            .await?
    } else {
        None
    };
    found.ok_or_else(|| {
        PageError::App(AppError::new(
            StatusCode::GONE,
            "gone",
            "Tệp đã tải lên không còn (quá một giờ, hoặc đã nhập). Vui lòng tải tệp lên lại.",
        ))
    })
}

#[derive(serde::Deserialize)]
pub struct Confirm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

pub async fn confirm(
    State(s): State<AppState>,
    staff: Staff,
    Path(stash): Path<String>,
    WebForm(f): WebForm<Confirm>,
) -> Result<Response, PageError> {
    staff.check_csrf(&f.csrf)?;
    let up = stashed(&s, &staff, &stash).await?;
    let opts = options(up.kind.as_deref(), false);
    let report = match import_as(&staff.actor, &s, up.org_id, &up.bytes, &opts).await {
        Ok(r) => r,
        Err(e) => return refused(&s, &staff, e).await,
    };
    s.store.drop_upload(&up.id_hash).await?;
    page(
        &staff,
        StatusCode::OK,
        report_ctx(&report, "", &up.file_name, up.org_id),
    )
}

pub async fn errors(
    State(s): State<AppState>,
    staff: Staff,
    Path(stash): Path<String>,
) -> Result<Response, PageError> {
    let up = stashed(&s, &staff, &stash).await?;
    let opts = options(up.kind.as_deref(), true);
    let report = import_as(&staff.actor, &s, up.org_id, &up.bytes, &opts).await?;
    let book = errors_workbook(Bytes::from(up.bytes), report).await?;
    Ok((
        [
            (
                CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            (
                CONTENT_DISPOSITION,
                "attachment; filename=\"loi-can-sua.xlsx\"",
            ),
        ],
        book,
    )
        .into_response())
}
