//! PostgreSQL side of the contact list (`GET /contacts`): one page of a subtree's contacts in id
//! order, filtered by class, role and address in SQL, and by name in Rust with `fold_name`, as on
//! SQLite (so both stores fold Vietnamese diacritics the same way). A name search reads at most
//! `SCAN_MAX` rows per page and then returns where it stopped, so a rare name costs bounded work.

use sqlx::Row;

use super::super::super::{CONTACT_COLS, PgStore, contact_from};
use crate::domain::Channel;
use crate::domain::contact::fold_name;
use crate::store::{ContactFilter, ContactPage, Result};

/// Rows read per statement while searching by name.
const CHUNK: i64 = 500;
/// Rows a name search reads for one page before it answers with what it found and where to go on.
const SCAN_MAX: usize = 20_000;

/// The column that holds a channel's address.
fn address_column(c: Channel) -> &'static str {
    match c {
        Channel::Email => "email",
        Channel::Sms | Channel::ZaloZns => "phone",
        Channel::Zalo => "zalo_user_id",
        Channel::Messenger => "facebook_psid",
    }
}

impl PgStore {
    pub(super) async fn do_list_contacts(&self, f: &ContactFilter) -> Result<ContactPage> {
        let has = f
            .has
            .map(|c| {
                let col = address_column(c);
                format!(" AND c.{col} IS NOT NULL AND c.{col} <> ''")
            })
            .unwrap_or_default();
        // $1 subtree path, $2 class path, $3 role, $4 after id, $5 rows. Paths are ids and '/'
        // only, so a prefix is a LIKE pattern as it stands (and uses orgs_path).
        let sql = format!(
            "SELECT {cols} FROM contacts c \
             WHERE c.org_id IN (SELECT id FROM orgs WHERE path LIKE $1 || '%') \
             AND ($2::text IS NULL \
                  OR c.org_id IN (SELECT id FROM orgs WHERE path LIKE $2 || '%') \
                  OR (c.role = 'parent' AND EXISTS (SELECT 1 FROM guardian_links g \
                      JOIN contacts s ON s.id = g.student_id \
                      WHERE g.parent_id = c.id AND s.org_id IN \
                      (SELECT id FROM orgs WHERE path LIKE $2 || '%')))) \
             AND ($3::text IS NULL OR c.role = $3) AND c.id > $4{has} \
             ORDER BY c.id LIMIT $5",
            cols = CONTACT_COLS
                .split(',')
                .map(|c| format!("c.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", "),
        );
        let search = f.search.as_deref().filter(|s| !s.is_empty());
        let chunk = if search.is_some() { CHUNK } else { f.limit };
        let mut after = f.after_id.unwrap_or(0);
        let mut contacts = Vec::new();
        let mut scanned = 0usize;
        loop {
            let rows = sqlx::query(&sql)
                .bind(&f.org_path)
                .bind(f.class_path.as_deref())
                .bind(f.role.map(|r| r.as_str()))
                .bind(after)
                .bind(chunk)
                .fetch_all(&self.pool)
                .await?;
            let last_chunk = (rows.len() as i64) < chunk;
            for r in &rows {
                after = r.try_get("id")?;
                scanned += 1;
                let c = contact_from(r)?;
                if search.is_none_or(|q| fold_name(&c.full_name).contains(q)) {
                    contacts.push(c);
                    if contacts.len() as i64 >= f.limit {
                        return Ok(ContactPage {
                            contacts,
                            next_after: Some(after),
                        });
                    }
                }
            }
            if last_chunk {
                return Ok(ContactPage {
                    contacts,
                    next_after: None,
                });
            }
            if scanned >= SCAN_MAX {
                return Ok(ContactPage {
                    contacts,
                    next_after: Some(after),
                });
            }
        }
    }
}
