//! The people a campaign did not reach: failed or skipped, by channel, each with the reason in
//! Vietnamese; as a page (100 a page) and as an .xlsx for the school to work through. Read through
//! the API's own delivery listing (scope checked, export audited).

use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Value;
use rust_xlsxwriter::Workbook;
use serde::Deserialize;

use super::labels;
use super::session::{PageError, Staff};
use super::{base, view};
use crate::api::AppState;
use crate::api::auth::ANY;
use crate::api::campaigns::deliveries_as;
use crate::api::error::AppError;
use crate::domain::Channel;
use crate::domain::campaign::Campaign;
use crate::domain::contact::Role;
use crate::domain::delivery::{DeliveryState, Reason};
use crate::store::{DeliveryFilter, DeliveryRow};

const PAGE: i64 = 100;
/// Rows in one download: a Sở-wide campaign's failures stay within what Excel opens comfortably.
const XLSX_MAX: usize = 200_000;

#[derive(Deserialize)]
pub struct Filter {
    #[serde(default)]
    state: String,
    #[serde(default)]
    channel: String,
    after: Option<i64>,
}

fn parse(f: &Filter) -> (DeliveryState, Option<Channel>) {
    let state = match f.state.as_str() {
        "skipped" => DeliveryState::Skipped,
        "cancelled" => DeliveryState::Cancelled,
        _ => DeliveryState::Failed,
    };
    (state, Channel::parse(f.channel.trim()))
}

struct Line {
    name: String,
    role: String,
    channel: String,
    to: String,
    reason: String,
    at: i64,
}

fn line(r: &DeliveryRow) -> Line {
    Line {
        name: r.full_name.clone().unwrap_or_else(|| "(đã xoá)".into()),
        role: r
            .role
            .as_deref()
            .and_then(Role::parse)
            .map(labels::contact_role)
            .unwrap_or("")
            .into(),
        channel: r
            .channel
            .as_deref()
            .map(labels::channel_code)
            .unwrap_or_default(),
        to: r.to.clone().unwrap_or_default(),
        reason: r
            .reason_code
            .as_deref()
            .map(Reason::label_vi)
            .unwrap_or("")
            .to_string(),
        at: r.updated_at,
    }
}

async fn campaign(s: &AppState, staff: &Staff, id: i64) -> Result<Campaign, PageError> {
    staff.actor.require(ANY)?;
    Ok(staff.actor.visible_campaign(s, id).await?.0)
}

pub async fn page(
    State(s): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    Query(f): Query<Filter>,
) -> Result<Html<String>, PageError> {
    let c = campaign(&s, &staff, id).await?;
    let (state, channel) = parse(&f);
    let filter = DeliveryFilter {
        state: Some(state),
        channel,
        after_id: f.after,
        limit: PAGE,
    };
    let rows = deliveries_as(&staff.actor, &s, &c, &filter).await?;
    let next_after = (rows.len() as i64 == PAGE)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let lines: Vec<Value> = rows
        .iter()
        .map(line)
        .map(|l| minijinja::context! { name => l.name, role => l.role, channel => l.channel, to => l.to, reason => l.reason, at => l.at })
        .collect();
    let heading = match state {
        DeliveryState::Skipped => "Người bị bỏ qua",
        DeliveryState::Cancelled => "Tin đã huỷ",
        _ => "Người chưa nhận được tin (lỗi)",
    };
    let states = [
        ("failed", "Lỗi"),
        ("skipped", "Bỏ qua"),
        ("cancelled", "Đã huỷ"),
    ];
    let channels: Vec<(&str, &str)> = Channel::ALL
        .iter()
        .map(|c| (c.as_str(), labels::channel(*c)))
        .collect();
    let ctx = base(&staff, heading);
    Ok(view::render(
        "failures.html",
        minijinja::context! {
            c => Value::from_serialize(&c), heading, rows => lines, next_after, states, channels,
            state => state.as_str(), channel => channel.map(|c| c.as_str()).unwrap_or(""),
            ..ctx
        },
    )?)
}

/// Every failed (or skipped) person as a workbook; cells are written as text, so nothing from a
/// name or a provider's reason ever becomes a formula.
pub async fn xlsx(
    State(s): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    Query(f): Query<Filter>,
) -> Result<Response, PageError> {
    let c = campaign(&s, &staff, id).await?;
    let (state, channel) = parse(&f);
    let mut lines = Vec::new();
    let mut after = None;
    loop {
        let filter = DeliveryFilter {
            state: Some(state),
            channel,
            after_id: after,
            limit: 1000,
        };
        let rows = deliveries_as(&staff.actor, &s, &c, &filter).await?;
        lines.extend(rows.iter().map(line));
        if rows.len() < 1000 || lines.len() >= XLSX_MAX {
            break;
        }
        after = rows.last().map(|r| r.id);
    }
    let name = c.name.clone();
    let book = tokio::task::spawn_blocking(move || workbook(&name, &lines))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
    Ok((
        [
            (
                CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            (
                CONTENT_DISPOSITION,
                "attachment; filename=\"chua-nhan-duoc-tin.xlsx\"",
            ),
        ],
        book,
    )
        .into_response())
}

fn workbook(title: &str, lines: &[Line]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Chưa nhận được tin")?;
    sheet.write_string(0, 0, title)?;
    let head = ["Họ tên", "Vai trò", "Kênh", "Gửi tới", "Lý do", "Lúc"];
    for (i, h) in head.iter().enumerate() {
        sheet.write_string(2, i as u16, *h)?;
    }
    for (n, l) in lines.iter().enumerate() {
        let row = 3 + n as u32;
        let at = view::vn_datetime(Some(l.at));
        for (col, v) in [&l.name, &l.role, &l.channel, &l.to, &l.reason, &at]
            .iter()
            .enumerate()
        {
            sheet.write_string(row, col as u16, v.as_str())?;
        }
    }
    sheet.set_column_width(0, 28)?;
    sheet.set_column_width(4, 45)?;
    book.save_to_buffer()
}
