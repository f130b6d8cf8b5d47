//! Campaigns: create (checked against the template, the audience and the configured channels), start,
//! cancel, and read progress, deliveries and the per-school report.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiJson, ApiPath, ApiQuery, AppError};
use super::{Actor, AppState};
use crate::clock::now_ms;
use crate::domain::Channel;
use crate::domain::campaign::{Campaign, CampaignState, NewCampaign};
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
        .route("/campaigns/{id}", get(one))
        .route("/campaigns/{id}/start", post(start))
        .route("/campaigns/{id}/cancel", post(cancel))
        .route("/campaigns/{id}/progress", get(progress))
        .route("/campaigns/{id}/deliveries", get(deliveries))
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
    let template = s
        .store
        .get_template(c.template_id)
        .await
        .map_err(|_| AppError::field("template_id", "mẫu tin không tồn tại"))?;
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
    errs.into_result(()).map_err(Into::into)
}

async fn create(
    _actor: Actor,
    State(s): State<AppState>,
    ApiJson(c): ApiJson<NewCampaign>,
) -> Result<(StatusCode, Json<Campaign>), AppError> {
    let c = c.validate()?;
    check(&s, &c).await?;
    Ok((
        StatusCode::CREATED,
        Json(s.store.create_campaign(&c, now_ms()).await?),
    ))
}

#[derive(Deserialize)]
struct ListQuery {
    org_id: Option<i64>,
}

async fn list(
    _actor: Actor,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Campaign>>, AppError> {
    Ok(Json(s.store.list_campaigns(q.org_id).await?))
}

async fn one(
    _actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Campaign>, AppError> {
    Ok(Json(s.store.get_campaign(id).await?))
}

/// Starts now, or schedules for `send_at`. The audience is fanned out in the background.
pub async fn start_campaign(s: &AppState, id: i64) -> Result<Campaign, AppError> {
    let c = s.store.get_campaign(id).await?;
    if !c.state.startable() {
        return Err(AppError::conflict(format!(
            "a campaign in state {} cannot be started",
            c.state.as_str()
        )));
    }
    let now = now_ms();
    let from = [CampaignState::Draft, CampaignState::Approved];
    if c.send_at.is_some_and(|t| t > now) {
        if !s
            .store
            .transition_campaign(id, &from, CampaignState::Scheduled, now)
            .await?
        {
            return Err(AppError::conflict("the campaign changed state meanwhile"));
        }
    } else {
        if !s
            .store
            .transition_campaign(id, &from, CampaignState::Running, now)
            .await?
        {
            return Err(AppError::conflict("the campaign changed state meanwhile"));
        }
        s.store.create_run(id, "once", now).await?;
    }
    s.scheduler_wake.notify_one();
    Ok(s.store.get_campaign(id).await?)
}

async fn start(
    _actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Campaign>, AppError> {
    Ok(Json(start_campaign(&s, id).await?))
}

async fn cancel(
    _actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    s.store.get_campaign(id).await?;
    let n = s
        .store
        .cancel_campaign(id, now_ms())
        .await
        .map_err(|e| match e {
            StoreError::Invalid(m) => AppError::conflict(m),
            e => e.into(),
        })?;
    Ok(Json(
        json!({"id": id, "state": "cancelled", "deliveries_cancelled": n}),
    ))
}

async fn progress(
    _actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    let c = s.store.get_campaign(id).await?;
    let p = s.store.progress(id).await?;
    Ok(Json(json!({
        "campaign_id": id,
        "state": c.state,
        "by_channel": report::by_channel(&p),
        "progress": p,
    })))
}

fn channel_param(v: &str) -> Result<Channel, AppError> {
    Channel::parse(v).ok_or_else(|| AppError::field("channel", format!("unknown channel {v:?}")))
}

/// What staff do about a channel paused for a campaign: `resume` once its cause is fixed (template
/// approved again, balance topped up) so the people waiting on it are sent to again, or `skip` it so
/// they move on to their next channel (or fail with that reason if there is none).
async fn channel_action(
    _actor: Actor,
    State(s): State<AppState>,
    ApiPath((id, channel, action)): ApiPath<(i64, String, String)>,
) -> Result<Json<Value>, AppError> {
    s.store.get_campaign(id).await?;
    let channel = channel_param(&channel)?;
    let done = match action.as_str() {
        "resume" => s.store.resume_channel(id, channel).await?,
        "skip" => s.store.skip_channel(id, channel).await?,
        _ => return Err(AppError::not_found("channel action")),
    };
    if !done {
        return Err(AppError::conflict(format!(
            "{channel} is not paused (or already skipped) for this campaign"
        )));
    }
    s.dispatch_wake.notify_one();
    Ok(Json(
        json!({"campaign_id": id, "channel": channel, "done": action}),
    ))
}

#[derive(Deserialize)]
struct DeliveriesQuery {
    state: Option<String>,
    channel: Option<String>,
    after: Option<i64>,
    limit: Option<i64>,
}

async fn deliveries(
    _actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Value>, AppError> {
    s.store.get_campaign(id).await?;
    let state = match q.state.as_deref() {
        None => None,
        Some(v) => Some(
            DeliveryState::parse(v)
                .ok_or_else(|| AppError::field("state", format!("unknown state {v:?}")))?,
        ),
    };
    let channel = match q.channel.as_deref() {
        None => None,
        Some(v) => Some(
            Channel::parse(v)
                .ok_or_else(|| AppError::field("channel", format!("unknown channel {v:?}")))?,
        ),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = s
        .store
        .list_deliveries(
            id,
            &DeliveryFilter {
                state,
                channel,
                after_id: q.after,
                limit,
            },
        )
        .await?;
    let next = if rows.len() as i64 == limit {
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Json(json!({"deliveries": rows, "next_after": next})))
}

async fn by_org(
    _actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    s.store.get_campaign(id).await?;
    let rows = s.store.summary_by_org(&[id]).await?;
    Ok(Json(
        json!({"campaign_id": id, "by_org": report::by_org(&rows)}),
    ))
}
