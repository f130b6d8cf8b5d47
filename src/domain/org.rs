//! The sector's tree: province department (Sở) -> district office (Phòng) -> school -> class.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    Ministry,
    Province,
    District,
    School,
    Class,
}

impl OrgKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Ministry => "ministry",
            OrgKind::Province => "province",
            OrgKind::District => "district",
            OrgKind::School => "school",
            OrgKind::Class => "class",
        }
    }

    pub fn parse(s: &str) -> Option<OrgKind> {
        [
            OrgKind::Ministry,
            OrgKind::Province,
            OrgKind::District,
            OrgKind::School,
            OrgKind::Class,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Which kind of parent a node may hang under (`None` = may be a root). Upper secondary schools
    /// (THPT) and continuing-education centres belong to the Sở directly, so a school may sit under a
    /// province as well as a district.
    pub fn allowed_parent(self, parent: Option<OrgKind>) -> bool {
        use OrgKind::*;
        matches!(
            (self, parent),
            (Ministry | Province | District | School, None)
                | (Province, Some(Ministry))
                | (District, Some(Province))
                | (School, Some(District | Province))
                | (Class, Some(School))
        )
    }
}

/// A node of the tree as stored.
#[derive(Clone, Debug, Serialize)]
pub struct Org {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub kind: OrgKind,
    pub code: String,
    pub name: String,
    /// Materialised path of ids, `/1/4/9/`: a subtree is every node whose path starts with this one's.
    pub path: String,
    /// Whether an approver may approve a campaign they created or submitted themselves (small
    /// schools with one manager). Set from above the node; default no.
    pub self_approval: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct NewOrg {
    pub parent_id: Option<i64>,
    pub kind: OrgKind,
    pub code: String,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::OrgKind::*;

    #[test]
    fn tree_shape_rules() {
        assert!(Class.allowed_parent(Some(School)));
        assert!(!Class.allowed_parent(Some(District)));
        assert!(!Class.allowed_parent(None));
        assert!(
            School.allowed_parent(Some(Province)),
            "THPT schools hang under the Sở"
        );
        assert!(!District.allowed_parent(Some(School)));
    }
}
