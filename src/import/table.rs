//! Reads a roster file into rows of text cells with their line numbers, as a person sees them in
//! Excel: CSV (UTF-8 with or without BOM, `;` or `,`) or XLSX (the first sheet or a named one).

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};

/// One row of cells, numbered as the file shows it (the header is line 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub cells: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TableError {
    #[error("tệp trống")]
    Empty,
    #[error("tệp CSV không đọc được ở dòng {line}: {reason}")]
    Csv { line: usize, reason: String },
    #[error("tệp Excel không đọc được: {0}")]
    Xlsx(String),
    #[error("không có trang tính \"{0}\" trong tệp Excel")]
    NoSheet(String),
    #[error("tệp không phải CSV (UTF-8) hay Excel .xlsx")]
    UnknownFormat,
}

/// The header row and the data rows after it. Blank rows are dropped.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Row>,
}

/// XLSX is a zip file: it starts with `PK`.
pub fn is_xlsx(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

pub fn read(bytes: &[u8], sheet: Option<&str>) -> Result<Table, TableError> {
    let rows = if is_xlsx(bytes) {
        read_xlsx(bytes, sheet)?
    } else {
        read_csv(bytes)?
    };
    let mut it = rows
        .into_iter()
        .filter(|r| r.cells.iter().any(|c| !c.trim().is_empty()));
    let header = it.next().ok_or(TableError::Empty)?.cells;
    Ok(Table {
        header,
        rows: it.collect(),
    })
}

fn read_csv(bytes: &[u8]) -> Result<Vec<Row>, TableError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| TableError::UnknownFormat)?;
    // Vietnamese Excel exports CSV with `;` (the decimal separator is `,`): pick what the header uses.
    let first = text.lines().next().unwrap_or("");
    let delimiter = if first.matches(';').count() > first.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| TableError::Csv {
            line: e.position().map(|p| p.line() as usize).unwrap_or(0),
            reason: e.to_string(),
        })?;
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
        out.push(Row {
            line,
            cells: rec.iter().map(|c| c.trim().to_string()).collect(),
        });
    }
    Ok(out)
}

/// A cell as its text. Whole numbers print without `.0`: a phone typed as a number (`912345678`)
/// must come out as Excel shows it.
fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Int(i) => i.to_string(),
        other => other.to_string().trim().to_string(),
    }
}

fn read_xlsx(bytes: &[u8], sheet: Option<&str>) -> Result<Vec<Row>, TableError> {
    let mut book: Xlsx<_> =
        Xlsx::new(Cursor::new(bytes)).map_err(|e| TableError::Xlsx(e.to_string()))?;
    let name = match sheet {
        Some(s) => {
            if !book.sheet_names().iter().any(|n| n == s) {
                return Err(TableError::NoSheet(s.to_string()));
            }
            s.to_string()
        }
        None => book
            .sheet_names()
            .first()
            .cloned()
            .ok_or(TableError::Empty)?,
    };
    let range = book
        .worksheet_range(&name)
        .map_err(|e| TableError::Xlsx(e.to_string()))?;
    // Lines as Excel numbers them, even when the used range does not start at row 1.
    let first_row = range.start().map(|(r, _)| r as usize).unwrap_or(0);
    Ok(range
        .rows()
        .enumerate()
        .map(|(i, r)| Row {
            line: first_row + i + 1,
            cells: r.iter().map(cell_text).collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_bom_and_semicolons() {
        let t = read("\u{feff}Họ tên;Lớp\nAn;1A\n\n;\nBình;1B\n".as_bytes(), None).unwrap();
        assert_eq!(t.header, ["Họ tên", "Lớp"]);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[1].cells, ["Bình", "1B"]);
        assert_eq!(
            t.rows[1].line, 5,
            "lines count blank ones, as the file shows them"
        );
    }

    #[test]
    fn csv_with_commas_and_quotes() {
        let t = read(b"full_name,class\n\"Nguyen, An\",1A\n", None).unwrap();
        assert_eq!(t.rows[0].cells, ["Nguyen, An", "1A"]);
    }

    #[test]
    fn not_a_table() {
        assert_eq!(read(b"", None).err(), Some(TableError::Empty));
        assert_eq!(
            read(&[0xff, 0xfe, 0x00], None).err(),
            Some(TableError::UnknownFormat)
        );
    }
}
