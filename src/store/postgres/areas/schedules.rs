//! PostgreSQL side of time: recurring campaigns and the runs of their slots (unique per campaign and
//! slot, so two instances or a restart never record a slot twice), calendars and quiet hours
//! inherited down the tree.

use super::super::*;
use crate::domain::schedule::DateRange;

/// The ids on the path of `o` (an `orgs` alias), root first: `/1/4/9/` -> {1,4,9}.
macro_rules! path_ids {
    ($o:literal) => {
        concat!(
            "string_to_array(trim(both '/' from ",
            $o,
            ".path), '/')::BIGINT[]"
        )
    };
}

/// The nearest node on the path of `o` (self first) for which `cond` holds on `a`: deeper nodes
/// have longer paths, an ancestor's path being a prefix of its descendants'.
macro_rules! nearest {
    ($cols:literal, $cond:literal) => {
        concat!(
            "SELECT ",
            $cols,
            " FROM orgs a WHERE a.id = ANY(",
            path_ids!("o"),
            ") AND ",
            $cond,
            " ORDER BY length(a.path) DESC LIMIT 1"
        )
    };
}

#[async_trait::async_trait]
impl ScheduleStore for PgStore {
    async fn start_recurring(&self, id: i64, now: Millis) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE campaigns SET state = 'scheduled', schedule_cursor = $1, schedule_ended = FALSE, updated_at = $1 \
             WHERE id = $2 AND state = 'approved' AND schedule IS NOT NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn recurring_campaigns(&self) -> Result<Vec<Campaign>> {
        let rows = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLS} FROM campaigns WHERE state IN ('scheduled','running') \
             AND schedule IS NOT NULL AND NOT schedule_ended AND NOT paused ORDER BY id"
        ))
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        // SQLite serialises this transaction with every other writer; here the campaign's row is
        // locked first (SELECT ... FOR UPDATE) and held to the commit, so what is read and written
        // about the campaign cannot interleave with another instance's move of it:
        // - two instances recording the same slot: the second waits here, then its INSERT finds the
        //   (campaign_id, slot) key taken (ON CONFLICT DO NOTHING) and it changes nothing;
        // - the run's `paused` is read under the lock, so a pause committed before is copied, and
        //   one made after finds the run (if it locks the campaign row before its runs);
        // - the scheduled -> running move below and a concurrent settle (running -> scheduled when
        //   no run is open) or `end_schedule` / `cancel_campaign` take the same row lock, so they
        //   come wholly before or wholly after this run is recorded.
        let paused: Option<bool> =
            sqlx::query_scalar("SELECT paused FROM campaigns WHERE id = $1 FOR UPDATE")
                .bind(campaign_id)
                .fetch_optional(&mut *tx)
                .await?;
        let n = sqlx::query(
            "INSERT INTO runs (campaign_id, slot, slot_at, state, reason, template_id, created_at, finished_at, paused) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $4 = 'skipped' THEN $7 END, $8) ON CONFLICT DO NOTHING",
        )
        .bind(campaign_id)
        .bind(slot)
        .bind(slot_at)
        .bind(state)
        .bind(reason)
        .bind(template)
        .bind(now)
        .bind(paused.unwrap_or(false))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 && state == "pending" {
            sqlx::query(
                "UPDATE campaigns SET state = 'running', updated_at = $1 WHERE id = $2 AND state = 'scheduled'",
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
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM runs WHERE campaign_id = $1 AND state <> 'skipped'",
        )
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn advance_cursor(&self, campaign_id: i64, slot: Millis) -> Result<()> {
        // One statement: two instances advancing at once each compute GREATEST on the row as the
        // other left it (the second re-reads it after the first's lock), so the cursor never goes back.
        sqlx::query(
            "UPDATE campaigns SET schedule_cursor = GREATEST(COALESCE(schedule_cursor, 0), $1) WHERE id = $2",
        )
        .bind(slot)
        .bind(campaign_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn end_schedule(&self, campaign_id: i64, now: Millis) -> Result<()> {
        // The CASE reads the state under the row lock: a slot run committed just before (which moved
        // the campaign to running) keeps it running until that run is done.
        sqlx::query(
            "UPDATE campaigns SET schedule_ended = TRUE, updated_at = $1, \
             state = CASE WHEN state = 'scheduled' THEN 'done' ELSE state END WHERE id = $2",
        )
        .bind(now)
        .bind(campaign_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_calendar(&self, org_id: i64, c: Option<&Calendar>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // The node's row lock, taken by this UPDATE and held to the commit, orders two replacements
        // of the same calendar: the second deletes what the first wrote, never a mix of both.
        let n = sqlx::query("UPDATE orgs SET has_calendar = $1 WHERE id = $2")
            .bind(c.is_some())
            .bind(org_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound("org"));
        }
        sqlx::query("DELETE FROM calendars WHERE org_id = $1")
            .bind(org_id)
            .execute(&mut *tx)
            .await?;
        if let Some(c) = c {
            let entries: Vec<(&str, &DateRange)> = c
                .terms
                .iter()
                .map(|r| ("term", r))
                .chain(c.holidays.iter().map(|r| ("holiday", r)))
                .collect();
            if !entries.is_empty() {
                // One statement for all rows: four bound arrays, whatever the calendar's length.
                sqlx::query(
                    "INSERT INTO calendars (org_id, kind, start_date, end_date, name) \
                     SELECT $1, kind, start_date, end_date, name \
                     FROM unnest($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[]) AS e(kind, start_date, end_date, name)",
                )
                .bind(org_id)
                .bind(entries.iter().map(|(k, _)| *k).collect::<Vec<&str>>())
                .bind(
                    entries
                        .iter()
                        .map(|(_, r)| r.start.to_string())
                        .collect::<Vec<String>>(),
                )
                .bind(
                    entries
                        .iter()
                        .map(|(_, r)| r.end.to_string())
                        .collect::<Vec<String>>(),
                )
                .bind(
                    entries
                        .iter()
                        .map(|(_, r)| r.name.as_str())
                        .collect::<Vec<&str>>(),
                )
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn effective_calendar(&self, org_id: i64) -> Result<(Option<i64>, Calendar)> {
        // One statement, so one snapshot: the node the calendar comes from and its entries are read
        // together (a replacement committed in between cannot show half of it). No row: no such
        // node; `source` NULL: no calendar on the path; `kind` NULL: an empty calendar of its own.
        let rows = sqlx::query(concat!(
            "SELECT s.id AS source, c.kind, c.start_date, c.end_date, c.name FROM orgs o \
             LEFT JOIN LATERAL (",
            nearest!("a.id", "a.has_calendar"),
            ") s ON TRUE \
             LEFT JOIN calendars c ON c.org_id = s.id \
             WHERE o.id = $1 \
             ORDER BY c.start_date COLLATE \"C\", c.end_date COLLATE \"C\", c.name"
        ))
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Err(StoreError::NotFound("organisation"));
        };
        let Some(from) = first.try_get::<Option<i64>, _>("source")? else {
            return Ok((None, Calendar::default()));
        };
        let mut cal = Calendar::default();
        for r in &rows {
            let Some(kind) = r.try_get::<Option<String>, _>("kind")? else {
                continue;
            };
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
            if kind == "term" {
                cal.terms.push(range);
            } else {
                cal.holidays.push(range);
            }
        }
        Ok((Some(from), cal))
    }

    async fn set_quiet_hours(&self, org_id: i64, q: Option<&str>) -> Result<()> {
        let n = sqlx::query("UPDATE orgs SET quiet_hours = $1 WHERE id = $2")
            .bind(q)
            .bind(org_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound("org"));
        }
        Ok(())
    }

    async fn effective_quiet_hours(&self, org_id: i64) -> Result<Option<String>> {
        // No row: no such node; NULL: no quiet hours set on its path.
        let row = sqlx::query(concat!(
            "SELECT (",
            nearest!("a.quiet_hours", "a.quiet_hours IS NOT NULL"),
            ") FROM orgs o WHERE o.id = $1"
        ))
        .bind(org_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("organisation"))?;
        Ok(row.try_get(0)?)
    }
}
