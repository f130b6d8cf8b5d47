//! Templates and the shared library: content published at or above the user's node (filtered by
//! topic) to copy into a campaign, and the node's own templates, which approvers publish for the
//! nodes below. Through the API's own library rules (`api::templates::publish_as`).

use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};
use minijinja::Value;
use serde::Deserialize;

use super::login::WebForm;
use super::session::{PageError, Staff, see_other};
use super::{base, view};
use crate::api::AppState;
use crate::api::auth::{ANY, APPROVER};
use crate::domain::campaign::Template;

const OWN: i64 = 100;

#[derive(Deserialize)]
pub struct Filter {
    #[serde(default)]
    topic: String,
    done: Option<String>,
}

async fn row(s: &AppState, staff: &Staff, t: &Template) -> Result<Value, PageError> {
    let org = s.store.get_org(t.org_id).await?;
    let can_publish =
        t.published.is_none() && staff.actor.0.has_any(APPROVER) && staff.actor.0.covers(&org.path);
    Ok(minijinja::context! {
        id => t.id, name => t.name, org => org.name,
        topics => t.published.as_ref().map(|p| p.topics.join(", ")),
        zalo_text => t.bodies.zalo_text, sms_text => t.bodies.sms_text,
        email_subject => t.bodies.email_subject, can_publish,
    })
}

pub async fn page(
    State(s): State<AppState>,
    staff: Staff,
    Query(f): Query<Filter>,
) -> Result<Html<String>, PageError> {
    staff.actor.require(ANY)?;
    let topic: String = f.topic.trim().to_lowercase().chars().take(60).collect();
    let p = &staff.actor.0;
    let mut shared = Vec::new();
    for t in s
        .store
        .library(&p.org_path, (!topic.is_empty()).then_some(topic.as_str()))
        .await?
    {
        shared.push(row(&s, &staff, &t).await?);
    }
    let mut own = Vec::new();
    for t in s.store.list_templates(&p.org_path, OWN).await? {
        own.push(row(&s, &staff, &t).await?);
    }
    let sections = vec![
        minijinja::context! { title => "Thư viện dùng chung (từ đơn vị của bạn và cấp trên)", rows => shared },
        minijinja::context! { title => "Mẫu tin của đơn vị", rows => own },
    ];
    let ctx = base(&staff, "Mẫu tin");
    Ok(view::render(
        "library.html",
        minijinja::context! {
            sections, topic, flash => f.done.is_some().then_some("Đã đưa vào thư viện dùng chung."),
            ..ctx
        },
    )?)
}

#[derive(Deserialize)]
pub struct PublishForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    topics: String,
}

pub async fn publish(
    State(s): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    WebForm(f): WebForm<PublishForm>,
) -> Result<Response, PageError> {
    staff.check_csrf(&f.csrf)?;
    let topics: Vec<String> = f.topics.split(',').map(|t| t.to_string()).collect();
    crate::api::templates::publish_as(&staff.actor, &s, id, &topics).await?;
    Ok(see_other("/library?done=published"))
}
