//! What both dialects share: the column lists of the main tables, the functions that turn a row of
//! them into a domain type (written once, instantiated per driver's row type), and the fan-out's plan.

use super::StoreError;
use crate::domain::campaign::Audience;
use crate::domain::contact::Role;

/// From this many students in the subtree, parents are found by walking all guardian links in pages
/// (both dialects take the same steps).
pub(super) const SCAN_PLAN_FROM_STUDENTS: i64 = 20_000;
/// Guardian links per page of that walk: each page is one statement of bounded length, between which
/// the dispatcher's claims and writes get the database.
pub(super) const SCAN_PAGE_LINKS: i64 = 20_000;

/// Roles reached directly (not through a child), in fan-out order. A class filter reaches students
/// only: parents and staff belong to schools, not classes.
pub(super) fn direct_roles(a: &Audience) -> Vec<&'static str> {
    let mut roles = Vec::new();
    if a.roles.contains(&Role::Parent) && a.class_ids.is_empty() {
        roles.push("parent");
    }
    if a.roles.contains(&Role::Student) {
        roles.push("student");
    }
    if a.roles.contains(&Role::Staff) && a.class_ids.is_empty() {
        roles.push("staff");
    }
    roles
}

pub(super) fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {v:?}"))
}

pub(super) const CONTACT_COLS: &str = "id, org_id, role, full_name, phone, email, zalo_user_id, facebook_psid, student_code, opt_out, \
     consent_source, consent_at, created_at, other_phones, landline, position, staff_group";
pub(super) const CAMPAIGN_COLS: &str = "id, org_id, name, template_id, audience, channels, messenger_tag, state, send_at, created_at, updated_at, \
     created_by, submitted_by, approved_by, approved_at, approval, approval_hash, rejection_reason, \
     schedule, series, urgent, schedule_ended, schedule_cursor, paused";
pub(super) const USER_COLS: &str = "id, org_id, username, full_name, roles, disabled, created_at";
pub(super) const ORG_COLS: &str = "id, parent_id, kind, code, name, path, self_approval";

/// A person's addresses and opt-outs as `CLAIMED_COLUMNS` packs them.
pub(super) type PackedContact = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

/// The row readers for one driver's row type (`SqliteRow`, `PgRow`). A column that is INTEGER 0/1
/// in SQLite is BOOLEAN in PostgreSQL: both decode as `bool`, so one body serves both.
macro_rules! row_readers {
    ($Row:ty) => {
        fn channel_col<I: sqlx::ColumnIndex<$Row>>(row: &$Row, col: I) -> Result<Option<Channel>> {
            match row.try_get::<Option<String>, _>(col)? {
                None => Ok(None),
                Some(s) => Channel::parse(&s)
                    .map(Some)
                    .ok_or_else(|| corrupt("channel", &s)),
            }
        }

        fn org_from(row: &$Row) -> Result<Org> {
            let kind: String = row.try_get("kind")?;
            Ok(Org {
                id: row.try_get("id")?,
                parent_id: row.try_get("parent_id")?,
                kind: OrgKind::parse(&kind).ok_or_else(|| corrupt("org kind", &kind))?,
                code: row.try_get("code")?,
                name: row.try_get("name")?,
                path: row.try_get("path")?,
                self_approval: row.try_get("self_approval")?,
            })
        }

        fn addresses_from(row: &$Row) -> Result<Addresses> {
            Ok(Addresses {
                phone: row.try_get("phone")?,
                email: row.try_get("email")?,
                zalo_user_id: row.try_get("zalo_user_id")?,
                facebook_psid: row.try_get("facebook_psid")?,
            })
        }

        fn contact_from(row: &$Row) -> Result<Contact> {
            let role: String = row.try_get("role")?;
            Ok(Contact {
                id: row.try_get("id")?,
                org_id: row.try_get("org_id")?,
                role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
                full_name: row.try_get("full_name")?,
                student_code: row.try_get("student_code")?,
                addresses: addresses_from(row)?,
                opted_out: OptOuts(row.try_get("opt_out")?).channels(),
                consent_source: row.try_get("consent_source")?,
                consent_at: row.try_get("consent_at")?,
                created_at: row.try_get("created_at")?,
                details: ContactDetails {
                    other_phones: match row.try_get::<Option<String>, _>("other_phones")? {
                        Some(j) => {
                            serde_json::from_str(&j).map_err(|_| corrupt("other_phones", &j))?
                        }
                        None => Vec::new(),
                    },
                    landline: row.try_get("landline")?,
                    position: row.try_get("position")?,
                    group: row.try_get("staff_group")?,
                },
            })
        }

        fn campaign_from(row: &$Row) -> Result<Campaign> {
            let audience: String = row.try_get("audience")?;
            let channels: String = row.try_get("channels")?;
            let state: String = row.try_get("state")?;
            Ok(Campaign {
                id: row.try_get("id")?,
                org_id: row.try_get("org_id")?,
                name: row.try_get("name")?,
                template_id: row.try_get("template_id")?,
                audience: serde_json::from_str(&audience)
                    .map_err(|_| corrupt("audience", &audience))?,
                channels: serde_json::from_str(&channels)
                    .map_err(|_| corrupt("channels", &channels))?,
                messenger_tag: row.try_get("messenger_tag")?,
                state: CampaignState::parse(&state)
                    .ok_or_else(|| corrupt("campaign state", &state))?,
                send_at: row.try_get("send_at")?,
                schedule: json_col(row, "schedule")?,
                series: json_col(row, "series")?.unwrap_or_default(),
                urgent: row.try_get("urgent")?,
                schedule_ended: row.try_get("schedule_ended")?,
                schedule_cursor: row.try_get("schedule_cursor")?,
                paused: row.try_get("paused")?,
                created_by: row.try_get("created_by")?,
                submitted_by: row.try_get("submitted_by")?,
                approval: match (
                    row.try_get::<Option<i64>, _>("approved_by")?,
                    row.try_get::<Option<String>, _>("approval_hash")?,
                ) {
                    (Some(approved_by), Some(hash)) => Some(Approval {
                        approved_by,
                        approved_at: row.try_get::<Option<i64>, _>("approved_at")?.unwrap_or(0),
                        hash,
                        snapshot: json_col(row, "approval")?.unwrap_or_default(),
                    }),
                    _ => None,
                },
                rejection_reason: row.try_get("rejection_reason")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        /// An optional JSON column as its type.
        fn json_col<T: serde::de::DeserializeOwned>(
            r: &$Row,
            col: &'static str,
        ) -> Result<Option<T>> {
            match r.try_get::<Option<String>, _>(col)? {
                Some(j) => Ok(Some(
                    serde_json::from_str(&j).map_err(|_| corrupt(col, &j))?,
                )),
                None => Ok(None),
            }
        }

        fn template_from(r: &$Row) -> Result<Template> {
            Ok(Template {
                id: r.try_get("id")?,
                org_id: r.try_get("org_id")?,
                name: r.try_get("name")?,
                bodies: TemplateBodies {
                    email_subject: r.try_get("email_subject")?,
                    email_text: r.try_get("email_text")?,
                    email_html: r.try_get("email_html")?,
                    sms_text: r.try_get("sms_text")?,
                    zalo_text: r.try_get("zalo_text")?,
                    messenger_text: r.try_get("messenger_text")?,
                    zns: json_col(r, "zns")?,
                    zalo_transaction: json_col(r, "zalo_transaction")?,
                },
                created_by: r.try_get("created_by")?,
                published: match r.try_get::<Option<i64>, _>("published_at")? {
                    Some(published_at) => Some(Publication {
                        published_by: r.try_get::<Option<i64>, _>("published_by")?.unwrap_or(0),
                        published_at,
                        topics: json_col(r, "topics")?.unwrap_or_default(),
                    }),
                    None => None,
                },
                created_at: r.try_get("created_at")?,
            })
        }

        fn user_from(r: &$Row) -> Result<User> {
            let roles: String = r.try_get("roles")?;
            Ok(User {
                id: r.try_get("id")?,
                org_id: r.try_get("org_id")?,
                username: r.try_get("username")?,
                full_name: r.try_get("full_name")?,
                roles: crate::domain::access::UserRole::parse_list(&roles)
                    .ok_or_else(|| corrupt("user roles", &roles))?,
                disabled: r.try_get("disabled")?,
                created_at: r.try_get("created_at")?,
            })
        }

        /// The user a credential names: `id, username, org_id, roles, path` (path "" for operators).
        fn principal_from(r: &$Row) -> Result<Principal> {
            let roles: String = r.try_get("roles")?;
            Ok(Principal {
                user_id: r.try_get("id")?,
                username: r.try_get("username")?,
                org_id: r.try_get("org_id")?,
                org_path: r.try_get("path")?,
                roles: crate::domain::access::UserRole::parse_list(&roles)
                    .ok_or_else(|| corrupt("user roles", &roles))?,
            })
        }

        fn contact_message_from(r: &$Row) -> Result<crate::domain::delivery::ContactMessage> {
            Ok(crate::domain::delivery::ContactMessage {
                campaign_id: r.try_get("campaign_id")?,
                campaign_name: r.try_get("campaign_name")?,
                channel: r.try_get("channel")?,
                state: r.try_get("state")?,
                reason_code: r.try_get("reason_code")?,
                updated_at: r.try_get("updated_at")?,
            })
        }

        /// An audit row; a detail that no longer parses reads as empty, not as an error.
        fn audit_from(r: &$Row) -> Result<AuditRow> {
            let detail: Option<String> = r.try_get("detail")?;
            Ok(AuditRow {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                user_id: r.try_get("user_id")?,
                username: r.try_get("username")?,
                org_id: r.try_get("org_id")?,
                action: r.try_get("action")?,
                object: r.try_get("object")?,
                object_id: r.try_get("object_id")?,
                detail: detail
                    .and_then(|d| serde_json::from_str(&d).ok())
                    .unwrap_or_default(),
            })
        }

        fn event_from(r: &$Row) -> Result<WebhookEvent> {
            Ok(WebhookEvent {
                id: r.try_get("id")?,
                provider: r.try_get("provider")?,
                body: r.try_get("body")?,
            })
        }

        /// A claimed delivery as `CLAIMED_COLUMNS` (each dialect's own) lists it, read by position.
        fn claimed_from(row: &$Row) -> Result<Claimed> {
            let state: String = row.try_get(7)?;
            let contact: Option<String> = row.try_get(10)?;
            let (phone, email, zalo_user_id, facebook_psid, opt_out): PackedContact = match contact
            {
                Some(j) => serde_json::from_str(&j).map_err(|_| corrupt("claimed contact", &j))?,
                None => Default::default(),
            };
            Ok(Claimed {
                id: row.try_get(0)?,
                run_id: row.try_get(1)?,
                campaign_id: row.try_get(2)?,
                contact_id: row.try_get(3)?,
                channel: channel_col(row, 4)?,
                channel_index: row.try_get(5)?,
                attempts: row.try_get(6)?,
                state: DeliveryState::parse(&state)
                    .ok_or_else(|| corrupt("delivery state", &state))?,
                reason: row.try_get(8)?,
                vars: row.try_get(9)?,
                addresses: Addresses {
                    phone,
                    email,
                    zalo_user_id,
                    facebook_psid,
                },
                opt_out: OptOuts(opt_out.unwrap_or(0)),
                channel_skipped: row.try_get(11)?,
            })
        }
    };
}
pub(super) use row_readers;
