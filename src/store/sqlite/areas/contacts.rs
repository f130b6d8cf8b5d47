//! SQLite side of contacts and imports: people, guardianship links, opt-outs and consent, erasure, roster and staff imports.

use super::super::*;

#[async_trait::async_trait]
impl ContactStore for SqliteStore {
    async fn create_contact(&self, c: &NewContact, now: Millis) -> Result<Contact> {
        let org = self
            .fetch_org(c.org_id)
            .await
            .map_err(|_| StoreError::InvalidReference(format!("org_id {}", c.org_id)))?;
        let school_id = match org.kind {
            OrgKind::School => Some(org.id),
            OrgKind::Class => org.parent_id,
            _ => None,
        };
        if c.role == Role::Student && org.kind != OrgKind::Class && org.kind != OrgKind::School {
            return Err(StoreError::Invalid(
                "a student belongs to a class or a school".into(),
            ));
        }
        let row = sqlx::query(&format!(
            "INSERT INTO contacts (org_id, school_id, role, full_name, phone, email, zalo_user_id, facebook_psid, \
             student_code, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {CONTACT_COLS}"
        ))
        .bind(c.org_id)
        .bind(school_id)
        .bind(c.role.as_str())
        .bind(&c.full_name)
        .bind(&c.addresses.phone)
        .bind(&c.addresses.email)
        .bind(&c.addresses.zalo_user_id)
        .bind(&c.addresses.facebook_psid)
        .bind(&c.student_code)
        .bind(now)
        .bind(now)
        .written_row(&self.writer)
        .await?;
        contact_from(&row)
    }

    async fn relatives(&self, id: i64) -> Result<Vec<Contact>> {
        let rows = sqlx::query(&crate::store::contacts::relatives_sql(CONTACT_COLS))
            .bind(id)
            .fetch_all(&self.reader)
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
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(contact_message_from).collect()
    }

    async fn list_contacts(&self, f: &ContactFilter) -> Result<ContactPage> {
        self.do_list_contacts(f).await
    }

    async fn get_contact(&self, id: i64) -> Result<Contact> {
        let row = sqlx::query(&format!("SELECT {CONTACT_COLS} FROM contacts WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound("contact"))?;
        contact_from(&row)
    }

    async fn set_opt_out(
        &self,
        id: i64,
        channel: Channel,
        out: bool,
        now: Millis,
    ) -> Result<Contact> {
        let sql = if out {
            format!(
                "UPDATE contacts SET opt_out = opt_out | ?1, updated_at = ?2 WHERE id = ?3 RETURNING {CONTACT_COLS}"
            )
        } else {
            format!(
                "UPDATE contacts SET opt_out = opt_out & ~?1, updated_at = ?2 WHERE id = ?3 RETURNING {CONTACT_COLS}"
            )
        };
        let row = sqlx::query(&sql)
            .bind(channel.bit())
            .bind(now)
            .bind(id)
            .written_opt(&self.writer)
            .await?
            .ok_or(StoreError::NotFound("contact"))?;
        contact_from(&row)
    }

    async fn set_consent(&self, id: i64, source: &str, at: Millis, now: Millis) -> Result<Contact> {
        let row = sqlx::query(&format!(
            "UPDATE contacts SET consent_source = ?1, consent_at = ?2, updated_at = ?3 WHERE id = ?4 RETURNING {CONTACT_COLS}"
        ))
        .bind(source)
        .bind(at)
        .bind(now)
        .bind(id)
        .written_opt(&self.writer)
        .await?
        .ok_or(StoreError::NotFound("contact"))?;
        contact_from(&row)
    }

    async fn erase_contact(&self, id: i64, now: Millis) -> Result<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let Some(person) = sqlx::query(
            "SELECT full_name, phone, email, zalo_user_id, facebook_psid, student_code \
             FROM contacts WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(false);
        };
        let name: String = person.try_get("full_name")?;
        // Every form in which a table may hold one of the person's addresses or ids.
        let mut ids: Vec<String> = ["phone", "email", "zalo_user_id", "facebook_psid"]
            .into_iter()
            .filter_map(|c| person.try_get::<Option<String>, _>(c).ok().flatten())
            .filter(|v| !v.trim().is_empty())
            .collect();
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
        sqlx::query(
            "UPDATE deliveries SET state = 'cancelled', reason_code = 'cancelled', reason = 'person erased', \
             lease_until = NULL, updated_at = ?1 WHERE contact_id = ?2 AND state IN ('queued','retrying')",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // Reasons written before addresses were masked in them, or quoting an id in a form the
        // masking did not know.
        let reasons = sqlx::query(
            "SELECT id, reason FROM deliveries WHERE contact_id = ? AND reason IS NOT NULL",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for r in reasons {
            let reason: String = r.try_get("reason")?;
            let masked = providers::mask_personal(&reason, &known);
            if masked != reason {
                sqlx::query("UPDATE deliveries SET reason = ? WHERE id = ?")
                    .bind(masked)
                    .bind(r.try_get::<i64, _>("id")?)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        // Provider message ids that would lead a late receipt back to the person's deliveries.
        sqlx::query(
            "DELETE FROM receipt_refs WHERE delivery_id IN (SELECT id FROM deliveries WHERE contact_id = ?)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE deliveries SET contact_id = NULL, vars = '{}' WHERE contact_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // A student's name is in their parents' deliveries too (the children a message names).
        let parents: Vec<i64> =
            sqlx::query_scalar("SELECT parent_id FROM guardian_links WHERE student_id = ?")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        for parent in parents {
            let rows = sqlx::query(
                "SELECT id, vars FROM deliveries WHERE contact_id = ? AND instr(vars, ?) > 0",
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
                    sqlx::query("UPDATE deliveries SET vars = ? WHERE id = ?")
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
                "UPDATE webhook_events SET body = '{}', processed_at = COALESCE(processed_at, ?1), \
                 outcome = COALESCE(outcome, 'erased') WHERE instr(body, ?2) > 0",
            )
            .bind(now)
            .bind(v)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE channel_pauses SET reason = replace(reason, ?1, ?2) WHERE instr(reason, ?1) > 0")
                .bind(v)
                .bind(providers::mask_address(v))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM guardian_links WHERE parent_id = ?1 OR student_id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM contacts WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        // secure_delete zeroed the deleted content in the new pages, but the WAL still holds the
        // pages as they were before: copied into the database and the WAL emptied, nothing of the
        // person is left in either file.
        self.checkpoint_truncate().await;
        Ok(n == 1)
    }

    async fn link_guardian(
        &self,
        parent_id: i64,
        student_id: i64,
        relation: Option<&str>,
    ) -> Result<()> {
        let roles = sqlx::query("SELECT id, role FROM contacts WHERE id IN (?, ?)")
            .bind(parent_id)
            .bind(student_id)
            .fetch_all(&self.writer)
            .await?;
        let role_of = |id: i64| {
            roles
                .iter()
                .find(|r| r.get::<i64, _>("id") == id)
                .map(|r| r.get::<String, _>("role"))
        };
        match role_of(parent_id).as_deref() {
            None => {
                return Err(StoreError::InvalidReference("parent_id".into()));
            }
            Some("parent") => {}
            Some(_) => return Err(StoreError::Invalid("parent_id: not a parent".into())),
        }
        match role_of(student_id).as_deref() {
            None => {
                return Err(StoreError::InvalidReference("student_id".into()));
            }
            Some("student") => {}
            Some(_) => return Err(StoreError::Invalid("student_id: not a student".into())),
        }
        sqlx::query("INSERT INTO guardian_links (parent_id, student_id, relation) VALUES (?, ?, ?) \
                     ON CONFLICT (parent_id, student_id) DO UPDATE SET relation = excluded.relation")
            .bind(parent_id)
            .bind(student_id)
            .bind(relation)
            .execute(&self.writer)
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
                e.insert(match org.kind {
                    OrgKind::School => Some(org.id),
                    OrgKind::Class => org.parent_id,
                    _ => None,
                });
            }
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // 11 parameters a row; 1000 rows stay below SQLite's 32766-parameter limit.
        for chunk in rows.chunks(1000) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO contacts (org_id, school_id, role, full_name, phone, email, zalo_user_id, \
                 facebook_psid, student_code, created_at, updated_at) ",
            );
            qb.push_values(chunk, |mut b, c| {
                b.push_bind(c.org_id)
                    .push_bind(schools.get(&c.org_id).copied().flatten())
                    .push_bind(c.role.as_str())
                    .push_bind(&c.full_name)
                    .push_bind(&c.addresses.phone)
                    .push_bind(&c.addresses.email)
                    .push_bind(&c.addresses.zalo_user_id)
                    .push_bind(&c.addresses.facebook_psid)
                    .push_bind(&c.student_code)
                    .push_bind(now)
                    .push_bind(now);
            });
            qb.push(" RETURNING id");
            for row in qb.build().fetch_all(&mut *tx).await? {
                ids.push(row.try_get(0)?);
            }
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn link_guardians(&self, pairs: &[(i64, i64)]) -> Result<u64> {
        let mut n = 0;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for chunk in pairs.chunks(5000) {
            let json =
                serde_json::to_string(chunk).map_err(|e| StoreError::Invalid(e.to_string()))?;
            n += sqlx::query(
                "INSERT OR IGNORE INTO guardian_links (parent_id, student_id) \
                 SELECT p.id, s.id FROM json_each(?1) j \
                 JOIN contacts p ON p.id = json_extract(j.value, '$[0]') AND p.role = 'parent' \
                 JOIN contacts s ON s.id = json_extract(j.value, '$[1]') AND s.role = 'student'",
            )
            .bind(json)
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
        mode: crate::store::ImportMode,
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
        mode: crate::store::ImportMode,
    ) -> Result<ImportCounts> {
        self.do_import_staff(org_id, entries, now, mode).await
    }

    async fn seed_synthetic(&self, s: &SyntheticAudience, now: Millis) -> Result<()> {
        self.do_seed_synthetic(s, now).await
    }
}
