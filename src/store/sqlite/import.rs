//! SQLite side of a roster import: classes found or created under the school, students found by
//! student code (or class and name), parents by phone, email or Zalo id, changed fields updated and
//! parents linked. Set-based per chunk: existing people are read with one query per key, matched in
//! memory in file order (a later row about the same person updates what an earlier one wrote), and
//! written with multi-row statements, because each statement is a round trip to SQLite's worker thread
//! and a row-at-a-time import spent most of its time on those hand-offs.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{SqliteStore, Written};
use crate::domain::Millis;
use crate::domain::org::OrgKind;
use crate::import::RosterEntry;
use crate::import::roster::ParentEntry;
use crate::store::{ImportCounts, Result, StoreError};

/// The consent source of people a school's roster brings in: the school holds their consent.
const CONSENT: &str = "roster_import";

/// Codes tried for a new class before the import gives up (`1A`, `1A-2`, ...).
const CODE_TRIES: usize = 20;

/// Rows per multi-row statement (SQLite allows 32,766 bound values; 8 columns a row at most).
const ROWS: usize = 300;

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
        let mut classes: HashMap<&str, i64> = HashMap::new();
        for name in entries.iter().filter_map(|e| e.class.as_deref()) {
            if !classes.contains_key(name) {
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
                classes.insert(name, id);
            }
        }
        let orgs: Vec<i64> = entries
            .iter()
            .map(|e| e.class.as_deref().map(|c| classes[c]).unwrap_or(school_id))
            .collect();
        let students = students(&mut tx, school_id, entries, &orgs, now, &mut n).await?;
        // Every parent a row names, with the row it comes from.
        let flat: Vec<(usize, &ParentEntry)> = entries
            .iter()
            .enumerate()
            .flat_map(|(i, e)| e.parents.iter().map(move |p| (i, p)))
            .collect();
        let parents = parents(&mut tx, school_id, &flat, &students, now, &mut n).await?;
        let links: Vec<(i64, i64, Option<&str>)> = flat
            .iter()
            .zip(&parents)
            .map(|((i, p), id)| (*id, students[*i], p.relation.as_deref()))
            .collect();
        for chunk in links.chunks(ROWS) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO guardian_links (parent_id, student_id, relation) ");
            qb.push_values(chunk, |mut b, (p, s, r)| {
                b.push_bind(*p).push_bind(*s).push_bind(*r);
            });
            qb.push(" ON CONFLICT (parent_id, student_id) DO NOTHING");
            n.links_created += qb.build().execute(&mut *tx).await?.rows_affected();
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
    // The class code is `<school code>-<class>`, unique within the school; if staff already gave
    // that code to another class of the school, the next free `-2`, `-3`, ... is taken.
    let mut id = None;
    for n in 1..=CODE_TRIES {
        let code = match n {
            1 => format!("{school_code}-{name}"),
            n => format!("{school_code}-{name}-{n}"),
        };
        if let Some(r) = sqlx::query(
            "INSERT INTO orgs (parent_id, kind, code, name, created_at) VALUES (?, 'class', ?, ?, ?) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(school_id)
        .bind(code)
        .bind(name)
        .bind(now)
        .written_opt(&mut *c)
        .await?
        {
            id = Some(r.try_get::<i64, _>(0)?);
            break;
        }
    }
    let id = id.ok_or_else(|| {
        StoreError::Conflict(format!(
            "no free class code for class {name:?} in the school"
        ))
    })?;
    sqlx::query("UPDATE orgs SET path = ? WHERE id = ?")
        .bind(format!("{school_path}{id}/"))
        .bind(id)
        .execute(&mut *c)
        .await?;
    n.classes_created += 1;
    Ok(id)
}

/// How a student is recognised: by code, or by class and name when the file has no code.
#[derive(Clone, PartialEq, Eq, Hash)]
enum StudentKey {
    Code(String),
    Named(i64, String),
}

struct Student {
    id: Option<i64>,
    name: String,
    org: i64,
    changed: bool,
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Each entry's student id, students created or updated as the rows say, in file order.
async fn students(
    c: &mut SqliteConnection,
    school_id: i64,
    entries: &[RosterEntry],
    orgs: &[i64],
    now: Millis,
    n: &mut ImportCounts,
) -> Result<Vec<i64>> {
    let key = |i: usize| match &entries[i].student_code {
        Some(code) => StudentKey::Code(code.clone()),
        None => StudentKey::Named(orgs[i], entries[i].student_name.clone()),
    };
    let mut slots: Vec<Student> = Vec::new();
    let mut by_key: HashMap<StudentKey, usize> = HashMap::new();
    let codes: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.student_code.as_deref())
        .collect();
    let named: Vec<(i64, &str)> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.student_code.is_none())
        .map(|(i, e)| (orgs[i], e.student_name.as_str()))
        .collect();
    let mut found = sqlx::query(
        "SELECT c.id, c.student_code, c.full_name, c.org_id FROM contacts c \
         WHERE c.school_id = ?1 AND c.student_code IN (SELECT value FROM json_each(?2)) ORDER BY c.id",
    )
    .bind(school_id)
    .bind(json(&codes))
    .fetch_all(&mut *c)
    .await?;
    found.extend(
        sqlx::query(
            "SELECT c.id, c.student_code, c.full_name, c.org_id FROM json_each(?2) j \
             JOIN contacts c ON c.org_id = json_extract(j.value, '$[0]') AND c.role = 'student' \
               AND c.full_name = json_extract(j.value, '$[1]') \
             WHERE c.school_id = ?1 AND c.student_code IS NULL ORDER BY c.id",
        )
        .bind(school_id)
        .bind(json(&named))
        .fetch_all(&mut *c)
        .await?,
    );
    for r in found {
        let id: i64 = r.try_get("id")?;
        let org: i64 = r.try_get("org_id")?;
        let name: String = r.try_get("full_name")?;
        let k = match r.try_get::<Option<String>, _>("student_code")? {
            Some(code) => StudentKey::Code(code),
            None => StudentKey::Named(org, name.clone()),
        };
        by_key.entry(k).or_insert_with(|| {
            slots.push(Student {
                id: Some(id),
                name,
                org,
                changed: false,
            });
            slots.len() - 1
        });
    }
    let mut of_entry = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let k = key(i);
        let s = match by_key.get(&k) {
            Some(&s) => {
                let st = &mut slots[s];
                if st.name != e.student_name || st.org != orgs[i] {
                    st.name = e.student_name.clone();
                    st.org = orgs[i];
                    st.changed = true;
                    n.students_updated += 1;
                }
                s
            }
            None => {
                slots.push(Student {
                    id: None,
                    name: e.student_name.clone(),
                    org: orgs[i],
                    changed: false,
                });
                n.students_created += 1;
                by_key.insert(k, slots.len() - 1);
                slots.len() - 1
            }
        };
        of_entry.push(s);
    }
    let changed: Vec<(i64, &str, i64)> = slots
        .iter()
        .filter(|s| s.changed)
        .filter_map(|s| Some((s.id?, s.name.as_str(), s.org)))
        .collect();
    if !changed.is_empty() {
        sqlx::query(
            "UPDATE contacts SET full_name = json_extract(j.value, '$[1]'), org_id = json_extract(j.value, '$[2]'), \
             updated_at = ?1 FROM json_each(?2) j WHERE contacts.id = json_extract(j.value, '$[0]')",
        )
        .bind(now)
        .bind(json(&changed))
        .execute(&mut *c)
        .await?;
    }
    let new: Vec<(&StudentKey, usize)> = by_key
        .iter()
        .filter(|(_, s)| slots[**s].id.is_none())
        .map(|(k, s)| (k, *s))
        .collect();
    for chunk in new.chunks(ROWS) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO contacts (org_id, school_id, role, full_name, student_code, consent_source, consent_at, \
             created_at, updated_at) ",
        );
        qb.push_values(chunk, |mut b, (k, s)| {
            let code = match k {
                StudentKey::Code(code) => Some(code.as_str()),
                StudentKey::Named(..) => None,
            };
            b.push_bind(slots[*s].org)
                .push_bind(school_id)
                .push_bind("student")
                .push_bind(slots[*s].name.clone())
                .push_bind(code)
                .push_bind(CONSENT)
                .push_bind(now)
                .push_bind(now)
                .push_bind(now);
        });
        qb.push(" RETURNING id, student_code, org_id, full_name");
        for r in qb.build().fetch_all(&mut *c).await? {
            let k = match r.try_get::<Option<String>, _>("student_code")? {
                Some(code) => StudentKey::Code(code),
                None => StudentKey::Named(r.try_get("org_id")?, r.try_get("full_name")?),
            };
            if let Some(&s) = by_key.get(&k) {
                slots[s].id = Some(r.try_get("id")?);
            }
        }
    }
    of_entry
        .into_iter()
        .map(|s| {
            slots[s]
                .id
                .ok_or_else(|| StoreError::Corrupt("an imported student got no id".into()))
        })
        .collect()
}

#[derive(Clone, PartialEq, Eq)]
struct Parent {
    id: Option<i64>,
    name: String,
    phone: Option<String>,
    email: Option<String>,
    zalo: Option<String>,
    changed: bool,
}

/// Where parents are found again: by phone, then email, then Zalo id.
#[derive(Default)]
struct ParentIndex {
    phone: HashMap<String, usize>,
    email: HashMap<String, usize>,
    zalo: HashMap<String, usize>,
}

impl ParentIndex {
    fn find(
        &self,
        phone: &Option<String>,
        email: &Option<String>,
        zalo: &Option<String>,
    ) -> Option<usize> {
        phone
            .as_ref()
            .and_then(|p| self.phone.get(p))
            .or_else(|| email.as_ref().and_then(|e| self.email.get(e)))
            .or_else(|| zalo.as_ref().and_then(|z| self.zalo.get(z)))
            .copied()
    }
    /// Registers a parent's keys; a key already held by an earlier parent stays with it.
    fn add(&mut self, p: &Parent, slot: usize) {
        for (map, v) in [
            (&mut self.phone, &p.phone),
            (&mut self.email, &p.email),
            (&mut self.zalo, &p.zalo),
        ] {
            if let Some(v) = v {
                map.entry(v.clone()).or_insert(slot);
            }
        }
    }
}

/// Each parent's id, created or updated as the rows say. A parent with a phone, email or Zalo id is
/// found again by it; one without any (a name only, or a number that was a typo) by name among the
/// parents already linked to the same student, so that importing the file again adds nobody.
async fn parents(
    c: &mut SqliteConnection,
    school_id: i64,
    flat: &[(usize, &ParentEntry)],
    students: &[i64],
    now: Millis,
    n: &mut ImportCounts,
) -> Result<Vec<i64>> {
    let given = |f: fn(&ParentEntry) -> &Option<String>| -> String {
        json(
            &flat
                .iter()
                .filter_map(|(_, p)| f(p).as_deref())
                .collect::<Vec<_>>(),
        )
    };
    let rows = sqlx::query(
        "SELECT id, full_name, phone, email, zalo_user_id FROM contacts WHERE school_id = ?1 AND role = 'parent' \
         AND (phone IN (SELECT value FROM json_each(?2)) OR email IN (SELECT value FROM json_each(?3)) \
              OR zalo_user_id IN (SELECT value FROM json_each(?4))) ORDER BY id",
    )
    .bind(school_id)
    .bind(given(|p| &p.phone))
    .bind(given(|p| &p.email))
    .bind(given(|p| &p.zalo_user_id))
    .fetch_all(&mut *c)
    .await?;
    let mut slots: Vec<Parent> = Vec::new();
    let mut index = ParentIndex::default();
    for r in rows {
        let p = Parent {
            id: Some(r.try_get("id")?),
            name: r.try_get("full_name")?,
            phone: r.try_get("phone")?,
            email: r.try_get("email")?,
            zalo: r.try_get("zalo_user_id")?,
            changed: false,
        };
        index.add(&p, slots.len());
        slots.push(p);
    }
    let keyless =
        |p: &ParentEntry| p.phone.is_none() && p.email.is_none() && p.zalo_user_id.is_none();
    // Parents without any address, found by (student, name).
    let mut named: HashMap<(i64, String), usize> = HashMap::new();
    let of_students: Vec<i64> = flat
        .iter()
        .filter(|(_, p)| keyless(p))
        .map(|(i, _)| students[*i])
        .collect();
    if !of_students.is_empty() {
        let rows = sqlx::query(
            "SELECT g.student_id, c.id, c.full_name FROM guardian_links g JOIN contacts c ON c.id = g.parent_id \
             WHERE g.student_id IN (SELECT value FROM json_each(?1)) AND c.role = 'parent' \
               AND c.phone IS NULL AND c.email IS NULL AND c.zalo_user_id IS NULL ORDER BY c.id",
        )
        .bind(json(&of_students))
        .fetch_all(&mut *c)
        .await?;
        for r in rows {
            let name: String = r.try_get("full_name")?;
            let key = (r.try_get::<i64, _>("student_id")?, name.clone());
            if let std::collections::hash_map::Entry::Vacant(v) = named.entry(key) {
                v.insert(slots.len());
                slots.push(Parent {
                    id: Some(r.try_get("id")?),
                    name,
                    phone: None,
                    email: None,
                    zalo: None,
                    changed: false,
                });
            }
        }
    }
    let mut of_entry = Vec::with_capacity(flat.len());
    for (i, p) in flat {
        if keyless(p) {
            let key = (students[*i], p.name.clone());
            let s = match named.get(&key) {
                Some(&s) => s,
                None => {
                    n.parents_created += 1;
                    slots.push(Parent {
                        id: None,
                        name: p.name.clone(),
                        phone: None,
                        email: None,
                        zalo: None,
                        changed: false,
                    });
                    named.insert(key, slots.len() - 1);
                    slots.len() - 1
                }
            };
            of_entry.push(s);
            continue;
        }
        let s = match index.find(&p.phone, &p.email, &p.zalo_user_id) {
            Some(s) => {
                let old = &slots[s];
                // A column left empty in the file keeps what Loa holds; a filled one replaces it.
                let new = Parent {
                    id: old.id,
                    name: p.name.clone(),
                    phone: p.phone.clone().or(old.phone.clone()),
                    email: p.email.clone().or(old.email.clone()),
                    zalo: p.zalo_user_id.clone().or(old.zalo.clone()),
                    changed: old.changed,
                };
                if (&new.name, &new.phone, &new.email, &new.zalo)
                    != (&old.name, &old.phone, &old.email, &old.zalo)
                {
                    n.parents_updated += 1;
                    slots[s] = Parent {
                        changed: true,
                        ..new
                    };
                    let updated = slots[s].clone();
                    index.add(&updated, s);
                }
                s
            }
            None => {
                let new = Parent {
                    id: None,
                    name: p.name.clone(),
                    phone: p.phone.clone(),
                    email: p.email.clone(),
                    zalo: p.zalo_user_id.clone(),
                    changed: false,
                };
                n.parents_created += 1;
                index.add(&new, slots.len());
                slots.push(new);
                slots.len() - 1
            }
        };
        of_entry.push(s);
    }
    // [id, name, phone, email, zalo] for each existing parent a row changed.
    let changed: Vec<serde_json::Value> = slots
        .iter()
        .filter(|p| p.changed)
        .filter_map(|p| Some(serde_json::json!([p.id?, p.name, p.phone, p.email, p.zalo])))
        .collect();
    if !changed.is_empty() {
        sqlx::query(
            "UPDATE contacts SET full_name = json_extract(j.value, '$[1]'), phone = json_extract(j.value, '$[2]'), \
             email = json_extract(j.value, '$[3]'), zalo_user_id = json_extract(j.value, '$[4]'), updated_at = ?1 \
             FROM json_each(?2) j WHERE contacts.id = json_extract(j.value, '$[0]')",
        )
        .bind(now)
        .bind(json(&changed))
        .execute(&mut *c)
        .await?;
    }
    let is_keyless = |p: &Parent| p.phone.is_none() && p.email.is_none() && p.zalo.is_none();
    let new: Vec<usize> = (0..slots.len())
        .filter(|s| slots[*s].id.is_none() && !is_keyless(&slots[*s]))
        .collect();
    for chunk in new.chunks(ROWS) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO contacts (org_id, school_id, role, full_name, phone, email, zalo_user_id, consent_source, \
             consent_at, created_at, updated_at) ",
        );
        qb.push_values(chunk, |mut b, s| {
            let p = &slots[*s];
            b.push_bind(school_id)
                .push_bind(school_id)
                .push_bind("parent")
                .push_bind(p.name.clone())
                .push_bind(p.phone.clone())
                .push_bind(p.email.clone())
                .push_bind(p.zalo.clone())
                .push_bind(CONSENT)
                .push_bind(now)
                .push_bind(now)
                .push_bind(now);
        });
        qb.push(" RETURNING id, phone, email, zalo_user_id");
        // RETURNING order is not promised: map each new row back by the keys that made it new.
        for r in qb.build().fetch_all(&mut *c).await? {
            let s = index.find(
                &r.try_get("phone")?,
                &r.try_get("email")?,
                &r.try_get("zalo_user_id")?,
            );
            if let Some(s) = s.filter(|s| slots[*s].id.is_none()) {
                slots[s].id = Some(r.try_get("id")?);
            }
        }
    }
    // Parents without an address are few (a typo, a name alone): one statement each.
    for p in slots.iter_mut() {
        if p.id.is_some() || !is_keyless(p) {
            continue;
        }
        let r = sqlx::query(
            "INSERT INTO contacts (org_id, school_id, role, full_name, consent_source, consent_at, created_at, updated_at) \
             VALUES (?1, ?1, 'parent', ?2, ?3, ?4, ?4, ?4) RETURNING id",
        )
        .bind(school_id)
        .bind(p.name.clone())
        .bind(CONSENT)
        .bind(now)
        .written_row(&mut *c)
        .await?;
        p.id = Some(r.try_get("id")?);
    }
    of_entry
        .into_iter()
        .map(|s| {
            slots[s]
                .id
                .ok_or_else(|| StoreError::Corrupt("an imported parent got no id".into()))
        })
        .collect()
}
