//! A synthetic district for benchmarks: schools, classes, and `parents` parents of whom one in ten has
//! two children, generated inside the database.

use std::sync::Arc;

use crate::domain::org::{NewOrg, OrgKind};
use crate::store::{Store, SyntheticAudience};

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

/// `parents` parents spread over the classes, each with one child; with `siblings`, every tenth has a
/// second child in another class (the audience then exercises the one-message-per-parent dedupe).
/// Generated inside the database: a million parents take seconds.
pub async fn parents(
    store: &Arc<dyn Store>,
    d: &District,
    parents: usize,
    siblings: bool,
    now: i64,
) -> anyhow::Result<()> {
    store
        .seed_synthetic(
            &SyntheticAudience {
                classes: d.classes.clone(),
                parents,
                siblings,
            },
            now,
        )
        .await?;
    Ok(())
}
