//! A class roster as schools keep it in Excel: one row per student with their class and a parent.
//! Maps Vietnamese or English column names, validates each row on its own, and says for every rejected
//! row its line, column and why (a code for programs, a Vietnamese message for staff).

use serde::Serialize;

use unicode_normalization::UnicodeNormalization;

use super::table::{Row, Sheet, column_letters};
use crate::domain::phone::{is_landline, normalize_vn_phone};
use crate::render::sms::unaccent;

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
}

impl Column {
    const ALL: [Column; 15] = [
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

/// One valid row: a student, their class, and the parents to link them to (as many as the row names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterEntry {
    pub line: usize,
    pub student_name: String,
    pub student_code: Option<String>,
    pub class: Option<String>,
    pub parents: Vec<ParentEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentEntry {
    pub name: String,
    /// E.164, a mobile (a landline is never stored here: this is the number SMS and Zalo use).
    pub phone: Option<String>,
    pub email: Option<String>,
    pub zalo_user_id: Option<String>,
    pub relation: Option<String>,
}

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
const HEADER_SEARCH: usize = 30;

/// Spaces collapsed and text NFC-normalised: the same name typed in decomposed Unicode is one name.
fn squash(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .nfc()
        .collect()
}

/// The table found in a sheet: its header (as the file shows it), which columns Loa reads, the data
/// rows up to the end of the table, and the class the title or the sheet name gives.
pub struct Located {
    pub sheet: Option<String>,
    /// The Excel line of the header's (last) row.
    pub header_line: usize,
    pub header: Vec<String>,
    pub columns: Vec<(Column, usize)>,
    pub rows: Vec<Row>,
    pub default_class: Option<String>,
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
            if f.ends_with("cha") || f.ends_with("bo") {
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

/// Finds the header row (or two-row header) among the first rows by the columns it names, whatever
/// title rows precede it, and the end of the table after it.
pub fn locate(sheet: Sheet) -> Result<Located, HeaderError> {
    let mut best: Option<(usize, usize, HeaderKeys)> = None;
    for i in 0..sheet.rows.len().min(HEADER_SEARCH) {
        let row = &sheet.rows[i];
        let mut candidates = vec![
            row.cells
                .iter()
                .map(|c| (c.trim().to_string(), c.trim().to_string()))
                .collect::<Vec<_>>(),
        ];
        if i > 0 && sheet.rows[i - 1].line + 1 == row.line {
            candidates.push(two_row_header(&sheet.rows[i - 1].cells, &row.cells));
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
        .name
        .as_deref()
        .and_then(|n| class_token(n).or_else(|| class_after_lop(n)))
        .or_else(|| {
            sheet.rows[..i]
                .iter()
                .flat_map(|r| r.cells.iter())
                .find_map(|c| class_after_lop(c))
        });
    let header_line = sheet.rows[i].line;
    // The data rows are moved, not copied: a school's file is held once.
    let rows: Vec<Row> = sheet
        .rows
        .into_iter()
        .skip(i + 1)
        .take_while(|r| !ends_table(r, name_col))
        .collect();
    Ok(Located {
        sheet: sheet.name,
        header_line,
        header: keys.into_iter().map(|(d, _)| d).collect(),
        columns,
        rows,
        default_class,
    })
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

/// What a roster yields: the students to import, the rows rejected (no student, or no way to find
/// the student again), the cells dropped from rows that went in, and notes (landlines, numbers
/// beyond the first).
#[derive(Default)]
pub struct Parsed {
    pub entries: Vec<RosterEntry>,
    pub rejected: Vec<RowError>,
    pub cell_errors: Vec<RowError>,
    pub notes: Vec<RowError>,
}

/// Validates every row of a located table; a bad value loses only itself, a row is rejected only
/// when it has no student (or nothing to recognise the student by on the next import).
pub fn parse_located(t: &Located) -> Parsed {
    let idx = |c: Column| t.columns.iter().find(|(k, _)| *k == c).map(|(_, i)| *i);
    let header_name = |c: Column| {
        idx(c)
            .and_then(|i| t.header.get(i).cloned())
            .unwrap_or_else(|| c.names()[0].to_string())
    };
    let mut out = Parsed::default();
    for row in &t.rows {
        let get = |c: Column| -> Option<String> {
            idx(c)
                .and_then(|i| row.cells.get(i))
                .map(|s| squash(s))
                .filter(|s| !s.is_empty())
        };
        let issue = |c: Column, code: &'static str, message: String, value: Option<String>| {
            let col = idx(c);
            let cell = col.map(|i| format!("{}{}", column_letters(i), row.line));
            let place = match (&t.sheet, col) {
                (Some(s), Some(i)) => format!(
                    "trang \"{s}\", dòng {}, cột {} ({})",
                    row.line,
                    column_letters(i),
                    header_name(c)
                ),
                (None, Some(i)) => format!(
                    "dòng {}, cột {} ({})",
                    row.line,
                    column_letters(i),
                    header_name(c)
                ),
                (Some(s), None) => format!("trang \"{s}\", dòng {}", row.line),
                (None, None) => format!("dòng {}", row.line),
            };
            RowError {
                line: row.line,
                column: header_name(c),
                code,
                message: format!("{place}: {message}"),
                sheet: t.sheet.clone(),
                cell,
                value,
            }
        };
        // A row with nothing in the columns Loa reads (an STT alone, a note) is not a student.
        if t.columns.iter().all(|(c, _)| get(*c).is_none()) {
            continue;
        }
        let Some(student_name) = get(Column::StudentName) else {
            out.rejected.push(issue(
                Column::StudentName,
                "required",
                "thiếu họ tên học sinh; dòng này không được nhập".into(),
                None,
            ));
            continue;
        };
        let student_code = get(Column::StudentCode);
        let class = get(Column::Class).or_else(|| t.default_class.clone());
        if student_code.is_none() && class.is_none() {
            // Without a code or a class a re-import could not find the student again.
            out.rejected.push(issue(
                Column::StudentCode,
                "required",
                "cần mã học sinh hoặc lớp để nhận ra học sinh khi nhập lại; dòng này không được nhập"
                    .into(),
                None,
            ));
            continue;
        }
        let email = match get(Column::ParentEmail) {
            Some(e) => match e.parse::<lettre::Address>() {
                Ok(_) => Some(e.to_lowercase()),
                Err(_) => {
                    out.cell_errors.push(issue(
                        Column::ParentEmail,
                        "invalid_email",
                        format!("địa chỉ email \"{e}\" không hợp lệ; đã bỏ qua ô này, học sinh vẫn được nhập"),
                        Some(e.clone()),
                    ));
                    None
                }
            },
            None => None,
        };
        let zalo = get(Column::ParentZalo);
        let mut parents: Vec<(Who, ParentEntry)> = Vec::new();
        for who in [Who::Father, Who::Mother, Who::Guardian, Who::Generic] {
            let (name_col, phone_cols) = who.columns();
            let name = get(name_col);
            let mut mobiles: Vec<(Column, String, String)> = Vec::new();
            let mut any_phone_cell = false;
            for &pc in phone_cols {
                let Some(cell) = get(pc) else { continue };
                any_phone_cell = true;
                for piece in phone_pieces(&cell) {
                    match normalize_vn_phone(&piece) {
                        Ok(p) if is_landline(&p) => out.notes.push(issue(
                            pc,
                            "landline",
                            format!("\"{piece}\" là số máy bàn: được ghi nhận nhưng không dùng để gửi SMS hay Zalo"),
                            Some(cell.clone()),
                        )),
                        Ok(p) => {
                            if !mobiles.iter().any(|(_, _, m)| *m == p) {
                                mobiles.push((pc, piece, p));
                            }
                        }
                        Err(m) => out.cell_errors.push(issue(
                            pc,
                            "invalid_phone",
                            format!("{m}; đã bỏ số này, học sinh và phụ huynh vẫn được nhập"),
                            Some(cell.clone()),
                        )),
                    }
                }
            }
            let (e, z) = match who {
                Who::Generic => (email.clone(), zalo.clone()),
                _ => (None, None),
            };
            if name.is_none() && !any_phone_cell && e.is_none() && z.is_none() {
                continue;
            }
            let phone = mobiles.first().map(|(_, _, p)| p.clone());
            for (pc, piece, _) in mobiles.iter().skip(1) {
                out.notes.push(issue(
                    *pc,
                    "extra_phone",
                    format!(
                        "Loa giữ một số di động cho mỗi phụ huynh: dùng {}, chưa lưu số \"{piece}\"",
                        mobiles[0].1
                    ),
                    get(*pc),
                ));
            }
            let relation = match who {
                Who::Generic => get(Column::Relation),
                w => w.relation().map(str::to_string),
            };
            let entry = ParentEntry {
                name: name.unwrap_or_else(|| who.default_name(&student_name)),
                phone,
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
                        || entry.phone.is_none() && get(Column::ParentName).is_none()
                });
                if let Some((_, p)) = same {
                    p.email = p.email.take().or(entry.email);
                    p.zalo_user_id = p.zalo_user_id.take().or(entry.zalo_user_id);
                    continue;
                }
            }
            parents.push((who, entry));
        }
        for (who, p) in &parents {
            if p.phone.is_none() && p.email.is_none() && p.zalo_user_id.is_none() {
                let (name_col, phone_cols) = who.columns();
                let col = if idx(phone_cols[0]).is_some() {
                    phone_cols[0]
                } else {
                    name_col
                };
                out.notes.push(issue(
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
        out.entries.push(RosterEntry {
            line: row.line,
            student_name,
            student_code,
            class,
            parents: parents.into_iter().map(|(_, p)| p).collect(),
        });
    }
    out
}

/// Finds the table in a sheet and validates its rows.
pub fn parse(sheet: Sheet) -> Result<(Located, Parsed), HeaderError> {
    let t = locate(sheet)?;
    let p = parse_located(&t);
    Ok((t, p))
}

#[cfg(test)]
mod tests {
    use super::super::table::read;
    use super::*;

    fn run(bytes: &[u8]) -> (Located, Parsed) {
        parse(read(bytes, None).unwrap()).unwrap()
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
        assert!(parse(read(b"class\n1A\n", None).unwrap()).is_err());
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
        assert_eq!(t.rows.len(), 2, "a student's row never ends the table");
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
