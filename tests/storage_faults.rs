//! A full or failing disk under the store: every write either commits or returns an error, ids are
//! never handed out twice, and the store works again, with nothing lost, once space comes back.
//! The faults are real SQLite failures (`PRAGMA max_page_count`, `query_only`), not simulated errors.

use std::collections::HashSet;

use loa::domain::campaign::{NewTemplate, TemplateBodies};
use loa::domain::contact::{Addresses, NewContact, Role};
use loa::domain::org::{NewOrg, OrgKind};
use loa::store::prelude::*;
use loa::store::sqlite::{SqliteStore, WriteFault};
use loa::store::{Store, StoreError};

#[path = "common/skip.rs"]
mod skip;
use skip::record_skip;

const T0: i64 = 1_800_000_000_000;

fn template(org_id: i64, i: usize) -> NewTemplate {
    NewTemplate {
        org_id,
        name: format!("Mẫu {i}"),
        bodies: TemplateBodies {
            // Large enough that a few dozen fill the pages left in the file.
            email_text: Some("Kính gửi quý phụ huynh. ".repeat(120)),
            email_subject: Some("Thông báo".into()),
            ..TemplateBodies::default()
        },
    }
}

fn student(org_id: i64, i: usize) -> NewContact {
    NewContact {
        org_id,
        role: Role::Student,
        full_name: format!("Nguyễn Văn Học Sinh Số {i} {}", "x".repeat(400)),
        student_code: Some(format!("HS{i:05}")),
        addresses: Addresses::default(),
    }
}

fn assert_no_twice(ids: &[i64]) {
    let mut seen = HashSet::new();
    let twice: Vec<i64> = ids.iter().copied().filter(|id| !seen.insert(*id)).collect();
    assert!(
        twice.is_empty(),
        "ids handed out twice: {twice:?} (of {})",
        ids.len()
    );
}

async fn school(store: &SqliteStore) -> loa::domain::org::Org {
    store
        .create_org(
            &NewOrg {
                parent_id: None,
                kind: OrgKind::School,
                code: "S".into(),
                name: "Trường".into(),
            },
            T0,
        )
        .await
        .unwrap()
}

async fn open(path: &std::path::Path) -> SqliteStore {
    let s = SqliteStore::open(&path.display().to_string())
        .await
        .unwrap();
    s.migrate().await.unwrap();
    s
}

#[tokio::test]
async fn a_full_disk_refuses_writes_and_loses_none_that_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = open(&path).await;
    let org = school(&store).await;

    store.inject_fault(Some(WriteFault::Full)).await.unwrap();
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for i in 0..200 {
        match store.create_template(&template(org.id, i), None, T0).await {
            Ok(t) => acknowledged.push(t.id),
            Err(StoreError::Unavailable(_)) => refused += 1,
            Err(e) => panic!("a full disk must read as storage unavailable, got {e:?}"),
        }
    }
    assert!(
        refused > 150,
        "the file could not grow, so most inserts must fail (refused {refused})"
    );
    assert_no_twice(&acknowledged);

    // Space comes back: the same process writes again, and those writes last.
    store.inject_fault(None).await.unwrap();
    let after = store
        .create_template(&template(org.id, 999), None, T0)
        .await
        .expect("writes succeed once space is back");
    acknowledged.push(after.id);
    let org_after = store
        .set_self_approval(org.id, true)
        .await
        .expect("an update succeeds once space is back");
    assert!(org_after.self_approval);
    drop(store);

    // Everything acknowledged is there after a restart.
    let store = open(&path).await;
    for id in &acknowledged {
        store
            .get_template(*id)
            .await
            .unwrap_or_else(|e| panic!("template {id} was acknowledged but is lost: {e}"));
    }
    assert!(store.get_org(org.id).await.unwrap().self_approval);
}

#[tokio::test]
async fn a_failed_transaction_leaves_the_writer_clean() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = open(&path).await;
    store
        .inject_fault(Some(WriteFault::ReadOnly))
        .await
        .unwrap();
    let org = NewOrg {
        parent_id: None,
        kind: OrgKind::School,
        code: "S".into(),
        name: "Trường".into(),
    };
    // create_org writes in a transaction: it fails as a whole.
    for _ in 0..3 {
        assert!(matches!(
            store.create_org(&org, T0).await,
            Err(StoreError::Unavailable(_))
        ));
    }
    store.inject_fault(None).await.unwrap();
    let made = store.create_org(&org, T0).await.expect("writes again");
    drop(store);
    let store = open(&path).await;
    assert_eq!(store.get_org(made.id).await.unwrap().code, "S");
    assert_eq!(store.list_orgs(None).await.unwrap().len(), 1);
}

/// A small filesystem of its own (tmpfs), mounted for the test; None without the right to mount.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(kib: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }
    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The real thing: the filesystem under the database fills up (ENOSPC), during WAL appends and
/// commits, not only when the file grows. Needs the right to mount a tmpfs (root, as in CI).
#[tokio::test]
async fn a_really_full_filesystem_loses_no_acknowledged_write() {
    let Some(disk) = SmallDisk::mount(1024) else {
        if std::env::var_os("LOA_REQUIRE_PEERS").is_some() {
            panic!("cannot mount a small tmpfs, and CI requires this test");
        }
        record_skip("cannot mount a small tmpfs (needs root)");
        return;
    };
    let path = disk.path().join("s.db");
    let store = open(&path).await;
    let org = school(&store).await;
    // Ballast takes most of the space; what is left fills during the loop.
    let ballast = disk.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 600 * 1024]).unwrap();
    let mut acknowledged = Vec::new();
    let mut students = Vec::new();
    let mut refused = 0;
    for i in 0..400 {
        match store.create_template(&template(org.id, i), None, T0).await {
            Ok(t) => acknowledged.push(t.id),
            Err(StoreError::Unavailable(_)) => refused += 1,
            Err(e) => panic!("a full disk must read as storage unavailable, got {e:?}"),
        }
        // A write in a transaction of many statements, which SQLite may roll back on its own.
        match store.insert_contacts(&[student(org.id, i)], T0).await {
            Ok(ids) => students.extend(ids),
            Err(StoreError::Unavailable(_)) => refused += 1,
            Err(e) => panic!("a full disk must read as storage unavailable, got {e:?}"),
        }
    }
    assert!(refused > 0, "the disk never filled");
    assert_no_twice(&acknowledged);
    std::fs::remove_file(&ballast).unwrap();
    for i in 0..5 {
        let t = store
            .create_template(&template(org.id, 1000 + i), None, T0)
            .await
            .expect("writes succeed once space is back");
        acknowledged.push(t.id);
        students.extend(
            store
                .insert_contacts(&[student(org.id, 1000 + i)], T0)
                .await
                .expect("transactions succeed once space is back"),
        );
    }
    drop(store);
    let store = open(&path).await;
    let mut lost = Vec::new();
    for id in &acknowledged {
        if store.get_template(*id).await.is_err() {
            lost.push(*id);
        }
    }
    assert!(
        lost.is_empty(),
        "acknowledged but lost: {lost:?} of {}",
        acknowledged.len()
    );
    let lost: Vec<i64> = {
        let mut v = Vec::new();
        for id in &students {
            if store.get_contact(*id).await.is_err() {
                v.push(*id);
            }
        }
        v
    };
    assert!(
        lost.is_empty(),
        "contacts acknowledged but lost: {lost:?} of {}",
        students.len()
    );
}
