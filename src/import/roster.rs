//! A class roster as schools keep it in Excel: one row per student with their class and a parent.
//! Maps Vietnamese or English column names, validates each row on its own, and says for every rejected
//! row its line, column and why (a code for programs, a Vietnamese message for staff).

use serde::Serialize;

use super::table::Table;
use crate::domain::phone::normalize_vn_phone;
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
}

impl Column {
    const ALL: [Column; 8] = [
        Column::StudentName,
        Column::StudentCode,
        Column::Class,
        Column::ParentName,
        Column::ParentPhone,
        Column::ParentEmail,
        Column::ParentZalo,
        Column::Relation,
    ];

    /// The documented headers; the first is how error messages name the column.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Column::StudentName => &[
                "Họ tên",
                "Họ và tên",
                "Họ tên học sinh",
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
        }
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

/// One valid row: a student, their class, and the parent to link them to (if the row names one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterEntry {
    pub line: usize,
    pub student_name: String,
    pub student_code: Option<String>,
    pub class: Option<String>,
    pub parent: Option<ParentEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentEntry {
    pub name: String,
    /// E.164.
    pub phone: Option<String>,
    pub email: Option<String>,
    pub zalo_user_id: Option<String>,
    pub relation: Option<String>,
}

/// Why a row was not imported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: usize,
    /// The column as the file names it (or the documented name when the column is missing).
    pub column: String,
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeaderError(pub String);

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Validates every row; good rows and the reasons for bad ones, in file order.
pub fn parse(table: &Table) -> Result<(Vec<RosterEntry>, Vec<RowError>), HeaderError> {
    let mut at: Vec<(Column, usize)> = Vec::new();
    for (i, h) in table.header.iter().enumerate() {
        let f = fold(h);
        if let Some(c) = Column::ALL
            .into_iter()
            .find(|c| c.names().iter().any(|n| fold(n) == f))
            && !at.iter().any(|(k, _)| *k == c)
        {
            at.push((c, i));
        }
    }
    let idx = |c: Column| at.iter().find(|(k, _)| *k == c).map(|(_, i)| *i);
    if idx(Column::StudentName).is_none() {
        return Err(HeaderError(format!(
            "thiếu cột họ tên học sinh (một trong: {})",
            Column::StudentName.names().join(", ")
        )));
    }
    let header_name = |c: Column| {
        idx(c)
            .and_then(|i| table.header.get(i).cloned())
            .unwrap_or_else(|| c.names()[0].to_string())
    };
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for row in &table.rows {
        let get = |c: Column| -> Option<String> {
            idx(c)
                .and_then(|i| row.cells.get(i))
                .map(|s| squash(s))
                .filter(|s| !s.is_empty())
        };
        let mut errs: Vec<RowError> = Vec::new();
        let mut err = |c: Column, code: &'static str, message: String| {
            errs.push(RowError {
                line: row.line,
                column: header_name(c),
                code,
                message,
            })
        };
        let student_name = get(Column::StudentName);
        if student_name.is_none() {
            err(
                Column::StudentName,
                "required",
                "thiếu họ tên học sinh".into(),
            );
        }
        let student_code = get(Column::StudentCode);
        let class = get(Column::Class);
        if student_code.is_none() && class.is_none() {
            // Without a code or a class a re-import could not find the student again.
            err(
                Column::StudentCode,
                "required",
                "cần mã học sinh hoặc lớp để nhận ra học sinh khi nhập lại".into(),
            );
        }
        let phone = match get(Column::ParentPhone) {
            Some(p) => match normalize_vn_phone(&p) {
                Ok(p) => Some(p),
                Err(m) => {
                    err(Column::ParentPhone, "invalid_phone", m);
                    None
                }
            },
            None => None,
        };
        let email = match get(Column::ParentEmail) {
            Some(e) => match e.parse::<lettre::Address>() {
                Ok(_) => Some(e.to_lowercase()),
                Err(_) => {
                    err(
                        Column::ParentEmail,
                        "invalid_email",
                        format!("địa chỉ email \"{e}\" không hợp lệ"),
                    );
                    None
                }
            },
            None => None,
        };
        let parent_name = get(Column::ParentName);
        let zalo = get(Column::ParentZalo);
        let has_parent =
            parent_name.is_some() || phone.is_some() || email.is_some() || zalo.is_some();
        // A parent named without any address (an invalid one is already reported above).
        if has_parent
            && get(Column::ParentPhone).is_none()
            && get(Column::ParentEmail).is_none()
            && zalo.is_none()
        {
            err(
                Column::ParentPhone,
                "no_address",
                "phụ huynh cần số điện thoại, email hoặc Zalo".into(),
            );
        }
        if !errs.is_empty() {
            bad.extend(errs);
            continue;
        }
        let Some(student_name) = student_name else {
            continue;
        };
        let parent = has_parent.then(|| ParentEntry {
            name: parent_name.unwrap_or_else(|| format!("Phụ huynh em {student_name}")),
            phone,
            email,
            zalo_user_id: zalo,
            relation: get(Column::Relation),
        });
        good.push(RosterEntry {
            line: row.line,
            student_name,
            student_code,
            class,
            parent,
        });
    }
    Ok((good, bad))
}

#[cfg(test)]
mod tests {
    use super::super::table::read;
    use super::*;

    #[test]
    fn vietnamese_headers_and_bad_rows_named() {
        let csv = "Họ tên;Mã HS;Lớp;Họ tên phụ huynh;SĐT phụ huynh;Email\n\
                   Nguyễn Văn An;HS01;1A;Nguyễn Văn Bố;912345678;\n\
                   Trần Thị Bình;HS02;1A;Trần Văn Ba;12ab;\n\
                   ;HS03;1B;;;\n\
                   Lê Chi;HS04;1B;Lê Mẹ;01672345678;me@@x\n";
        let t = read(csv.as_bytes(), None).unwrap();
        let (good, bad) = parse(&t).unwrap();
        assert_eq!(good.len(), 1);
        assert_eq!(
            good[0].parent.as_ref().unwrap().phone.as_deref(),
            Some("+84912345678")
        );
        let got: Vec<(usize, &str, &str)> = bad
            .iter()
            .map(|e| (e.line, e.column.as_str(), e.code))
            .collect();
        assert_eq!(
            got,
            [
                (3, "SĐT phụ huynh", "invalid_phone"),
                (4, "Họ tên", "required"),
                (5, "Email", "invalid_email"),
            ]
        );
    }

    #[test]
    fn english_headers() {
        let t = read(
            b"full_name,student_code,class,parent_phone\nAn,HS1,1A,0912345678\n",
            None,
        )
        .unwrap();
        let (good, bad) = parse(&t).unwrap();
        assert!(bad.is_empty());
        assert_eq!(good[0].parent.as_ref().unwrap().name, "Phụ huynh em An");
    }

    #[test]
    fn missing_name_column_is_a_header_error() {
        let t = read(b"class\n1A\n", None).unwrap();
        assert!(parse(&t).is_err());
    }
}
