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
