//! PostgreSQL side of runs, their fan-out into deliveries, the claim and its leases, outcomes,
//! progress and per-campaign channel pauses, for several instances sharing one database.

mod fanout;

use std::collections::BTreeMap;

use sqlx::PgConnection;

use super::super::*;

use crate::store::rows::{SCAN_PAGE_LINKS, SCAN_PLAN_FROM_STUDENTS, direct_roles};

/// A run whose deliveries may be claimed (`r` is the run): open and not held by staff.
const CLAIMABLE_RUN: &str = "r.state IN ('pending','running') AND NOT r.paused";

/// The `HOLDER_GONE` condition with the placeholders for now and this process given.
macro_rules! holder_gone {
    ($now:literal, $me:literal) => {
        concat!(
            "(d.lease_owner IS NULL OR (d.lease_owner <> ",
            $me,
            " AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = d.lease_owner AND i.alive_until > ",
            $now,
            ")))"
        )
    };
}

/// A leased delivery `d` whose holder is gone (with $2 now, $5 this process): not this process, which
/// holds all it claimed until it records an outcome or gives it back, and not a process whose row in
/// `instances` is alive. A lease that ran out while its holder lives (a slow gateway, a long wait for
/// a send slot) is not taken from it.
const HOLDER_GONE: &str = holder_gone!("$2", "$5");

/// What both parts of the claim leave alone: channels this process skips ($3) and channels paused
/// for the campaign (unless staff chose to move their people on).
const CLAIM_FILTER: &str = "COALESCE(d.channel, '') <> ALL($3::text[]) \
     AND NOT EXISTS (SELECT 1 FROM channel_pauses p \
       WHERE p.campaign_id = d.campaign_id AND p.channel = d.channel AND NOT p.skip)";

/// The claim, one statement built once: expired leases first (a crashed sender's work), then due
/// deliveries. $1 lease end, $2 now, $3 channels to skip, $4 how many, $5 this process.
///
/// It is one `UPDATE … WHERE id IN (SELECT … FOR UPDATE OF d SKIP LOCKED … LIMIT n) RETURNING …`:
/// the rows are chosen and locked in the same statement that leases them, and a row another
/// instance is claiming at that moment is passed over, not waited for. Two instances claiming
/// together therefore never get the same delivery (the second cannot lock the first's rows, and a
/// row the first already committed as `sending` fails the second's recheck of `state`, which
/// PostgreSQL repeats on the newest version of each row it locks) and never block each other. The
/// IN subquery is uncorrelated, so it runs once.
///
/// The two parts are the branches of a `UNION ALL` under one `LIMIT` (each a sub-select in FROM:
/// PostgreSQL refuses FOR UPDATE directly in a UNION's branch). It reads the branches in order and
/// stops pulling once the limit is reached, so the due part locks only what the expired part left
/// room for. One autocommitted statement is one round trip; the two statements in a
/// transaction they replace were four (BEGIN, two claims, COMMIT), and a claim of 256 rows at full
/// speed took 12 ms on this 2-core machine, most of it waiting on those trips.
///
/// Only `deliveries` is locked (`FOR UPDATE OF d`): a bare `FOR UPDATE` would also lock the joined
/// `runs` (and `campaigns`) rows, which every claimer reads. With SKIP LOCKED a second instance
/// would then skip every delivery of a run the first is claiming from, and claim nothing; and
/// staff pausing or cancelling a run would wait for claims. The ordered runs of the due claim are
/// a sub-select of their own, which could not be locked anyway (and PostgreSQL allows no
/// DISTINCT or aggregate at a level that locks rows, which is why none is used there).
static CLAIM_STATEMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    // Leases expire in time order across all runs; `deliveries_leased` is small (what is in flight)
    // and gives that order.
    let expired = format!(
        "SELECT d.id FROM deliveries d JOIN runs r ON r.id = d.run_id \
         WHERE d.state = 'sending' AND d.lease_until <= $2 AND {CLAIMABLE_RUN} AND {HOLDER_GONE} \
           AND {CLAIM_FILTER} \
         ORDER BY d.lease_until LIMIT $4 FOR UPDATE OF d SKIP LOCKED"
    );
    // Due work run by run (urgent campaigns' runs first, then the oldest), each run's in due order:
    // the outer loop is the handful of open runs, in order, and for each the LATERAL sub-select walks
    // `deliveries_due` (run, next_attempt_at) within the run, locking as it goes and stopping after
    // `LIMIT` rows, so nothing is sorted and no more rows are locked than are taken (the outer LIMIT
    // stops the loop). One flat ORDER BY urgent, run, due over the join would read and sort every
    // due delivery of every open run on each claim (0.6 s for 250,000 of them, against 3 ms).
    // The runs' sub-select keeps its order (it has an ORDER BY, so it is not flattened) and the
    // outer ORDER BY follows it without a sort; within a run the order is the index's.
    let due = format!(
        "SELECT q.id FROM (SELECT r.id, c.urgent FROM runs r JOIN campaigns c ON c.id = r.campaign_id \
           WHERE {CLAIMABLE_RUN} ORDER BY c.urgent DESC, r.id) ar \
         CROSS JOIN LATERAL (SELECT d.id FROM deliveries d \
           WHERE d.run_id = ar.id AND d.state IN ('queued','retrying') AND d.next_attempt_at <= $2 \
             AND {CLAIM_FILTER} \
           ORDER BY d.next_attempt_at LIMIT $4 FOR UPDATE OF d SKIP LOCKED) q \
         ORDER BY ar.urgent DESC, ar.id LIMIT $4"
    );
    format!(
        "UPDATE deliveries SET state = 'sending', lease_until = $1, lease_owner = $5, updated_at = $2 \
         WHERE id IN (SELECT x.id FROM (SELECT e.id FROM ({expired}) e UNION ALL SELECT u.id FROM ({due}) u) x \
           LIMIT $4) RETURNING {CLAIMED_COLUMNS}"
    )
});

/// A running campaign with no open run left: a recurring one waits for its next slot, any other is
/// done ($1 now, $2 campaign id). Returns the new state when it moved. Run under the campaign's row
/// lock (`lock_campaigns`), in a statement of its own: see there.
const SETTLE_CAMPAIGN: &str = "UPDATE campaigns SET \
     state = CASE WHEN schedule IS NOT NULL AND NOT schedule_ended THEN 'scheduled' ELSE 'done' END, \
     updated_at = $1 WHERE id = $2 AND state = 'running' \
     AND NOT EXISTS (SELECT 1 FROM runs WHERE campaign_id = $2 AND state IN ('pending','running')) RETURNING state";

/// Locks campaign rows, in id order, for the rest of the transaction. On SQLite one writer at a time
/// closes and reopens runs; here each transaction that ends, finishes or reopens runs locks their
/// campaign first, and decides in later statements (each sees what committed before it started).
/// Without it two instances finishing a campaign's last two runs at once would each still see the
/// other's run open and neither settle the campaign, and a late receipt reopening a run could miss
/// a finish committing that run done. `FOR NO KEY UPDATE` is the lock an UPDATE of the row takes,
/// so inserts referencing the campaign (runs) are not held up. `skip_locked`: campaigns another
/// transaction holds are left out (returned ids are those locked).
async fn lock_campaigns(
    conn: &mut PgConnection,
    ids: &[i64],
    skip_locked: bool,
) -> Result<Vec<i64>> {
    let skip = if skip_locked { " SKIP LOCKED" } else { "" };
    let rows = sqlx::query(&format!(
        "SELECT id FROM campaigns WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE{skip}"
    ))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

/// `SETTLE_CAMPAIGN` for a campaign locked by `lock_campaigns`; returns its new state if it moved.
async fn settle_campaign(
    conn: &mut PgConnection,
    campaign_id: i64,
    now: Millis,
) -> Result<Option<String>> {
    Ok(sqlx::query(SETTLE_CAMPAIGN)
        .bind(now)
        .bind(campaign_id)
        .written_opt(&mut *conn)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
}

async fn channel_pauses(conn: &mut PgConnection, campaign_id: i64) -> Result<Vec<ChannelPause>> {
    let rows = sqlx::query(
        "SELECT channel, reason, paused_at, skip FROM channel_pauses WHERE campaign_id = $1 ORDER BY channel",
    )
    .bind(campaign_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ChannelPause {
                channel: r.try_get("channel")?,
                reason: r.try_get("reason")?,
                paused_at: r.try_get("paused_at")?,
                skipped: r.try_get("skip")?,
            })
        })
        .collect()
}

async fn fell_back(
    conn: &mut PgConnection,
    campaign_id: i64,
) -> Result<BTreeMap<String, BTreeMap<String, i64>>> {
    let rows =
        sqlx::query("SELECT channel, reason_code, n FROM channel_fallbacks WHERE campaign_id = $1")
            .bind(campaign_id)
            .fetch_all(conn)
            .await?;
    let mut out: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for r in rows {
        out.entry(r.try_get("channel")?)
            .or_default()
            .insert(r.try_get("reason_code")?, r.try_get("n")?);
    }
    Ok(out)
}

/// Outcomes as one statement's arrays (`unnest`), one array per column, in this order.
const RECORD: &str = "UPDATE deliveries SET state = v.state, channel = v.channel, channel_index = v.channel_index, \
       attempts = v.attempts, next_attempt_at = v.next_attempt_at, lease_until = NULL, \
       provider_message_id = v.provider_message_id, segments = v.segments, reason_code = v.reason_code, \
       reason = v.reason, \
       sent_at = CASE WHEN v.state IN ('sent','delivered') THEN COALESCE(v.sent_at, $13) ELSE deliveries.sent_at END, \
       updated_at = $13 \
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], \
                 $8::text[], $9::bigint[], $10::text[], $11::text[], $12::bigint[]) \
       AS v(id, expected, state, channel, channel_index, attempts, next_attempt_at, provider_message_id, \
            segments, reason_code, reason, sent_at) \
     WHERE deliveries.id = v.id AND deliveries.state = v.expected";

/// Splits a batch into rounds in which each delivery appears once, keeping each delivery's outcomes
/// in batch order: an UPDATE … FROM applies one source row per target row, so a delivery named twice
/// gets its second outcome in the next round's statement, which sees the first (as row by row).
fn rounds(updates: &[DeliveryUpdate]) -> Vec<Vec<&DeliveryUpdate>> {
    let mut seen: HashMap<i64, usize> = HashMap::new();
    let mut out: Vec<Vec<&DeliveryUpdate>> = Vec::new();
    for u in updates {
        let n = seen.entry(u.id).or_insert(0);
        if out.len() <= *n {
            out.push(Vec::new());
        }
        out[*n].push(u);
        *n += 1;
    }
    out
}

/// One round's outcomes as `RECORD` with its arrays bound ($13 now).
fn record_round<'q>(
    round: &[&'q DeliveryUpdate],
    now: Millis,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    let col = |f: &dyn Fn(&DeliveryUpdate) -> Option<i64>| -> Vec<Option<i64>> {
        round.iter().map(|u| f(u)).collect()
    };
    let text = |f: &dyn for<'u> Fn(&'u DeliveryUpdate) -> Option<&'u str>| {
        round.iter().map(|u| f(u)).collect::<Vec<Option<&'q str>>>()
    };
    let ids: Vec<i64> = round.iter().map(|u| u.id).collect();
    sqlx::query(RECORD)
        .bind(ids)
        .bind(text(&|u| Some(u.expected.as_str())))
        .bind(text(&|u| Some(u.state.as_str())))
        .bind(text(&|u| u.channel.map(|c| c.as_str())))
        .bind(col(&|u| Some(u.channel_index)))
        .bind(col(&|u| Some(u.attempts)))
        .bind(col(&|u| Some(u.next_attempt_at)))
        .bind(text(&|u| u.provider_message_id.as_deref()))
        .bind(col(&|u| u.segments))
        .bind(text(&|u| u.reason_code.map(|r| r.as_str())))
        .bind(text(&|u| u.reason.as_deref()))
        .bind(col(&|u| u.sent_at))
        .bind(now)
}

/// Receipts that will name a message only by the provider's id need a way back to the delivery:
/// (channel, ref, delivery) for each such outcome. The last one for a (channel, ref) wins, as
/// SQLite's INSERT OR REPLACE of a list does; PostgreSQL refuses to update one row twice in a
/// statement, so the list holds each key once.
fn receipt_refs(updates: &[DeliveryUpdate]) -> Vec<(&str, &str, i64)> {
    let mut refs: Vec<(&str, &str, i64)> = Vec::new();
    let mut at: HashMap<(&str, &str), usize> = HashMap::new();
    for u in updates.iter().filter(|u| u.receipt_by_provider_id) {
        let (Some(c), Some(r)) = (u.channel, u.provider_message_id.as_deref()) else {
            continue;
        };
        match at.get(&(c.as_str(), r)) {
            Some(&i) => refs[i].2 = u.id,
            None => {
                at.insert((c.as_str(), r), refs.len());
                refs.push((c.as_str(), r, u.id));
            }
        }
    }
    refs
}

#[async_trait::async_trait]
impl DeliveryStore for PgStore {
    async fn set_paused(
        &self,
        campaign_id: i64,
        run_id: Option<i64>,
        paused: bool,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // The campaign first, then its runs, the order in which everything else locks them (see
        // `lock_campaigns`). A run being created meanwhile reads the campaign's flag under a share
        // lock (`create_run`), so it either waits for this and starts held, or is visible to the
        // runs' update below.
        let campaign = if run_id.is_none() {
            sqlx::query(
                "UPDATE campaigns SET paused = $1, updated_at = $2 WHERE id = $3 AND paused <> $1 \
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
        let runs = sqlx::query(
            "UPDATE runs SET paused = $1 WHERE campaign_id = $2 AND ($3::BIGINT IS NULL OR id = $3) \
             AND state IN ('pending','running') AND paused <> $1",
        )
        .bind(paused)
        .bind(campaign_id)
        .bind(run_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(runs + campaign > 0)
    }

    async fn halted_runs(&self, run_ids: &[i64]) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT id FROM runs WHERE id = ANY($1) AND (paused OR state NOT IN ('pending','running'))",
        )
        .bind(run_ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn cancel_run(&self, campaign_id: i64, run_id: i64, now: Millis) -> Result<Option<u64>> {
        let mut tx = self.pool.begin().await?;
        lock_campaigns(&mut tx, &[campaign_id], false).await?;
        let moved = sqlx::query(
            "UPDATE runs SET state = 'cancelled', finished_at = $1 WHERE id = $2 AND campaign_id = $3 \
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
        // A delivery a claim holds locked at this moment is waited for and then left alone (it is
        // `sending` by then): the dispatcher finds its run halted and gives it back, cancelled.
        let n = sqlx::query(
            "UPDATE deliveries SET state = 'cancelled', reason_code = 'cancelled', lease_until = NULL, updated_at = $1 \
             WHERE run_id = $2 AND state IN ('queued','retrying')",
        )
        .bind(now)
        .bind(run_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // A campaign whose last open run this was waits for its next slot, or is done.
        settle_campaign(&mut tx, campaign_id, now).await?;
        tx.commit().await?;
        Ok(Some(n))
    }

    async fn run_template(&self, run_id: i64) -> Result<Option<i64>> {
        Ok(sqlx::query("SELECT template_id FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<Option<i64>, _>(0))
            .transpose()?
            .flatten())
    }

    async fn list_runs(&self, campaign_id: i64) -> Result<Vec<RunRow>> {
        let rows = sqlx::query(
            "SELECT id, slot, slot_at, state, reason, template_id, paused, created_at, finished_at FROM runs \
             WHERE campaign_id = $1 ORDER BY COALESCE(slot_at, created_at), id",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?;
        let counts = sqlx::query(
            "SELECT run_id, state, count(*) FROM deliveries WHERE campaign_id = $1 GROUP BY 1, 2",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
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

    async fn create_run(&self, campaign_id: i64, slot: &str, now: Millis) -> Result<i64> {
        // A run of a paused campaign starts paused. The flag is read under a share lock, so that a
        // pause being written meanwhile is waited for (its runs' update cannot see this new run).
        let inserted = sqlx::query(
            "INSERT INTO runs (campaign_id, slot, state, created_at, paused) \
             VALUES ($1, $2, 'pending', $3, \
                     COALESCE((SELECT paused FROM campaigns WHERE id = $1 FOR SHARE), FALSE)) \
             ON CONFLICT (campaign_id, slot) DO NOTHING RETURNING id",
        )
        .bind(campaign_id)
        .bind(slot)
        .bind(now)
        .written_opt(&self.pool)
        .await?;
        if let Some(row) = inserted {
            return Ok(row.try_get(0)?);
        }
        // Another tick (or instance) made it. A statement of its own: ON CONFLICT waited for that
        // insert to commit, and only a statement started after it sees the row (one statement
        // reading it back in the same snapshot as the insert would find nothing).
        Ok(
            sqlx::query("SELECT id FROM runs WHERE campaign_id = $1 AND slot = $2")
                .bind(campaign_id)
                .bind(slot)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?,
        )
    }

    async fn pending_runs(&self) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT id, campaign_id FROM runs WHERE state = 'pending' AND NOT paused ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn mark_run_fanned_out(&self, run_id: i64) -> Result<()> {
        sqlx::query("UPDATE runs SET state = 'running' WHERE id = $1 AND state = 'pending'")
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        // A fan-out may have added a million rows: without fresh statistics the claim of expired
        // leases took a bitmap scan that rereads every dead entry of `deliveries_leased` on each
        // claim (65-245 ms a claim late in a million-person run, 0.2-0.7 ms with them). ANALYZE
        // samples at most 30,000 rows (0.33 s on a million). It needs the table's owner: a failure
        // only loses the speed-up.
        if let Err(e) = sqlx::query("ANALYZE deliveries").execute(&self.pool).await {
            tracing::debug!(error = %e, "ANALYZE deliveries after a fan-out not done");
        }
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
        let classes: &[i64] = &a.class_ids;
        let insert =
            |people: &str, time: &str| fanout::insert(run_id, c.id, &c.channels, people, time);
        // Each statement binds the path and the classes first, then its own values; the time last.
        let run = async |sql: String, rest: &[Option<i64>], role: Option<&str>| {
            let mut q = sqlx::query(&sql).bind(&root.path).bind(classes);
            if let Some(role) = role {
                q = q.bind(role);
            }
            for v in rest {
                q = q.bind(*v);
            }
            // Under the run's row lock, and only while it is open: a cancel updates the run row
            // first and its deliveries next, so it either waits for this insert and then cancels
            // what it added, or has committed and the run is seen closed here. Inserted without
            // the lock, a step running beside a cancel left its people queued under a cancelled
            // run, never sent and never settled.
            let mut tx = self.pool.begin().await?;
            let open: Option<String> = sqlx::query_scalar(
                "SELECT state FROM runs WHERE id = $1 AND state IN ('pending','running') FOR SHARE",
            )
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?;
            if open.is_none() {
                tx.commit().await?;
                return Ok::<u64, StoreError>(0);
            }
            // For this transaction only: a plan made for each page's own values (the subtree's path,
            // the page's bounds), never the generic plan sqlx's prepared statement would otherwise
            // get from its sixth execution, whose guesses about the path were what went wrong
            // before (see `fanout::parents_page`); planning costs a few ms of a page's 0.2-0.4 s.
            // And no JIT: these statements are costed far above `jit_above_cost`, and compiling
            // them again for each page took 35-570 ms of it.
            sqlx::query(
                "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), set_config('jit', 'off', true)",
            )
            .execute(&mut *tx)
            .await?;
            let done = q.bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<u64, StoreError>(done.rows_affected())
        };
        Ok(match step {
            FanOutStep::Start if a.roles.contains(&Role::Parent) => {
                let students: i64 = sqlx::query(fanout::STUDENTS_CAPPED)
                    .bind(&root.path)
                    .bind(classes)
                    .bind(SCAN_PLAN_FROM_STUDENTS)
                    .fetch_one(&self.pool)
                    .await?
                    .try_get(0)?;
                if students >= SCAN_PLAN_FROM_STUDENTS {
                    (0, FanOutStep::ParentsAfter(0))
                } else {
                    let n = run(insert(&fanout::parents_sorted(), "$3"), &[], None).await?;
                    (n, FanOutStep::Direct(0))
                }
            }
            FanOutStep::Start => (0, FanOutStep::Direct(0)),
            FanOutStep::ParentsAfter(after) => {
                let end: Option<i64> = sqlx::query(fanout::PAGE_END)
                    .bind(after)
                    .bind(SCAN_PAGE_LINKS - 1)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()?;
                // A bound on both sides, so the walk stops at the page's end.
                let upto = end.unwrap_or(i64::MAX);
                let sql = insert(&fanout::parents_page(), "$5");
                let n = run(sql, &[Some(after), Some(upto)], None).await?;
                (
                    n,
                    end.map_or(FanOutStep::Direct(0), FanOutStep::ParentsAfter),
                )
            }
            FanOutStep::Direct(i) => match direct_roles(a).get(i) {
                Some(role) => {
                    // Parents come after the pass through their children, which this one relies on.
                    let sql = insert(&fanout::direct_unreached(), "$5");
                    let n = run(sql, &[Some(run_id)], Some(role)).await?;
                    (n, FanOutStep::Direct(i + 1))
                }
                None => (0, FanOutStep::Done),
            },
            FanOutStep::Done => (0, FanOutStep::Done),
        })
    }

    async fn audience(
        &self,
        c: &Campaign,
        f: &mut (dyn FnMut(AudiencePerson) + Send),
    ) -> Result<()> {
        use futures::TryStreamExt;
        let root = self.fetch_org(c.audience.org_id).await?;
        let classes: &[i64] = &c.audience.class_ids;
        // A large subtree is read in guardian-link order, as the fan-out does.
        let scan = c.audience.roles.contains(&Role::Parent) && {
            let students: i64 = sqlx::query(fanout::STUDENTS_CAPPED)
                .bind(&root.path)
                .bind(classes)
                .bind(SCAN_PLAN_FROM_STUDENTS)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
            students >= SCAN_PLAN_FROM_STUDENTS
        };
        for (sql, role) in fanout::preview_queries(&c.audience.roles, scan) {
            let q = sqlx::query(&sql).bind(&root.path).bind(classes);
            let q = match role {
                Some(r) => q.bind(r),
                None if scan => q.bind(0i64).bind(i64::MAX),
                None => q,
            };
            let mut rows = q.fetch(&self.pool);
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

    async fn reopen_run(&self, run_id: i64, now: Millis) -> Result<()> {
        let Some(campaign_id) = sqlx::query("SELECT campaign_id FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()?
        else {
            return Ok(());
        };
        let mut tx = self.pool.begin().await?;
        // Under the campaign's lock, a `finish_runs` marking this run done (on the snapshot from
        // before the re-queue) has committed, or will start after this and see the re-queued delivery.
        lock_campaigns(&mut tx, &[campaign_id], false).await?;
        let reopened = sqlx::query(
            "UPDATE runs SET state = 'running', finished_at = NULL WHERE id = $1 AND state = 'done'",
        )
        .bind(run_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if reopened == 1 {
            sqlx::query(
                "UPDATE campaigns SET state = 'running', updated_at = $1 WHERE id = $2 AND state = 'done'",
            )
            .bind(now)
            .bind(campaign_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn finish_runs(&self, now: Millis) -> Result<Vec<i64>> {
        let mut tx = self.pool.begin().await?;
        // Deliveries of a cancelled run whose sender died mid-send end cancelled, not stuck in
        // sending. SKIP LOCKED: another instance finishing at the same time takes those it locked.
        sqlx::query(concat!(
            "UPDATE deliveries SET state = 'cancelled', reason_code = 'cancelled', lease_until = NULL, updated_at = $1 \
             WHERE id IN (SELECT d.id FROM deliveries d WHERE d.state = 'sending' AND d.lease_until <= $1 \
               AND d.run_id IN (SELECT id FROM runs WHERE state = 'cancelled') AND ",
            holder_gone!("$1", "$2"),
            " FOR UPDATE OF d SKIP LOCKED)"
        ))
        .bind(now)
        .bind(&self.owner)
        .execute(&mut *tx)
        .await?;
        // A run with nothing queued, retrying or sending is done. The due and in-flight checks are
        // written as the partial indexes' conditions, which serve them.
        const NOTHING_LEFT: &str = "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.run_id = runs.id \
               AND d.state IN ('queued','retrying')) \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.state = 'sending' AND d.run_id = runs.id)";
        // Which campaigns have such a run, then their rows locked (see `lock_campaigns`), skipping
        // those another transaction holds (another instance finishing them, a cancel): a later call
        // settles them. Deciding again after the lock, in a statement of its own, sees every run
        // of these campaigns that was closed or reopened before.
        let candidates: Vec<i64> = sqlx::query(&format!(
            "SELECT DISTINCT campaign_id FROM runs WHERE state = 'running' AND {NOTHING_LEFT}"
        ))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        if candidates.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let locked = lock_campaigns(&mut tx, &candidates, true).await?;
        let rows = sqlx::query(&format!(
            "UPDATE runs SET state = 'done', finished_at = $1 WHERE campaign_id = ANY($2) \
             AND state = 'running' AND {NOTHING_LEFT} RETURNING campaign_id"
        ))
        .bind(now)
        .bind(&locked)
        .fetch_all(&mut *tx)
        .await?;
        let mut finished: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        finished.sort_unstable();
        finished.dedup();
        let mut done = Vec::new();
        for cid in finished {
            // A recurring campaign waits for its next slot; any other is done.
            if settle_campaign(&mut tx, cid, now).await?.as_deref() == Some("done") {
                done.push(cid);
            }
        }
        tx.commit().await?;
        Ok(done)
    }

    fn instance_id(&self) -> &str {
        &self.owner
    }

    /// Two: each batch's commit waits on the server (its statement, the WAL flush, and on a busy
    /// machine for a core), and the dispatcher's send slots wait for that commit; with one batch at
    /// a time, half the slots sat waiting for the batch before theirs (a batch took 3-4 ms on this
    /// 2-core machine beside a compiler, against 1 ms idle). Two batches never hold the same
    /// delivery: a delivery is sent again only after its outcome committed.
    fn record_writers(&self) -> usize {
        2
    }

    async fn heartbeat(&self, now: Millis, alive_until: Millis) -> Result<()> {
        sqlx::query(
            "INSERT INTO instances (id, started_at, alive_until) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET alive_until = EXCLUDED.alive_until",
        )
        .bind(&self.owner)
        .bind(now)
        .bind(alive_until)
        .execute(&self.pool)
        .await?;
        // Rows of processes gone for a day are of no use to anyone.
        sqlx::query("DELETE FROM instances WHERE alive_until < $1")
            .bind(now - 86_400_000)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn retire(&self) -> Result<()> {
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(&self.owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn claim(
        &self,
        limit: i64,
        now: Millis,
        lease_until: Millis,
        skip: &[Channel],
    ) -> Result<Vec<Claimed>> {
        let skip: Vec<&str> = skip.iter().map(|c| c.as_str()).collect();
        // One statement, so both parts commit or fail together without a transaction of our own.
        let rows = sqlx::query(&CLAIM_STATEMENT)
            .bind(lease_until)
            .bind(now)
            .bind(&skip)
            .bind(limit)
            .bind(&self.owner)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(claimed_from).collect()
    }

    async fn release(&self, ids: &[i64], at: Millis) -> Result<()> {
        // The runs' rows first, in a statement of its own: a cancel in flight holds its run's row,
        // so this waits for it and the UPDATE below (a new snapshot) sees the run cancelled. Read
        // in the UPDATE's own snapshot, a cancel committing meanwhile was missed, and the given
        // back deliveries stayed queued under a cancelled run.
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "SELECT 1 FROM runs WHERE id IN (SELECT run_id FROM deliveries WHERE id = ANY($1)) \
             ORDER BY id FOR SHARE",
        )
        .bind(ids)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE deliveries SET \
               state = CASE WHEN EXISTS (SELECT 1 FROM runs r WHERE r.id = deliveries.run_id AND r.state = 'cancelled') \
                              THEN 'cancelled' \
                            WHEN attempts = 0 THEN 'queued' ELSE 'retrying' END, \
               reason_code = CASE WHEN EXISTS (SELECT 1 FROM runs r WHERE r.id = deliveries.run_id AND r.state = 'cancelled') \
                                    THEN 'cancelled' ELSE reason_code END, \
               lease_until = NULL, next_attempt_at = $1 WHERE state = 'sending' AND id = ANY($2)",
        )
        .bind(at)
        .bind(ids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record(&self, updates: &[DeliveryUpdate], now: Millis) -> Result<u64> {
        // One statement over the outcomes as arrays (`unnest`), whatever the batch's length: 13
        // parameters, one text to prepare, no per-row round trip. Each row applies only from its
        // expected state; the row count is what applied. A delivery named twice in a batch (not
        // something the dispatcher does) goes through a second round, so it applies in order.
        let rounds = rounds(updates);
        let refs = receipt_refs(updates);
        // The usual batch is one statement: autocommitted, it is one round trip instead of three
        // (BEGIN, UPDATE, COMMIT). The dispatcher's send slots wait for this commit, so at full
        // speed its latency paces every send (3 ms a batch on average on this 2-core machine).
        if rounds.len() == 1 && refs.is_empty() {
            return record_round(&rounds[0], now)
                .execute(&self.pool)
                .await
                .map(|d| d.rows_affected())
                .map_err(Into::into);
        }
        let mut tx = self.pool.begin().await?;
        let mut n = 0;
        for round in rounds {
            n += record_round(&round, now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        if !refs.is_empty() {
            let (channels, names, ids): (Vec<&str>, Vec<&str>, Vec<i64>) = refs.iter().fold(
                (vec![], vec![], vec![]),
                |(mut a, mut b, mut c), (x, y, z)| {
                    a.push(*x);
                    b.push(*y);
                    c.push(*z);
                    (a, b, c)
                },
            );
            sqlx::query(
                "INSERT INTO receipt_refs (channel, ref, delivery_id) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) \
                 ON CONFLICT (channel, ref) DO UPDATE SET delivery_id = EXCLUDED.delivery_id",
            )
            .bind(channels)
            .bind(names)
            .bind(ids)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn next_due_at(&self) -> Result<Option<Millis>> {
        // Per claimable run: the due index leads with the run. A lease held by another process falls
        // due when both it and its holder's heartbeat have run out.
        let due: Option<i64> = sqlx::query(&format!(
            "SELECT min(due) FROM (SELECT (SELECT min(d.next_attempt_at) FROM deliveries d \
               WHERE d.run_id = r.id AND d.state IN ('queued','retrying')) AS due \
               FROM runs r WHERE {CLAIMABLE_RUN} \
             UNION ALL SELECT min(GREATEST(d.lease_until, COALESCE((SELECT i.alive_until FROM instances i \
               WHERE i.id = d.lease_owner), 0))) FROM deliveries d \
               WHERE d.state = 'sending' AND d.lease_until IS NOT NULL AND COALESCE(d.lease_owner, '') <> $1) x"
        ))
        .bind(&self.owner)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        Ok(due)
    }

    async fn progress(&self, campaign_id: i64) -> Result<Progress> {
        // One read-only snapshot for the three reads: a consistent picture.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(
            "SELECT COALESCE(channel, 'none') AS channel, state, reason_code, count(*) AS n FROM deliveries \
             WHERE campaign_id = $1 GROUP BY 1, 2, 3",
        )
        .bind(campaign_id)
        .fetch_all(&mut *tx)
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
        p.fell_back = fell_back(&mut tx, campaign_id).await?;
        p.paused = channel_pauses(&mut tx, campaign_id).await?;
        tx.commit().await?;
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
             WHERE d.campaign_id = $1 AND ($2::text IS NULL OR d.state = $2) AND ($3::text IS NULL OR d.channel = $3) \
               AND d.id > $4 \
             ORDER BY d.id LIMIT $5",
        )
        .bind(campaign_id)
        .bind(f.state.map(|s| s.as_str()))
        .bind(f.channel.map(|c| c.as_str()))
        .bind(f.after_id.unwrap_or(0))
        .bind(f.limit)
        .fetch_all(&self.pool)
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
        // o.path is grouped on too (one per org) so that the rows can be ordered by it.
        let rows = sqlx::query(
            "SELECT d.org_id, o.name, d.channel, d.state, d.reason_code, count(*) AS n \
             FROM deliveries d JOIN orgs o ON o.id = d.org_id \
             WHERE d.campaign_id = ANY($1) GROUP BY d.org_id, o.name, d.channel, d.state, d.reason_code, o.path \
             ORDER BY o.path",
        )
        .bind(campaign_ids)
        .fetch_all(&self.pool)
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
            "SELECT count(*) FROM deliveries WHERE campaign_id = ANY($1) \
             AND state IN ('queued','sending','retrying')",
        )
        .bind(campaign_ids)
        .fetch_one(&self.pool)
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
        // First reason wins, whichever instance saw the failures first.
        let n = sqlx::query(
            "INSERT INTO channel_pauses (campaign_id, channel, reason, paused_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (campaign_id, channel) DO NOTHING",
        )
        .bind(campaign_id)
        .bind(channel.as_str())
        .bind(reason)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn resume_channel(&self, campaign_id: i64, channel: Channel) -> Result<bool> {
        let n = sqlx::query("DELETE FROM channel_pauses WHERE campaign_id = $1 AND channel = $2")
            .bind(campaign_id)
            .bind(channel.as_str())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn skip_channel(&self, campaign_id: i64, channel: Channel) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE channel_pauses SET skip = TRUE WHERE campaign_id = $1 AND channel = $2 AND NOT skip",
        )
        .bind(campaign_id)
        .bind(channel.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
