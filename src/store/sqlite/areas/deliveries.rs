//! SQLite side of runs, their fan-out into deliveries, the claim and its leases, outcomes, progress and per-campaign channel pauses.

use super::super::*;

#[async_trait::async_trait]
impl DeliveryStore for SqliteStore {
    async fn halted_runs(&self, run_ids: &[i64]) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT id FROM runs WHERE id IN (SELECT value FROM json_each(?)) \
             AND (paused = 1 OR state NOT IN ('pending','running'))",
        )
        .bind(json_ids(run_ids))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn audience(
        &self,
        c: &Campaign,
        f: &mut (dyn FnMut(AudiencePerson) + Send),
    ) -> Result<()> {
        use futures::TryStreamExt;
        let root = self.fetch_org(c.audience.org_id).await?;
        let classes = json_ids(&c.audience.class_ids);
        // A large subtree is read in guardian-link order (no sort), as the fan-out does.
        let scan = c.audience.roles.contains(&Role::Parent) && {
            let students: i64 = sqlx::query(fanout::STUDENTS_CAPPED)
                .bind(&root.path)
                .bind(&classes)
                .bind(SCAN_PLAN_FROM_STUDENTS)
                .fetch_one(&self.reader)
                .await?
                .try_get(0)?;
            students >= SCAN_PLAN_FROM_STUDENTS
        };
        for (sql, role) in fanout::preview_queries(&c.audience.roles, scan) {
            let q = sqlx::query(&sql).bind(&root.path).bind(&classes);
            let q = match role {
                Some(r) => q.bind(r),
                None if scan => q.bind(0i64).bind(i64::MAX),
                None => q,
            };
            let mut rows = q.fetch(&self.reader);
            while let Some(r) = rows.try_next().await? {
                let list = |col: &str| -> Result<Vec<String>> {
                    let j: Option<String> = r.try_get(col)?;
                    Ok(j.and_then(|j| serde_json::from_str(&j).ok())
                        .unwrap_or_default())
                };
                f(AudiencePerson {
                    addresses: addresses_from(&r)?,
                    opt_out: OptOuts(r.try_get("opt_out")?),
                    name: r.try_get("name")?,
                    students: list("students")?,
                    classes: list("classes")?,
                    org_id: r.try_get("attr")?,
                });
            }
        }
        Ok(())
    }

    async fn set_paused(
        &self,
        campaign_id: i64,
        run_id: Option<i64>,
        paused: bool,
        now: Millis,
    ) -> Result<bool> {
        self.do_set_paused(campaign_id, run_id, paused, now).await
    }

    async fn cancel_run(&self, campaign_id: i64, run_id: i64, now: Millis) -> Result<Option<u64>> {
        self.do_cancel_run(campaign_id, run_id, now).await
    }

    async fn run_template(&self, run_id: i64) -> Result<Option<i64>> {
        self.do_run_template(run_id).await
    }

    async fn list_runs(&self, campaign_id: i64) -> Result<Vec<RunRow>> {
        self.do_list_runs(campaign_id).await
    }

    async fn create_run(&self, campaign_id: i64, slot: &str, now: Millis) -> Result<i64> {
        // A run of a paused campaign starts paused.
        sqlx::query(
            "INSERT INTO runs (campaign_id, slot, state, created_at, paused) \
             VALUES (?1, ?2, 'pending', ?3, COALESCE((SELECT paused FROM campaigns WHERE id = ?1), 0)) ON CONFLICT DO NOTHING",
        )
            .bind(campaign_id)
            .bind(slot)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(
            sqlx::query("SELECT id FROM runs WHERE campaign_id = ? AND slot = ?")
                .bind(campaign_id)
                .bind(slot)
                .fetch_one(&self.writer)
                .await?
                .try_get(0)?,
        )
    }

    async fn pending_runs(&self) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT id, campaign_id FROM runs WHERE state = 'pending' AND paused = 0 ORDER BY id",
        )
        .fetch_all(&self.writer)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn mark_run_fanned_out(&self, run_id: i64) -> Result<()> {
        sqlx::query("UPDATE runs SET state = 'running' WHERE id = ? AND state = 'pending'")
            .bind(run_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn fan_out_step(
        &self,
        run_id: i64,
        c: &Campaign,
        step: FanOutStep,
        now: Millis,
    ) -> Result<(u64, FanOutStep)> {
        let a = &c.audience;
        let root = self.fetch_org(a.org_id).await?;
        let classes = serde_json::to_string(&a.class_ids).unwrap_or_else(|_| "[]".into());
        let insert = |people: &str| fanout::insert(run_id, c.id, &c.channels, people);
        // Every statement binds ?1 to ?5 (path, classes, two per-query values, time), so one shape fits all.
        let run = async |sql: String, p3: Option<i64>, role: Option<&str>, p4: Option<i64>| {
            let q = sqlx::query(&sql).bind(&root.path).bind(&classes);
            let q = match role {
                Some(role) => q.bind(role),
                None => q.bind(p3),
            };
            let done = q.bind(p4).bind(now).execute(&self.writer).await?;
            Ok::<u64, StoreError>(done.rows_affected())
        };
        Ok(match step {
            FanOutStep::Start if a.roles.contains(&Role::Parent) => {
                let students: i64 = sqlx::query(fanout::STUDENTS_CAPPED)
                    .bind(&root.path)
                    .bind(&classes)
                    .bind(SCAN_PLAN_FROM_STUDENTS)
                    .fetch_one(&self.reader)
                    .await?
                    .try_get(0)?;
                if students >= SCAN_PLAN_FROM_STUDENTS {
                    (0, FanOutStep::ParentsAfter(0))
                } else {
                    let n = run(insert(&fanout::parents_sorted()), None, None, None).await?;
                    (n, FanOutStep::Direct(0))
                }
            }
            FanOutStep::Start => (0, FanOutStep::Direct(0)),
            FanOutStep::ParentsAfter(after) => {
                let end: Option<i64> = sqlx::query(fanout::PAGE_END)
                    .bind(after)
                    .bind(SCAN_PAGE_LINKS - 1)
                    .fetch_optional(&self.writer)
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()?;
                // A bound on both sides, so the walk stops at the page's end.
                let upto = Some(end.unwrap_or(i64::MAX));
                let n = run(insert(&fanout::parents_page()), Some(after), None, upto).await?;
                (
                    n,
                    end.map_or(FanOutStep::Direct(0), FanOutStep::ParentsAfter),
                )
            }
            FanOutStep::Direct(i) => match direct_roles(a).get(i) {
                Some(role) => {
                    // Parents come after the pass through their children, which this one relies on.
                    let n = run(
                        insert(&fanout::direct_unreached()),
                        None,
                        Some(role),
                        Some(run_id),
                    )
                    .await?;
                    (n, FanOutStep::Direct(i + 1))
                }
                None => (0, FanOutStep::Done),
            },
            FanOutStep::Done => (0, FanOutStep::Done),
        })
    }

    async fn reopen_run(&self, run_id: i64, now: Millis) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let reopened = sqlx::query("UPDATE runs SET state = 'running', finished_at = NULL WHERE id = ? AND state = 'done' RETURNING campaign_id")
            .bind(run_id)
            .written_opt(&mut *tx)
            .await?;
        if let Some(row) = reopened {
            sqlx::query("UPDATE campaigns SET state = 'running', updated_at = ? WHERE id = ? AND state = 'done'")
                .bind(now)
                .bind(row.try_get::<i64, _>(0)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn finish_runs(&self, now: Millis) -> Result<Vec<i64>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // Deliveries of a cancelled run whose sender died mid-send end cancelled, not stuck in sending.
        sqlx::query(concat!(
            "UPDATE deliveries AS d SET state = 'cancelled', reason_code = 'cancelled', lease_until = NULL, updated_at = ?1 \
             WHERE state = 'sending' AND lease_until <= ?1 AND run_id IN (SELECT id FROM runs WHERE state = 'cancelled') AND ",
            holder_gone!("?1", "?2")
        ))
        .bind(now)
        .bind(&self.owner)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "UPDATE runs SET state = 'done', finished_at = ?1 WHERE state = 'running' AND NOT EXISTS \
             (SELECT 1 FROM deliveries d INDEXED BY deliveries_due WHERE d.run_id = runs.id AND d.state IN ('queued','retrying')) \
             AND NOT EXISTS (SELECT 1 FROM deliveries d INDEXED BY deliveries_leased WHERE d.state = 'sending' AND d.run_id = runs.id) \
             RETURNING campaign_id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut done = Vec::new();
        for r in rows {
            let cid: i64 = r.try_get(0)?;
            // A recurring campaign waits for its next slot; any other is done.
            let state: Option<String> = sqlx::query(SETTLE_CAMPAIGN)
                .bind(now)
                .bind(cid)
                .written_opt(&mut *tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            if state.as_deref() == Some("done") {
                done.push(cid);
            }
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn claim(
        &self,
        limit: i64,
        now: Millis,
        lease_until: Millis,
        skip: &[Channel],
    ) -> Result<Vec<Claimed>> {
        let skip: Vec<&str> = skip.iter().map(|c| c.as_str()).collect();
        let skip = serde_json::to_string(&skip).unwrap_or_else(|_| "[]".into());
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut claimed: Vec<Claimed> = Vec::new();
        for sql in CLAIM_STATEMENTS.iter() {
            let want = limit - claimed.len() as i64;
            if want <= 0 {
                break;
            }
            let rows = sqlx::query(sql)
                .bind(lease_until)
                .bind(now)
                .bind(&skip)
                .bind(want)
                .bind(&self.owner)
                .fetch_all(&mut *tx)
                .await?;
            for r in &rows {
                claimed.push(claimed_from(r)?);
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn release(&self, ids: &[i64], at: Millis) -> Result<()> {
        sqlx::query(
            "UPDATE deliveries SET \
               state = CASE WHEN run_id IN (SELECT id FROM runs WHERE state = 'cancelled') THEN 'cancelled' \
                            WHEN attempts = 0 THEN 'queued' ELSE 'retrying' END, \
               reason_code = CASE WHEN run_id IN (SELECT id FROM runs WHERE state = 'cancelled') THEN 'cancelled' \
                                  ELSE reason_code END, \
               lease_until = NULL, next_attempt_at = ?1 WHERE state = 'sending' AND id IN (SELECT value FROM json_each(?2))",
        )
        .bind(at)
        .bind(json_ids(ids))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn record(&self, updates: &[DeliveryUpdate], now: Millis) -> Result<u64> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut n = 0;
        // Up to 128 outcomes per statement: each statement is a round trip to SQLite's worker thread,
        // which costs more than the update itself. A statement's row count is rounded up to a multiple
        // of 8 with rows that match nothing (id NULL), so only 16 texts ever exist and each is parsed
        // and planned once; a text per batch length was parsed again for most batches (7 % of all
        // instructions of a run). 12 parameters a row.
        for chunk in updates.chunks(128) {
            let padded = chunk.len().div_ceil(8) * 8;
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "WITH v(id, expected, state, channel, channel_index, attempts, next_attempt_at, provider_message_id, \
                 segments, reason_code, reason, sent_at) AS (",
            );
            qb.push_values(
                chunk
                    .iter()
                    .map(Some)
                    .chain(std::iter::repeat_n(None, padded - chunk.len())),
                |mut b, u: Option<&DeliveryUpdate>| {
                    b.push_bind(u.map(|u| u.id))
                        .push_bind(u.map(|u| u.expected.as_str()))
                        .push_bind(u.map(|u| u.state.as_str()))
                        .push_bind(u.and_then(|u| u.channel.map(|c| c.as_str())))
                        .push_bind(u.map(|u| u.channel_index))
                        .push_bind(u.map(|u| u.attempts))
                        .push_bind(u.map(|u| u.next_attempt_at))
                        .push_bind(u.and_then(|u| u.provider_message_id.as_deref()))
                        .push_bind(u.and_then(|u| u.segments))
                        .push_bind(u.and_then(|u| u.reason_code.map(|r| r.as_str())))
                        .push_bind(u.and_then(|u| u.reason.as_deref()))
                        .push_bind(u.and_then(|u| u.sent_at));
                },
            );
            qb.push(
                ") UPDATE deliveries SET state = v.state, channel = v.channel, channel_index = v.channel_index, \
                 attempts = v.attempts, next_attempt_at = v.next_attempt_at, lease_until = NULL, \
                 provider_message_id = v.provider_message_id, segments = v.segments, reason_code = v.reason_code, \
                 reason = v.reason, sent_at = CASE WHEN v.state IN ('sent','delivered') THEN COALESCE(v.sent_at, ",
            );
            qb.push_bind(now);
            qb.push(") ELSE deliveries.sent_at END, updated_at = ");
            qb.push_bind(now);
            qb.push(" FROM v WHERE deliveries.id = v.id AND deliveries.state = v.expected");
            n += qb
                .build()
                .persistent(true)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        // Receipts that will name a message only by the provider's id need a way back to the delivery.
        let refs: Vec<(&str, &str, i64)> = updates
            .iter()
            .filter(|u| u.receipt_by_provider_id)
            .filter_map(|u| Some((u.channel?.as_str(), u.provider_message_id.as_deref()?, u.id)))
            .collect();
        for chunk in refs.chunks(300) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT OR REPLACE INTO receipt_refs (channel, ref, delivery_id) ",
            );
            qb.push_values(chunk, |mut b, (c, r, id)| {
                b.push_bind(*c).push_bind(*r).push_bind(*id);
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    fn instance_id(&self) -> &str {
        &self.owner
    }

    async fn heartbeat(&self, now: Millis, alive_until: Millis) -> Result<()> {
        sqlx::query(
            "INSERT INTO instances (id, started_at, alive_until) VALUES (?1, ?2, ?3) \
             ON CONFLICT (id) DO UPDATE SET alive_until = excluded.alive_until",
        )
        .bind(&self.owner)
        .bind(now)
        .bind(alive_until)
        .execute(&self.writer)
        .await?;
        // Rows of processes gone for a day are of no use to anyone.
        sqlx::query("DELETE FROM instances WHERE alive_until < ?")
            .bind(now - 86_400_000)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn retire(&self) -> Result<()> {
        sqlx::query("DELETE FROM instances WHERE id = ?")
            .bind(&self.owner)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn next_due_at(&self) -> Result<Option<Millis>> {
        // Per claimable run: the due index leads with the run, so a global minimum would read all of it.
        let due: Option<i64> = sqlx::query(&format!(
            "SELECT min(due) FROM (SELECT (SELECT min(d.next_attempt_at) FROM deliveries d INDEXED BY deliveries_due \
               WHERE d.run_id = r.id AND d.state IN ('queued','retrying')) AS due \
               FROM runs r WHERE {CLAIMABLE_RUN} \
             UNION ALL SELECT min(max(d.lease_until, COALESCE((SELECT i.alive_until FROM instances i \
               WHERE i.id = d.lease_owner), 0))) FROM deliveries d INDEXED BY deliveries_leased \
               WHERE d.state = 'sending' AND COALESCE(d.lease_owner, '') <> ?1)"
        ))
        .bind(&self.owner)
        .fetch_one(&self.reader)
        .await?
        .try_get(0)?;
        Ok(due)
    }

    async fn progress(&self, campaign_id: i64) -> Result<Progress> {
        // One connection for the three reads: a consistent picture, and one pool checkout.
        let mut conn = self.reader.acquire().await?;
        let rows = sqlx::query(
            "SELECT COALESCE(channel, 'none') AS channel, state, reason_code, count(*) AS n FROM deliveries \
             WHERE campaign_id = ? GROUP BY 1, 2, 3",
        )
        .bind(campaign_id)
        .fetch_all(&mut *conn)
        .await?;
        let mut p = Progress::default();
        for r in rows {
            let channel: String = r.try_get("channel")?;
            let state: String = r.try_get("state")?;
            let reason: Option<String> = r.try_get("reason_code")?;
            let n: i64 = r.try_get("n")?;
            p.total += n;
            if state == "failed" {
                let code = reason.clone().unwrap_or_else(|| "unknown".into());
                *p.failed_by_channel
                    .entry(channel.clone())
                    .or_default()
                    .entry(code)
                    .or_default() += n;
            }
            *p.by_state.entry(state.clone()).or_default() += n;
            *p.by_channel
                .entry(channel)
                .or_default()
                .entry(state)
                .or_default() += n;
            if let Some(reason) = reason {
                *p.by_reason.entry(reason).or_default() += n;
            }
        }
        p.fell_back = Self::fell_back(&mut conn, campaign_id).await?;
        p.paused = Self::channel_pauses(&mut conn, campaign_id).await?;
        Ok(p)
    }

    async fn list_deliveries(
        &self,
        campaign_id: i64,
        f: &DeliveryFilter,
    ) -> Result<Vec<DeliveryRow>> {
        let rows = sqlx::query(
            "SELECT d.id, d.contact_id, c.full_name, c.role, d.org_id, d.channel, d.state, d.attempts, d.segments, \
                    d.reason_code, d.reason, d.updated_at, c.phone, c.email, c.zalo_user_id, c.facebook_psid \
             FROM deliveries d LEFT JOIN contacts c ON c.id = d.contact_id \
             WHERE d.campaign_id = ?1 AND (?2 IS NULL OR d.state = ?2) AND (?3 IS NULL OR d.channel = ?3) AND d.id > ?4 \
             ORDER BY d.id LIMIT ?5",
        )
        .bind(campaign_id)
        .bind(f.state.map(|s| s.as_str()))
        .bind(f.channel.map(|c| c.as_str()))
        .bind(f.after_id.unwrap_or(0))
        .bind(f.limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let channel = channel_col(r, "channel")?;
                let addresses = addresses_from(r)?;
                Ok(DeliveryRow {
                    id: r.try_get("id")?,
                    contact_id: r.try_get("contact_id")?,
                    full_name: r.try_get("full_name")?,
                    role: r.try_get("role")?,
                    org_id: r.try_get("org_id")?,
                    channel: channel.map(|c| c.as_str().to_string()),
                    to: channel.and_then(|c| addresses.for_channel(c).map(providers::mask_address)),
                    state: r.try_get("state")?,
                    attempts: r.try_get("attempts")?,
                    segments: r.try_get("segments")?,
                    reason_code: r.try_get("reason_code")?,
                    reason: r.try_get("reason")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn summary_by_org(&self, campaign_ids: &[i64]) -> Result<Vec<SummaryRow>> {
        let rows = sqlx::query(
            "SELECT d.org_id, o.name, d.channel, d.state, d.reason_code, count(*) AS n \
             FROM deliveries d JOIN orgs o ON o.id = d.org_id \
             WHERE d.campaign_id IN (SELECT value FROM json_each(?)) GROUP BY 1, 2, 3, 4, 5 ORDER BY o.path",
        )
        .bind(json_ids(campaign_ids))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SummaryRow {
                    org_id: r.try_get("org_id")?,
                    org_name: r.try_get("name")?,
                    channel: r.try_get("channel")?,
                    state: r.try_get("state")?,
                    reason_code: r.try_get("reason_code")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    async fn unsettled_count(&self, campaign_ids: &[i64]) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT count(*) FROM deliveries WHERE campaign_id IN (SELECT value FROM json_each(?)) \
             AND state IN ('queued','sending','retrying')",
        )
        .bind(json_ids(campaign_ids))
        .fetch_one(&self.reader)
        .await?
        .try_get(0)?)
    }

    async fn pause_channel(
        &self,
        campaign_id: i64,
        channel: Channel,
        reason: &str,
        now: Millis,
    ) -> Result<bool> {
        self.do_pause_channel(campaign_id, channel, reason, now)
            .await
    }

    async fn resume_channel(&self, campaign_id: i64, channel: Channel) -> Result<bool> {
        self.do_resume_channel(campaign_id, channel).await
    }

    async fn skip_channel(&self, campaign_id: i64, channel: Channel) -> Result<bool> {
        self.do_skip_channel(campaign_id, channel).await
    }
}
