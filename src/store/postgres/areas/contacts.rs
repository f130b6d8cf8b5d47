//! PostgreSQL side of contacts and imports: people, guardianship links, opt-outs and consent,
//! erasure; the roster and staff imports, the contact list and synthetic audiences in child modules.

use super::super::*;

mod import;
mod list;
mod synthetic;

/// The school a person of this node is counted in: the node itself, a class's school, or none.
fn school_of(org: &Org) -> Option<i64> {
    match org.kind {
        OrgKind::School => Some(org.id),
        OrgKind::Class => org.parent_id,
        _ => None,
    }
}

/// Rows per bulk statement of `insert_contacts`: its columns go as arrays (one bound parameter each,
/// far from PostgreSQL's 65,535), so this only bounds one statement's work and memory.
const BULK_ROWS: usize = 10_000;

#[async_trait::async_trait]
impl ContactStore for PgStore {
    async fn create_contact(&self, c: &NewContact, now: Millis) -> Result<Contact> {
        let org = self
            .fetch_org(c.org_id)
            .await
            .map_err(|_| StoreError::InvalidReference(format!("org_id {}", c.org_id)))?;
        if c.role == Role::Student && org.kind != OrgKind::Class && org.kind != OrgKind::School {
            return Err(StoreError::Invalid(
                "a student belongs to a class or a school".into(),
            ));
        }
        let row = sqlx::query(&format!(
            "INSERT INTO contacts (org_id, school_id, role, full_name, phone, email, zalo_user_id, facebook_psid, \
             student_code, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
             RETURNING {CONTACT_COLS}"
        ))
        .bind(c.org_id)
        .bind(school_of(&org))
        .bind(c.role.as_str())
        .bind(&c.full_name)
        .bind(&c.addresses.phone)
        .bind(&c.addresses.email)
        .bind(&c.addresses.zalo_user_id)
        .bind(&c.addresses.facebook_psid)
        .bind(&c.student_code)
        .bind(now)
        .written_row(&self.pool)
        .await?;
        contact_from(&row)
    }

    async fn get_contact(&self, id: i64) -> Result<Contact> {
        let row = sqlx::query(&format!(
            "SELECT {CONTACT_COLS} FROM contacts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("contact"))?;
        contact_from(&row)
    }

    async fn relatives(&self, id: i64) -> Result<Vec<Contact>> {
        let rows = sqlx::query(&crate::store::contacts::relatives_sql(CONTACT_COLS))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(contact_from).collect()
    }

    async fn contact_messages(
        &self,
        id: i64,
        limit: i64,
    ) -> Result<Vec<crate::domain::delivery::ContactMessage>> {
        let rows = sqlx::query(crate::store::contacts::CONTACT_MESSAGES)
            .bind(id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(contact_message_from).collect()
    }

    async fn list_contacts(&self, f: &ContactFilter) -> Result<ContactPage> {
        self.do_list_contacts(f).await
    }

    async fn set_opt_out(
        &self,
        id: i64,
        channel: Channel,
        out: bool,
        now: Millis,
    ) -> Result<Contact> {
        // One statement either way: the bit is set or cleared in the row as it is, so two changes
        // at once (two channels) both stay.
        let sql = if out {
            format!(
                "UPDATE contacts SET opt_out = opt_out | $1, updated_at = $2 WHERE id = $3 RETURNING {CONTACT_COLS}"
            )
        } else {
            format!(
                "UPDATE contacts SET opt_out = opt_out & ~$1::bigint, updated_at = $2 WHERE id = $3 RETURNING {CONTACT_COLS}"
            )
        };
        let row = sqlx::query(&sql)
            .bind(channel.bit())
            .bind(now)
            .bind(id)
            .written_opt(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("contact"))?;
        contact_from(&row)
    }

    async fn set_consent(&self, id: i64, source: &str, at: Millis, now: Millis) -> Result<Contact> {
        let row = sqlx::query(&format!(
            "UPDATE contacts SET consent_source = $1, consent_at = $2, updated_at = $3 WHERE id = $4 \
             RETURNING {CONTACT_COLS}"
        ))
        .bind(source)
        .bind(at)
        .bind(now)
        .bind(id)
        .written_opt(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("contact"))?;
        contact_from(&row)
    }

    async fn erase_contact(&self, id: i64, now: Millis) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // The person's row, locked until the end: a second erasure of them waits here and then
        // finds no one (false), and nobody changes their addresses between this read and the end.
        let Some(person) = sqlx::query(
            "SELECT full_name, phone, email, zalo_user_id, facebook_psid, student_code \
             FROM contacts WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(false);
        };
        let name: String = person.try_get("full_name")?;
        // Every form in which a table may hold one of the person's addresses or ids.
        let mut ids: Vec<String> = Vec::new();
        for col in ["phone", "email", "zalo_user_id", "facebook_psid"] {
            if let Some(v) = person.try_get::<Option<String>, _>(col)?
                && !v.trim().is_empty()
            {
                ids.push(v);
            }
        }
        if let Some(p) = ids.iter().find(|v| v.starts_with('+')).cloned() {
            ids.push(providers::wire_phone(&p).to_string());
            ids.push(providers::domestic_phone(&p));
        }
        let code: Option<String> = person
            .try_get::<Option<String>, _>("student_code")?
            .filter(|c| !c.trim().is_empty());
        let known: Vec<&str> = ids.iter().chain(&code).map(String::as_str).collect();
        // No index leads from a person to their deliveries (it would be rewritten at every fan-out
        // insert); an erasure is rare, and a few scans of the deliveries table are acceptable for it.
        // A delivery a dispatcher has claimed meanwhile ('sending') is left to finish, as on SQLite:
        // this statement waits for the claim's row lock and then no longer matches it.
        sqlx::query(
            "UPDATE deliveries SET state = 'cancelled', reason_code = 'cancelled', reason = 'person erased', \
             lease_until = NULL, updated_at = $1 WHERE contact_id = $2 AND state IN ('queued','retrying')",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // Reasons written before addresses were masked in them, or quoting an id in a form the
        // masking did not know.
        let reasons = sqlx::query(
            "SELECT id, reason FROM deliveries WHERE contact_id = $1 AND reason IS NOT NULL",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let (mut masked_ids, mut masked) = (Vec::new(), Vec::new());
        for r in reasons {
            let reason: String = r.try_get("reason")?;
            let m = providers::mask_personal(&reason, &known);
            if m != reason {
                masked_ids.push(r.try_get::<i64, _>("id")?);
                masked.push(m);
            }
        }
        if !masked_ids.is_empty() {
            sqlx::query(
                "UPDATE deliveries SET reason = j.reason FROM unnest($1::bigint[], $2::text[]) AS j(id, reason) \
                 WHERE deliveries.id = j.id",
            )
            .bind(&masked_ids)
            .bind(&masked)
            .execute(&mut *tx)
            .await?;
        }
        // Provider message ids that would lead a late receipt back to the person's deliveries.
        sqlx::query(
            "DELETE FROM receipt_refs WHERE delivery_id IN (SELECT id FROM deliveries WHERE contact_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE deliveries SET contact_id = NULL, vars = '{}' WHERE contact_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // A student's name is in their parents' deliveries too (the children a message names).
        let parents: Vec<i64> =
            sqlx::query_scalar("SELECT parent_id FROM guardian_links WHERE student_id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        for parent in parents {
            let rows = sqlx::query(
                "SELECT id, vars FROM deliveries WHERE contact_id = $1 AND strpos(vars, $2) > 0",
            )
            .bind(parent)
            .bind(&name)
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                let vars: String = r.try_get("vars")?;
                let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&vars) else {
                    continue;
                };
                if let Some(list) = v.get_mut("s").and_then(|s| s.as_array_mut())
                    && let Some(at) = list.iter().position(|n| n.as_str() == Some(name.as_str()))
                {
                    list.remove(at);
                    sqlx::query("UPDATE deliveries SET vars = $1 WHERE id = $2")
                        .bind(v.to_string())
                        .bind(r.try_get::<i64, _>("id")?)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        // Webhook events kept after processing name people by their Zalo id or PSID (and may quote
        // what they wrote): the bodies that mention the person are emptied. A pending one is
        // settled as erased; its digest stays, so a replay of it is still a no-op.
        for v in &ids {
            sqlx::query(
                "UPDATE webhook_events SET body = '{}', processed_at = COALESCE(processed_at, $1), \
                 outcome = COALESCE(outcome, 'erased') WHERE strpos(body, $2) > 0",
            )
            .bind(now)
            .bind(v)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE channel_pauses SET reason = replace(reason, $1, $2) WHERE strpos(reason, $1) > 0",
            )
            .bind(v)
            .bind(providers::mask_address(v))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM guardian_links WHERE parent_id = $1 OR student_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM contacts WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        // SQLite's secure_delete and WAL checkpoint have no equivalent here. The old versions of
        // the rows changed above (dead tuples) stay in the table files until VACUUM reclaims them,
        // and the WAL keeps them until its segments are recycled (longer where WAL is archived, and
        // in base backups). Nothing here vacuums: VACUUM cannot run inside a transaction and would
        // scan whole tables for one person. Operators keep autovacuum on (PostgreSQL's default),
        // which clears these tuples soon after, and apply their backup retention to erasures.
        Ok(n == 1)
    }

    async fn link_guardian(
        &self,
        parent_id: i64,
        student_id: i64,
        relation: Option<&str>,
    ) -> Result<()> {
        let roles = sqlx::query("SELECT id, role FROM contacts WHERE id = ANY($1)")
            .bind(&[parent_id, student_id][..])
            .fetch_all(&self.pool)
            .await?;
        let mut role_of: HashMap<i64, String> = HashMap::new();
        for r in &roles {
            role_of.insert(r.try_get("id")?, r.try_get("role")?);
        }
        match role_of.get(&parent_id).map(String::as_str) {
            None => return Err(StoreError::InvalidReference("parent_id".into())),
            Some("parent") => {}
            Some(_) => return Err(StoreError::Invalid("parent_id: not a parent".into())),
        }
        match role_of.get(&student_id).map(String::as_str) {
            None => return Err(StoreError::InvalidReference("student_id".into())),
            Some("student") => {}
            Some(_) => return Err(StoreError::Invalid("student_id: not a student".into())),
        }
        // Roles never change; a person erased since the check fails the foreign key, which
        // `StoreError::from` reports as an invalid reference, as the check would have.
        sqlx::query(
            "INSERT INTO guardian_links (parent_id, student_id, relation) VALUES ($1, $2, $3) \
             ON CONFLICT (parent_id, student_id) DO UPDATE SET relation = EXCLUDED.relation",
        )
        .bind(parent_id)
        .bind(student_id)
        .bind(relation)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn insert_contacts(&self, rows: &[NewContact], now: Millis) -> Result<Vec<i64>> {
        let mut schools: HashMap<i64, Option<i64>> = HashMap::new();
        for r in rows {
            if let std::collections::hash_map::Entry::Vacant(e) = schools.entry(r.org_id) {
                let org = self
                    .fetch_org(r.org_id)
                    .await
                    .map_err(|_| StoreError::InvalidReference(format!("org_id {}", r.org_id)))?;
                e.insert(school_of(&org));
            }
        }
        let mut ids = Vec::with_capacity(rows.len());
        if rows.is_empty() {
            return Ok(ids);
        }
        let mut tx = self.pool.begin().await?;
        // The ids are drawn first and given to the rows in order, so that they come back in the
        // rows' order (RETURNING promises none). The lock is the one any INSERT takes; taken
        // before drawing, it keeps `seed_synthetic`'s block of ids from being drawn meanwhile.
        sqlx::query("LOCK TABLE contacts IN ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        for chunk in rows.chunks(BULK_ROWS) {
            let mut drawn: Vec<i64> = sqlx::query_scalar(
                "SELECT nextval(pg_get_serial_sequence('contacts', 'id')) FROM generate_series(1, $1::bigint)",
            )
            .bind(chunk.len() as i64)
            .fetch_all(&mut *tx)
            .await?;
            drawn.sort_unstable();
            let mut c = ContactColumns::default();
            for r in chunk {
                c.push(r, schools.get(&r.org_id).copied().flatten());
            }
            sqlx::query(
                "INSERT INTO contacts (id, org_id, school_id, role, full_name, phone, email, zalo_user_id, \
                 facebook_psid, student_code, created_at, updated_at) \
                 SELECT j.*, $11, $11 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], \
                   $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) AS j",
            )
            .bind(&drawn)
            .bind(&c.orgs)
            .bind(&c.schools)
            .bind(&c.roles)
            .bind(&c.names)
            .bind(&c.phones)
            .bind(&c.emails)
            .bind(&c.zalos)
            .bind(&c.psids)
            .bind(&c.codes)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            ids.extend(drawn);
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn link_guardians(&self, pairs: &[(i64, i64)]) -> Result<u64> {
        let mut n = 0;
        let mut tx = self.pool.begin().await?;
        for chunk in pairs.chunks(BULK_ROWS) {
            let (ps, ss): (Vec<i64>, Vec<i64>) = chunk.iter().copied().unzip();
            n += sqlx::query(
                "INSERT INTO guardian_links (parent_id, student_id) \
                 SELECT p.id, s.id FROM unnest($1::bigint[], $2::bigint[]) AS j(parent_id, student_id) \
                 JOIN contacts p ON p.id = j.parent_id AND p.role = 'parent' \
                 JOIN contacts s ON s.id = j.student_id AND s.role = 'student' \
                 ON CONFLICT (parent_id, student_id) DO NOTHING",
            )
            .bind(&ps)
            .bind(&ss)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn import_roster(
        &self,
        school_id: i64,
        pieces: &mut tokio::sync::mpsc::Receiver<Vec<crate::domain::roster::RosterEntry>>,
        now: Millis,
        mode: ImportMode,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<ImportCounts> {
        self.do_import_roster(school_id, pieces, now, mode, progress)
            .await
    }

    async fn import_staff(
        &self,
        org_id: i64,
        entries: &[crate::domain::roster::StaffEntry],
        now: Millis,
        mode: ImportMode,
    ) -> Result<ImportCounts> {
        self.do_import_staff(org_id, entries, now, mode).await
    }

    async fn seed_synthetic(&self, s: &SyntheticAudience, now: Millis) -> Result<()> {
        self.do_seed_synthetic(s, now).await
    }
}

/// `insert_contacts`' rows as one array per column, for `unnest`.
#[derive(Default)]
struct ContactColumns<'a> {
    orgs: Vec<i64>,
    schools: Vec<Option<i64>>,
    roles: Vec<&'static str>,
    names: Vec<&'a str>,
    phones: Vec<Option<&'a str>>,
    emails: Vec<Option<&'a str>>,
    zalos: Vec<Option<&'a str>>,
    psids: Vec<Option<&'a str>>,
    codes: Vec<Option<&'a str>>,
}

impl<'a> ContactColumns<'a> {
    fn push(&mut self, c: &'a NewContact, school: Option<i64>) {
        self.orgs.push(c.org_id);
        self.schools.push(school);
        self.roles.push(c.role.as_str());
        self.names.push(&c.full_name);
        self.phones.push(c.addresses.phone.as_deref());
        self.emails.push(c.addresses.email.as_deref());
        self.zalos.push(c.addresses.zalo_user_id.as_deref());
        self.psids.push(c.addresses.facebook_psid.as_deref());
        self.codes.push(c.student_code.as_deref());
    }
}
