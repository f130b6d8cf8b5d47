//! Synthetic audiences generated inside PostgreSQL, for `loa bench`: a million parents and their
//! children from `generate_series`, with the ids the documented shape promises.

use sqlx::Row;

use super::super::super::PgStore;
use crate::domain::Millis;
use crate::store::{Result, SyntheticAudience};

impl PgStore {
    pub(super) async fn do_seed_synthetic(&self, s: &SyntheticAudience, now: Millis) -> Result<()> {
        if s.classes.is_empty() || s.parents == 0 {
            return Ok(());
        }
        let n = s.parents as i64;
        let (class_ids, school_ids): (Vec<i64>, Vec<i64>) = s.classes.iter().copied().unzip();
        let classes = class_ids.len() as i64;
        // Parent i, its child and every tenth parent's second child.
        let total = 2 * n + if s.siblings { (n - 1) / 10 + 1 } else { 0 };
        let mut tx = self.pool.begin().await?;
        // Ids by arithmetic: parent i is base + i, its child base + n + i, the sibling of every tenth
        // parent base + 2n + i/10; so the links need no lookup. That needs `total` ids in one block:
        // inserts into contacts are held off (this lock conflicts with the one every INSERT takes,
        // and `insert_contacts` takes it before drawing ids), the block starts past both the
        // sequence and the largest id (explicit ids from `loa store copy`), and the sequence is
        // moved past the block before anyone may insert again.
        sqlx::query("LOCK TABLE contacts IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let base: i64 = sqlx::query(
            "SELECT GREATEST(nextval(pg_get_serial_sequence('contacts', 'id')), \
             (SELECT COALESCE(max(id), 0) + 1 FROM contacts))",
        )
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        sqlx::query("SELECT setval(pg_get_serial_sequence('contacts', 'id'), $1)")
            .bind(base + total - 1)
            .execute(&mut *tx)
            .await?;
        // The classes in turn: k is the position in `s.classes`, from 0.
        let with = "WITH k AS (SELECT class_id, school_id, k - 1 AS k \
                    FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS u(class_id, school_id, k))";
        let series = "generate_series(0::bigint, $4 - 1) AS i";
        // printf('+8491%07d', i): seven digits at least, zero-padded.
        sqlx::query(&format!(
            "{with} INSERT INTO contacts (id, org_id, school_id, role, full_name, phone, created_at, updated_at) \
             SELECT $3 + i, k.school_id, k.school_id, 'parent', 'Phụ Huynh ' || i, \
               '+8491' || CASE WHEN i < 10000000 THEN lpad(i::text, 7, '0') ELSE i::text END, $5, $5 \
             FROM {series} JOIN k ON k.k = i % $6 ORDER BY i"
        ))
        .bind(&class_ids)
        .bind(&school_ids)
        .bind(base)
        .bind(n)
        .bind(now)
        .bind(classes)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "{with} INSERT INTO contacts (id, org_id, school_id, role, full_name, created_at, updated_at) \
             SELECT $3 + $4 + i, k.class_id, k.school_id, 'student', 'Học Sinh ' || i, $5, $5 \
             FROM {series} JOIN k ON k.k = i % $6 ORDER BY i"
        ))
        .bind(&class_ids)
        .bind(&school_ids)
        .bind(base)
        .bind(n)
        .bind(now)
        .bind(classes)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO guardian_links (parent_id, student_id) \
             SELECT $1 + i, $1 + $2 + i FROM generate_series(0::bigint, $2 - 1) AS i",
        )
        .bind(base)
        .bind(n)
        .execute(&mut *tx)
        .await?;
        if s.siblings {
            sqlx::query(&format!(
                "{with} INSERT INTO contacts (id, org_id, school_id, role, full_name, created_at, updated_at) \
                 SELECT $3 + 2 * $4 + i / 10, k.class_id, k.school_id, 'student', 'Học Sinh ' || i || 'b', $5, $5 \
                 FROM {series} JOIN k ON k.k = (i + 7) % $6 WHERE i % 10 = 0 ORDER BY i"
            ))
            .bind(&class_ids)
            .bind(&school_ids)
            .bind(base)
            .bind(n)
            .bind(now)
            .bind(classes)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO guardian_links (parent_id, student_id) \
                 SELECT $1 + i, $1 + 2 * $2 + i / 10 FROM generate_series(0::bigint, $2 - 1) AS i \
                 WHERE i % 10 = 0",
            )
            .bind(base)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        // A million rows at once, and the fan-out follows within seconds: without statistics
        // (autovacuum's analyze comes up to a minute later) the planner takes these tables for
        // empty and the fan-out's joins run for minutes. Real rosters arrive in chunks that
        // autovacuum keeps up with.
        sqlx::query("ANALYZE contacts, guardian_links, orgs")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
