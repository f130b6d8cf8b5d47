//! The approval workflow: submit, approve (freezing the exact content with a hash), reject, and start,
//! which like every door that sends checks that the campaign still is what was approved.
//!
//! The API, the CLI, the demo and the benchmark all go through these functions, so the rules (nobody
//! approves a campaign they created, edited or submitted unless the node allows it, nothing sent
//! unapproved) hold whichever way a campaign is moved.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::clock::now_ms;
use crate::domain::Channel;
use crate::domain::access::{AuditEntry, Principal};
use crate::domain::campaign::{Audience, Campaign, CampaignState, Template, TemplateBodies};
use crate::domain::schedule::Recurrence;
use crate::render::{CompiledTemplate, sample_person};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The campaign is not in a state that allows the move (or changed meanwhile).
    #[error("{0}")]
    Conflict(String),
    /// The approver created or submitted the campaign and the node does not allow that.
    #[error("{0}")]
    SelfApproval(String),
    /// The campaign has no approval, or is no longer what was approved.
    #[error("{0}")]
    NotApproved(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an approval covers: everything that decides who gets which text when. Its hash is what every
/// sending door compares; it is computed from the stored campaign and template, not from rendering,
/// so an upgrade of the renderer does not void approvals.
#[derive(Serialize)]
struct Frozen<'a> {
    campaign_id: i64,
    org_id: i64,
    name: &'a str,
    template_id: i64,
    template_org_id: i64,
    bodies: &'a TemplateBodies,
    audience: &'a Audience,
    channels: &'a [Channel],
    messenger_tag: Option<&'a str>,
    send_at: Option<i64>,
    schedule: Option<&'a Recurrence>,
    /// Each template of a series, in order, with its bodies.
    series: Vec<(i64, i64, &'a TemplateBodies)>,
    urgent: bool,
}

fn frozen<'a>(c: &'a Campaign, t: &'a Template, series: &'a [Template]) -> Frozen<'a> {
    Frozen {
        campaign_id: c.id,
        org_id: c.org_id,
        name: &c.name,
        template_id: t.id,
        template_org_id: t.org_id,
        bodies: &t.bodies,
        audience: &c.audience,
        channels: &c.channels,
        messenger_tag: c.messenger_tag.as_deref(),
        send_at: c.send_at,
        schedule: c.schedule.as_ref(),
        series: series.iter().map(|t| (t.id, t.org_id, &t.bodies)).collect(),
        urgent: c.urgent,
    }
}

/// The campaign's template and, for a series, every template of it in order.
pub async fn templates(
    store: &dyn Store,
    c: &Campaign,
) -> Result<(Template, Vec<Template>), StoreError> {
    let main = store.get_template(c.template_id).await?;
    let mut series = Vec::with_capacity(c.series.len());
    for id in &c.series {
        series.push(store.get_template(*id).await?);
    }
    Ok((main, series))
}

/// SHA-256 (hex) of the campaign's frozen content.
pub fn content_hash(c: &Campaign, t: &Template, series: &[Template]) -> String {
    let bytes = serde_json::to_vec(&frozen(c, t, series)).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// A channel's text for the sample person, as the approver saw it.
#[derive(Serialize)]
struct Sample {
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    text: String,
}

/// What is stored with the approval: the frozen content, where its text comes from (the shared
/// library or the node itself) and each channel's text rendered for a sample person.
fn snapshot(
    c: &Campaign,
    t: &Template,
    series: &[Template],
    sender_name: &str,
) -> serde_json::Value {
    let mut samples = BTreeMap::new();
    if let Ok(compiled) = CompiledTemplate::compile(&t.bodies, sender_name, &c.name) {
        for ch in &c.channels {
            let sample = match compiled.render(*ch, &sample_person(), "https://loa.invalid/u/mau") {
                Ok(r) => Sample {
                    subject: r.subject,
                    text: r.text,
                },
                Err(e) => Sample {
                    subject: None,
                    text: format!("(không soạn được: {e})"),
                },
            };
            samples.insert(ch.as_str(), sample);
        }
    }
    let content = match &t.published {
        Some(p) if t.org_id != c.org_id => serde_json::json!({
            "source": "library",
            "template_org_id": t.org_id,
            "published_by": p.published_by,
            "published_at": p.published_at,
        }),
        _ => serde_json::json!({"source": "own", "template_org_id": t.org_id}),
    };
    serde_json::json!({
        "frozen": frozen(c, t, series),
        "template_name": t.name,
        "content": content,
        "samples": samples,
    })
}

/// Whether a campaign carries an approval that matches it as it is now; the reason if not.
pub async fn verify(store: &dyn Store, c: &Campaign) -> Result<(), FlowError> {
    let Some(a) = &c.approval else {
        return Err(FlowError::NotApproved(
            "chiến dịch chưa được phê duyệt".to_string(),
        ));
    };
    let (t, series) = templates(store, c).await?;
    if content_hash(c, &t, &series) != a.hash {
        return Err(FlowError::NotApproved(
            "nội dung chiến dịch đã thay đổi sau khi được phê duyệt".to_string(),
        ));
    }
    Ok(())
}

async fn audit(store: &dyn Store, p: &Principal, c: &Campaign, action: &'static str) {
    let e = AuditEntry::by(
        p,
        Some(c.org_id),
        action,
        "campaign",
        Some(c.id),
        serde_json::json!({"state": c.state}),
    );
    if let Err(err) = store.audit(&e, now_ms()).await {
        tracing::error!(error = %err, action, "audit entry not written");
    }
}

pub async fn submit(store: &dyn Store, p: &Principal, id: i64) -> Result<Campaign, FlowError> {
    if !store.submit_campaign(id, p.user_id, now_ms()).await? {
        let c = store.get_campaign(id).await?;
        return Err(FlowError::Conflict(format!(
            "chỉ trình duyệt được chiến dịch là bản nháp hoặc bị từ chối (chiến dịch này {})",
            c.state.label_vi()
        )));
    }
    let c = store.get_campaign(id).await?;
    audit(store, p, &c, "campaign.submit").await;
    Ok(c)
}

/// Approves a submitted campaign as `p` (whose role and scope the caller has checked); `preview`
/// (reach and cost as computed for the approver) is stored with the frozen content.
pub async fn approve(
    store: &dyn Store,
    p: &Principal,
    id: i64,
    preview: Option<serde_json::Value>,
) -> Result<Campaign, FlowError> {
    let c = store.get_campaign(id).await?;
    if c.state != CampaignState::Submitted {
        return Err(FlowError::Conflict(format!(
            "chỉ phê duyệt được chiến dịch đã trình duyệt (chiến dịch này {})",
            c.state.label_vi()
        )));
    }
    let org = store.get_org(c.org_id).await?;
    // Whoever wrote, changed or submitted what is approved is not the second pair of eyes.
    let own = c.created_by == Some(p.user_id)
        || c.submitted_by == Some(p.user_id)
        || store.campaign_editors(id).await?.contains(&p.user_id);
    if own && !org.self_approval {
        return Err(FlowError::SelfApproval(
            "không được tự phê duyệt chiến dịch do chính mình soạn, sửa hoặc trình".to_string(),
        ));
    }
    let (t, series) = templates(store, &c).await?;
    let hash = content_hash(&c, &t, &series);
    let mut snap = snapshot(&c, &t, &series, &org.name);
    if let Some(p) = preview {
        snap["preview"] = p;
    }
    if !store
        .approve_campaign(id, p.user_id, c.updated_at, &snap, &hash, now_ms())
        .await?
    {
        return Err(FlowError::Conflict(
            "chiến dịch vừa thay đổi trong lúc phê duyệt; hãy xem lại trước khi duyệt".into(),
        ));
    }
    let c = store.get_campaign(id).await?;
    audit(store, p, &c, "campaign.approve").await;
    Ok(c)
}

pub async fn reject(
    store: &dyn Store,
    p: &Principal,
    id: i64,
    reason: &str,
) -> Result<Campaign, FlowError> {
    if !store.reject_campaign(id, reason, now_ms()).await? {
        let c = store.get_campaign(id).await?;
        return Err(FlowError::Conflict(format!(
            "chỉ từ chối được chiến dịch đã trình duyệt (chiến dịch này {})",
            c.state.label_vi()
        )));
    }
    let c = store.get_campaign(id).await?;
    audit(store, p, &c, "campaign.reject").await;
    Ok(c)
}

/// Starts an approved campaign now, or schedules it for `send_at`; the audience is fanned out by the
/// scheduler. Refused unless the approval matches the campaign as it is.
pub async fn start(
    store: &dyn Store,
    scheduler_wake: &Notify,
    p: &Principal,
    id: i64,
) -> Result<Campaign, FlowError> {
    let c = store.get_campaign(id).await?;
    if !c.state.startable() {
        return Err(match c.state {
            CampaignState::Draft | CampaignState::Submitted | CampaignState::Rejected => {
                FlowError::NotApproved("chiến dịch chưa được phê duyệt, không thể gửi".to_string())
            }
            s => FlowError::Conflict(format!("không thể bắt đầu gửi chiến dịch {}", s.label_vi())),
        });
    }
    if let Err(e) = verify(store, &c).await {
        store
            .revoke_approval(id, &[CampaignState::Approved], now_ms())
            .await?;
        return Err(e);
    }
    let now = now_ms();
    if c.schedule.is_some() {
        // Slots fire from now on; the scheduler creates a run for each.
        if !store.start_recurring(id, now).await? {
            return Err(FlowError::Conflict(
                "trạng thái chiến dịch vừa thay đổi; hãy tải lại".into(),
            ));
        }
        scheduler_wake.notify_one();
        let c = store.get_campaign(id).await?;
        audit(store, p, &c, "campaign.start").await;
        return Ok(c);
    }
    let from = [CampaignState::Approved];
    let to = if c.send_at.is_some_and(|t| t > now) {
        CampaignState::Scheduled
    } else {
        CampaignState::Running
    };
    if !store.transition_campaign(id, &from, to, now).await? {
        return Err(FlowError::Conflict(
            "trạng thái chiến dịch vừa thay đổi; hãy tải lại".into(),
        ));
    }
    if to == CampaignState::Running {
        store.create_run(id, "once", now).await?;
    }
    scheduler_wake.notify_one();
    let c = store.get_campaign(id).await?;
    audit(store, p, &c, "campaign.start").await;
    Ok(c)
}

/// Submits as `author`, approves as `approver` and starts: the tools that run campaigns themselves
/// (the demo, the benchmark) take the same road as staff do through the API.
pub async fn sign_off_and_start(
    store: &dyn Store,
    scheduler_wake: &Notify,
    author: &Principal,
    approver: &Principal,
    id: i64,
) -> Result<Campaign, FlowError> {
    submit(store, author, id).await?;
    approve(store, approver, id, None).await?;
    start(store, scheduler_wake, author, id).await
}

/// Creates a user at a node (operators: `None`) with the given roles, for tools and bootstrap.
pub async fn tool_user(
    store: &dyn Store,
    org_id: Option<i64>,
    username: &str,
    full_name: &str,
    roles: &[crate::domain::access::UserRole],
) -> Result<Principal, StoreError> {
    let u = store
        .create_user(
            &crate::domain::access::NewUser {
                org_id,
                username: username.into(),
                full_name: full_name.into(),
                roles: roles.to_vec(),
                password_hash: None,
            },
            now_ms(),
        )
        .await?;
    let path = match org_id {
        Some(id) => store.get_org(id).await?.path,
        None => String::new(),
    };
    Ok(Principal::of(&u, &path))
}
