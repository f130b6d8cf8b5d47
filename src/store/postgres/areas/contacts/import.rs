//! PostgreSQL side of a roster import: classes found or created under the school, students found by
//! student code (or class and name, or name and a parent's address after a promotion), parents by
//! phone, email or Zalo id, changed fields updated and parents linked; and of a staff list. The
//! same rules as the SQLite store's, set-based per piece: existing people are read with one query
//! per key, matched in memory in file order (a later row about the same person updates what an
//! earlier one wrote), and written with one statement per kind of write, the rows as `unnest`
//! arrays (one bound parameter per column, whatever the number of rows: PostgreSQL allows 65,535).
//!
//! SQLite's single writer serialised an import against everything else. Here two imports (two
//! instances, or an upload sent twice) can run at once: each transaction first takes the school's
//! (or node's) row `FOR NO KEY UPDATE`, so imports into one node take turns piece by piece, and a
//! piece reads what the previous one committed before it matches anybody (read committed: every
//! statement sees what committed before it). Without that lock, two imports of the same file would
//! both find no parent by a phone and both create them. `NO KEY UPDATE` does not conflict with the
//! `KEY SHARE` lock that foreign-key checks take, so the API can still add people and classes to
//! the school meanwhile.

use std::collections::{HashMap, HashSet};

use sqlx::{PgConnection, Row};

use super::super::super::{PgStore, Written};
use crate::domain::Millis;
use crate::domain::org::{Org, OrgKind};
use crate::domain::roster::{ParentEntry, RosterEntry, StaffEntry};
use crate::store::{ImportCounts, ImportMode, Result, StoreError};

/// The consent source of people a school's roster brings in: the school holds their consent.
const CONSENT: &str = "roster_import";

/// Codes tried for a new class before the import gives up (`1A`, `1A-2`, ...).
const CODE_TRIES: usize = 20;

/// People of one list a staff row is compared with (the same phone, email or name): bounded, so that
/// a list of thousands of rows with one name stays linear.
const STAFF_CANDIDATES: i64 = 64;

impl PgStore {
    pub(super) async fn do_import_roster(
        &self,
        school_id: i64,
        pieces: &mut tokio::sync::mpsc::Receiver<Vec<RosterEntry>>,
        now: Millis,
        mode: ImportMode,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<ImportCounts> {
        let school = self.fetch_org(school_id).await?;
        if school.kind != OrgKind::School {
            return Err(StoreError::Invalid(
                "a roster is imported into a school".into(),
            ));
        }
        let mut n = ImportCounts::default();
        match mode {
            ImportMode::Commit => {
                while let Some(piece) = pieces.recv().await {
                    let mut tx = self.pool.begin().await?;
                    lock_node(&mut tx, school_id).await?;
                    import_piece(&mut tx, &school, &piece, now, &mut n).await?;
                    tx.commit().await?;
                    progress(piece.len());
                }
            }
            ImportMode::DryRun => {
                let mut tx = self.pool.begin().await?;
                lock_node(&mut tx, school_id).await?;
                while let Some(piece) = pieces.recv().await {
                    import_piece(&mut tx, &school, &piece, now, &mut n).await?;
                    progress(piece.len());
                }
                tx.rollback().await?;
            }
        }
        Ok(n)
    }

    pub(super) async fn do_import_staff(
        &self,
        org_id: i64,
        entries: &[StaffEntry],
        now: Millis,
        mode: ImportMode,
    ) -> Result<ImportCounts> {
        let org = self.fetch_org(org_id).await?;
        if org.kind == OrgKind::Class {
            return Err(StoreError::Invalid(
                "a staff list is imported into a school, a Phòng or a Sở".into(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        lock_node(&mut tx, org_id).await?;
        let mut n = ImportCounts::default();
        staff(&mut tx, &org, entries, now, &mut n).await?;
        match mode {
            ImportMode::Commit => tx.commit().await?,
            ImportMode::DryRun => tx.rollback().await?,
        }
        Ok(n)
    }
}

/// Takes the node's row for the rest of the transaction: the imports into one node take turns (see
/// the top of this file). A node deleted meanwhile is not found.
async fn lock_node(c: &mut PgConnection, org_id: i64) -> Result<()> {
    sqlx::query("SELECT id FROM orgs WHERE id = $1 FOR NO KEY UPDATE")
        .bind(org_id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound("organisation"))?;
    Ok(())
}

/// One piece of a roster, inside the caller's transaction.
async fn import_piece(
    c: &mut PgConnection,
    school: &Org,
    entries: &[RosterEntry],
    now: Millis,
    n: &mut ImportCounts,
) -> Result<()> {
    let school_id = school.id;
    let mut classes: HashMap<&str, i64> = HashMap::new();
    for name in entries.iter().filter_map(|e| e.class.as_deref()) {
        if !classes.contains_key(name) {
            let id = class_id(c, school_id, &school.code, &school.path, name, now, n).await?;
            classes.insert(name, id);
        }
    }
    let orgs: Vec<i64> = entries
        .iter()
        .map(|e| e.class.as_deref().map(|c| classes[c]).unwrap_or(school_id))
        .collect();
    let students = students(c, school_id, entries, &orgs, now, n).await?;
    // Every parent a row names, with the row it comes from.
    let flat: Vec<(usize, &ParentEntry)> = entries
        .iter()
        .enumerate()
        .flat_map(|(i, e)| e.parents.iter().map(move |p| (i, p)))
        .collect();
    let parents = parents(c, school_id, &flat, &students, now, n).await?;
    // One statement for the piece's links, as arrays: no bound-parameter limit to mind.
    let (mut ps, mut ss, mut rs) = (Vec::new(), Vec::new(), Vec::new());
    for ((i, p), id) in flat.iter().zip(&parents) {
        ps.push(*id);
        ss.push(students[*i]);
        rs.push(p.relation.as_deref());
    }
    if !ps.is_empty() {
        n.links_created += sqlx::query(
            "INSERT INTO guardian_links (parent_id, student_id, relation) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[]) \
             ON CONFLICT (parent_id, student_id) DO NOTHING",
        )
        .bind(&ps)
        .bind(&ss)
        .bind(&rs)
        .execute(&mut *c)
        .await?
        .rows_affected();
    }
    Ok(())
}

/// Further phones as stored: a JSON array, NULL when there are none.
fn other_phones(v: &[String]) -> Option<String> {
    (!v.is_empty()).then(|| json(&v))
}

/// A staff list into a node: each person found again by phone, email or Zalo id among the node's
/// staff, else by name (a person listed without any address); a filled cell replaces what Loa
/// holds, an empty one keeps it.
async fn staff(
    c: &mut PgConnection,
    org: &Org,
    entries: &[StaffEntry],
    now: Millis,
    n: &mut ImportCounts,
) -> Result<()> {
    let school_id = (org.kind == OrgKind::School).then_some(org.id);
    let mut seen: HashSet<i64> = HashSet::new();
    for e in entries {
        let found_rows = sqlx::query(
            "SELECT id, full_name, phone, email, zalo_user_id, other_phones, landline, position, staff_group \
             FROM contacts WHERE org_id = $1 AND role = 'staff' \
               AND (($2::text IS NOT NULL AND phone = $2) OR ($3::text IS NOT NULL AND email = $3) \
                    OR ($4::text IS NOT NULL AND zalo_user_id = $4) \
                    OR ($2::text IS NULL AND $3::text IS NULL AND $4::text IS NULL AND full_name = $5)) \
             ORDER BY (phone IS NOT DISTINCT FROM $2) DESC, (email IS NOT DISTINCT FROM $3) DESC, id LIMIT $6",
        )
        .bind(org.id)
        .bind(&e.phone)
        .bind(&e.email)
        .bind(&e.zalo_user_id)
        .bind(&e.name)
        .bind(STAFF_CANDIDATES)
        .fetch_all(&mut *c)
        .await?;
        // Two rows of one list are two people (a shared office phone, two teachers of one name):
        // a person this list already created or matched is not found again.
        let mut found = None;
        for r in found_rows {
            if !seen.contains(&r.try_get::<i64, _>("id")?) {
                found = Some(r);
                break;
            }
        }
        let others = other_phones(&e.other_phones);
        let Some(r) = found else {
            let r = sqlx::query(
                "INSERT INTO contacts (org_id, school_id, role, full_name, phone, email, zalo_user_id, other_phones, \
                 landline, position, staff_group, consent_source, consent_at, created_at, updated_at) \
                 VALUES ($1, $2, 'staff', $3, $4, $5, $6, $7, $8, $9, $10, 'staff_import', $11, $11, $11) RETURNING id",
            )
            .bind(org.id)
            .bind(school_id)
            .bind(&e.name)
            .bind(&e.phone)
            .bind(&e.email)
            .bind(&e.zalo_user_id)
            .bind(&others)
            .bind(&e.landline)
            .bind(&e.position)
            .bind(&e.group)
            .bind(now)
            .written_row(&mut *c)
            .await?;
            seen.insert(r.try_get("id")?);
            n.staff_created += 1;
            continue;
        };
        let id: i64 = r.try_get("id")?;
        let old: [Option<String>; 8] = [
            Some(r.try_get("full_name")?),
            r.try_get("phone")?,
            r.try_get("email")?,
            r.try_get("zalo_user_id")?,
            r.try_get("other_phones")?,
            r.try_get("landline")?,
            r.try_get("position")?,
            r.try_get("staff_group")?,
        ];
        let given = [
            Some(e.name.clone()),
            e.phone.clone(),
            e.email.clone(),
            e.zalo_user_id.clone(),
            others,
            e.landline.clone(),
            e.position.clone(),
            e.group.clone(),
        ];
        let new: Vec<Option<String>> = given
            .iter()
            .zip(&old)
            .map(|(g, o)| g.clone().or(o.clone()))
            .collect();
        seen.insert(id);
        if new[..] == old[..] {
            continue;
        }
        sqlx::query(
            "UPDATE contacts SET full_name = $1, phone = $2, email = $3, zalo_user_id = $4, other_phones = $5, \
             landline = $6, position = $7, staff_group = $8, updated_at = $9 WHERE id = $10",
        )
        .bind(&new[0])
        .bind(&new[1])
        .bind(&new[2])
        .bind(&new[3])
        .bind(&new[4])
        .bind(&new[5])
        .bind(&new[6])
        .bind(&new[7])
        .bind(now)
        .bind(id)
        .execute(&mut *c)
        .await?;
        n.staff_updated += 1;
    }
    Ok(())
}

async fn class_id(
    c: &mut PgConnection,
    school_id: i64,
    school_code: &str,
    school_path: &str,
    name: &str,
    now: Millis,
    n: &mut ImportCounts,
) -> Result<i64> {
    let find = "SELECT id FROM orgs WHERE parent_id = $1 AND kind = 'class' AND name = $2 ORDER BY id LIMIT 1";
    if let Some(r) = sqlx::query(find)
        .bind(school_id)
        .bind(name)
        .fetch_optional(&mut *c)
        .await?
    {
        return Ok(r.try_get(0)?);
    }
    // The class code is `<school code>-<class>`, unique within the school; if staff already gave
    // that code to another class of the school, the next free `-2`, `-3`, ... is taken. The path
    // needs the new id: one statement takes it from the identity and writes both (as `create_org`).
    let mut id = None;
    for n in 1..=CODE_TRIES {
        let code = match n {
            1 => format!("{school_code}-{name}"),
            n => format!("{school_code}-{name}-{n}"),
        };
        if let Some(r) = sqlx::query(
            "WITH n AS (SELECT nextval(pg_get_serial_sequence('orgs', 'id')) AS id) \
             INSERT INTO orgs (id, parent_id, kind, code, name, path, created_at) \
             SELECT n.id, $1, 'class', $2, $3, $4 || n.id || '/', $5 FROM n \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(school_id)
        .bind(code)
        .bind(name)
        .bind(school_path)
        .bind(now)
        .written_opt(&mut *c)
        .await?
        {
            id = Some(r.try_get::<i64, _>(0)?);
            break;
        }
        // The code is taken. Imports into the school take turns, but staff may have just created
        // this very class through the API (the insert waited for their commit): found by name, it
        // is used rather than made a second time.
        if let Some(r) = sqlx::query(find)
            .bind(school_id)
            .bind(name)
            .fetch_optional(&mut *c)
            .await?
        {
            return Ok(r.try_get(0)?);
        }
    }
    let id = id.ok_or_else(|| {
        StoreError::Conflict(format!(
            "no free class code for class {name:?} in the school"
        ))
    })?;
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
    c: &mut PgConnection,
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
    let (named_orgs, named_names): (Vec<i64>, Vec<&str>) = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.student_code.is_none())
        .map(|(i, e)| (orgs[i], e.student_name.as_str()))
        .unzip();
    let mut found = sqlx::query(
        "SELECT c.id, c.student_code, c.full_name, c.org_id FROM contacts c \
         WHERE c.school_id = $1 AND c.student_code = ANY($2) ORDER BY c.id",
    )
    .bind(school_id)
    .bind(&codes)
    .fetch_all(&mut *c)
    .await?;
    found.extend(
        sqlx::query(
            "SELECT c.id, c.student_code, c.full_name, c.org_id \
             FROM unnest($2::bigint[], $3::text[]) AS j(org_id, full_name) \
             JOIN contacts c ON c.org_id = j.org_id AND c.role = 'student' AND c.full_name = j.full_name \
             WHERE c.school_id = $1 AND c.student_code IS NULL ORDER BY c.id",
        )
        .bind(school_id)
        .bind(&named_orgs)
        .bind(&named_names)
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
    promoted(c, school_id, entries, &key, &mut slots, &mut by_key).await?;
    let mut of_entry = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let k = key(i);
        let s = match by_key.get(&k) {
            Some(&s) => {
                let st = &mut slots[s];
                if st.name != e.student_name || st.org != orgs[i] {
                    // Counted once per student Loa already held, however many rows change it.
                    if st.id.is_some() && !st.changed {
                        n.students_updated += 1;
                        n.students_moved += (st.org != orgs[i]) as u64;
                    }
                    st.name = e.student_name.clone();
                    st.org = orgs[i];
                    st.changed = true;
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
    // [id], [name], [class] of each student Loa held that a row changed.
    let (mut ids, mut names, mut classes) = (Vec::new(), Vec::new(), Vec::new());
    for st in slots.iter().filter(|s| s.changed) {
        if let Some(id) = st.id {
            ids.push(id);
            names.push(st.name.as_str());
            classes.push(st.org);
        }
    }
    if !ids.is_empty() {
        sqlx::query(
            "UPDATE contacts SET full_name = j.full_name, org_id = j.org_id, updated_at = $1 \
             FROM unnest($2::bigint[], $3::text[], $4::bigint[]) AS j(id, full_name, org_id) \
             WHERE contacts.id = j.id",
        )
        .bind(now)
        .bind(&ids)
        .bind(&names)
        .bind(&classes)
        .execute(&mut *c)
        .await?;
    }
    // The new students in file order (the order of their slots), one statement for the piece.
    let mut new: Vec<(&StudentKey, usize)> = by_key
        .iter()
        .filter(|(_, s)| slots[**s].id.is_none())
        .map(|(k, s)| (k, *s))
        .collect();
    new.sort_by_key(|(_, s)| *s);
    if !new.is_empty() {
        let (mut classes, mut names, mut codes) = (Vec::new(), Vec::new(), Vec::new());
        for (k, s) in &new {
            classes.push(slots[*s].org);
            names.push(slots[*s].name.clone());
            codes.push(match k {
                StudentKey::Code(code) => Some(code.as_str()),
                StudentKey::Named(..) => None,
            });
        }
        let rows = sqlx::query(
            "INSERT INTO contacts (org_id, school_id, role, full_name, student_code, consent_source, consent_at, \
             created_at, updated_at) \
             SELECT j.org_id, $1, 'student', j.full_name, j.student_code, $2, $3, $3, $3 \
             FROM unnest($4::bigint[], $5::text[], $6::text[]) WITH ORDINALITY AS j(org_id, full_name, student_code, i) \
             ORDER BY j.i RETURNING id, student_code, org_id, full_name",
        )
        .bind(school_id)
        .bind(CONSENT)
        .bind(now)
        .bind(&classes)
        .bind(&names)
        .bind(&codes)
        .fetch_all(&mut *c)
        .await?;
        // RETURNING order is not promised: each new row is mapped back by its key.
        for r in rows {
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

/// Students the file names without a code, in a class where Loa has no one of that name: after a
/// promotion (4B -> 5B) they are in another class of the school (and may have a code from last
/// year's file, which this year's export left out). Such a student is the one of the
/// same name in the school who shares a parent's phone, email or Zalo id with the row. A family in
/// common says more than a class and a name: a student the row of their old class matched only by
/// name (no parent in common) is moved to the row that shares their family, and the old class's row
/// is a new, same-named pupil. A same-named student with no parent in common stays another person.
async fn promoted<K: Fn(usize) -> StudentKey>(
    c: &mut PgConnection,
    school_id: i64,
    entries: &[RosterEntry],
    key: &K,
    slots: &mut Vec<Student>,
    by_key: &mut HashMap<StudentKey, usize>,
) -> Result<()> {
    // Rows without a code; one without a class (school level) never takes a student out of theirs.
    let candidates: Vec<usize> = (0..entries.len())
        .filter(|i| entries[*i].student_code.is_none() && entries[*i].class.is_some())
        .collect();
    if !candidates.iter().any(|i| !by_key.contains_key(&key(*i))) {
        return Ok(());
    }
    let names: HashSet<&str> = candidates
        .iter()
        .map(|i| entries[*i].student_name.as_str())
        .collect();
    let rows = sqlx::query(
        "SELECT c.id, c.full_name, c.org_id, p.phone, p.email, p.zalo_user_id, p.other_phones FROM contacts c \
         JOIN guardian_links g ON g.student_id = c.id JOIN contacts p ON p.id = g.parent_id \
         WHERE c.school_id = $1 AND c.role = 'student' AND c.full_name = ANY($2) ORDER BY c.id",
    )
    .bind(school_id)
    .bind(names.iter().copied().collect::<Vec<&str>>())
    .fetch_all(&mut *c)
    .await?;
    // name -> [(student id, class, the addresses of their parents)]
    let mut by_name: HashMap<String, Vec<(i64, i64, HashSet<String>)>> = HashMap::new();
    for r in rows {
        let id: i64 = r.try_get("id")?;
        let list = by_name.entry(r.try_get("full_name")?).or_default();
        if list.last().is_none_or(|(last, _, _)| *last != id) {
            list.push((id, r.try_get("org_id")?, HashSet::new()));
        }
        if let Some((_, _, addrs)) = list.last_mut() {
            for col in ["phone", "email", "zalo_user_id"] {
                if let Some(v) = r.try_get::<Option<String>, _>(col)? {
                    addrs.insert(v);
                }
            }
            if let Some(j) = r.try_get::<Option<String>, _>("other_phones")? {
                addrs.extend(serde_json::from_str::<Vec<String>>(&j).unwrap_or_default());
            }
        }
    }
    let addrs_of = |i: usize| -> Vec<&String> {
        entries[i]
            .parents
            .iter()
            .flat_map(|p| {
                p.phone
                    .iter()
                    .chain(&p.other_phones)
                    .chain(&p.email)
                    .chain(&p.zalo_user_id)
            })
            .collect()
    };
    let family = |i: usize, id: i64| -> Option<&HashSet<String>> {
        by_name
            .get(&entries[i].student_name)?
            .iter()
            .find(|(s, _, _)| *s == id)
            .map(|(_, _, a)| a)
    };
    // Students matched by class and name that a promotion may not take: every such match, unless
    // both sides name a family and the families have nothing in common.
    let mut taken: HashSet<i64> = HashSet::new();
    for &i in &candidates {
        let Some(id) = by_key.get(&key(i)).and_then(|&s| slots[s].id) else {
            continue;
        };
        let mine = addrs_of(i);
        let weak = !mine.is_empty()
            && family(i, id).is_some_and(|a| !a.is_empty() && !mine.iter().any(|x| a.contains(*x)));
        if !weak {
            taken.insert(id);
        }
    }
    for &i in &candidates {
        let k = key(i);
        if by_key.contains_key(&k) {
            continue;
        }
        let mine = addrs_of(i);
        let Some(list) = by_name.get(&entries[i].student_name) else {
            continue;
        };
        let found = list
            .iter()
            .find(|(id, _, a)| !taken.contains(id) && mine.iter().any(|x| a.contains(*x)));
        let Some((id, org, _)) = found else { continue };
        taken.insert(*id);
        // The student may already hold a slot, matched by their old class and name: that slot is
        // moved to this key, so that one id has one slot and the old class's row is a new pupil.
        let slot = match slots.iter().position(|s| s.id == Some(*id)) {
            Some(s) => {
                by_key.retain(|_, v| *v != s);
                s
            }
            None => {
                slots.push(Student {
                    id: Some(*id),
                    name: entries[i].student_name.clone(),
                    org: *org,
                    changed: false,
                });
                slots.len() - 1
            }
        };
        by_key.insert(k, slot);
    }
    Ok(())
}

#[derive(Clone, PartialEq, Eq)]
struct Parent {
    id: Option<i64>,
    name: String,
    phone: Option<String>,
    email: Option<String>,
    zalo: Option<String>,
    /// JSON array of further mobiles, as stored.
    others: Option<String>,
    landline: Option<String>,
    changed: bool,
}

/// Parents as one array per column, for `unnest` (ids only for the ones Loa holds).
#[derive(Default)]
struct ParentColumns {
    ids: Vec<i64>,
    names: Vec<String>,
    phones: Vec<Option<String>>,
    emails: Vec<Option<String>>,
    zalos: Vec<Option<String>>,
    others: Vec<Option<String>>,
    landlines: Vec<Option<String>>,
}

impl ParentColumns {
    fn push(&mut self, p: &Parent) {
        self.names.push(p.name.clone());
        self.phones.push(p.phone.clone());
        self.emails.push(p.email.clone());
        self.zalos.push(p.zalo.clone());
        self.others.push(p.others.clone());
        self.landlines.push(p.landline.clone());
    }
}

/// Where parents are found again: by phone, then email, then Zalo id.
#[derive(Default)]
struct ParentIndex {
    phone: HashMap<String, usize>,
    /// Other phones, by the parent holding them.
    other: HashMap<String, usize>,
    email: HashMap<String, usize>,
    zalo: HashMap<String, usize>,
}

impl ParentIndex {
    /// The parent holding one of these keys: the phone as someone's phone, then as someone's other
    /// phone, then an other phone as someone's phone, then the email, then the Zalo id. Two other
    /// phones never match: a second number several families list (a grandparent's, the shop's)
    /// would merge them.
    fn find(
        &self,
        phone: &Option<String>,
        others: &[String],
        email: &Option<String>,
        zalo: &Option<String>,
    ) -> Option<usize> {
        phone
            .as_ref()
            .and_then(|p| self.phone.get(p).or_else(|| self.other.get(p)))
            .or_else(|| others.iter().find_map(|o| self.phone.get(o)))
            .or_else(|| email.as_ref().and_then(|e| self.email.get(e)))
            .or_else(|| zalo.as_ref().and_then(|z| self.zalo.get(z)))
            .copied()
    }
    /// Registers a parent's keys; a key already held by an earlier parent stays with it.
    fn add(&mut self, p: &Parent, slot: usize) {
        if let Some(v) = &p.phone {
            self.phone.entry(v.clone()).or_insert(slot);
        }
        for v in others_of(&p.others) {
            self.other.entry(v).or_insert(slot);
        }
        for (map, v) in [(&mut self.email, &p.email), (&mut self.zalo, &p.zalo)] {
            if let Some(v) = v {
                map.entry(v.clone()).or_insert(slot);
            }
        }
    }
}

/// Other phones as stored (a JSON array) back to a list; what Loa wrote itself, so a value it cannot
/// read is no phone rather than an error.
fn others_of(stored: &Option<String>) -> Vec<String> {
    stored
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

/// Each parent's id, created or updated as the rows say. A parent with a phone, email or Zalo id is
/// found again by it; one without any (a name only, or a number that was a typo) by name among the
/// parents already linked to the same student, so that importing the file again adds nobody.
async fn parents(
    c: &mut PgConnection,
    school_id: i64,
    flat: &[(usize, &ParentEntry)],
    students: &[i64],
    now: Millis,
    n: &mut ImportCounts,
) -> Result<Vec<i64>> {
    let given = |f: fn(&ParentEntry) -> &Option<String>| -> Vec<&str> {
        flat.iter().filter_map(|(_, p)| f(p).as_deref()).collect()
    };
    // Every mobile a row gives, first or other: a number Loa holds as someone's other phone finds
    // that person too (the second query: few parents have other phones, and they are indexed).
    let mobiles: Vec<&str> = flat
        .iter()
        .flat_map(|(_, p)| p.phone.iter().chain(&p.other_phones))
        .map(String::as_str)
        .collect();
    let mut rows = sqlx::query(
        "SELECT id, full_name, phone, email, zalo_user_id, other_phones, landline FROM contacts \
         WHERE school_id = $1 AND role = 'parent' \
         AND (phone = ANY($2) OR email = ANY($3) OR zalo_user_id = ANY($4)) ORDER BY id",
    )
    .bind(school_id)
    .bind(&mobiles)
    .bind(given(|p| &p.email))
    .bind(given(|p| &p.zalo_user_id))
    .fetch_all(&mut *c)
    .await?;
    rows.extend(
        sqlx::query(
            "SELECT id, full_name, phone, email, zalo_user_id, other_phones, landline FROM contacts \
             WHERE school_id = $1 AND role = 'parent' AND other_phones IS NOT NULL \
               AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(contacts.other_phones::jsonb) AS o(v) \
                           WHERE o.v = ANY($2)) ORDER BY id",
        )
        .bind(school_id)
        .bind(&mobiles)
        .fetch_all(&mut *c)
        .await?,
    );
    let mut seen_ids: HashSet<i64> = HashSet::new();
    let mut slots: Vec<Parent> = Vec::new();
    let mut index = ParentIndex::default();
    for r in rows {
        if !seen_ids.insert(r.try_get("id")?) {
            continue;
        }
        let p = Parent {
            id: Some(r.try_get("id")?),
            name: r.try_get("full_name")?,
            phone: r.try_get("phone")?,
            email: r.try_get("email")?,
            zalo: r.try_get("zalo_user_id")?,
            others: r.try_get("other_phones")?,
            landline: r.try_get("landline")?,
            changed: false,
        };
        index.add(&p, slots.len());
        slots.push(p);
    }
    let keyless = |p: &ParentEntry| !p.has_key();
    // Parents without any address, found by (student, name).
    let mut named: HashMap<(i64, String), usize> = HashMap::new();
    let of_students: Vec<i64> = flat
        .iter()
        .filter(|(_, p)| keyless(p))
        .map(|(i, _)| students[*i])
        .collect();
    if !of_students.is_empty() {
        let rows = sqlx::query(
            "SELECT g.student_id, c.id, c.full_name, c.landline FROM guardian_links g JOIN contacts c ON c.id = g.parent_id \
             WHERE g.student_id = ANY($1) AND c.role = 'parent' \
               AND c.phone IS NULL AND c.email IS NULL AND c.zalo_user_id IS NULL ORDER BY c.id",
        )
        .bind(&of_students)
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
                    others: None,
                    landline: r.try_get("landline")?,
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
                Some(&s) => {
                    // A landline is all such a parent can gain from a later file.
                    if p.landline.is_some() && slots[s].landline != p.landline {
                        if slots[s].id.is_some() && !slots[s].changed {
                            n.parents_updated += 1;
                        }
                        slots[s].landline = p.landline.clone();
                        slots[s].changed = true;
                    }
                    s
                }
                None => {
                    n.parents_created += 1;
                    slots.push(Parent {
                        id: None,
                        name: p.name.clone(),
                        phone: None,
                        email: None,
                        zalo: None,
                        others: None,
                        landline: p.landline.clone(),
                        changed: false,
                    });
                    named.insert(key, slots.len() - 1);
                    slots.len() - 1
                }
            };
            of_entry.push(s);
            continue;
        }
        let s = match index.find(&p.phone, &p.other_phones, &p.email, &p.zalo_user_id) {
            Some(s) => {
                let old = &slots[s];
                // A column left empty in the file keeps what Loa holds; a filled one replaces it.
                let new = Parent {
                    id: old.id,
                    name: p.name.clone(),
                    phone: p.phone.clone().or(old.phone.clone()),
                    email: p.email.clone().or(old.email.clone()),
                    zalo: p.zalo_user_id.clone().or(old.zalo.clone()),
                    // A filled phone cell says all the numbers: its other phones replace the old.
                    others: if p.phone.is_some() {
                        other_phones(&p.other_phones)
                    } else {
                        old.others.clone()
                    },
                    landline: p.landline.clone().or(old.landline.clone()),
                    changed: old.changed,
                };
                let fields = |p: &Parent| {
                    (
                        p.name.clone(),
                        p.phone.clone(),
                        p.email.clone(),
                        p.zalo.clone(),
                        p.others.clone(),
                        p.landline.clone(),
                    )
                };
                if fields(&new) != fields(old) {
                    if old.id.is_some() && !old.changed {
                        n.parents_updated += 1;
                    }
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
                    others: other_phones(&p.other_phones),
                    landline: p.landline.clone(),
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
    // [id, name, phone, email, zalo, others, landline] for each existing parent a row changed.
    // The columns of each existing parent a row changed, one array per column.
    let mut up = ParentColumns::default();
    for p in slots.iter().filter(|p| p.changed) {
        if let Some(id) = p.id {
            up.ids.push(id);
            up.push(p);
        }
    }
    if !up.ids.is_empty() {
        sqlx::query(
            "UPDATE contacts SET full_name = j.full_name, phone = j.phone, email = j.email, \
             zalo_user_id = j.zalo_user_id, other_phones = j.other_phones, landline = j.landline, updated_at = $1 \
             FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) \
               AS j(id, full_name, phone, email, zalo_user_id, other_phones, landline) \
             WHERE contacts.id = j.id",
        )
        .bind(now)
        .bind(&up.ids)
        .bind(&up.names)
        .bind(&up.phones)
        .bind(&up.emails)
        .bind(&up.zalos)
        .bind(&up.others)
        .bind(&up.landlines)
        .execute(&mut *c)
        .await?;
    }
    let is_keyless = |p: &Parent| p.phone.is_none() && p.email.is_none() && p.zalo.is_none();
    let mut new = ParentColumns::default();
    for p in slots.iter().filter(|p| p.id.is_none() && !is_keyless(p)) {
        new.push(p);
    }
    if !new.names.is_empty() {
        let rows = sqlx::query(
            "INSERT INTO contacts (org_id, school_id, role, full_name, phone, email, zalo_user_id, other_phones, \
             landline, consent_source, consent_at, created_at, updated_at) \
             SELECT $1, $1, 'parent', j.full_name, j.phone, j.email, j.zalo_user_id, j.other_phones, j.landline, \
               $2, $3, $3, $3 \
             FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[]) WITH ORDINALITY \
               AS j(full_name, phone, email, zalo_user_id, other_phones, landline, i) \
             ORDER BY j.i RETURNING id, phone, email, zalo_user_id",
        )
        .bind(school_id)
        .bind(CONSENT)
        .bind(now)
        .bind(&new.names)
        .bind(&new.phones)
        .bind(&new.emails)
        .bind(&new.zalos)
        .bind(&new.others)
        .bind(&new.landlines)
        .fetch_all(&mut *c)
        .await?;
        // RETURNING order is not promised: map each new row back by the keys that made it new.
        for r in rows {
            let s = index.find(
                &r.try_get("phone")?,
                &[],
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
            "INSERT INTO contacts (org_id, school_id, role, full_name, landline, consent_source, consent_at, created_at, updated_at) \
             VALUES ($1, $1, 'parent', $2, $5, $3, $4, $4, $4) RETURNING id",
        )
        .bind(school_id)
        .bind(p.name.clone())
        .bind(CONSENT)
        .bind(now)
        .bind(p.landline.clone())
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
