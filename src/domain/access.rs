//! Who may do what where: the four user roles, the acting user (a principal) and the scope rule of the
//! sector (a user acts on its node and everything below it, never above or beside it).

use super::Millis;

use serde::{Deserialize, Serialize};

use super::org::OrgKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    /// Users, contacts and settings of the node.
    Admin,
    /// Drafts templates and campaigns.
    Author,
    /// Approves or rejects campaigns, publishes library content.
    Approver,
    /// Reads reports only.
    Viewer,
}

impl UserRole {
    pub const ALL: [UserRole; 4] = [
        UserRole::Admin,
        UserRole::Author,
        UserRole::Approver,
        UserRole::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Admin => "admin",
            UserRole::Author => "author",
            UserRole::Approver => "approver",
            UserRole::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<UserRole> {
        UserRole::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }

    /// `"admin,author"` -> roles; `None` if any name is unknown or the list is empty.
    pub fn parse_list(s: &str) -> Option<Vec<UserRole>> {
        let mut v = s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(UserRole::parse)
            .collect::<Option<Vec<_>>>()?;
        v.sort();
        v.dedup();
        (!v.is_empty()).then_some(v)
    }

    pub fn join(roles: &[UserRole]) -> String {
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The user a request (or a CLI command) acts as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    /// The node the user belongs to; `None` for the installation's operators, whose scope is the
    /// whole tree (they create the root nodes and the first users).
    pub org_id: Option<i64>,
    /// The node's materialised path (`/1/4/`), empty for operators: every path starts with it.
    pub org_path: String,
    pub roles: Vec<UserRole>,
}

impl Principal {
    /// A stored user acting, with their node's path ("" for operators).
    pub fn of(u: &User, org_path: &str) -> Principal {
        Principal {
            user_id: u.id,
            username: u.username.clone(),
            org_id: u.org_id,
            org_path: org_path.to_string(),
            roles: u.roles.clone(),
        }
    }

    pub fn has(&self, role: UserRole) -> bool {
        self.roles.contains(&role)
    }

    pub fn has_any(&self, roles: &[UserRole]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }

    pub fn is_operator(&self) -> bool {
        self.org_id.is_none()
    }

    /// Whether a node (by its path) is the user's node or below it.
    pub fn covers(&self, path: &str) -> bool {
        path.starts_with(&self.org_path)
    }

    /// Whether a node is strictly below the user's node (operators: every node). Policies of a node
    /// are set from above it, so a node cannot loosen its own controls.
    pub fn strictly_above(&self, path: &str) -> bool {
        self.covers(path) && path != self.org_path
    }
}

/// Whether `p` may set the self-approval policy of a node of `kind` at `path`. Nobody may switch four
/// eyes off for content they can write themselves, so the policy of a school and of its classes is
/// set only from above the school (an admin of the Phòng or higher, or an operator), and that of a
/// Phòng or Sở from above that node.
pub fn may_set_policy(p: &Principal, kind: OrgKind, path: &str) -> bool {
    let anchor = match kind {
        // A class's path is its school's path and its own id: `/1/2/7/30/` -> `/1/2/7/`.
        OrgKind::Class => match path.trim_end_matches('/').rsplit_once('/') {
            Some((school, _)) => format!("{school}/"),
            None => return false,
        },
        _ => path.to_string(),
    };
    p.strictly_above(&anchor)
}

/// A user as stored (never with its password hash).
#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: i64,
    pub org_id: Option<i64>,
    pub username: String,
    pub full_name: String,
    pub roles: Vec<UserRole>,
    pub disabled: bool,
    pub created_at: i64,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub org_id: Option<i64>,
    pub username: String,
    pub full_name: String,
    pub roles: Vec<UserRole>,
    /// argon2id PHC string (`auth::hash_password`).
    pub password_hash: Option<String>,
}

/// One entry of the audit log, as written.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    pub user_id: Option<i64>,
    pub username: String,
    pub org_id: Option<i64>,
    pub action: &'static str,
    pub object: &'static str,
    pub object_id: Option<i64>,
    /// Never personal data: ids, counts, states, reasons.
    pub detail: serde_json::Value,
}

impl AuditEntry {
    pub fn by(
        p: &Principal,
        org_id: Option<i64>,
        action: &'static str,
        object: &'static str,
        object_id: Option<i64>,
        detail: serde_json::Value,
    ) -> AuditEntry {
        AuditEntry {
            user_id: Some(p.user_id),
            username: p.username.clone(),
            org_id,
            action,
            object,
            object_id,
            detail,
        }
    }
}

/// Whether content published at `publisher_path` may be used by a node at `user_path`: the same node
/// or one below it.
pub fn library_reaches(publisher_path: &str, user_path: &str) -> bool {
    user_path.starts_with(publisher_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &str, roles: &[UserRole]) -> Principal {
        Principal {
            user_id: 1,
            username: "u".into(),
            org_id: (!path.is_empty()).then_some(1),
            org_path: path.into(),
            roles: roles.to_vec(),
        }
    }

    #[test]
    fn scope_is_the_subtree() {
        let phong = at("/1/2/", &[UserRole::Admin]);
        assert!(phong.covers("/1/2/"));
        assert!(phong.covers("/1/2/7/"), "a school of the Phòng");
        assert!(!phong.covers("/1/"), "the Sở above");
        assert!(!phong.covers("/1/3/"), "a sibling Phòng");
        assert!(
            !phong.covers("/1/22/"),
            "a sibling whose id starts the same"
        );
        assert!(!phong.strictly_above("/1/2/"));
        assert!(phong.strictly_above("/1/2/7/"));
        let ops = at("", &[UserRole::Admin]);
        assert!(ops.is_operator() && ops.covers("/1/") && ops.strictly_above("/1/"));
    }

    #[test]
    fn policy_is_set_from_above_the_school() {
        let school_admin = at("/1/2/7/", &[UserRole::Admin]);
        assert!(
            !may_set_policy(&school_admin, OrgKind::Class, "/1/2/7/30/"),
            "a school admin must not loosen four eyes for its own classes"
        );
        assert!(!may_set_policy(&school_admin, OrgKind::School, "/1/2/7/"));
        let phong_admin = at("/1/2/", &[UserRole::Admin]);
        assert!(may_set_policy(&phong_admin, OrgKind::School, "/1/2/7/"));
        assert!(may_set_policy(&phong_admin, OrgKind::Class, "/1/2/7/30/"));
        assert!(!may_set_policy(&phong_admin, OrgKind::District, "/1/2/"));
        assert!(!may_set_policy(&phong_admin, OrgKind::School, "/1/3/8/"));
        let ops = at("", &[UserRole::Admin]);
        assert!(may_set_policy(&ops, OrgKind::Class, "/7/30/"));
        assert!(may_set_policy(&ops, OrgKind::School, "/7/"));
    }

    #[test]
    fn role_lists() {
        assert_eq!(
            UserRole::parse_list("author, admin,author"),
            Some(vec![UserRole::Admin, UserRole::Author])
        );
        assert_eq!(UserRole::parse_list("admin,boss"), None);
        assert_eq!(UserRole::parse_list(""), None);
        assert_eq!(
            UserRole::join(&[UserRole::Admin, UserRole::Viewer]),
            "admin,viewer"
        );
    }

    #[test]
    fn library_flows_down_only() {
        assert!(library_reaches("/1/", "/1/2/7/"));
        assert!(library_reaches("/1/2/", "/1/2/"));
        assert!(!library_reaches("/1/2/", "/1/3/"));
        assert!(!library_reaches("/1/2/7/", "/1/2/"));
    }
}

/// An API token as its owner's page lists it (never the token: only its hash is kept).
#[derive(Clone, Debug, Serialize)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub created_at: Millis,
}

/// One audit log entry as read back.
#[derive(Clone, Debug, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: Millis,
    pub user_id: Option<i64>,
    pub username: String,
    pub org_id: Option<i64>,
    pub action: String,
    pub object: String,
    pub object_id: Option<i64>,
    pub detail: serde_json::Value,
}
