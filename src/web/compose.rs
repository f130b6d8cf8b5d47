//! Writing: a template (one body per channel) and a campaign (template, audience from the tree,
//! channels in order, when to send). Both are created through the API's own functions, so the same
//! checks apply (template syntax and sample renders, reachable channels, scope); a refusal comes back
//! on the form with what the user typed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, NaiveTime, TimeZone};
use minijinja::Value;
use serde::{Deserialize, Serialize};

use super::login::WebForm;
use super::session::{PageError, Staff, see_other};
use super::{base, import::targets, labels, view};
use crate::api::AppState;
use crate::api::auth::AUTHOR;
use crate::api::error::AppError;
use crate::domain::Channel;
use crate::domain::campaign::{Audience, NewCampaign, NewTemplate, TemplateBodies};
use crate::domain::contact::Role;

/// Templates offered in the campaign form: the newest of the user's subtree.
const TEMPLATES_OFFERED: i64 = 200;

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// A refusal shown on the form: its message and, for field errors, each field's message.
fn refusal(e: &AppError) -> (String, Vec<String>) {
    (e.message.clone(), e.field_messages())
}

fn form_page(
    staff: &Staff,
    template: &str,
    title: &str,
    status: StatusCode,
    ctx: Value,
) -> Result<Response, PageError> {
    let base = base(staff, title);
    Ok((
        status,
        view::render(template, minijinja::context! { ..ctx, ..base })?,
    )
        .into_response())
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default)]
pub struct TemplateForm {
    #[serde(rename = "_csrf", skip_serializing)]
    csrf: String,
    org_id: i64,
    name: String,
    email_subject: String,
    email_text: String,
    sms_text: String,
    zalo_text: String,
    messenger_text: String,
}

pub async fn template_form(State(s): State<AppState>, staff: Staff) -> Result<Response, PageError> {
    staff.actor.require(AUTHOR)?;
    let orgs = targets(&s, &staff).await?;
    let f = TemplateForm::default();
    form_page(
        &staff,
        "template_form.html",
        "Soạn mẫu tin",
        StatusCode::OK,
        minijinja::context! { orgs, f => Value::from_serialize(&f) },
    )
}

pub async fn create_template(
    State(s): State<AppState>,
    staff: Staff,
    WebForm(f): WebForm<TemplateForm>,
) -> Result<Response, PageError> {
    staff.check_csrf(&f.csrf)?;
    let t = NewTemplate {
        org_id: f.org_id,
        name: f.name.trim().to_string(),
        bodies: TemplateBodies {
            email_subject: opt(&f.email_subject),
            email_text: opt(&f.email_text),
            sms_text: opt(&f.sms_text),
            zalo_text: opt(&f.zalo_text),
            messenger_text: opt(&f.messenger_text),
            ..Default::default()
        },
    };
    match crate::api::templates::create_as(&staff.actor, &s, &t).await {
        Ok(_) => Ok(see_other("/campaigns/new?template=created")),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            let (error, details) = refusal(&e);
            let orgs = targets(&s, &staff).await?;
            form_page(
                &staff,
                "template_form.html",
                "Soạn mẫu tin",
                StatusCode::UNPROCESSABLE_ENTITY,
                minijinja::context! { orgs, f => Value::from_serialize(&f), error, details },
            )
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CampaignForm {
    #[serde(rename = "_csrf", skip_serializing)]
    csrf: String,
    name: String,
    template_id: i64,
    org_id: i64,
    role_parent: String,
    role_student: String,
    role_staff: String,
    channel_1: String,
    channel_2: String,
    channel_3: String,
    send_date: String,
    send_time: String,
    urgent: String,
}

async fn campaign_ctx(s: &AppState, staff: &Staff, f: &CampaignForm) -> Result<Value, PageError> {
    let p = &staff.actor.0;
    let mut templates: Vec<Value> = s
        .store
        .list_templates(&p.org_path, TEMPLATES_OFFERED)
        .await?
        .iter()
        .map(|t| minijinja::context! { id => t.id, name => t.name, shared => false })
        .collect();
    for t in s.store.library(&p.org_path, None).await? {
        templates.push(minijinja::context! { id => t.id, name => t.name, shared => true });
    }
    let channels: Vec<(&str, &str)> = Channel::ALL
        .iter()
        .filter(|c| s.registry.route(**c).is_some())
        .map(|c| (c.as_str(), labels::channel(*c)))
        .collect();
    Ok(minijinja::context! {
        orgs => targets(s, staff).await?, templates, channels, f => Value::from_serialize(f),
    })
}

#[derive(Deserialize)]
pub struct Preselect {
    template_id: Option<i64>,
}

pub async fn campaign_form(
    State(s): State<AppState>,
    staff: Staff,
    axum::extract::Query(q): axum::extract::Query<Preselect>,
) -> Result<Response, PageError> {
    staff.actor.require(AUTHOR)?;
    let f = CampaignForm {
        template_id: q.template_id.unwrap_or_default(),
        role_parent: "1".into(),
        channel_1: "zalo".into(),
        channel_2: "sms".into(),
        channel_3: "email".into(),
        ..Default::default()
    };
    let ctx = campaign_ctx(&s, &staff, &f).await?;
    form_page(
        &staff,
        "campaign_form.html",
        "Tạo chiến dịch",
        StatusCode::OK,
        ctx,
    )
}

/// The form's send date and time, read in Vietnam's time; both empty = when started.
fn send_at(f: &CampaignForm) -> Result<Option<i64>, AppError> {
    if f.send_date.trim().is_empty() && f.send_time.trim().is_empty() {
        return Ok(None);
    }
    let bad = || {
        AppError::field(
            "send_at",
            "ngày giờ gửi không hợp lệ (ngày dd/mm/yyyy, giờ HH:MM)",
        )
    };
    let date = NaiveDate::parse_from_str(f.send_date.trim(), "%Y-%m-%d").map_err(|_| bad())?;
    let time = match f.send_time.trim() {
        "" => NaiveTime::from_hms_opt(7, 0, 0).ok_or_else(bad)?,
        t => NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| bad())?,
    };
    let vn = chrono::FixedOffset::east_opt(7 * 3600).ok_or_else(bad)?;
    Ok(Some(
        vn.from_local_datetime(&date.and_time(time))
            .single()
            .ok_or_else(bad)?
            .timestamp_millis(),
    ))
}

pub async fn create_campaign(
    State(s): State<AppState>,
    staff: Staff,
    WebForm(f): WebForm<CampaignForm>,
) -> Result<Response, PageError> {
    staff.check_csrf(&f.csrf)?;
    let roles: Vec<Role> = [
        (&f.role_parent, Role::Parent),
        (&f.role_student, Role::Student),
        (&f.role_staff, Role::Staff),
    ]
    .into_iter()
    .filter(|(v, _)| !v.is_empty())
    .map(|(_, r)| r)
    .collect();
    let mut channels: Vec<Channel> = Vec::new();
    for v in [&f.channel_1, &f.channel_2, &f.channel_3] {
        if let Some(c) = Channel::parse(v.trim())
            && !channels.contains(&c)
        {
            channels.push(c);
        }
    }
    let attempt = async {
        let c = NewCampaign {
            org_id: f.org_id,
            name: f.name.trim().to_string(),
            template_id: f.template_id,
            audience: Audience {
                org_id: f.org_id,
                roles,
                class_ids: vec![],
            },
            channels,
            send_at: send_at(&f)?,
            urgent: !f.urgent.is_empty(),
            ..Default::default()
        };
        crate::api::campaigns::create_as(&staff.actor, &s, c).await
    };
    match attempt.await {
        Ok(c) => Ok(see_other(&format!("/campaigns/{}", c.id))),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            let (error, details) = refusal(&e);
            let ctx = campaign_ctx(&s, &staff, &f).await?;
            form_page(
                &staff,
                "campaign_form.html",
                "Tạo chiến dịch",
                StatusCode::UNPROCESSABLE_ENTITY,
                minijinja::context! { error, details, ..ctx },
            )
        }
        Err(e) => Err(e.into()),
    }
}
