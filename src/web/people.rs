//! People: the tree from the user's node down to classes, and the contacts of a node or class with
//! search and filters (role, reachable by a channel), listed through the API's own function (the
//! same scope, masking and audit).

use axum::extract::{Query, State};
use axum::response::Html;
use minijinja::Value;
use serde::Deserialize;

use super::labels;
use super::session::{PageError, Staff};
use super::{base, view};
use crate::api::AppState;
use crate::api::auth::ANY;
use crate::api::contacts::{ListQuery, list_as};
use crate::domain::Channel;
use crate::domain::contact::Role;
use crate::domain::org::{Org, OrgKind};

const PAGE: i64 = 50;

#[derive(Deserialize)]
pub struct PeopleQuery {
    org: Option<i64>,
    #[serde(default)]
    q: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    has: String,
    after: Option<i64>,
}

/// The nodes above `org` that the user may see, top first (a path holds at most five levels).
async fn crumbs(s: &AppState, staff: &Staff, org: &Org) -> Result<Vec<Value>, PageError> {
    let mut out = Vec::new();
    for id in org
        .path
        .split('/')
        .filter_map(|p| p.parse::<i64>().ok())
        .filter(|id| *id != org.id)
        .take(8)
    {
        let o = s.store.get_org(id).await?;
        if staff.actor.0.covers(&o.path) {
            out.push(minijinja::context! { id => o.id, name => o.name });
        }
    }
    Ok(out)
}

pub async fn page(
    State(s): State<AppState>,
    staff: Staff,
    Query(q): Query<PeopleQuery>,
) -> Result<Html<String>, PageError> {
    staff.actor.require(ANY)?;
    let org_id = match q.org.or(staff.actor.0.org_id) {
        Some(id) => id,
        None => {
            // An operator of the whole installation: the top nodes.
            let roots = s.store.list_orgs(None).await?;
            match roots.first() {
                Some(o) if roots.len() == 1 => o.id,
                _ => return roots_page(&s, &staff, roots).await,
            }
        }
    };
    let org = staff.actor.visible_org(&s, org_id).await?;
    let children: Vec<Value> = if org.kind == OrgKind::Class {
        Vec::new()
    } else {
        s.store
            .list_orgs(Some(org.id))
            .await?
            .iter()
            .map(|o| minijinja::context! { id => o.id, name => o.name, code => o.code })
            .collect()
    };
    let list = ListQuery {
        org_id: Some(org.id),
        class_id: (org.kind == OrgKind::Class).then_some(org.id),
        role: Some(q.role.clone()),
        has: Some(q.has.clone()),
        q: Some(q.q.clone()),
        after: q.after,
        limit: Some(PAGE),
    };
    let page = list_as(&staff.actor, &s, &list).await?;
    let contacts: Vec<Value> = page
        .contacts
        .iter()
        .map(|c| {
            minijinja::context! {
                id => c.id, full_name => c.full_name, role_vi => labels::contact_role(c.role),
                phone => c.addresses.phone, email => c.addresses.email,
                zalo => c.addresses.zalo_user_id.is_some(),
            }
        })
        .collect();
    let roles: Vec<(&str, &str)> = [Role::Parent, Role::Student, Role::Staff]
        .iter()
        .map(|r| (r.as_str(), labels::contact_role(*r)))
        .collect();
    let channels: Vec<(&str, &str)> = Channel::ALL
        .iter()
        .map(|c| (c.as_str(), labels::channel(*c)))
        .collect();
    let ctx = base(&staff, &org.name);
    Ok(view::render(
        "people.html",
        minijinja::context! {
            crumbs => crumbs(&s, &staff, &org).await?,
            kind_vi => labels::org_kind(org.kind),
            children_title => labels::children_of(org.kind),
            org => Value::from_serialize(&org), children, contacts, next_after => page.next_after,
            q => q.q, role => q.role, has => q.has, roles, channels,
            ..ctx
        },
    )?)
}

async fn roots_page(
    s: &AppState,
    staff: &Staff,
    roots: Vec<Org>,
) -> Result<Html<String>, PageError> {
    let _ = s;
    let children: Vec<Value> = roots
        .iter()
        .map(|o| minijinja::context! { id => o.id, name => o.name, code => o.code })
        .collect();
    let ctx = base(staff, "Danh bạ");
    Ok(view::render(
        "people.html",
        minijinja::context! {
            crumbs => Vec::<Value>::new(), kind_vi => "", children_title => "Các đơn vị",
            org => minijinja::context! { id => "", name => "Toàn hệ thống" }, children,
            contacts => Vec::<Value>::new(), q => "", role => "", has => "",
            roles => Vec::<Value>::new(), channels => Vec::<Value>::new(),
            ..ctx
        },
    )?)
}

/// One person, for admins (the API shows a contact in full to admins only): addresses, opt-outs,
/// consent, children or parents, the messages Loa sent them; and erasure, with a confirmation.
pub async fn person(
    State(s): State<AppState>,
    staff: Staff,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Query(q): Query<PersonFlash>,
) -> Result<Html<String>, PageError> {
    staff.actor.require(crate::api::auth::ADMIN)?;
    let c = staff.actor.visible_contact(&s, id).await?;
    let org = s.store.get_org(c.org_id).await?;
    let relatives: Vec<Value> = s
        .store
        .relatives(c.id)
        .await?
        .iter()
        .map(|r| minijinja::context! { id => r.id, full_name => r.full_name, role => labels::contact_role(r.role) })
        .collect();
    let messages: Vec<Value> = s
        .store
        .contact_messages(c.id, 50)
        .await?
        .iter()
        .map(|m| {
            minijinja::context! {
                campaign_id => m.campaign_id, campaign_name => m.campaign_name,
                channel => m.channel.as_deref().map(labels::channel_code),
                state => labels::delivery_state(&m.state),
                reason => m.reason_code.as_deref().map(crate::domain::delivery::Reason::label_vi),
                at => m.updated_at,
            }
        })
        .collect();
    let opted_out = c
        .opted_out
        .iter()
        .map(|ch| labels::channel(*ch))
        .collect::<Vec<_>>()
        .join(", ");
    let relatives_title = match c.role {
        Role::Student => "Phụ huynh",
        _ => "Con",
    };
    let ctx = base(&staff, &c.full_name);
    Ok(view::render(
        "person.html",
        minijinja::context! {
            p => Value::from_serialize(&c), role_vi => labels::contact_role(c.role), org_name => org.name,
            relatives, relatives_title, messages, opted_out,
            flash => q.done.is_some().then_some("Đã lưu."),
            ..ctx
        },
    )?)
}

#[derive(Deserialize)]
pub struct PersonFlash {
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct Erase {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

pub async fn erase(
    State(s): State<AppState>,
    staff: Staff,
    axum::extract::Path(id): axum::extract::Path<i64>,
    super::login::WebForm(f): super::login::WebForm<Erase>,
) -> Result<axum::response::Response, PageError> {
    staff.check_csrf(&f.csrf)?;
    if f.confirm != "yes" {
        return Err(crate::api::error::AppError::field(
            "confirm",
            "cần đánh dấu ô xác nhận trước khi xoá",
        )
        .into());
    }
    let c = staff.actor.visible_contact(&s, id).await?;
    crate::api::contacts::erase_as(&staff.actor, &s, id).await?;
    Ok(super::session::see_other(&format!(
        "/people?org={}&erased=1",
        c.org_id
    )))
}

#[derive(Default, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct PersonForm {
    #[serde(rename = "_csrf", skip_serializing)]
    csrf: String,
    org_id: i64,
    role: String,
    full_name: String,
    student_code: String,
    phone: String,
    email: String,
}

#[derive(Deserialize)]
pub struct NewIn {
    org: i64,
}

fn person_form_page(
    staff: &Staff,
    org: &Org,
    f: &PersonForm,
    status: axum::http::StatusCode,
    error: Option<(String, Vec<String>)>,
) -> Result<axum::response::Response, PageError> {
    use axum::response::IntoResponse;
    let roles: Vec<(&str, &str)> = [Role::Parent, Role::Student, Role::Staff]
        .iter()
        .map(|r| (r.as_str(), labels::contact_role(*r)))
        .collect();
    let (error, details) = match error {
        Some((e, d)) => (Some(e), d),
        None => (None, Vec::new()),
    };
    let ctx = base(staff, "Thêm người");
    Ok((
        status,
        view::render(
            "person_form.html",
            minijinja::context! {
                org => Value::from_serialize(org), roles, f => Value::from_serialize(f), error, details,
                ..ctx
            },
        )?,
    )
        .into_response())
}

pub async fn new_form(
    State(s): State<AppState>,
    staff: Staff,
    Query(q): Query<NewIn>,
) -> Result<axum::response::Response, PageError> {
    staff.actor.require(crate::api::auth::ADMIN)?;
    let org = staff.actor.visible_org(&s, q.org).await?;
    let f = PersonForm {
        org_id: org.id,
        role: if org.kind == OrgKind::Class {
            "student"
        } else {
            "parent"
        }
        .into(),
        ..Default::default()
    };
    person_form_page(&staff, &org, &f, axum::http::StatusCode::OK, None)
}

/// Adds one person through the API's own function; a refusal comes back on the form.
pub async fn create(
    State(s): State<AppState>,
    staff: Staff,
    super::login::WebForm(f): super::login::WebForm<PersonForm>,
) -> Result<axum::response::Response, PageError> {
    staff.check_csrf(&f.csrf)?;
    staff.actor.require(crate::api::auth::ADMIN)?;
    let org = staff.actor.visible_org(&s, f.org_id).await?;
    let blank = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_string());
    let Some(role) = Role::parse(f.role.trim()) else {
        return person_form_page(
            &staff,
            &org,
            &f,
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            Some((
                "Cần chọn vai trò: phụ huynh, học sinh hoặc cán bộ.".into(),
                Vec::new(),
            )),
        );
    };
    let input = crate::domain::contact::NewContactInput {
        org_id: org.id,
        role,
        full_name: f.full_name.clone(),
        phone: blank(&f.phone),
        email: blank(&f.email),
        zalo_user_id: None,
        facebook_psid: None,
        student_code: blank(&f.student_code),
    };
    match crate::api::contacts::create_as(&staff.actor, &s, input).await {
        Ok(c) => Ok(super::session::see_other(&format!("/people/{}", c.id))),
        Err(e) if e.status.is_client_error() && e.status != axum::http::StatusCode::FORBIDDEN => {
            let details = e.field_messages();
            person_form_page(
                &staff,
                &org,
                &f,
                e.status,
                Some((e.message.clone(), details)),
            )
        }
        Err(e) => Err(e.into()),
    }
}
