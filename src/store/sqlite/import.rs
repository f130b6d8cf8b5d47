//! SQLite side of a roster import: classes found or created under the school, students found by
//! student code (or class and name), parents by phone, email or Zalo id, changed fields updated and
//! parents linked, all in one transaction so an import is all-or-nothing at the database level.

use std::collections::HashMap;

use sqlx::{Row, SqliteConnection};

use super::SqliteStore;
use crate::domain::Millis;
use crate::domain::org::OrgKind;
use crate::import::RosterEntry;
use crate::import::roster::ParentEntry;
use crate::store::{ImportCounts, Result, StoreError};

impl SqliteStore {
    pub(super) async fn do_import_roster(
        &self,
        school_id: i64,
        entries: &[RosterEntry],
        now: Millis,
    ) -> Result<ImportCounts> {
        let school = self.fetch_org(school_id).await?;
        if school.kind != OrgKind::School {
            return Err(StoreError::Invalid(
                "a roster is imported into a school".into(),
            ));
        }
        let mut tx = self.writer.begin().await?;
        let mut n = ImportCounts::default();
        let mut classes: HashMap<String, i64> = HashMap::new();
        for e in entries {
            let org_id = match &e.class {
                None => school_id,
                Some(name) => match classes.get(name) {
                    Some(id) => *id,
                    None => {
                        let id = class_id(
                            &mut tx,
                            school_id,
                            &school.code,
                            &school.path,
                            name,
                            now,
                            &mut n,
                        )
                        .await?;
                        classes.insert(name.clone(), id);
                        id
                    }
                },
            };
            let student = upsert_student(&mut tx, school_id, org_id, e, now, &mut n).await?;
            if let Some(p) = &e.parent {
                let parent = upsert_parent(&mut tx, school_id, p, now, &mut n).await?;
                n.links_created += sqlx::query(
                    "INSERT INTO guardian_links (parent_id, student_id, relation) VALUES (?, ?, ?) \
                     ON CONFLICT (parent_id, student_id) DO NOTHING",
                )
                .bind(parent)
                .bind(student)
                .bind(&p.relation)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
        }
        tx.commit().await?;
        Ok(n)
    }
}

async fn class_id(
    c: &mut SqliteConnection,
    school_id: i64,
    school_code: &str,
    school_path: &str,
    name: &str,
    now: Millis,
    n: &mut ImportCounts,
) -> Result<i64> {
    if let Some(r) =
        sqlx::query("SELECT id FROM orgs WHERE parent_id = ? AND kind = 'class' AND name = ?")
            .bind(school_id)
            .bind(name)
            .fetch_optional(&mut *c)
            .await?
    {
        return Ok(r.try_get(0)?);
    }
    let id: i64 = sqlx::query(
        "INSERT INTO orgs (parent_id, kind, code, name, created_at) VALUES (?, 'class', ?, ?, ?) RETURNING id",
    )
    .bind(school_id)
    .bind(format!("{school_code}-{name}"))
    .bind(name)
    .bind(now)
    .fetch_one(&mut *c)
    .await?
    .try_get(0)?;
    sqlx::query("UPDATE orgs SET path = ? WHERE id = ?")
        .bind(format!("{school_path}{id}/"))
        .bind(id)
        .execute(&mut *c)
        .await?;
    n.classes_created += 1;
    Ok(id)
}

async fn upsert_student(
    c: &mut SqliteConnection,
    school_id: i64,
    org_id: i64,
    e: &RosterEntry,
    now: Millis,
    n: &mut ImportCounts,
) -> Result<i64> {
    let found = match &e.student_code {
        Some(code) => sqlx::query(
            "SELECT id, full_name, org_id FROM contacts WHERE school_id = ? AND student_code = ?",
        )
        .bind(school_id)
        .bind(code)
        .fetch_optional(&mut *c)
        .await?,
        None => sqlx::query(
            "SELECT id, full_name, org_id FROM contacts WHERE school_id = ? AND role = 'student' \
                 AND org_id = ? AND full_name = ? AND student_code IS NULL",
        )
        .bind(school_id)
        .bind(org_id)
        .bind(&e.student_name)
        .fetch_optional(&mut *c)
        .await?,
    };
    if let Some(r) = found {
        let id: i64 = r.try_get("id")?;
        let name: String = r.try_get("full_name")?;
        let org: i64 = r.try_get("org_id")?;
        if name != e.student_name || org != org_id {
            sqlx::query(
                "UPDATE contacts SET full_name = ?, org_id = ?, updated_at = ? WHERE id = ?",
            )
            .bind(&e.student_name)
            .bind(org_id)
            .bind(now)
            .bind(id)
            .execute(&mut *c)
            .await?;
            n.students_updated += 1;
        }
        return Ok(id);
    }
    n.students_created += 1;
    Ok(sqlx::query(
        "INSERT INTO contacts (org_id, school_id, role, full_name, student_code, created_at, updated_at) \
         VALUES (?, ?, 'student', ?, ?, ?, ?) RETURNING id",
    )
    .bind(org_id)
    .bind(school_id)
    .bind(&e.student_name)
    .bind(&e.student_code)
    .bind(now)
    .bind(now)
    .fetch_one(&mut *c)
    .await?
    .try_get(0)?)
}

async fn upsert_parent(
    c: &mut SqliteConnection,
    school_id: i64,
    p: &ParentEntry,
    now: Millis,
    n: &mut ImportCounts,
) -> Result<i64> {
    let mut found = None;
    for (col, v) in [
        ("phone", &p.phone),
        ("email", &p.email),
        ("zalo_user_id", &p.zalo_user_id),
    ] {
        let Some(v) = v else { continue };
        found = sqlx::query(&format!(
            "SELECT id, full_name, phone, email, zalo_user_id FROM contacts \
             WHERE school_id = ? AND role = 'parent' AND {col} = ? ORDER BY id LIMIT 1"
        ))
        .bind(school_id)
        .bind(v)
        .fetch_optional(&mut *c)
        .await?;
        if found.is_some() {
            break;
        }
    }
    if let Some(r) = found {
        let id: i64 = r.try_get("id")?;
        let old = (
            r.try_get::<String, _>("full_name")?,
            r.try_get::<Option<String>, _>("phone")?,
            r.try_get::<Option<String>, _>("email")?,
            r.try_get::<Option<String>, _>("zalo_user_id")?,
        );
        // A column left empty in the file keeps what Loa holds; a filled one replaces it.
        let new = (
            p.name.clone(),
            p.phone.clone().or(old.1.clone()),
            p.email.clone().or(old.2.clone()),
            p.zalo_user_id.clone().or(old.3.clone()),
        );
        if new != old {
            sqlx::query(
                "UPDATE contacts SET full_name = ?, phone = ?, email = ?, zalo_user_id = ?, updated_at = ? WHERE id = ?",
            )
            .bind(&new.0)
            .bind(&new.1)
            .bind(&new.2)
            .bind(&new.3)
            .bind(now)
            .bind(id)
            .execute(&mut *c)
            .await?;
            n.parents_updated += 1;
        }
        return Ok(id);
    }
    n.parents_created += 1;
    Ok(sqlx::query(
        "INSERT INTO contacts (org_id, school_id, role, full_name, phone, email, zalo_user_id, created_at, updated_at) \
         VALUES (?, ?, 'parent', ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(school_id)
    .bind(school_id)
    .bind(&p.name)
    .bind(&p.phone)
    .bind(&p.email)
    .bind(&p.zalo_user_id)
    .bind(now)
    .bind(now)
    .fetch_one(&mut *c)
    .await?
    .try_get(0)?)
}
