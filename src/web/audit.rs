//! The audit log for admins: who did what, newest first, in the admin's subtree, filtered by the
//! start of the action's name and by who did it. The store pages by id; the filters are applied to
//! each page read, reading on (a bounded number of pages) until a page of matches is found.

use axum::extract::{Query, State};
use axum::response::Html;
use minijinja::Value;
use serde::Deserialize;

use super::session::{PageError, Staff};
use super::{base, view};
use crate::api::AppState;
use crate::api::auth::ADMIN;

const PAGE: usize = 100;
/// How many store pages one request reads at most while looking for matches.
const READS: usize = 20;

#[derive(Deserialize)]
pub struct Filter {
    #[serde(default)]
    action: String,
    #[serde(default)]
    user: String,
    before: Option<i64>,
}

pub async fn page(
    State(s): State<AppState>,
    staff: Staff,
    Query(f): Query<Filter>,
) -> Result<Html<String>, PageError> {
    staff.actor.require(ADMIN)?;
    let action: String = f.action.trim().chars().take(60).collect();
    let user: String = f.user.trim().chars().take(100).collect();
    let mut rows = Vec::new();
    let mut before = f.before;
    let mut more = false;
    for _ in 0..READS {
        let page = s
            .store
            .list_audit(&staff.actor.0.org_path, before, PAGE as i64)
            .await?;
        let full = page.len() == PAGE;
        for r in page {
            before = Some(r.id);
            if r.action.starts_with(&action) && (user.is_empty() || r.username == user) {
                rows.push(r);
                if rows.len() == PAGE {
                    break;
                }
            }
        }
        more = full || rows.len() == PAGE;
        if !full || rows.len() == PAGE {
            break;
        }
    }
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            minijinja::context! {
                at => r.at, username => r.username, action => r.action, object => r.object,
                object_id => r.object_id, detail => r.detail.to_string(),
            }
        })
        .collect();
    let ctx = base(&staff, "Nhật ký thao tác");
    Ok(view::render(
        "audit.html",
        minijinja::context! { rows, action, user, before => if more { before } else { None }, ..ctx },
    )?)
}
