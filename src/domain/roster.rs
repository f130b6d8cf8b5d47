//! What a validated roster or staff list holds, as the store takes it: students with their class and
//! parents, staff with their position and group. Produced by `import/`, written by `store/`.

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
