//! A node's home page (what is sending, scheduled, waiting for approval, needing attention) and the
//! approvers' queue.

use axum::extract::State;
use axum::response::Html;
use chrono::Datelike;
use minijinja::Value;

use super::session::{PageError, Staff};
use super::{base, view};
use crate::api::AppState;
use crate::api::auth::{ANY, APPROVER};
use crate::clock::now_ms;
use crate::domain::campaign::{Campaign, CampaignState};

/// At most this many campaigns per list on the home page (newest first).
const PER_SECTION: usize = 20;

fn row(c: &Campaign) -> Value {
    minijinja::context! {
        id => c.id, name => c.name, state => c.state.as_str(), state_vi => c.state.label_vi(),
        send_at => c.send_at, updated_at => c.updated_at,
    }
}

/// Midnight of the first day of this month in Vietnam, as Unix ms.
fn month_start(now: i64) -> i64 {
    let vn = chrono::FixedOffset::east_opt(7 * 3600);
    vn.and_then(|tz| {
        let t = chrono::DateTime::from_timestamp_millis(now)?.with_timezone(&tz);
        let first = t.date_naive().with_day(1)?.and_hms_opt(0, 0, 0)?;
        Some(first.and_local_timezone(tz).single()?.timestamp_millis())
    })
    .unwrap_or(now)
}

async fn org_name(s: &AppState, staff: &Staff) -> Result<String, PageError> {
    Ok(match staff.actor.0.org_id {
        Some(id) => s.store.get_org(id).await?.name,
        None => "Toàn hệ thống".to_string(),
    })
}

pub async fn page(State(s): State<AppState>, staff: Staff) -> Result<Html<String>, PageError> {
    staff.actor.require(ANY)?;
    let p = &staff.actor.0;
    let mut all = s.store.list_campaigns(&p.org_path, None).await?;
    all.sort_by_key(|c| std::cmp::Reverse(c.updated_at));
    let now = now_ms();
    let pick = |states: &[CampaignState]| -> Vec<&Campaign> {
        all.iter()
            .filter(|c| states.contains(&c.state))
            .take(PER_SECTION)
            .collect()
    };
    let running = pick(&[CampaignState::Running]);
    let scheduled = pick(&[CampaignState::Scheduled, CampaignState::Approved]);
    let waiting = pick(&[CampaignState::Submitted]);
    let drafts = pick(&[CampaignState::Draft, CampaignState::Rejected]);
    let done = pick(&[CampaignState::Done, CampaignState::Cancelled]);

    // Channels paused for a sending campaign need someone to act (a template to approve again, a
    // balance to top up).
    let mut attention = Vec::new();
    for c in &running {
        let progress = s.store.progress(c.id).await?;
        for pause in progress.paused.iter().filter(|p| !p.skipped) {
            attention.push(minijinja::context! {
                id => c.id, name => c.name,
                what => format!("kênh {} tạm dừng: {}", super::labels::channel_code(&pause.channel), pause.reason),
            });
        }
    }
    let start = month_start(now);
    let this_month: Vec<i64> = all
        .iter()
        .filter(|c| c.updated_at >= start || c.state == CampaignState::Running)
        .map(|c| c.id)
        .collect();
    let month_sent: i64 = if this_month.is_empty() {
        0
    } else {
        s.store
            .summary_by_org(&this_month)
            .await?
            .iter()
            .filter(|r| matches!(r.state.as_str(), "sent" | "delivered" | "read"))
            .map(|r| r.count)
            .sum()
    };
    let section = |id: &str, title: &str, rows: &[&Campaign]| {
        minijinja::context! { id, title, rows => rows.iter().map(|c| row(c)).collect::<Vec<_>>() }
    };
    let sections = vec![
        section("running", "Đang gửi", &running),
        section("scheduled", "Đã duyệt, chờ đến giờ gửi", &scheduled),
        section("waiting", "Chờ phê duyệt", &waiting),
        section("drafts", "Bản nháp và bị từ chối", &drafts),
        section("done", "Đã xong gần đây", &done),
    ];
    let ctx = base(&staff, "Trang chủ");
    Ok(view::render(
        "home.html",
        minijinja::context! {
            org_name => org_name(&s, &staff).await?,
            today => view::vn_date(Some(now)),
            running => running.len(), scheduled => scheduled.len(), waiting => waiting.len(),
            month_sent, attention, sections,
            ..ctx
        },
    )?)
}

pub async fn approvals(State(s): State<AppState>, staff: Staff) -> Result<Html<String>, PageError> {
    staff.actor.require(APPROVER)?;
    let p = &staff.actor.0;
    let mut rows = Vec::new();
    let mut names: std::collections::HashMap<i64, String> = Default::default();
    for c in s
        .store
        .list_campaigns(&p.org_path, None)
        .await?
        .into_iter()
        .filter(|c| c.state == CampaignState::Submitted)
    {
        if let std::collections::hash_map::Entry::Vacant(v) = names.entry(c.org_id) {
            v.insert(s.store.get_org(c.org_id).await?.name);
        }
        rows.push(minijinja::context! {
            id => c.id, name => c.name, org_name => names.get(&c.org_id), send_at => c.send_at, updated_at => c.updated_at,
        });
    }
    let ctx = base(&staff, "Chờ duyệt");
    Ok(view::render(
        "approvals.html",
        minijinja::context! { rows, ..ctx },
    )?)
}
