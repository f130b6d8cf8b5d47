//! A synthetic district for benchmarks: schools, classes, and `parents` parents of whom one in ten has
//! two children, inserted in batches.

use std::sync::Arc;

use crate::domain::contact::{Addresses, NewContact, Role};
use crate::domain::org::{NewOrg, OrgKind};
use crate::store::Store;

pub struct District {
    pub district: i64,
    /// (class, its school)
    pub classes: Vec<(i64, i64)>,
}

pub async fn district(
    store: &Arc<dyn Store>,
    schools: usize,
    classes_per_school: usize,
    now: i64,
) -> anyhow::Result<District> {
    let org = |parent, kind, code: String| NewOrg {
        parent_id: parent,
        kind,
        code: code.clone(),
        name: code,
    };
    let province = store
        .create_org(&org(None, OrgKind::Province, "SGD-BENCH".into()), now)
        .await?
        .id;
    let district = store
        .create_org(
            &org(Some(province), OrgKind::District, "PGD-BENCH".into()),
            now,
        )
        .await?
        .id;
    let mut classes = Vec::new();
    for s in 0..schools {
        let school = store
            .create_org(
                &org(Some(district), OrgKind::School, format!("TH-{s}")),
                now,
            )
            .await?
            .id;
        for c in 0..classes_per_school {
            let class = store
                .create_org(
                    &org(Some(school), OrgKind::Class, format!("TH-{s}-{c}")),
                    now,
                )
                .await?
                .id;
            classes.push((class, school));
        }
    }
    Ok(District { district, classes })
}

fn contact(org_id: i64, role: Role, name: String, phone: Option<String>) -> NewContact {
    NewContact {
        org_id,
        role,
        full_name: name,
        student_code: None,
        addresses: Addresses {
            phone,
            ..Default::default()
        },
    }
}

/// `parents` parents spread over the classes, each with one child; with `siblings`, every tenth has a
/// second child in another class (the audience then exercises the one-message-per-parent dedupe).
pub async fn parents(
    store: &Arc<dyn Store>,
    d: &District,
    parents: usize,
    siblings: bool,
    now: i64,
) -> anyhow::Result<()> {
    const BATCH: usize = 10_000;
    let mut done = 0;
    while done < parents {
        let n = BATCH.min(parents - done);
        // Parents are registered at their (first) child's school.
        let ps: Vec<NewContact> = (done..done + n)
            .map(|i| {
                contact(
                    d.classes[i % d.classes.len()].1,
                    Role::Parent,
                    format!("Phụ Huynh {i}"),
                    Some(format!("+8491{i:07}")),
                )
            })
            .collect();
        let parent_ids = store.insert_contacts(&ps, now).await?;
        let mut students = Vec::with_capacity(n + n / 10);
        let mut owners = Vec::with_capacity(n + n / 10);
        for (k, pid) in parent_ids.iter().enumerate() {
            let i = done + k;
            let class = d.classes[i % d.classes.len()].0;
            students.push(contact(class, Role::Student, format!("Học Sinh {i}"), None));
            owners.push(*pid);
            if siblings && i % 10 == 0 {
                let class2 = d.classes[(i + 7) % d.classes.len()].0;
                students.push(contact(
                    class2,
                    Role::Student,
                    format!("Học Sinh {i}b"),
                    None,
                ));
                owners.push(*pid);
            }
        }
        let student_ids = store.insert_contacts(&students, now).await?;
        let pairs: Vec<(i64, i64)> = owners.into_iter().zip(student_ids).collect();
        store.link_guardians(&pairs).await?;
        done += n;
    }
    Ok(())
}
