//! A campaign's page: what it sends, to whom, its progress per channel and per school (refreshed
//! live by the script, or by reloading), and the actions the user's roles allow, each a form with
//! the session's CSRF token that calls the API's own service function.

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Value;
use serde::Deserialize;

use super::labels;
use super::login::WebForm;
use super::session::{CsrfOnly, PageError, Staff, see_other};
use super::{base, view};
use crate::api::auth::{ANY, APPROVER, AUTHOR, OPERATE, START};
use crate::api::campaigns as service;
use crate::api::error::AppError;
use crate::api::{Actor, AppState};
use crate::domain::Channel;
use crate::domain::campaign::{Campaign, CampaignState};
use crate::domain::delivery::Reason;
use crate::domain::org::OrgKind;

fn run_state(code: &str) -> &'static str {
    match code {
        "pending" => "chờ gửi",
        "running" => "đang gửi",
        "done" => "đã xong",
        "cancelled" => "đã huỷ",
        "skipped" => "bỏ qua",
        _ => "khác",
    }
}

fn action(action: &str, label: &str, class: &str, confirm: Option<&str>) -> Value {
    minijinja::context! { action, label, class, confirm }
}

/// The buttons this user may press for this campaign now (the service functions check again).
fn actions(actor: &Actor, c: &Campaign) -> Vec<Value> {
    let p = &actor.0;
    let mut out = Vec::new();
    match c.state {
        CampaignState::Draft | CampaignState::Rejected if p.has_any(AUTHOR) => {
            out.push(action("submit", "Trình duyệt", "", None));
        }
        CampaignState::Submitted if p.has_any(APPROVER) => {
            out.push(action("approve", "Phê duyệt", "", None));
            out.push(action("reject", "Từ chối", "secondary", None));
        }
        CampaignState::Approved if p.has_any(START) => {
            out.push(action("start", "Bắt đầu gửi", "", None));
        }
        _ => {}
    }
    if matches!(c.state, CampaignState::Running | CampaignState::Scheduled) && p.has_any(OPERATE) {
        if c.paused {
            out.push(action("resume", "Tiếp tục gửi", "", None));
        } else {
            out.push(action("pause", "Tạm dừng", "secondary", None));
        }
    }
    if matches!(
        c.state,
        CampaignState::Running | CampaignState::Scheduled | CampaignState::Approved
    ) && p.has_any(OPERATE)
    {
        out.push(action(
            "cancel",
            "Huỷ chiến dịch",
            "danger",
            Some("Huỷ chiến dịch này? Những tin chưa gửi sẽ không được gửi nữa."),
        ));
    }
    out
}

/// The progress table's data: per channel (funnel and reasons in Vietnamese), final states, and
/// per school for a campaign above the school.
async fn progress_ctx(
    s: &AppState,
    staff: &Staff,
    c: &Campaign,
    org_kind: OrgKind,
) -> Result<Value, PageError> {
    let p = s.store.progress(c.id).await?;
    let by_channel = crate::report::by_channel(&p);
    let channels: Vec<Value> = by_channel
        .iter()
        .map(|(code, sum)| {
            let reasons: Vec<Value> = sum
                .reasons
                .iter()
                .map(|(r, n)| minijinja::context! { label => Reason::label_vi(r), n => *n })
                .collect();
            minijinja::context! {
                code, label => labels::channel_code(code),
                s => Value::from_serialize(sum),
                paused_vi => sum.paused.as_deref().map(Reason::label_vi),
                reasons,
            }
        })
        .collect();
    let pending: i64 = by_channel.values().map(|c| c.pending).sum();
    let states: Vec<Value> = p
        .by_state
        .iter()
        .map(|(st, n)| minijinja::context! { state => st, label => labels::delivery_state(st), n => *n })
        .collect();
    let schools = if matches!(org_kind, OrgKind::School | OrgKind::Class) {
        Vec::new()
    } else {
        crate::report::by_org(&s.store.summary_by_org(&[c.id]).await?)
    };
    let mut runs = s.store.list_runs(c.id).await?;
    // The newest 20 runs of a recurring campaign, newest first.
    runs.reverse();
    runs.truncate(20);
    let runs: Vec<Value> = runs
        .iter()
        .map(|r| {
            minijinja::context! {
                slot => r.slot, state => run_state(&r.state), paused => r.paused, reason => r.reason,
                created_at => r.created_at, finished_at => r.finished_at,
            }
        })
        .collect();
    Ok(minijinja::context! {
        progress => Value::from_serialize(&p), channels, pending, states,
        schools => Value::from_serialize(&schools), runs, campaign_id => c.id,
        csrf => staff.csrf, can_operate => staff.actor.0.has_any(OPERATE),
    })
}

#[derive(Deserialize)]
pub struct Flash {
    done: Option<String>,
}

fn flash(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "submit" => "Đã trình duyệt. Người phê duyệt sẽ thấy chiến dịch trong danh sách chờ duyệt.",
        "approve" => "Đã phê duyệt.",
        "reject" => "Đã từ chối; người soạn sẽ thấy lý do.",
        "start" => "Đã bắt đầu gửi (hoặc đã lên lịch gửi).",
        "pause" => "Đã tạm dừng.",
        "resume" => "Đã tiếp tục gửi.",
        "cancel" => "Đã huỷ chiến dịch.",
        "channel_resume" => "Đã cho gửi lại trên kênh này.",
        "channel_skip" => "Những người đang chờ kênh này được chuyển sang kênh sau.",
        _ => return None,
    })
}

pub async fn page(
    State(s): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    Query(q): Query<Flash>,
) -> Result<Html<String>, PageError> {
    staff.actor.require(ANY)?;
    let (c, org) = staff.actor.visible_campaign(&s, id).await?;
    let preview = if matches!(
        c.state,
        CampaignState::Draft | CampaignState::Submitted | CampaignState::Rejected
    ) {
        let pv = service::compute_preview(&s, &c).await?;
        let by_channel: Vec<Value> = pv
            .by_channel
            .iter()
            .map(|(ch, r)| minijinja::context! { channel => labels::channel_code(ch), n => r.people })
            .collect();
        Some(minijinja::context! {
            people => pv.people, cost_vnd => pv.total_cost.round() as i64, by_channel,
            unreachable => pv.unreachable.values().sum::<u64>(),
        })
    } else {
        None
    };
    let channels_vi = c
        .channels
        .iter()
        .map(|ch: &Channel| labels::channel(*ch))
        .collect::<Vec<_>>()
        .join(" → ");
    let progress = progress_ctx(&s, &staff, &c, org.kind).await?;
    let ctx = base(&staff, &c.name);
    Ok(view::render(
        "campaign.html",
        minijinja::context! {
            c => Value::from_serialize(&c), org_name => org.name, state_vi => c.state.label_vi(),
            channels_vi, preview, actions => actions(&staff.actor, &c),
            approved_at => c.approval.as_ref().map(|a| a.approved_at),
            live => c.state == CampaignState::Running,
            flash => flash(q.done.as_deref()),
            ..minijinja::context! { ..progress, ..ctx }
        },
    )?)
}

/// The progress table alone, for the live refresh.
pub async fn progress(
    State(s): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> Result<Html<String>, PageError> {
    staff.actor.require(ANY)?;
    let (c, org) = staff.actor.visible_campaign(&s, id).await?;
    Ok(view::render(
        "progress.html",
        progress_ctx(&s, &staff, &c, org.kind).await?,
    )?)
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

pub async fn act(
    State(s): State<AppState>,
    staff: Staff,
    Path((id, action)): Path<(i64, String)>,
    WebForm(f): WebForm<ActionForm>,
) -> Result<Response, PageError> {
    staff.check_csrf(&f.csrf)?;
    let a = &staff.actor;
    match action.as_str() {
        "submit" => service::submit_as(a, &s, id).await.map(drop)?,
        "approve" => service::approve_as(a, &s, id).await.map(drop)?,
        "reject" => service::reject_as(a, &s, id, &f.reason).await.map(drop)?,
        "start" => service::start_as(a, &s, id).await.map(drop)?,
        "pause" => service::hold(a, &s, id, None, true).await.map(drop)?,
        "resume" => service::hold(a, &s, id, None, false).await.map(drop)?,
        "cancel" => service::cancel_as(a, &s, id).await.map(drop)?,
        _ => return Err(AppError::not_found("channel action").into()),
    }
    Ok(see_other(&format!("/campaigns/{id}?done={action}")).into_response())
}

/// Resume or skip a channel paused for the campaign.
pub async fn channel(
    State(s): State<AppState>,
    staff: Staff,
    Path((id, channel, action)): Path<(i64, String, String)>,
    WebForm(f): WebForm<CsrfOnly>,
) -> Result<Response, PageError> {
    staff.check_csrf(&f.csrf)?;
    service::channel_as(&staff.actor, &s, id, &channel, &action).await?;
    Ok(see_other(&format!("/campaigns/{id}?done=channel_{action}")).into_response())
}
