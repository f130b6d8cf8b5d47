//! A class roster (or a staff list) as schools keep it in Excel: one row per student with their class
//! and parents, or one row per staff member. Finds the table, maps Vietnamese or English column names,
//! validates each row on its own, and names every cell it could not use (sheet, line, column, why).

use serde::Serialize;

use unicode_normalization::UnicodeNormalization;

use super::table::{Row, Sheet, column_letters};
use crate::domain::phone::{is_landline, normalize_vn_phone};
use crate::domain::text::unaccent;

/// The columns Loa reads. `names` are compared without case, diacritics, spaces or punctuation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    StudentName,
    StudentCode,
    Class,
    ParentName,
    ParentPhone,
    ParentEmail,
    ParentZalo,
    Relation,
    FatherName,
    FatherPhone,
    MotherName,
    MotherPhone,
    GuardianName,
    GuardianPhone,
    ContactPhone,
    Position,
    Group,
}

impl Column {
    const ALL: [Column; 17] = [
        Column::StudentName,
        Column::StudentCode,
        Column::Class,
        Column::ParentName,
        Column::ParentPhone,
        Column::ParentEmail,
        Column::ParentZalo,
        Column::Relation,
        Column::FatherName,
        Column::FatherPhone,
        Column::MotherName,
        Column::MotherPhone,
        Column::GuardianName,
        Column::GuardianPhone,
        Column::ContactPhone,
        Column::Position,
        Column::Group,
    ];

    /// The documented headers; the first is how error messages name the column.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Column::StudentName => &[
                "Họ tên",
                "Họ và tên",
                "Họ tên học sinh",
                "Họ và tên học sinh",
                "Tên học sinh",
                "full_name",
                "student_name",
            ],
            Column::StudentCode => &["Mã học sinh", "Mã HS", "student_code"],
            Column::Class => &["Lớp", "class"],
            Column::ParentName => &[
                "Họ tên phụ huynh",
                "Tên phụ huynh",
                "Phụ huynh",
                "parent_name",
            ],
            Column::ParentPhone => &[
                "SĐT phụ huynh",
                "Số điện thoại phụ huynh",
                "Điện thoại phụ huynh",
                "SĐT",
                "Số điện thoại",
                "Điện thoại",
                "Di động",
                "Số di động",
                "parent_phone",
                "phone",
            ],
            Column::ParentEmail => &["Email", "Email phụ huynh", "parent_email", "email"],
            Column::ParentZalo => &["Zalo", "Zalo ID", "zalo_user_id"],
            Column::Relation => &["Quan hệ", "relation"],
            Column::FatherName => &[
                "Họ tên cha",
                "Họ và tên cha",
                "Tên cha",
                "Cha",
                "Họ tên bố",
                "Họ và tên bố",
                "Tên bố",
                "Bố",
                "father_name",
            ],
            Column::FatherPhone => &[
                "SĐT cha",
                "Số điện thoại cha",
                "Điện thoại cha",
                "ĐT cha",
                "SĐT bố",
                "Số điện thoại bố",
                "Điện thoại bố",
                "ĐT bố",
                "father_phone",
            ],
            Column::MotherName => &["Họ tên mẹ", "Họ và tên mẹ", "Tên mẹ", "Mẹ", "mother_name"],
            Column::MotherPhone => &[
                "SĐT mẹ",
                "Số điện thoại mẹ",
                "Điện thoại mẹ",
                "ĐT mẹ",
                "mother_phone",
            ],
            Column::GuardianName => &[
                "Người giám hộ",
                "Họ tên người giám hộ",
                "Tên người giám hộ",
                "guardian_name",
            ],
            Column::GuardianPhone => &[
                "SĐT người giám hộ",
                "Số điện thoại người giám hộ",
                "Điện thoại người giám hộ",
                "guardian_phone",
            ],
            Column::ContactPhone => &[
                "SĐT liên hệ",
                "Số điện thoại liên hệ",
                "Điện thoại liên hệ",
                "contact_phone",
            ],
            Column::Position => &["Chức vụ", "Chức danh", "Vị trí công tác", "position"],
            Column::Group => &[
                "Tổ",
                "Tổ chuyên môn",
                "Tổ công tác",
                "Bộ phận",
                "Phòng ban",
                "group",
            ],
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Column::StudentName => "full_name",
            Column::StudentCode => "student_code",
            Column::Class => "class",
            Column::ParentName => "parent_name",
            Column::ParentPhone => "parent_phone",
            Column::ParentEmail => "parent_email",
            Column::ParentZalo => "zalo_user_id",
            Column::Relation => "relation",
            Column::FatherName => "father_name",
            Column::FatherPhone => "father_phone",
            Column::MotherName => "mother_name",
            Column::MotherPhone => "mother_phone",
            Column::GuardianName => "guardian_name",
            Column::GuardianPhone => "guardian_phone",
            Column::ContactPhone => "contact_phone",
            Column::Position => "position",
            Column::Group => "group",
        }
    }

    fn of(header: &str) -> Option<Column> {
        let f = fold(header);
        if f.is_empty() {
            return None;
        }
        Column::ALL
            .into_iter()
            .find(|c| c.names().iter().any(|n| fold(n) == f))
    }
}

/// `SĐT phụ huynh` -> `sdtphuhuynh`.
fn fold(header: &str) -> String {
    unaccent(header)
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

pub use crate::domain::roster::{ParentEntry, RosterEntry, StaffEntry};

/// A cell Loa could not use, or a note about one: where it is (sheet, line, cell, header), its value,
/// a code for programs and a Vietnamese message for staff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: usize,
    /// The column as the file names it (or the documented name when the column is missing).
    pub column: String,
    pub code: &'static str,
    pub message: String,
    /// The XLSX sheet (absent for CSV).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// The cell as Excel names it (`E7`), when the column is in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell: Option<String>,
    /// The cell's value as read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeaderError(pub String);

/// Rows searched for the header: title rows come first, never dozens of them.
pub const HEADER_SEARCH: usize = 30;

/// Spaces collapsed and text NFC-normalised: the same name typed in decomposed Unicode is one name.
fn squash(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .nfc()
        .collect()
}

/// The table found in a sheet: its header (as the file shows it), which columns Loa reads, and the
/// class the title or the sheet name gives.
pub struct Located {
    pub kind: ListKind,
    pub sheet: Option<String>,
    /// The Excel line of the header's (last) row.
    pub header_line: usize,
    pub header: Vec<String>,
    pub columns: Vec<(Column, usize)>,
    /// The name column, which decides whether a row ends the table.
    name_col: usize,
    pub default_class: Option<String>,
}

/// What a sheet lists: students with their parents, or staff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    Roster,
    Staff,
}

impl ListKind {
    pub fn parse(s: &str) -> Option<ListKind> {
        match s {
            "roster" => Some(ListKind::Roster),
            "staff" => Some(ListKind::Staff),
            _ => None,
        }
    }

    /// What a sheet lists, from the first rule that applies: a student code or parent column ->
    /// roster; a title about students ("DANH SÁCH HỌC SINH ...") or a class from the sheet name or
    /// title -> roster; a title about staff ("DANH SÁCH CÁN BỘ, GIÁO VIÊN, NHÂN VIÊN", "CB-GV-NV",
    /// "GIÁO VIÊN CHỦ NHIỆM") -> staff; a class column -> roster; a position or group column ->
    /// staff; else what the node takes by default (a Phòng has no students).
    fn of(
        columns: &[(Column, usize)],
        titles: &[Row],
        class_from_title: bool,
        default: ListKind,
    ) -> ListKind {
        let has = |c: Column| columns.iter().any(|(k, _)| *k == c);
        let about_parents = [
            Column::StudentCode,
            Column::ParentName,
            Column::Relation,
            Column::FatherName,
            Column::FatherPhone,
            Column::MotherName,
            Column::MotherPhone,
            Column::GuardianName,
            Column::GuardianPhone,
        ]
        .into_iter()
        .any(has);
        let title = |test: &dyn Fn(&str) -> bool| {
            titles
                .iter()
                .flat_map(|r| r.cells.iter())
                .any(|c| test(&fold(c)))
        };
        let students_title = title(&|f| f.contains("danhsach") && f.contains("hocsinh"));
        let staff_title = title(&|f| {
            f.contains("danhsach")
                && [
                    "canbo", "giaovien", "nhanvien", "cbgv", "gvnv", "cbnv", "cbcc",
                ]
                .iter()
                .any(|w| f.contains(w))
        });
        if about_parents || students_title || class_from_title {
            ListKind::Roster
        } else if staff_title {
            ListKind::Staff
        } else if has(Column::Class) {
            ListKind::Roster
        } else if has(Column::Position) || has(Column::Group) {
            ListKind::Staff
        } else {
            default
        }
    }
}

/// A header's columns: `(as the file shows it, what Loa matches)`.
type HeaderKeys = Vec<(String, String)>;

/// What a header made of row `above` and `row` reads as: `(display, key)` per column. A group label
/// above ("Thông tin mẹ", merged over its columns) qualifies the sub-headers under it ("Số điện
/// thoại" -> "Số điện thoại mẹ"); a label with nothing under it (merged down) is the header itself.
fn two_row_header(above: &[String], row: &[String]) -> HeaderKeys {
    let width = above.len().max(row.len());
    let mut group: Option<&str> = None;
    let mut out = Vec::with_capacity(width);
    for i in 0..width {
        let a = above.get(i).map(|s| s.trim()).unwrap_or("");
        let b = row.get(i).map(|s| s.trim()).unwrap_or("");
        if !a.is_empty() {
            group = (!b.is_empty()).then_some(a);
        }
        if b.is_empty() {
            out.push((a.to_string(), a.to_string()));
            continue;
        }
        let rel = group.and_then(|g| {
            let f = fold(g);
            // "Thông tin cán bộ" is about staff, not a father ("bố").
            if f.contains("canbo") {
                None
            } else if f.ends_with("cha") || f.ends_with("bo") {
                Some("cha")
            } else if f.ends_with("me") {
                Some("mẹ")
            } else if f.contains("giamho") {
                Some("người giám hộ")
            } else if f.ends_with("phuhuynh") {
                Some("phụ huynh")
            } else {
                None
            }
        });
        match (group, rel) {
            (Some(g), Some(rel)) => out.push((format!("{g} / {b}"), format!("{b} {rel}"))),
            _ => out.push((b.to_string(), b.to_string())),
        }
    }
    out
}

fn columns_of(keys: &[(String, String)]) -> Vec<(Column, usize)> {
    let mut at: Vec<(Column, usize)> = Vec::new();
    for (i, (_, key)) in keys.iter().enumerate() {
        if let Some(c) = Column::of(key)
            && !at.iter().any(|(k, _)| *k == c)
        {
            at.push((c, i));
        }
    }
    at
}

/// Whether a row ends the table: a total ("Tổng cộng: 35 học sinh"), or the signature block under it
/// ("Người lập biểu", "HIỆU TRƯỞNG", "Hà Nội, ngày 5 tháng 9 năm 2026"). A row with a student's name
/// never does, whatever its other cells say.
fn ends_table(row: &Row, name_col: usize) -> bool {
    // "Tổng cộng: 35", "Tổng số 35 học sinh", "Tổng cộng" alone; not a student named Tống Sơn.
    let total = |c: &str| {
        let f = fold(c);
        (f.starts_with("tongcong") || f.starts_with("tongso"))
            && (c.contains(':')
                || c.chars().any(|ch| ch.is_ascii_digit())
                || f == "tongcong"
                || f == "tongso")
    };
    if let Some(name) = row.cells.get(name_col)
        && !name.trim().is_empty()
    {
        return total(name);
    }
    row.cells.iter().any(|c| {
        let f = fold(c);
        total(c)
            || matches!(
                f.as_str(),
                "nguoilap"
                    | "nguoilapbieu"
                    | "nguoilapbang"
                    | "hieutruong"
                    | "kthieutruong"
                    | "giaovienchunhiem"
                    | "xacnhancuanhatruong"
                    | "phohieutruong"
            )
            || (f.contains("ngay")
                && f.contains("thang")
                && f.contains("nam")
                && c.len() < 80
                && c.chars().any(|ch| ch.is_ascii_digit())
                && c.contains(','))
    })
}

/// A class name as schools write it: `4B`, `10A1`, `1A` (a digit first, a letter in it, short).
fn class_token(w: &str) -> Option<String> {
    let w = w.trim();
    (w.chars().count() <= 6
        && w.chars().next().is_some_and(|c| c.is_ascii_digit())
        && w.chars().all(|c| c.is_ascii_alphanumeric())
        && w.chars().any(|c| c.is_ascii_alphabetic()))
    .then(|| w.to_uppercase())
}

/// The class a text names after "lớp": `DANH SÁCH HỌC SINH LỚP 4B - NĂM HỌC 2026-2027` -> `4B`.
fn class_after_lop(s: &str) -> Option<String> {
    let words: Vec<&str> = s
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .find(|w| fold(w[0]) == "lop")
        .and_then(|w| class_token(w[1]))
}

/// A class cell as one name for one class: `Lớp 5A`, `5a` and `5A` are class 5A; anything else
/// (`Lá 1`, `Mầm non`) is kept as written.
fn class_name(cell: &str) -> String {
    class_after_lop(cell)
        .or_else(|| class_token(cell))
        .unwrap_or_else(|| cell.to_string())
}

/// A relation cell in the words Loa stores: `Bố`, `Bố đẻ`, `Cha` are `cha`; `Mẹ`, `Mẹ đẻ` are
/// `mẹ`; a guardian is `người giám hộ`; anything else (`Ông`, `Bà nội`) as written, lower case.
fn relation(cell: &str) -> String {
    let f = fold(cell);
    if f.starts_with("cha") || f.starts_with("bo") {
        "cha".into()
    } else if f.starts_with("me") || f.starts_with("ma") && f.len() <= 3 {
        "mẹ".into()
    } else if f.contains("giamho") {
        "người giám hộ".into()
    } else {
        cell.to_lowercase()
    }
}

/// Finds the header row (or two-row header) among the first rows by the columns it names, whatever
/// title rows precede it, and the end of the table after it; `kind` forces what the list is, else
/// its columns and title tell, else `default`.
pub fn locate(
    sheet: Option<&str>,
    head: &[Row],
    kind: Option<ListKind>,
    default: ListKind,
) -> Result<(Located, usize), HeaderError> {
    let mut best: Option<(usize, usize, HeaderKeys)> = None;
    for i in 0..head.len().min(HEADER_SEARCH) {
        let row = &head[i];
        let mut candidates = vec![
            row.cells
                .iter()
                .map(|c| (c.trim().to_string(), c.trim().to_string()))
                .collect::<Vec<_>>(),
        ];
        if i > 0 && head[i - 1].line + 1 == row.line {
            candidates.push(two_row_header(&head[i - 1].cells, &row.cells));
        }
        for keys in candidates {
            let at = columns_of(&keys);
            if !at.iter().any(|(c, _)| *c == Column::StudentName) {
                continue;
            }
            if best.as_ref().is_none_or(|(_, score, _)| at.len() > *score) {
                best = Some((i, at.len(), keys));
            }
        }
    }
    let Some((i, _, keys)) = best else {
        return Err(HeaderError(format!(
            "không tìm thấy dòng tiêu đề của bảng trong {HEADER_SEARCH} dòng đầu: cần một cột họ tên học sinh (một trong: {})",
            Column::StudentName.names().join(", ")
        )));
    };
    let columns = columns_of(&keys);
    let name_col = columns
        .iter()
        .find(|(c, _)| *c == Column::StudentName)
        .map(|(_, i)| *i)
        .unwrap_or(0);
    let default_class = sheet
        .and_then(|n| class_token(n).or_else(|| class_after_lop(n)))
        .or_else(|| {
            head[..i]
                .iter()
                .flat_map(|r| r.cells.iter())
                .find_map(|c| class_after_lop(c))
        });
    let kind = kind
        .unwrap_or_else(|| ListKind::of(&columns, &head[..i], default_class.is_some(), default));
    Ok((
        Located {
            kind,
            sheet: sheet.map(str::to_string),
            header_line: head[i].line,
            header: keys.into_iter().map(|(d, _)| d).collect(),
            columns,
            name_col,
            default_class,
        },
        i,
    ))
}

impl Located {
    /// Whether a row after the header ends the table (a total, the signature block).
    pub fn ends_table(&self, row: &Row) -> bool {
        ends_table(row, self.name_col)
    }
}

/// Splits a cell that may hold several numbers (`0912.345.678 - 0987654321`, `0912345678/0987654321`)
/// into the numbers as typed.
fn phone_pieces(cell: &str) -> Vec<String> {
    let mut out = Vec::new();
    let cell = cell
        .replace(" - ", "/")
        .replace(" – ", "/")
        .replace('–', "/");
    for piece in cell.split(['/', ';', ',', '\n', '|', '&']) {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        let digits = piece.chars().filter(char::is_ascii_digit).count();
        if digits <= 12 {
            out.push(piece.to_string());
            continue;
        }
        // Two numbers with only a space or a dash between them: grouped into whole numbers.
        let mut acc = String::new();
        for tok in piece.split([' ', '-', '\u{a0}']).filter(|t| !t.is_empty()) {
            acc.push_str(tok);
            let n = acc.chars().filter(char::is_ascii_digit).count();
            if n >= 9 && normalize_vn_phone(&acc).is_ok() {
                out.push(std::mem::take(&mut acc));
            } else {
                acc.push(' ');
            }
        }
        if !acc.trim().is_empty() {
            out.push(acc.trim().to_string());
        }
    }
    out
}

/// Whose columns a parent comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    Generic,
    Father,
    Mother,
    Guardian,
}

impl Who {
    fn columns(self) -> (Column, &'static [Column]) {
        match self {
            Who::Generic => (
                Column::ParentName,
                &[Column::ParentPhone, Column::ContactPhone],
            ),
            Who::Father => (Column::FatherName, &[Column::FatherPhone]),
            Who::Mother => (Column::MotherName, &[Column::MotherPhone]),
            Who::Guardian => (Column::GuardianName, &[Column::GuardianPhone]),
        }
    }
    fn relation(self) -> Option<&'static str> {
        match self {
            Who::Generic => None,
            Who::Father => Some("cha"),
            Who::Mother => Some("mẹ"),
            Who::Guardian => Some("người giám hộ"),
        }
    }
    fn default_name(self, student: &str) -> String {
        match self {
            Who::Generic => format!("Phụ huynh em {student}"),
            Who::Father => format!("Cha em {student}"),
            Who::Mother => format!("Mẹ em {student}"),
            Who::Guardian => format!("Người giám hộ em {student}"),
        }
    }
}

/// Why a student of the file has no parent Loa can send to (the roster figures coverage needs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unreachable {
    /// The row names no parent at all.
    NoParent,
    /// Parents are named, without any number, email or Zalo id.
    NoAddress,
    /// The only numbers given are landlines.
    LandlineOnly,
    /// Numbers were given but none could be read.
    InvalidNumber,
}

/// Roster figures from the file, per student (a student on several rows, one per parent, counts
/// once): how many have at least one parent reachable on each channel, and why the others have none.
/// Opt-outs already recorded in Loa are not counted here; coverage reports count them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RosterFigures {
    pub students: usize,
    /// With at least one parent with a mobile (SMS, and Zalo ZNS by phone).
    pub with_mobile: usize,
    pub with_email: usize,
    /// With at least one parent with a Zalo user id (Zalo OA).
    pub with_zalo_id: usize,
    /// With at least one parent reachable on any channel.
    pub reachable: usize,
    pub unreachable: usize,
    /// The unreachable by reason.
    pub no_parent: usize,
    pub no_address: usize,
    pub landline_only: usize,
    pub invalid_number: usize,
}

/// What a sheet yields: the students (or staff) to import, the rows rejected (no name, or no way to
/// find the student again), the cells dropped from rows that went in, and notes (landlines, further
/// numbers, parents without any address).
#[derive(Default)]
pub struct Parsed {
    /// Data rows read (from the header to the end of the table, blank rows not counted).
    pub rows: usize,
    pub entries: Vec<RosterEntry>,
    pub staff: Vec<StaffEntry>,
    pub rejected: Vec<RowError>,
    pub cell_errors: Vec<RowError>,
    pub notes: Vec<RowError>,
    /// Per student of the file (by code, else class and name): which channels a parent reaches, or why
    /// none does.
    pub reach: std::collections::HashMap<(Option<String>, Option<String>, String), Reach>,
    /// Who each mobile belongs to in this file (the first name given with it) and on which line.
    pub phone_owner: std::collections::HashMap<String, (String, usize)>,
}

/// What one student's parents in the file can be reached by.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reach {
    pub mobile: bool,
    pub email: bool,
    pub zalo_id: bool,
    pub why_not: Option<Unreachable>,
}

impl Parsed {
    /// The roster figures of everything parsed so far.
    pub fn figures(&self) -> RosterFigures {
        let mut f = RosterFigures {
            students: self.reach.len(),
            ..Default::default()
        };
        for r in self.reach.values() {
            f.with_mobile += r.mobile as usize;
            f.with_email += r.email as usize;
            f.with_zalo_id += r.zalo_id as usize;
            if r.mobile || r.email || r.zalo_id {
                f.reachable += 1;
                continue;
            }
            f.unreachable += 1;
            match r.why_not.unwrap_or(Unreachable::NoParent) {
                Unreachable::NoParent => f.no_parent += 1,
                Unreachable::NoAddress => f.no_address += 1,
                Unreachable::LandlineOnly => f.landline_only += 1,
                Unreachable::InvalidNumber => f.invalid_number += 1,
            }
        }
        f
    }
}

/// One data row being read: its cells by column and how to name a cell in a message.
struct RowCtx<'a> {
    t: &'a Located,
    row: &'a Row,
}

impl RowCtx<'_> {
    fn idx(&self, c: Column) -> Option<usize> {
        self.t
            .columns
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, i)| *i)
    }

    fn header_name(&self, c: Column) -> String {
        self.idx(c)
            .and_then(|i| self.t.header.get(i).cloned())
            .unwrap_or_else(|| c.names()[0].to_string())
    }

    fn get(&self, c: Column) -> Option<String> {
        self.idx(c)
            .and_then(|i| self.row.cells.get(i))
            .map(|s| squash(s))
            .filter(|s| !s.is_empty())
    }

    fn is_empty(&self) -> bool {
        self.t.columns.iter().all(|(c, _)| self.get(*c).is_none())
    }

    fn issue(
        &self,
        c: Column,
        code: &'static str,
        message: String,
        value: Option<String>,
    ) -> RowError {
        let line = self.row.line;
        let col = self.idx(c);
        let cell = col.map(|i| format!("{}{}", column_letters(i), line));
        let place = match (&self.t.sheet, col) {
            (Some(s), Some(i)) => format!(
                "trang \"{s}\", dòng {line}, cột {} ({})",
                column_letters(i),
                self.header_name(c)
            ),
            (None, Some(i)) => format!(
                "dòng {line}, cột {} ({})",
                column_letters(i),
                self.header_name(c)
            ),
            (Some(s), None) => format!("trang \"{s}\", dòng {line}"),
            (None, None) => format!("dòng {line}"),
        };
        RowError {
            line,
            column: self.header_name(c),
            code,
            message: format!("{place}: {message}"),
            sheet: self.t.sheet.clone(),
            cell,
            value,
        }
    }

    /// The row's name, or `None`: for a row with nothing in the columns Loa reads (an STT alone, a
    /// note), which is no one, and for a row without a name, which is rejected with `missing`.
    fn name(&self, out: &mut Parsed, missing: &str) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let name = self.get(Column::StudentName);
        if name.is_none() {
            out.rejected.push(self.issue(
                Column::StudentName,
                "required",
                missing.to_string(),
                None,
            ));
        }
        name
    }

    /// An email cell, lower-cased, or its cell error.
    fn email(&self, out: &mut Parsed, c: Column) -> Option<String> {
        let e = self.get(c)?;
        match e.parse::<lettre::Address>() {
            Ok(_) => Some(e.to_lowercase()),
            Err(_) => {
                out.cell_errors.push(self.issue(
                    c,
                    "invalid_email",
                    format!("địa chỉ email \"{e}\" không hợp lệ; đã bỏ qua ô này, phần còn lại của dòng vẫn được nhập"),
                    Some(e.clone()),
                ));
                None
            }
        }
    }

    /// The numbers of one person's phone cells: mobiles in order (the first is the one Loa sends
    /// to), the first landline, and each number that could not be read as a cell error.
    fn phones(&self, out: &mut Parsed, cols: &[Column]) -> Phones {
        let mut p = Phones::default();
        for &pc in cols {
            let Some(cell) = self.get(pc) else { continue };
            p.any_cell = true;
            for piece in phone_pieces(&cell) {
                match normalize_vn_phone(&piece) {
                    Ok(n) if is_landline(&n) => {
                        let kept = p.landline.is_none();
                        out.notes.push(self.issue(
                            pc,
                            "landline",
                            if kept {
                                format!("\"{piece}\" là số máy bàn: được lưu để tra cứu nhưng không dùng để gửi SMS hay Zalo")
                            } else {
                                format!("\"{piece}\" là số máy bàn thứ hai: Loa chỉ lưu một số máy bàn, số này chưa được lưu")
                            },
                            Some(cell.clone()),
                        ));
                        p.landline.get_or_insert(n);
                    }
                    Ok(n) => {
                        if !p.mobiles.iter().any(|(_, _, m)| *m == n) {
                            p.mobiles.push((pc, piece, n));
                        }
                    }
                    Err(m) => {
                        p.invalid = true;
                        out.cell_errors.push(self.issue(
                            pc,
                            "invalid_phone",
                            format!("{m}; đã bỏ số này, phần còn lại của dòng vẫn được nhập"),
                            Some(cell.clone()),
                        ))
                    }
                }
            }
        }
        if let Some((_, first, _)) = p.mobiles.first() {
            for (pc, piece, _) in p.mobiles.iter().skip(1) {
                out.notes.push(self.issue(
                    *pc,
                    "extra_phone",
                    format!("số \"{piece}\" được lưu là số phụ; Loa gửi tin tới số {first}"),
                    self.get(*pc),
                ));
            }
        }
        p
    }
}

/// One person's numbers, as `RowCtx::phones` read them.
#[derive(Default)]
struct Phones {
    /// `(the cell's column, as typed, E.164)`.
    mobiles: Vec<(Column, String, String)>,
    landline: Option<String>,
    any_cell: bool,
    invalid: bool,
}

impl Phones {
    fn primary(&self) -> Option<String> {
        self.mobiles.first().map(|(_, _, n)| n.clone())
    }
    fn others(&self) -> Vec<String> {
        self.mobiles
            .iter()
            .skip(1)
            .map(|(_, _, n)| n.clone())
            .collect()
    }
}

/// Validates one row of a located roster; a bad value loses only itself, a row is rejected only
/// when it has no student (or nothing to recognise the student by on the next import).
fn roster_row(t: &Located, row: &Row, out: &mut Parsed) {
    let r = RowCtx { t, row };
    let Some(student_name) = r.name(out, "thiếu họ tên học sinh; dòng này không được nhập")
    else {
        return;
    };
    let student_code = r.get(Column::StudentCode);
    let class = r
        .get(Column::Class)
        .map(|c| class_name(&c))
        .or_else(|| t.default_class.clone());
    if student_code.is_none() && class.is_none() {
        // Without a code or a class a re-import could not find the student again.
        out.rejected.push(r.issue(
            Column::StudentCode,
            "required",
            "cần mã học sinh hoặc lớp để nhận ra học sinh khi nhập lại; dòng này không được nhập"
                .into(),
            None,
        ));
        return;
    }
    let email = r.email(out, Column::ParentEmail);
    let zalo = r.get(Column::ParentZalo);
    let mut parents: Vec<(Who, ParentEntry)> = Vec::new();
    let (mut landlines, mut invalid) = (false, false);
    for who in [Who::Father, Who::Mother, Who::Guardian, Who::Generic] {
        let (name_col, phone_cols) = who.columns();
        let name = r.get(name_col);
        let phones = r.phones(out, phone_cols);
        landlines |= phones.landline.is_some();
        invalid |= phones.invalid;
        let (e, z) = match who {
            Who::Generic => (email.clone(), zalo.clone()),
            _ => (None, None),
        };
        if name.is_none() && !phones.any_cell && e.is_none() && z.is_none() {
            continue;
        }
        let relation = match who {
            Who::Generic => r.get(Column::Relation).map(|v| relation(&v)),
            w => w.relation().map(str::to_string),
        };
        let entry = ParentEntry {
            name: name.unwrap_or_else(|| who.default_name(&student_name)),
            phone: phones.primary(),
            other_phones: phones.others(),
            landline: phones.landline.clone(),
            email: e,
            zalo_user_id: z,
            relation,
        };
        if who == Who::Generic && !parents.is_empty() {
            // The generic contact columns of a row that names the father or mother: the same
            // person when the number is the same, or the first parent's email and Zalo when the
            // row gives no other name or number.
            let same = parents.iter_mut().find(|(_, p)| {
                entry.phone.is_some() && p.phone == entry.phone
                    || entry.phone.is_none() && r.get(Column::ParentName).is_none()
            });
            if let Some((_, p)) = same {
                p.email = p.email.take().or(entry.email);
                p.zalo_user_id = p.zalo_user_id.take().or(entry.zalo_user_id);
                p.landline = p.landline.take().or(entry.landline);
                for o in entry.other_phones {
                    if p.phone.as_ref() != Some(&o) && !p.other_phones.contains(&o) {
                        p.other_phones.push(o);
                    }
                }
                continue;
            }
        }
        parents.push((who, entry));
    }
    // One number is one person to Loa (one father of two children is one contact). A number the
    // file already gave to someone of another name (the father and the mother listing the family
    // phone, a grandmother's number for two families) stays with the first: the next is imported
    // without it, so that both people and their relations remain and nobody is renamed.
    let mut shared = vec![false; parents.len()];
    for (k, (who, p)) in parents.iter_mut().enumerate() {
        let Some(phone) = p.phone.clone() else {
            continue;
        };
        let me = fold(&p.name);
        match out.phone_owner.get(&phone) {
            Some((owner, line)) if fold(owner) != me => {
                let (_, phone_cols) = who.columns();
                let col = phone_cols
                    .iter()
                    .copied()
                    .find(|c| r.idx(*c).is_some())
                    .unwrap_or(phone_cols[0]);
                out.notes.push(r.issue(
                    col,
                    "shared_phone",
                    format!(
                        "số {phone} đã là số của {owner} (dòng {line}): {} được nhập không kèm số này, Loa gửi tin tới số này một lần",
                        p.name
                    ),
                    r.get(col),
                ));
                p.phone = p.other_phones.first().cloned();
                if !p.other_phones.is_empty() {
                    p.other_phones.remove(0);
                }
                shared[k] = true;
            }
            Some(_) => {}
            None => {
                out.phone_owner.insert(phone, (p.name.clone(), row.line));
            }
        }
    }
    for (k, (who, p)) in parents.iter().enumerate() {
        if !p.has_key() && !shared[k] {
            let (name_col, phone_cols) = who.columns();
            let col = if r.idx(phone_cols[0]).is_some() {
                phone_cols[0]
            } else {
                name_col
            };
            out.notes.push(r.issue(
                col,
                "no_address",
                format!(
                    "{} chưa có số di động, email hay Zalo: được nhập nhưng chưa nhận được tin",
                    p.name
                ),
                None,
            ));
        }
    }
    // A student is counted once however many rows name them (one row per parent).
    let key = match &student_code {
        Some(code) => (Some(code.clone()), None, String::new()),
        None => (None, class.clone(), student_name.clone()),
    };
    let reach = out.reach.entry(key).or_default();
    for (_, p) in &parents {
        reach.mobile |= p.phone.is_some();
        reach.email |= p.email.is_some();
        reach.zalo_id |= p.zalo_user_id.is_some();
    }
    // The strongest reason across the student's rows: a number that could not be read says
    // more (a typo to fix) than a landline, a landline more than a name alone.
    let why = if parents.is_empty() {
        Unreachable::NoParent
    } else if invalid {
        Unreachable::InvalidNumber
    } else if landlines {
        Unreachable::LandlineOnly
    } else {
        Unreachable::NoAddress
    };
    let rank = |u: Unreachable| match u {
        Unreachable::NoParent => 0,
        Unreachable::NoAddress => 1,
        Unreachable::LandlineOnly => 2,
        Unreachable::InvalidNumber => 3,
    };
    if reach.why_not.is_none_or(|w| rank(why) > rank(w)) {
        reach.why_not = Some(why);
    }
    out.entries.push(RosterEntry {
        line: row.line,
        student_name,
        student_code,
        class,
        parents: parents.into_iter().map(|(_, p)| p).collect(),
    });
}

/// Validates one row of a located staff list: a name is all a row needs; a bad number or email
/// loses only itself.
fn staff_row(t: &Located, row: &Row, out: &mut Parsed) {
    let r = RowCtx { t, row };
    let Some(name) = r.name(out, "thiếu họ tên; dòng này không được nhập") else {
        return;
    };
    let phones = r.phones(
        out,
        &[
            Column::ParentPhone,
            Column::ContactPhone,
            Column::FatherPhone,
            Column::MotherPhone,
        ],
    );
    let email = r.email(out, Column::ParentEmail);
    let entry = StaffEntry {
        line: row.line,
        name,
        position: r.get(Column::Position),
        group: r.get(Column::Group),
        phone: phones.primary(),
        other_phones: phones.others(),
        landline: phones.landline.clone(),
        email,
        zalo_user_id: r.get(Column::ParentZalo),
    };
    if entry.phone.is_none() && entry.email.is_none() && entry.zalo_user_id.is_none() {
        out.notes.push(r.issue(
            Column::ParentPhone,
            "no_address",
            format!(
                "{} chưa có số di động, email hay Zalo: được nhập nhưng chưa nhận được tin",
                entry.name
            ),
            None,
        ));
    }
    out.staff.push(entry);
}

/// Validates one data row of a located table into `out`, as a roster or a staff list.
pub fn parse_row(t: &Located, row: &Row, out: &mut Parsed) {
    out.rows += 1;
    match t.kind {
        ListKind::Roster => roster_row(t, row, out),
        ListKind::Staff => staff_row(t, row, out),
    }
}

/// Finds the table in a collected sheet and validates its rows up to the end of the table (tests
/// and small callers; imports stream, see `import::scan`).
pub fn parse(sheet: Sheet, kind: Option<ListKind>) -> Result<(Located, Parsed), HeaderError> {
    let head = &sheet.rows[..sheet.rows.len().min(HEADER_SEARCH)];
    let (t, i) = locate(sheet.name.as_deref(), head, kind, ListKind::Roster)?;
    let mut p = Parsed::default();
    for row in sheet.rows.iter().skip(i + 1) {
        if t.ends_table(row) {
            break;
        }
        parse_row(&t, row, &mut p);
    }
    Ok((t, p))
}

#[cfg(test)]
mod tests {
    use super::super::table::read;
    use super::*;

    fn run(bytes: &[u8]) -> (Located, Parsed) {
        parse(read(bytes, None).unwrap(), None).unwrap()
    }

    #[test]
    fn vietnamese_headers_and_bad_cells_named() {
        let csv = "Họ tên;Mã HS;Lớp;Họ tên phụ huynh;SĐT phụ huynh;Email\n\
                   Nguyễn Văn An;HS01;1A;Nguyễn Văn Bố;912345678;\n\
                   Trần Thị Bình;HS02;1A;Trần Văn Ba;12ab;\n\
                   ;HS03;1B;;;\n\
                   Lê Chi;HS04;1B;Lê Mẹ;01672345678;me@@x\n";
        let (t, p) = run(csv.as_bytes());
        assert_eq!(t.header_line, 1);
        assert_eq!(p.entries.len(), 3, "a bad phone or email loses only itself");
        assert_eq!(
            p.entries[0].parents[0].phone.as_deref(),
            Some("+84912345678")
        );
        assert_eq!(p.entries[1].parents[0].phone, None);
        assert_eq!(p.entries[1].parents[0].name, "Trần Văn Ba");
        assert_eq!(
            p.entries[2].parents[0].phone.as_deref(),
            Some("+84372345678")
        );
        let got = |v: &[RowError]| -> Vec<(usize, String, &str, Option<String>)> {
            v.iter()
                .map(|e| (e.line, e.column.clone(), e.code, e.cell.clone()))
                .collect()
        };
        assert_eq!(
            got(&p.rejected),
            [(4, "Họ tên".into(), "required", Some("A4".into()))]
        );
        assert_eq!(
            got(&p.cell_errors),
            [
                (
                    3,
                    "SĐT phụ huynh".into(),
                    "invalid_phone",
                    Some("E3".into())
                ),
                (5, "Email".into(), "invalid_email", Some("F5".into())),
            ]
        );
    }

    #[test]
    fn english_headers() {
        let (_, p) = run(b"full_name,student_code,class,parent_phone\nAn,HS1,1A,0912345678\n");
        assert!(p.rejected.is_empty());
        assert_eq!(p.entries[0].parents[0].name, "Phụ huynh em An");
    }

    #[test]
    fn missing_name_column_is_a_header_error() {
        assert!(parse(read(b"class\n1A\n", None).unwrap(), None).is_err());
    }

    #[test]
    fn the_table_is_found_under_its_title_and_ends_at_the_total() {
        let csv = "SỞ GIÁO DỤC VÀ ĐÀO TẠO;;\n\
                   DANH SÁCH HỌC SINH LỚP 3A - NĂM HỌC 2026-2027;;\n\
                   ;;\n\
                   STT;Họ và tên;Ghi chú\n\
                   1;Ngô Văn Tổng;Hà Nội, ngày 5 tháng 9 năm 2018\n\
                   2;Tống Sơn Tùng;Tổng cộng 2 lần\n\
                   Tổng cộng: 1 học sinh;;\n\
                   ;Người lập biểu;\n\
                   ;Trần Thị Lập;\n";
        let (t, p) = run(csv.as_bytes());
        assert_eq!(t.header_line, 4);
        assert_eq!(t.default_class.as_deref(), Some("3A"));
        assert_eq!(p.rows, 2, "a student's row never ends the table");
        assert_eq!(p.entries.len(), 2);
        assert_eq!(p.entries[0].student_name, "Ngô Văn Tổng");
        assert_eq!(p.entries[0].class.as_deref(), Some("3A"));
        assert!(p.rejected.is_empty());
    }

    #[test]
    fn two_row_header_groups() {
        let csv = "Thông tin học sinh;;Thông tin phụ huynh;;Thông tin mẹ\n\
                   Họ và tên;Lớp;Họ tên;Số điện thoại;SĐT\n\
                   An;1A;Ba An;0912345678;0987654321\n";
        let (t, p) = run(csv.as_bytes());
        assert_eq!(t.header_line, 2);
        assert_eq!(t.header[2], "Thông tin phụ huynh / Họ tên");
        let e = &p.entries[0];
        assert_eq!(
            (e.student_name.as_str(), e.class.as_deref()),
            ("An", Some("1A"))
        );
        let got: Vec<(&str, Option<&str>, Option<&str>)> = e
            .parents
            .iter()
            .map(|p| (p.name.as_str(), p.phone.as_deref(), p.relation.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("Mẹ em An", Some("+84987654321"), Some("mẹ")),
                ("Ba An", Some("+84912345678"), None),
            ]
        );
    }

    #[test]
    fn several_numbers_in_a_cell() {
        assert_eq!(
            phone_pieces("0912.345.678 - 0987654321"),
            ["0912.345.678", "0987654321"]
        );
        assert_eq!(
            phone_pieces("0912345678/0987654321"),
            ["0912345678", "0987654321"]
        );
        assert_eq!(
            phone_pieces("0912 345 678 0987 654 321"),
            ["0912 345 678", "0987 654 321"]
        );
        assert_eq!(phone_pieces("0912-345-678"), ["0912-345-678"]);
    }

    /// What each kind of list is read as, by its title, sheet name and columns.
    #[test]
    fn rosters_and_staff_lists_told_apart() {
        let kind = |name: Option<&str>, csv: &str, default: ListKind| {
            let sheet = read(csv.as_bytes(), None).unwrap();
            locate(name, &sheet.rows, None, default).unwrap().0.kind
        };
        use ListKind::{Roster, Staff};
        // Homeroom teachers with their class: the title says staff.
        assert_eq!(
            kind(
                None,
                "DANH SÁCH GIÁO VIÊN CHỦ NHIỆM;;\nHọ và tên;Lớp;SĐT\nAn;4B;0912000001\n",
                Roster
            ),
            Staff
        );
        // Class monitors in a class list: the title says students, whatever "Chức vụ" says.
        assert_eq!(
            kind(
                None,
                "DANH SÁCH HỌC SINH LỚP 4B;;\nHọ và tên;Chức vụ;SĐT liên hệ\nAn;Lớp trưởng;0912000001\n",
                Staff
            ),
            Roster
        );
        assert_eq!(
            kind(Some("4B"), "Họ và tên;Tổ;SĐT\nAn;Tổ 1;0912000001\n", Staff),
            Roster,
            "the class from the sheet's name"
        );
        assert_eq!(
            kind(
                None,
                "DANH SÁCH CB-GV-NV;\nHọ và tên;SĐT\nAn;0912000001\n",
                Roster
            ),
            Staff
        );
        assert_eq!(kind(None, "Họ và tên;Chức vụ\nAn;Kế toán\n", Roster), Staff);
        assert_eq!(kind(None, "Họ và tên;SĐT\nAn;0912\n", Roster), Roster);
        assert_eq!(kind(None, "Họ và tên;SĐT\nAn;0912\n", Staff), Staff);
        // "Thông tin cán bộ" over a staff list's columns is not a father ("bố").
        let csv = ";Thông tin cán bộ;;\nHọ và tên;Chức vụ;Tổ;Số điện thoại\nAn;Giáo viên;Tổ 1;0912000001\n";
        let sheet = read(csv.as_bytes(), None).unwrap();
        let (t, i) = locate(None, &sheet.rows, None, Roster).unwrap();
        assert_eq!(t.kind, Staff);
        let mut p = Parsed::default();
        for row in &sheet.rows[i + 1..] {
            parse_row(&t, row, &mut p);
        }
        assert_eq!(p.staff[0].phone.as_deref(), Some("+84912000001"));
        assert_eq!(p.staff[0].group.as_deref(), Some("Tổ 1"));
    }

    #[test]
    fn classes_and_relations_as_one_name() {
        assert_eq!(class_name("Lớp 5A"), "5A");
        assert_eq!(class_name("5a"), "5A");
        assert_eq!(class_name("Mầm non"), "Mầm non");
        for (cell, want) in [
            ("Bố", "cha"),
            ("Bố đẻ", "cha"),
            ("Cha", "cha"),
            ("mẹ", "mẹ"),
            ("Mẹ đẻ", "mẹ"),
            ("Người giám hộ", "người giám hộ"),
            ("Bà nội", "bà nội"),
        ] {
            assert_eq!(relation(cell), want, "{cell}");
        }
    }

    #[test]
    fn classes_from_titles_and_sheet_names() {
        assert_eq!(
            class_after_lop("DANH SÁCH HỌC SINH LỚP 4B - NĂM HỌC 2026-2027").as_deref(),
            Some("4B")
        );
        assert_eq!(class_after_lop("Lớp 10A1").as_deref(), Some("10A1"));
        assert_eq!(class_token("4b").as_deref(), Some("4B"));
        assert_eq!(class_token("2026"), None);
        assert_eq!(class_token("Ghi chú"), None);
    }
}
