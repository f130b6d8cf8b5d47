//! What the operator does from the shell: bootstrap users and API tokens, and start an approved
//! campaign. The same rules as the API apply (a campaign starts only if its approval holds).

use std::sync::Arc;

use tokio::sync::Notify;

use crate::api::users::{NewUserInput, create_token, create_user, validate_user};
use crate::approval;
use crate::clock::now_ms;
use crate::domain::access::{AuditEntry, Principal, UserRole};
use crate::store::Store;

/// The code of a node -> its id and path. Codes of schools and the nodes above them are unique across
/// the tree; a class code only within its school, so a class is found by code only when one class
/// alone has it.
pub async fn org_by_code(store: &dyn Store, code: &str) -> anyhow::Result<(i64, String)> {
    let code = code.trim();
    let found: Vec<_> = store
        .list_orgs(None)
        .await?
        .into_iter()
        .filter(|o| o.code == code)
        .collect();
    let node = found
        .iter()
        .find(|o| o.kind != crate::domain::org::OrgKind::Class)
        .or(match found.as_slice() {
            [one] => Some(one),
            _ => None,
        });
    match node {
        Some(o) => Ok((o.id, o.path.clone())),
        None if found.is_empty() => Err(anyhow::anyhow!("không có đơn vị mã {code}")),
        None => Err(anyhow::anyhow!(
            "mã {code} là mã lớp của nhiều trường; hãy dùng mã trường"
        )),
    }
}

/// The shell's identity in the audit log: the OS user running the command.
pub fn shell_entry(
    org_id: Option<i64>,
    action: &'static str,
    object: &'static str,
    object_id: Option<i64>,
    detail: serde_json::Value,
) -> AuditEntry {
    let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    AuditEntry {
        user_id: None,
        username: format!("cli:{who}"),
        org_id,
        action,
        object,
        object_id,
        detail,
    }
}

pub async fn user_create(
    store: &dyn Store,
    username: &str,
    full_name: &str,
    org: Option<&str>,
    roles: &str,
    password: Option<String>,
) -> anyhow::Result<i64> {
    let roles = UserRole::parse_list(roles).ok_or_else(|| {
        anyhow::anyhow!("vai trò không hợp lệ: {roles} (dùng: admin, author, approver, viewer)")
    })?;
    let org_id = match org {
        Some(code) => Some(org_by_code(store, code).await?.0),
        None => None,
    };
    let u = validate_user(NewUserInput {
        org_id,
        username: username.into(),
        full_name: full_name.into(),
        roles,
        password,
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let user = create_user(store, &u)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    store
        .audit(
            &shell_entry(
                user.org_id,
                "user.create",
                "user",
                Some(user.id),
                serde_json::json!({"roles": user.roles}),
            ),
            now_ms(),
        )
        .await?;
    Ok(user.id)
}

/// Returns the new token (to print once).
pub async fn token_create(store: &dyn Store, username: &str, name: &str) -> anyhow::Result<String> {
    let user = store
        .user_by_name(username.trim())
        .await
        .map_err(|_| anyhow::anyhow!("không có tài khoản {username}"))?;
    let (id, token) = create_token(store, user.id, name).await?;
    store
        .audit(
            &shell_entry(
                user.org_id,
                "token.create",
                "user",
                Some(user.id),
                serde_json::json!({"token_id": id}),
            ),
            now_ms(),
        )
        .await?;
    Ok(token)
}

/// Starts an approved campaign as `username` (who must be an author or approver whose scope covers
/// the campaign). A running daemon on the same database picks the run up within a second.
pub async fn campaign_start(
    store: Arc<dyn Store>,
    username: &str,
    id: i64,
) -> anyhow::Result<crate::domain::campaign::Campaign> {
    let user = store
        .user_by_name(username.trim())
        .await
        .map_err(|_| anyhow::anyhow!("không có tài khoản {username}"))?;
    let path = match user.org_id {
        Some(o) => store.get_org(o).await?.path,
        None => String::new(),
    };
    let p = Principal::of(&user, &path);
    let c = store
        .get_campaign(id)
        .await
        .map_err(|_| anyhow::anyhow!("không có chiến dịch #{id}"))?;
    let org = store.get_org(c.org_id).await?;
    if user.disabled || !p.has_any(&[UserRole::Author, UserRole::Approver]) || !p.covers(&org.path)
    {
        anyhow::bail!("tài khoản {username} không có quyền bắt đầu chiến dịch #{id}");
    }
    Ok(approval::start(store.as_ref(), &Notify::new(), &p, id).await?)
}

/// The preview of a campaign as a Vietnamese summary for staff.
pub async fn campaign_preview(
    store: &dyn Store,
    cfg: &crate::config::Config,
    id: i64,
) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let c = store
        .get_campaign(id)
        .await
        .map_err(|_| anyhow::anyhow!("không có chiến dịch #{id}"))?;
    let unaccent = cfg
        .channels
        .get(&crate::domain::Channel::Sms)
        .and_then(|name| cfg.providers.get(name))
        .is_some_and(|p| p.unaccent);
    let p = crate::preview::preview(store, &c, unaccent, &cfg.prices).await?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Chiến dịch #{id}: {} — {} người nhận",
        c.name, p.people
    );
    for (ch, r) in &p.by_channel {
        let _ = write!(out, "  {ch:<9} {:>7} người", r.people);
        if let (Some(seg), Some(with), Some(without)) = (
            r.segments,
            r.segments_with_accents,
            r.segments_without_accents,
        ) {
            let _ = write!(
                out,
                ", {seg} tin SMS (có dấu: {with}, không dấu: {without})"
            );
        }
        let _ = writeln!(out, ", chi phí ước tính {:.0} đ", r.cost);
    }
    for (why, n) in &p.unreachable {
        let label = match *why {
            "opted_out" => "đã từ chối nhận tin trên mọi kênh",
            "no_address" => "không có địa chỉ liên lạc cho kênh nào",
            other => other,
        };
        let _ = writeln!(out, "  không gửi được: {n} ({label})");
    }
    let _ = writeln!(
        out,
        "Tổng chi phí ước tính: {:.0} đ ({} ms)",
        p.total_cost, p.took_ms
    );
    for (ch, s) in &p.samples {
        let _ = writeln!(out, "--- Mẫu {ch}:\n{}", s.text);
    }
    Ok(out)
}
