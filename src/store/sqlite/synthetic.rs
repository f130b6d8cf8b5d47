//! Synthetic audiences generated inside SQLite, for `loa bench`: a million parents and their children
//! in a few seconds, where inserting them row by row from Rust took most of a minute.

use sqlx::Row;

use super::SqliteStore;
use crate::domain::Millis;
use crate::store::{Result, SyntheticAudience};

impl SqliteStore {
    pub(super) async fn do_seed_synthetic(&self, s: &SyntheticAudience, now: Millis) -> Result<()> {
        if s.classes.is_empty() || s.parents == 0 {
            return Ok(());
        }
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("CREATE TEMP TABLE IF NOT EXISTS synth_classes (k INTEGER PRIMARY KEY, class_id INTEGER, school_id INTEGER)")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM synth_classes")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO synth_classes (k, class_id, school_id) \
             SELECT key, json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)",
        )
        .bind(serde_json::to_string(&s.classes).unwrap_or_else(|_| "[]".into()))
        .execute(&mut *tx)
        .await?;
        let base: i64 = sqlx::query("SELECT COALESCE(max(id), 0) + 1 FROM contacts")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let n = s.parents as i64;
        let classes = s.classes.len() as i64;
        // Ids by arithmetic: parent i is base + i, its child base + n + i, the sibling of every tenth
        // parent base + 2n + i/10; so the links need no lookup.
        let seq =
            "WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < ?2)";
        sqlx::query(&format!(
            "{seq} INSERT INTO contacts (id, org_id, school_id, role, full_name, phone, created_at, updated_at) \
             SELECT ?1 + i, c.school_id, c.school_id, 'parent', 'Phụ Huynh ' || i, printf('+8491%07d', i), ?4, ?4 \
             FROM seq JOIN synth_classes c ON c.k = i % ?3"
        ))
        .bind(base)
        .bind(n)
        .bind(classes)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "{seq} INSERT INTO contacts (id, org_id, school_id, role, full_name, created_at, updated_at) \
             SELECT ?1 + ?2 + i, c.class_id, c.school_id, 'student', 'Học Sinh ' || i, ?4, ?4 \
             FROM seq JOIN synth_classes c ON c.k = i % ?3"
        ))
        .bind(base)
        .bind(n)
        .bind(classes)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "{seq} INSERT INTO guardian_links (parent_id, student_id) SELECT ?1 + i, ?1 + ?2 + i FROM seq"
        ))
        .bind(base)
        .bind(n)
        .execute(&mut *tx)
        .await?;
        if s.siblings {
            sqlx::query(&format!(
                "{seq} INSERT INTO contacts (id, org_id, school_id, role, full_name, created_at, updated_at) \
                 SELECT ?1 + 2 * ?2 + i / 10, c.class_id, c.school_id, 'student', 'Học Sinh ' || i || 'b', ?4, ?4 \
                 FROM seq JOIN synth_classes c ON c.k = (i + 7) % ?3 WHERE i % 10 = 0"
            ))
            .bind(base)
            .bind(n)
            .bind(classes)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "{seq} INSERT INTO guardian_links (parent_id, student_id) \
                 SELECT ?1 + i, ?1 + 2 * ?2 + i / 10 FROM seq WHERE i % 10 = 0"
            ))
            .bind(base)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
