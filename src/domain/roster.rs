//! What a validated roster or staff list holds, as the store takes it: students with their class and
//! parents, staff with their position and group. Produced by `import/`, written by `store/`.

use serde::Serialize;

/// One valid roster row: a student, their class, and the parents to link them to (as many as the
/// row names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterEntry {
    pub line: usize,
    pub student_name: String,
    pub student_code: Option<String>,
    pub class: Option<String>,
    pub parents: Vec<ParentEntry>,
}

/// A parent (or guardian) as a row names them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ParentEntry {
    pub name: String,
    /// E.164, a mobile: the number SMS and Zalo use (a landline is never stored here).
    pub phone: Option<String>,
    /// Further mobiles the cell held, E.164, beyond `phone`.
    pub other_phones: Vec<String>,
    /// A fixed line (E.164), kept for the record; never used to send.
    pub landline: Option<String>,
    pub email: Option<String>,
    pub zalo_user_id: Option<String>,
    pub relation: Option<String>,
}

impl ParentEntry {
    /// Whether the store can find this parent again by an address (else by name under the student).
    pub fn has_key(&self) -> bool {
        self.phone.is_some() || self.email.is_some() || self.zalo_user_id.is_some()
    }
}

/// One valid row of a staff list (danh sách cán bộ, giáo viên, nhân viên).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StaffEntry {
    pub line: usize,
    pub name: String,
    /// Chức vụ: "Hiệu trưởng", "Giáo viên", "Kế toán".
    pub position: Option<String>,
    /// Tổ: the staff's group ("Tổ Toán - Tin", "Tổ Văn phòng").
    pub group: Option<String>,
    pub phone: Option<String>,
    pub other_phones: Vec<String>,
    pub landline: Option<String>,
    pub email: Option<String>,
    pub zalo_user_id: Option<String>,
}

/// What a roster or staff import changed (or, in a dry run, would change).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    pub students_created: u64,
    pub students_updated: u64,
    /// Of the updated students, those whose class changed (a promotion, 4B -> 5B).
    pub students_moved: u64,
    pub parents_created: u64,
    pub parents_updated: u64,
    pub classes_created: u64,
    pub links_created: u64,
    pub staff_created: u64,
    pub staff_updated: u64,
}

impl ImportCounts {
    pub fn add(&mut self, o: &ImportCounts) {
        self.students_created += o.students_created;
        self.students_updated += o.students_updated;
        self.students_moved += o.students_moved;
        self.parents_created += o.parents_created;
        self.parents_updated += o.parents_updated;
        self.classes_created += o.classes_created;
        self.links_created += o.links_created;
        self.staff_created += o.staff_created;
        self.staff_updated += o.staff_updated;
    }
}

/// Rows of a roster the store writes per transaction: large enough to be fast, small enough to
/// report progress and to hold one piece in memory. A dry run goes through the same pieces in one
/// transaction it rolls back, so that it reports exactly what the import will do.
pub const IMPORT_CHUNK: usize = 2_000;

/// Whether an import writes or only says what it would write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportMode {
    Commit,
    DryRun,
}
