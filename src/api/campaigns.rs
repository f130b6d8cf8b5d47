//! Campaigns: create and edit (checked against the template, the audience and the configured
//! channels), the approval moves (submit, approve, reject), start, cancel, and read progress,
//! deliveries and the per-school report.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{ANY, APPROVER, AUTHOR, OPERATE, START};
use super::error::{ApiJson, ApiPath, ApiQuery, AppError};
use super::{Actor, AppState};
use crate::approval;
use crate::clock::now_ms;
use crate::domain::Channel;
use crate::domain::access::library_reaches;
use crate::domain::campaign::{Audience, Campaign, CampaignState, NewCampaign};
use crate::domain::delivery::DeliveryState;
use crate::domain::org::OrgKind;
use crate::domain::validation::ValidationError;
use crate::render::sms::{shape, unaccent};
use crate::render::{CompiledTemplate, sample_person};
use crate::report;
use crate::store::{DeliveryFilter, StoreError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns", post(create).get(list))
        .route("/campaigns/{id}", get(one).patch(edit))
        .route("/campaigns/{id}/submit", post(submit))
        .route("/campaigns/{id}/approve", post(approve))
        .route("/campaigns/{id}/reject", post(reject))
        .route("/campaigns/{id}/start", post(start))
        .route("/campaigns/{id}/cancel", post(cancel))
        .route("/campaigns/{id}/progress", get(progress))
        .route("/campaigns/{id}/deliveries", get(deliveries))
        .route("/campaigns/{id}/runs", get(runs))
        .route("/campaigns/{id}/preview", post(preview))
        .route("/campaigns/{id}/pause", post(pause))
        .route("/campaigns/{id}/resume", post(resume))
        .route("/campaigns/{id}/runs/{run_id}/{action}", post(run_action))
        .route("/campaigns/{id}/report", get(by_org))
        .route(
            "/campaigns/{id}/channels/{channel}/{action}",
            post(channel_action),
        )
}

/// Everything that can be known before anyone is messaged: the audience is inside the sender's subtree,
/// the template has a body for every channel, each channel has a provider, SMS fits its part limit.
async fn check(s: &AppState, c: &NewCampaign) -> Result<(), AppError> {
    let mut errs = ValidationError::default();
    let org = s
        .store
        .get_org(c.org_id)
        .await
        .map_err(|_| AppError::field("org_id", "đơn vị không tồn tại"))?;
    match s.store.get_org(c.audience.org_id).await {
        Ok(a) if a.path.starts_with(&org.path) => {
            for class_id in &c.audience.class_ids {
                match s.store.get_org(*class_id).await {
                    Ok(cl) if cl.kind == OrgKind::Class && cl.path.starts_with(&a.path) => {}
                    _ => errs.push(
                        "audience.class_ids",
                        format!("lớp {class_id} không thuộc đơn vị nhận tin"),
                    ),
                }
            }
        }
        Ok(_) => errs.push(
            "audience.org_id",
            "chỉ được gửi tới đơn vị trực thuộc đơn vị gửi",
        ),
        Err(_) => errs.push("audience.org_id", "đơn vị nhận tin không tồn tại"),
    }
    for tid in c.template_ids() {
        check_template(s, c, &org, tid, &mut errs).await?;
    }
    errs.into_result(()).map_err(Into::into)
}

/// One template the campaign sends: usable by the sending node, with a body for every channel that
/// renders and fits the provider's limits.
async fn check_template(
    s: &AppState,
    c: &NewCampaign,
    org: &crate::domain::org::Org,
    template_id: i64,
    errs: &mut ValidationError,
) -> Result<(), AppError> {
    // A template of the sending node itself, or library content published at or above it. Any other
    // template is answered as missing, so ids of other nodes' templates reveal nothing.
    let unusable = || {
        AppError::field(
            "template_id",
            "mẫu tin không tồn tại, hoặc không thuộc đơn vị gửi và không có trong thư viện dùng chung",
        )
    };
    let template = s
        .store
        .get_template(template_id)
        .await
        .map_err(|_| unusable())?;
    if template.org_id != org.id {
        let from = s.store.get_org(template.org_id).await?;
        if template.published.is_none() || !library_reaches(&from.path, &org.path) {
            return Err(unusable());
        }
    }
    let compiled = CompiledTemplate::compile(&template.bodies, &org.name, &c.name)?;
    for channel in &c.channels {
        if !template.bodies.has_channel(*channel) {
            errs.push(
                "channels",
                format!("mẫu tin không có nội dung cho kênh {channel}"),
            );
            continue;
        }
        let Some(route) = s.registry.route(*channel) else {
            errs.push(
                "channels",
                format!("kênh {channel} chưa được cấu hình nhà cung cấp"),
            );
            continue;
        };
        match compiled.render(
            *channel,
            &sample_person(),
            "https://example.invalid/u/token",
        ) {
            Err(e) => errs.push(
                "template_id",
                format!("không soạn được nội dung kênh {channel}: {e}"),
            ),
            Ok(r) if *channel == Channel::Sms => {
                let text = if route.unaccent {
                    unaccent(&r.text)
                } else {
                    r.text
                };
                let parts = shape(&text).segments;
                if let Some(max) = route.max_segments.filter(|m| parts > *m) {
                    errs.push(
                        "sms_text",
                        format!(
                            "tin nhắn SMS dài {parts} phần, nhà cung cấp chỉ cho phép {max} phần"
                        ),
                    );
                }
            }
            Ok(_) => {}
        }
        if *channel == Channel::ZaloZns
            && let Some(zns) = &template.bodies.zns
            && !route.zns_templates.is_empty()
        {
            match route.zns_templates.get(zns.template_id.trim()) {
                None => errs.push(
                    "template_id",
                    format!(
                        "mẫu ZNS {} chưa được khai báo trong cấu hình nhà cung cấp",
                        zns.template_id
                    ),
                ),
                Some(params) => {
                    for p in params.iter().filter(|p| !zns.params.contains_key(*p)) {
                        errs.push(
                            "template_id",
                            format!(
                                "mẫu ZNS {} cần tham số {p}, mẫu tin chưa gán biến cho tham số này",
                                zns.template_id
                            ),
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

async fn create(
    actor: Actor,
    State(s): State<AppState>,
    ApiJson(c): ApiJson<NewCampaign>,
) -> Result<(StatusCode, Json<Campaign>), AppError> {
    Ok((StatusCode::CREATED, Json(create_as(&actor, &s, c).await?)))
}

/// Creating a campaign (a draft), as the API and the pages do it.
pub(crate) async fn create_as(
    actor: &Actor,
    s: &AppState,
    c: NewCampaign,
) -> Result<Campaign, AppError> {
    actor.require(AUTHOR)?;
    actor.target_org(s, c.org_id, "org_id").await?;
    urgent_allowed(actor, c.urgent)?;
    let c = c.validate()?;
    check(s, &c).await?;
    let created = s
        .store
        .create_campaign(&c, Some(actor.0.user_id), now_ms())
        .await?;
    actor
        .audit(
            s,
            Some(c.org_id),
            "campaign.create",
            "campaign",
            Some(created.id),
            json!({"template_id": c.template_id, "audience_org_id": c.audience.org_id}),
        )
        .await;
    Ok(created)
}

/// A partial edit: the fields given replace the stored ones. Any edit of an approved (or scheduled,
/// not yet fired) campaign sends it back to draft, to be submitted and approved again.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    name: Option<String>,
    template_id: Option<i64>,
    audience: Option<Audience>,
    channels: Option<Vec<Channel>>,
    messenger_tag: Option<String>,
    send_at: Option<i64>,
    schedule: Option<crate::domain::schedule::RecurrenceInput>,
    series: Option<Vec<i64>>,
    urgent: Option<bool>,
}

/// Only approvers may mark a campaign urgent (it is then sent inside quiet hours too).
fn urgent_allowed(actor: &Actor, urgent: bool) -> Result<(), AppError> {
    if urgent && !actor.0.has(crate::domain::access::UserRole::Approver) {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Chỉ người phê duyệt được đánh dấu chiến dịch khẩn (gửi cả trong giờ yên lặng)",
        ));
    }
    Ok(())
}

async fn edit(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(e): ApiJson<Edit>,
) -> Result<Json<Campaign>, AppError> {
    actor.require(AUTHOR)?;
    let (old, _) = actor.visible_campaign(&s, id).await?;
    if !old.state.editable() {
        return Err(AppError::conflict(format!(
            "chiến dịch {} không còn sửa được",
            old.state.label_vi()
        )));
    }
    let mut c = NewCampaign::from_campaign(&old);
    if let Some(v) = e.name {
        c.name = v;
    }
    if let Some(v) = e.template_id {
        c.template_id = v;
    }
    if let Some(v) = e.audience {
        c.audience = v;
    }
    if let Some(v) = e.channels {
        c.channels = v;
    }
    if e.messenger_tag.is_some() {
        c.messenger_tag = e.messenger_tag;
    }
    if e.send_at.is_some() {
        c.send_at = e.send_at;
    }
    if e.schedule.is_some() {
        c.schedule = e.schedule;
        c.recurrence = None;
    }
    if let Some(v) = e.series {
        c.series = v;
    }
    if let Some(v) = e.urgent {
        urgent_allowed(&actor, v && !old.urgent)?;
        c.urgent = v;
    }
    let c = c.validate()?;
    check(&s, &c).await?;
    let editable: Vec<CampaignState> = CampaignState::ALL
        .into_iter()
        .filter(|s| s.editable())
        .collect();
    if !s
        .store
        .update_campaign(id, &c, &editable, old.updated_at, actor.0.user_id, now_ms())
        .await?
    {
        return Err(AppError::conflict(
            "chiến dịch vừa được thay đổi; hãy tải lại rồi sửa",
        ));
    }
    actor
        .audit(
            &s,
            Some(old.org_id),
            "campaign.edit",
            "campaign",
            Some(id),
            json!({"previous_state": old.state, "approval_cleared": old.approval.is_some()}),
        )
        .await;
    Ok(Json(s.store.get_campaign(id).await?))
}

async fn submit(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Campaign>, AppError> {
    Ok(Json(submit_as(&actor, &s, id).await?))
}

/// Submitting for approval, as the API and the pages do it.
pub(crate) async fn submit_as(actor: &Actor, s: &AppState, id: i64) -> Result<Campaign, AppError> {
    actor.require(AUTHOR)?;
    actor.visible_campaign(s, id).await?;
    Ok(approval::submit(s.store.as_ref(), &actor.0, id).await?)
}

/// Approvers of the campaign's node or of a node above it approve; the scope check is the same as
/// for reading the campaign.
async fn approve(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Campaign>, AppError> {
    Ok(Json(approve_as(&actor, &s, id).await?))
}

pub(crate) async fn approve_as(actor: &Actor, s: &AppState, id: i64) -> Result<Campaign, AppError> {
    actor.require(APPROVER)?;
    let (c, _) = actor.visible_campaign(s, id).await?;
    // The approver decides on the same reach and cost figures that are kept with the approval.
    let figures = compute_preview(s, &c)
        .await
        .ok()
        .and_then(|p| serde_json::to_value(p).ok());
    Ok(approval::approve(s.store.as_ref(), &actor.0, id, figures).await?)
}

#[derive(Deserialize)]
struct Rejection {
    reason: String,
}

async fn reject(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(r): ApiJson<Rejection>,
) -> Result<Json<Campaign>, AppError> {
    Ok(Json(reject_as(&actor, &s, id, &r.reason).await?))
}

pub(crate) async fn reject_as(
    actor: &Actor,
    s: &AppState,
    id: i64,
    reason: &str,
) -> Result<Campaign, AppError> {
    actor.require(APPROVER)?;
    actor.visible_campaign(s, id).await?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(AppError::field(
            "reason",
            "cần ghi lý do từ chối (tối đa 1000 ký tự)",
        ));
    }
    Ok(approval::reject(s.store.as_ref(), &actor.0, id, reason).await?)
}

#[derive(Deserialize)]
struct ListQuery {
    org_id: Option<i64>,
}

async fn list(
    actor: Actor,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Campaign>>, AppError> {
    actor.require(ANY)?;
    if let Some(org) = q.org_id {
        actor.visible_org(&s, org).await?;
    }
    Ok(Json(
        s.store.list_campaigns(&actor.0.org_path, q.org_id).await?,
    ))
}

async fn one(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Campaign>, AppError> {
    actor.require(ANY)?;
    Ok(Json(actor.visible_campaign(&s, id).await?.0))
}

/// Starts an approved campaign now, or schedules it for `send_at`.
async fn start(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Campaign>, AppError> {
    Ok(Json(start_as(&actor, &s, id).await?))
}

pub(crate) async fn start_as(actor: &Actor, s: &AppState, id: i64) -> Result<Campaign, AppError> {
    actor.require(START)?;
    actor.visible_campaign(s, id).await?;
    Ok(approval::start(s.store.as_ref(), &s.scheduler_wake, &actor.0, id).await?)
}

async fn cancel(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(cancel_as(&actor, &s, id).await?))
}

pub(crate) async fn cancel_as(actor: &Actor, s: &AppState, id: i64) -> Result<Value, AppError> {
    actor.require(OPERATE)?;
    let (c, _) = actor.visible_campaign(s, id).await?;
    let n = s
        .store
        .cancel_campaign(id, now_ms())
        .await
        .map_err(|e| match e {
            StoreError::Invalid(m) => {
                AppError::conflict(format!("không huỷ được chiến dịch {}", c.state.label_vi()))
                    .reason(m)
            }
            e => e.into(),
        })?;
    actor
        .audit(
            s,
            Some(c.org_id),
            "campaign.cancel",
            "campaign",
            Some(id),
            json!({"previous_state": c.state, "deliveries_cancelled": n}),
        )
        .await;
    Ok(json!({"id": id, "state": "cancelled", "deliveries_cancelled": n}))
}

async fn progress(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    actor.require(ANY)?;
    let (c, _) = actor.visible_campaign(&s, id).await?;
    let p = s.store.progress(id).await?;
    Ok(Json(json!({
        "campaign_id": id,
        "state": c.state,
        "by_channel": report::by_channel(&p),
        "progress": p,
    })))
}

fn channel_param(v: &str) -> Result<Channel, AppError> {
    Channel::parse(v).ok_or_else(|| AppError::field("channel", format!("không có kênh {v:?}")))
}

/// What staff do about a channel paused for a campaign: `resume` once its cause is fixed (template
/// approved again, balance topped up) so the people waiting on it are sent to again, or `skip` it so
/// they move on to their next channel (or fail with that reason if there is none).
async fn channel_action(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath((id, channel, action)): ApiPath<(i64, String, String)>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(channel_as(&actor, &s, id, &channel, &action).await?))
}

/// `resume` or `skip` a channel paused for a campaign, as the API and the pages do it.
pub(crate) async fn channel_as(
    actor: &Actor,
    s: &AppState,
    id: i64,
    channel: &str,
    action: &str,
) -> Result<Value, AppError> {
    actor.require(OPERATE)?;
    let (c, _) = actor.visible_campaign(s, id).await?;
    let channel = channel_param(channel)?;
    let done = match action {
        "resume" => s.store.resume_channel(id, channel).await?,
        "skip" => s.store.skip_channel(id, channel).await?,
        _ => return Err(AppError::not_found("channel action")),
    };
    if !done {
        return Err(AppError::conflict(format!(
            "kênh {channel} không bị tạm dừng (hoặc đã được bỏ qua) trong chiến dịch này"
        )));
    }
    s.dispatch_wake.notify_one();
    let audit_action = if action == "resume" {
        "campaign.channel_resume"
    } else {
        "campaign.channel_skip"
    };
    actor
        .audit(
            s,
            Some(c.org_id),
            audit_action,
            "campaign",
            Some(id),
            json!({"channel": channel}),
        )
        .await;
    Ok(json!({"campaign_id": id, "channel": channel, "done": action}))
}

#[derive(Deserialize)]
struct DeliveriesQuery {
    state: Option<String>,
    channel: Option<String>,
    after: Option<i64>,
    limit: Option<i64>,
}

/// Who was reached, person by person (names and addresses): reading its first page is recorded in
/// the audit log as an export of personal data.
/// A page of a campaign's deliveries for someone who may read the campaign (checked by the caller);
/// the first page of a listing is audited (an export of personal data). The API, the failures page
/// and its .xlsx read them through here.
pub(crate) async fn deliveries_as(
    actor: &Actor,
    s: &AppState,
    c: &Campaign,
    filter: &DeliveryFilter,
) -> Result<Vec<crate::store::DeliveryRow>, AppError> {
    let rows = s.store.list_deliveries(c.id, filter).await?;
    if filter.after_id.is_none() {
        actor
            .audit(
                s,
                Some(c.org_id),
                "campaign.export_deliveries",
                "campaign",
                Some(c.id),
                json!({"rows": rows.len(), "state": filter.state}),
            )
            .await;
    }
    Ok(rows)
}

async fn deliveries(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Value>, AppError> {
    actor.require(ANY)?;
    let (c, _) = actor.visible_campaign(&s, id).await?;
    let state = match q.state.as_deref() {
        None => None,
        Some(v) => Some(
            DeliveryState::parse(v)
                .ok_or_else(|| AppError::field("state", format!("không có trạng thái {v:?}")))?,
        ),
    };
    let channel = match q.channel.as_deref() {
        None => None,
        Some(v) => Some(
            Channel::parse(v)
                .ok_or_else(|| AppError::field("channel", format!("không có kênh {v:?}")))?,
        ),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let filter = DeliveryFilter {
        state,
        channel,
        after_id: q.after,
        limit,
    };
    let rows = deliveries_as(&actor, &s, &c, &filter).await?;
    let next = if rows.len() as i64 == limit {
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Json(json!({"deliveries": rows, "next_after": next})))
}

async fn by_org(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    actor.require(ANY)?;
    actor.visible_campaign(&s, id).await?;
    let rows = s.store.summary_by_org(&[id]).await?;
    Ok(Json(
        json!({"campaign_id": id, "by_org": report::by_org(&rows)}),
    ))
}

/// Each run with its slot, state, reason and delivery counts, and the next five slots that will fire
/// (marked with the reason they would be skipped, if any).
async fn runs(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    actor.require(ANY)?;
    let (c, _) = actor.visible_campaign(&s, id).await?;
    let runs = s.store.list_runs(id).await?;
    let mut next = Vec::new();
    if let Some(rec) = c.schedule.as_ref().filter(|_| !c.schedule_ended) {
        let (_, calendar) = s.store.effective_calendar(c.org_id).await?;
        let from = c.schedule_cursor.unwrap_or_else(now_ms).max(now_ms());
        for at in rec.upcoming(from, 5) {
            let date = crate::domain::schedule::local_date(at);
            let skip = if rec.only_during_term {
                calendar.off_reason(date)
            } else {
                None
            };
            next.push(json!({
                "at": at,
                "local": format!("{} {}", crate::domain::schedule::weekday_vi(at), chrono::DateTime::from_timestamp_millis(at)
                    .map(|t| t.with_timezone(&crate::domain::schedule::vietnam()).format("%d/%m/%Y %H:%M").to_string())
                    .unwrap_or_default()),
                "skip": skip,
            }));
        }
    }
    Ok(Json(json!({
        "campaign_id": id,
        "state": c.state,
        "schedule": c.schedule,
        "schedule_ended": c.schedule_ended,
        "runs": runs,
        "next_slots": next,
    })))
}

/// Pausing or resuming a campaign (or one run), as the API and the pages do it.
pub(crate) async fn hold(
    actor: &Actor,
    s: &AppState,
    id: i64,
    run: Option<i64>,
    paused: bool,
) -> Result<Json<Value>, AppError> {
    actor.require(OPERATE)?;
    let (c, _) = actor.visible_campaign(s, id).await?;
    if !s.store.set_paused(id, run, paused, now_ms()).await? {
        return Err(AppError::conflict(if paused {
            "không có gì để tạm dừng: không có lượt gửi đang mở, hoặc đã tạm dừng"
        } else {
            "không có gì để tiếp tục: chiến dịch không bị tạm dừng"
        }));
    }
    if !paused {
        s.scheduler_wake.notify_one();
        s.dispatch_wake.notify_one();
    }
    let action = if paused {
        "campaign.pause"
    } else {
        "campaign.resume"
    };
    actor
        .audit(
            s,
            Some(c.org_id),
            action,
            "campaign",
            Some(id),
            json!({"run_id": run}),
        )
        .await;
    Ok(Json(
        json!({"campaign_id": id, "run_id": run, "paused": paused}),
    ))
}

/// Holds a campaign: the dispatcher claims nothing more of it (sends already under way finish), and
/// a recurring one fires no slot until resumed.
async fn pause(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    hold(&actor, &s, id, None, true).await
}

/// Releases a held campaign: what was waiting is claimed again, each delivery once.
async fn resume(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    hold(&actor, &s, id, None, false).await
}

/// `pause`, `resume` or `cancel` one run of a campaign (one slot of a recurring campaign).
async fn run_action(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath((id, run_id, action)): ApiPath<(i64, i64, String)>,
) -> Result<Json<Value>, AppError> {
    match action.as_str() {
        "pause" => hold(&actor, &s, id, Some(run_id), true).await,
        "resume" => hold(&actor, &s, id, Some(run_id), false).await,
        "cancel" => {
            actor.require(OPERATE)?;
            let (c, _) = actor.visible_campaign(&s, id).await?;
            let Some(n) = s.store.cancel_run(id, run_id, now_ms()).await? else {
                return Err(AppError::conflict(
                    "lượt gửi này không còn mở (hoặc không thuộc chiến dịch này)",
                ));
            };
            actor
                .audit(
                    &s,
                    Some(c.org_id),
                    "campaign.run_cancel",
                    "campaign",
                    Some(id),
                    json!({"run_id": run_id, "deliveries_cancelled": n}),
                )
                .await;
            Ok(Json(
                json!({"campaign_id": id, "run_id": run_id, "state": "cancelled", "deliveries_cancelled": n}),
            ))
        }
        _ => Err(AppError::not_found("run action")),
    }
}

pub(crate) async fn compute_preview(
    s: &AppState,
    c: &Campaign,
) -> Result<crate::preview::Preview, AppError> {
    let unaccent = s.registry.route(Channel::Sms).is_some_and(|r| r.unaccent);
    crate::preview::preview(s.store.as_ref(), c, unaccent, &s.prices)
        .await
        .map_err(AppError::internal)
}

/// Reach and cost before submission: people per channel, who cannot be reached and why, SMS parts
/// with and without accents, the estimated cost from the configured prices, and a sample text per
/// channel. Nothing is written.
async fn preview(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<crate::preview::Preview>, AppError> {
    actor.require(ANY)?;
    let (c, _) = actor.visible_campaign(&s, id).await?;
    Ok(Json(compute_preview(&s, &c).await?))
}
