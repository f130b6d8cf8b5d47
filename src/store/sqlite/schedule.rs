//! SQLite side of time: recurring campaigns and the runs of their slots (unique per campaign and
//! slot, so two schedulers or a restart never record a slot twice), calendars and quiet hours
//! inherited down the tree.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{CAMPAIGN_COLS, SETTLE_CAMPAIGN, SqliteStore, Written, campaign_from};
use crate::domain::Millis;
use crate::domain::campaign::Campaign;
use crate::domain::schedule::{Calendar, DateRange};
use crate::store::{Result, RunRow, ScheduleStore, SlotRun, StoreError};

/// The ids on a node's path, root first: `/1/4/9/` -> [1, 4, 9].
fn path_ids(path: &str) -> Vec<i64> {
    path.split('/').filter_map(|p| p.parse().ok()).collect()
}

impl SqliteStore {
    pub(super) async fn do_run_template(&self, run_id: i64) -> Result<Option<i64>> {
        Ok(sqlx::query("SELECT template_id FROM runs WHERE id = ?")
            .bind(run_id)
            .fetch_optional(&self.reader)
            .await?
            .map(|r| r.try_get::<Option<i64>, _>(0))
            .transpose()?
            .flatten())
    }

    pub(super) async fn do_list_runs(&self, campaign_id: i64) -> Result<Vec<RunRow>> {
        let rows = sqlx::query(
            "SELECT id, slot, slot_at, state, reason, template_id, paused, created_at, finished_at FROM runs \
             WHERE campaign_id = ? ORDER BY COALESCE(slot_at, created_at), id",
        )
        .bind(campaign_id)
        .fetch_all(&self.reader)
        .await?;
        let counts = sqlx::query(
            "SELECT run_id, state, count(*) FROM deliveries WHERE campaign_id = ? GROUP BY 1, 2",
        )
        .bind(campaign_id)
        .fetch_all(&self.reader)
        .await?;
        let mut by_run: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
        for c in &counts {
            by_run
                .entry(c.try_get(0)?)
                .or_default()
                .insert(c.try_get(1)?, c.try_get(2)?);
        }
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                Ok(RunRow {
                    id,
                    slot: r.try_get("slot")?,
                    slot_at: r.try_get("slot_at")?,
                    state: r.try_get("state")?,
                    reason: r.try_get("reason")?,
                    template_id: r.try_get("template_id")?,
                    paused: r.try_get("paused")?,
                    created_at: r.try_get("created_at")?,
                    finished_at: r.try_get("finished_at")?,
                    deliveries: by_run.remove(&id).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The nearest node on the path (self first) for which `column` is set.
    async fn nearest_with(
        &self,
        org_id: i64,
        column: &str,
    ) -> Result<Option<(i64, Option<String>)>> {
        let org = self.fetch_org(org_id).await?;
        let ids = path_ids(&org.path);
        let rows = sqlx::query(&format!(
            "SELECT id, has_calendar, quiet_hours FROM orgs WHERE id IN (SELECT value FROM json_each(?)) \
             AND {column}"
        ))
        .bind(serde_json::to_string(&ids).unwrap_or_default())
        .fetch_all(&self.reader)
        .await?;
        let mut found: Vec<(usize, i64, Option<String>)> = Vec::new();
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let depth = ids.iter().position(|x| *x == id).unwrap_or(0);
            found.push((depth, id, r.try_get("quiet_hours")?));
        }
        Ok(found
            .into_iter()
            .max_by_key(|(d, _, _)| *d)
            .map(|(_, id, q)| (id, q)))
    }
}

impl SqliteStore {
    pub(super) async fn do_set_paused(
        &self,
        campaign_id: i64,
        run_id: Option<i64>,
        paused: bool,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let runs = sqlx::query(
            "UPDATE runs SET paused = ?1 WHERE campaign_id = ?2 AND (?3 IS NULL OR id = ?3) \
             AND state IN ('pending','running') AND paused <> ?1",
        )
        .bind(paused)
        .bind(campaign_id)
        .bind(run_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let campaign = if run_id.is_none() {
            sqlx::query(
                "UPDATE campaigns SET paused = ?1, updated_at = ?2 WHERE id = ?3 AND paused <> ?1 \
                 AND state IN ('approved','scheduled','running')",
            )
            .bind(paused)
            .bind(now)
            .bind(campaign_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        } else {
            0
        };
        tx.commit().await?;
        Ok(runs + campaign > 0)
    }

    pub(super) async fn do_cancel_run(
        &self,
        campaign_id: i64,
        run_id: i64,
        now: Millis,
    ) -> Result<Option<u64>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let moved = sqlx::query(
            "UPDATE runs SET state = 'cancelled', finished_at = ?1 WHERE id = ?2 AND campaign_id = ?3 \
             AND state IN ('pending','running')",
        )
        .bind(now)
        .bind(run_id)
        .bind(campaign_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            tx.commit().await?;
            return Ok(None);
        }
        let n = sqlx::query(
            "UPDATE deliveries SET state = 'cancelled', reason_code = 'cancelled', lease_until = NULL, updated_at = ?1 \
             WHERE run_id = ?2 AND state IN ('queued','retrying')",
        )
        .bind(now)
        .bind(run_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // A campaign whose last open run this was waits for its next slot, or is done.
        sqlx::query(SETTLE_CAMPAIGN)
            .bind(now)
            .bind(campaign_id)
            .written_opt(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(n))
    }
}

#[async_trait::async_trait]
impl ScheduleStore for SqliteStore {
    async fn start_recurring(&self, id: i64, now: Millis) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE campaigns SET state = 'scheduled', schedule_cursor = ?1, schedule_ended = 0, updated_at = ?1 \
             WHERE id = ?2 AND state = 'approved' AND schedule IS NOT NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn recurring_campaigns(&self) -> Result<Vec<Campaign>> {
        let rows = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLS} FROM campaigns WHERE state IN ('scheduled','running') \
             AND schedule IS NOT NULL AND schedule_ended = 0 AND paused = 0 ORDER BY id"
        ))
        .fetch_all(&self.writer)
        .await?;
        rows.iter().map(campaign_from).collect()
    }

    async fn create_slot_run(
        &self,
        campaign_id: i64,
        slot: &str,
        slot_at: Millis,
        run: &SlotRun,
        now: Millis,
    ) -> Result<bool> {
        let (state, reason, template) = match run {
            SlotRun::Pending { template_id } => ("pending", None, Some(*template_id)),
            SlotRun::Skipped { reason } => ("skipped", Some(reason.as_str()), None),
        };
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let n = sqlx::query(
            "INSERT INTO runs (campaign_id, slot, slot_at, state, reason, template_id, created_at, finished_at, paused) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, CASE WHEN ?4 = 'skipped' THEN ?7 END, \
                     COALESCE((SELECT paused FROM campaigns WHERE id = ?1), 0)) ON CONFLICT DO NOTHING",
        )
        .bind(campaign_id)
        .bind(slot)
        .bind(slot_at)
        .bind(state)
        .bind(reason)
        .bind(template)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 && state == "pending" {
            sqlx::query(
                "UPDATE campaigns SET state = 'running', updated_at = ? WHERE id = ? AND state = 'scheduled'",
            )
            .bind(now)
            .bind(campaign_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn runs_taken(&self, campaign_id: i64) -> Result<i64> {
        Ok(
            sqlx::query("SELECT count(*) FROM runs WHERE campaign_id = ? AND state <> 'skipped'")
                .bind(campaign_id)
                .fetch_one(&self.writer)
                .await?
                .try_get(0)?,
        )
    }

    async fn advance_cursor(&self, campaign_id: i64, slot: Millis) -> Result<()> {
        sqlx::query(
            "UPDATE campaigns SET schedule_cursor = max(COALESCE(schedule_cursor, 0), ?) WHERE id = ?",
        )
        .bind(slot)
        .bind(campaign_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn end_schedule(&self, campaign_id: i64, now: Millis) -> Result<()> {
        sqlx::query(
            "UPDATE campaigns SET schedule_ended = 1, updated_at = ?1, \
             state = CASE WHEN state = 'scheduled' THEN 'done' ELSE state END WHERE id = ?2",
        )
        .bind(now)
        .bind(campaign_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn set_calendar(&self, org_id: i64, c: Option<&Calendar>) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let n = sqlx::query("UPDATE orgs SET has_calendar = ? WHERE id = ?")
            .bind(c.is_some())
            .bind(org_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound("org"));
        }
        sqlx::query("DELETE FROM calendars WHERE org_id = ?")
            .bind(org_id)
            .execute(&mut *tx)
            .await?;
        if let Some(c) = c {
            let entries = c
                .terms
                .iter()
                .map(|r| ("term", r))
                .chain(c.holidays.iter().map(|r| ("holiday", r)));
            for (kind, r) in entries {
                sqlx::query(
                    "INSERT INTO calendars (org_id, kind, start_date, end_date, name) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(org_id)
                .bind(kind)
                .bind(r.start.to_string())
                .bind(r.end.to_string())
                .bind(&r.name)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn effective_calendar(&self, org_id: i64) -> Result<(Option<i64>, Calendar)> {
        let Some((from, _)) = self.nearest_with(org_id, "has_calendar = 1").await? else {
            return Ok((None, Calendar::default()));
        };
        let rows = sqlx::query(
            "SELECT kind, start_date, end_date, name FROM calendars WHERE org_id = ? ORDER BY start_date",
        )
        .bind(from)
        .fetch_all(&self.reader)
        .await?;
        let mut cal = Calendar::default();
        for r in &rows {
            let date = |col: &str| -> Result<chrono::NaiveDate> {
                let s: String = r.try_get(col)?;
                s.parse()
                    .map_err(|_| StoreError::Corrupt(format!("calendar date {s:?}")))
            };
            let range = DateRange {
                start: date("start_date")?,
                end: date("end_date")?,
                name: r.try_get("name")?,
            };
            let kind: String = r.try_get("kind")?;
            if kind == "term" {
                cal.terms.push(range);
            } else {
                cal.holidays.push(range);
            }
        }
        Ok((Some(from), cal))
    }

    async fn set_quiet_hours(&self, org_id: i64, q: Option<&str>) -> Result<()> {
        let n = sqlx::query("UPDATE orgs SET quiet_hours = ? WHERE id = ?")
            .bind(q)
            .bind(org_id)
            .execute(&self.writer)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound("org"));
        }
        Ok(())
    }

    async fn effective_quiet_hours(&self, org_id: i64) -> Result<Option<String>> {
        Ok(self
            .nearest_with(org_id, "quiet_hours IS NOT NULL")
            .await?
            .and_then(|(_, q)| q))
    }
}
