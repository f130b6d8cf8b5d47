//! Reads a roster file into rows of text cells with their line numbers, as a person sees them in
//! Excel: CSV (UTF-8, UTF-16 or a legacy Vietnamese encoding; `;` or `,`) or XLSX (every visible
//! worksheet, or a named one).

use std::io::{Cursor, Read};

use calamine::{Data, Reader, SheetType, SheetVisible, Xlsx};

use super::encoding::{self, Encoding};

/// Rows a roster may have: a whole school with one row per parent is a few thousand.
pub const MAX_ROWS: usize = 50_000;
/// Columns a roster may have: management-software exports carry a few dozen.
pub const MAX_COLS: usize = 200;
/// Characters in one cell: a name, an address or a note, never a page.
pub const MAX_CELL: usize = 2_000;
/// Bytes an XLSX may unpack to (all its parts together). A zip can claim any size and a 1 kB one can
/// inflate to gigabytes, so the parts are inflated and counted before the reader sees them.
pub const MAX_UNZIPPED: u64 = 128 * 1024 * 1024;

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
    #[error("{0}")]
    Encoding(String),
    #[error(
        "tệp Excel 97-2003 (.xls) chưa đọc được: hãy mở tệp trong Excel và lưu lại thành .xlsx (Tệp > Lưu thành > Sổ làm việc Excel)"
    )]
    LegacyXls,
    #[error(
        "tệp có hơn {MAX_ROWS} dòng (ô {cell}), quá giới hạn {MAX_ROWS} dòng một lần nhập: hãy chia tệp"
    )]
    TooManyRows { cell: String },
    #[error("tệp có hơn {MAX_COLS} cột (ô {cell}), quá giới hạn {MAX_COLS} cột")]
    TooManyColumns { cell: String },
    #[error("ô {cell} dài {len} ký tự, quá giới hạn {MAX_CELL} ký tự một ô")]
    CellTooLong { cell: String, len: usize },
    #[error("tệp Excel giải nén ra hơn {} MB, quá giới hạn", MAX_UNZIPPED / (1024 * 1024))]
    TooBigUnzipped,
}

/// A cell's name as Excel shows it: column letters and row number from 1 (`A1`, `XFD1048576`).
pub fn cell_name(row: usize, col: usize) -> String {
    let mut letters = Vec::new();
    let mut c = col + 1;
    while c > 0 {
        letters.push(b'A' + ((c - 1) % 26) as u8);
        c = (c - 1) / 26;
    }
    letters.reverse();
    format!("{}{}", String::from_utf8_lossy(&letters), row + 1)
}

/// A column's letters as Excel shows them (`A`, `AB`), from 0.
pub fn column_letters(col: usize) -> String {
    let name = cell_name(0, col);
    name.trim_end_matches('1').to_string()
}

/// Refuses a cell beyond the limits, by its position from 0.
fn check_cell(row: usize, col: usize, text: &str) -> Result<(), TableError> {
    if row >= MAX_ROWS {
        return Err(TableError::TooManyRows {
            cell: cell_name(row, col),
        });
    }
    if col >= MAX_COLS {
        return Err(TableError::TooManyColumns {
            cell: cell_name(row, col),
        });
    }
    let len = text.chars().count();
    if len > MAX_CELL {
        return Err(TableError::CellTooLong {
            cell: cell_name(row, col),
            len,
        });
    }
    Ok(())
}

/// The non-blank rows of one sheet (or of a CSV file), in file order, and the sheet's name. Which
/// row is the header is for the reader of the rows to find (see `roster::locate`).
pub struct Sheet {
    /// The XLSX sheet's name; `None` for CSV.
    pub name: Option<String>,
    pub rows: Vec<Row>,
}

/// What a file holds: its sheets with rows (a CSV is one), the sheets passed over, and the text
/// encoding a CSV was read in.
pub struct Book {
    pub sheets: Vec<Sheet>,
    /// `(sheet, why)`: hidden sheets, chart sheets, empty ones.
    pub passed_over: Vec<(String, String)>,
    pub encoding: Option<Encoding>,
}

/// XLSX is a zip file: it starts with `PK`.
pub fn is_xlsx(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// The first (or only) sheet of a file: for tests and callers that read one table.
pub fn read(bytes: &[u8], sheet: Option<&str>) -> Result<Sheet, TableError> {
    read_book(bytes, sheet, None)?
        .sheets
        .into_iter()
        .next()
        .ok_or(TableError::Empty)
}

/// Reads every visible worksheet of an XLSX (or only `sheet`), or a CSV in `encoding` (detected
/// when not given). Blank rows are left out; lines keep the numbers the file shows.
pub fn read_book(
    bytes: &[u8],
    sheet: Option<&str>,
    encoding: Option<Encoding>,
) -> Result<Book, TableError> {
    let non_blank = |rows: Vec<Row>| -> Vec<Row> {
        rows.into_iter()
            .filter(|r| r.cells.iter().any(|c| !c.trim().is_empty()))
            .collect()
    };
    if bytes.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        // Reading BIFF means building the sheet's whole grid (up to 65,536 x 256 cells, as the
        // file claims), which the streaming XLSX reader avoids; staff can re-save as .xlsx.
        return Err(TableError::LegacyXls);
    }
    let book = if is_xlsx(bytes) {
        let (sheets, passed_over) = read_xlsx(bytes, sheet)?;
        let mut book = Book {
            sheets: Vec::new(),
            passed_over,
            encoding: None,
        };
        for (name, rows) in sheets {
            let rows = non_blank(rows);
            if rows.is_empty() {
                book.passed_over.push((name, "trang tính trống".into()));
            } else {
                book.sheets.push(Sheet {
                    name: Some(name),
                    rows,
                });
            }
        }
        book
    } else {
        let (text, used) =
            encoding::decode(bytes, encoding).map_err(|e| TableError::Encoding(e.0))?;
        let rows = non_blank(read_csv(&text)?);
        Book {
            sheets: if rows.is_empty() {
                vec![]
            } else {
                vec![Sheet { name: None, rows }]
            },
            passed_over: vec![],
            encoding: Some(used),
        }
    };
    if book.sheets.is_empty() {
        return Err(TableError::Empty);
    }
    Ok(book)
}

fn read_csv(text: &str) -> Result<Vec<Row>, TableError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Vietnamese Excel exports CSV with `;` (the decimal separator is `,`): pick what the header uses.
    // Title rows may come first ("DANH SÁCH HỌC SINH ..."), so the first lines are counted together.
    let head: String = text.lines().take(30).collect();
    let delimiter = if head.matches(';').count() > head.matches(',').count() {
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
    let mut lines = super::error_book::CsvLines::new(text);
    for rec in reader.records() {
        let rec = rec.map_err(|e| TableError::Csv {
            line: e.position().map(|p| p.line() as usize).unwrap_or(0),
            reason: e.to_string(),
        })?;
        let line = lines.line_of(&rec);
        for (col, c) in rec.iter().enumerate() {
            check_cell(out.len(), col, c)?;
        }
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

/// Inflates every part of the zip and counts the bytes, refusing it past `MAX_UNZIPPED`, so that
/// the XLSX reader, which holds the shared strings in memory, never sees a decompression bomb.
fn check_unzipped(bytes: &[u8]) -> Result<(), TableError> {
    let bad = |e: zip::result::ZipError| TableError::Xlsx(e.to_string());
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(bad)?;
    let mut left = MAX_UNZIPPED;
    for i in 0..zip.len() {
        let part = zip.by_index(i).map_err(bad)?;
        // One byte over the allowance is enough to know.
        let n = std::io::copy(&mut part.take(left + 1), &mut std::io::sink())
            .map_err(|e| TableError::Xlsx(e.to_string()))?;
        if n > left {
            return Err(TableError::TooBigUnzipped);
        }
        left -= n;
    }
    Ok(())
}

/// Sheets read, with their rows, and the sheets passed over with why.
type Sheets = (Vec<(String, Vec<Row>)>, Vec<(String, String)>);

/// Reads each worksheet (or only `sheet`) as the stream of its cells, in file order. A sheet's
/// declared dimension is never trusted (`A1:XFD4294967295` would size a grid of 10^13 cells): only
/// cells that exist are kept, and a cell past `MAX_ROWS` (counted over all sheets) or `MAX_COLS`
/// ends the read with its name.
fn read_xlsx(bytes: &[u8], sheet: Option<&str>) -> Result<Sheets, TableError> {
    check_unzipped(bytes)?;
    let mut book: Xlsx<_> =
        Xlsx::new(Cursor::new(bytes)).map_err(|e| TableError::Xlsx(e.to_string()))?;
    let mut passed_over = Vec::new();
    let names: Vec<String> = match sheet {
        Some(s) => {
            if !book.sheet_names().iter().any(|n| n == s) {
                return Err(TableError::NoSheet(s.to_string()));
            }
            vec![s.to_string()]
        }
        None => {
            let mut names = Vec::new();
            for m in book.sheets_metadata() {
                if m.typ != SheetType::WorkSheet {
                    passed_over.push((m.name.clone(), "không phải trang dữ liệu".into()));
                } else if m.visible != SheetVisible::Visible {
                    passed_over.push((m.name.clone(), "trang tính bị ẩn".into()));
                } else {
                    names.push(m.name.clone());
                }
            }
            names
        }
    };
    let mut sheets = Vec::new();
    // Rows held across sheets: one upload may hold a whole school, never more than MAX_ROWS.
    let mut held = 0usize;
    for name in names {
        let mut cells = book
            .worksheet_cells_reader(&name)
            .map_err(|e| TableError::Xlsx(e.to_string()))?;
        // By line: cells arrive row by row, but nothing stops a file from listing rows out of order.
        let mut rows: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
        while let Some(cell) = cells
            .next_cell()
            .map_err(|e| TableError::Xlsx(e.to_string()))?
        {
            let (r, c) = cell.get_position();
            let (r, c) = (r as usize, c as usize);
            let text = cell_text(&Data::from(cell.get_value().clone()));
            if text.is_empty() {
                continue;
            }
            check_cell(r, c, &text)?;
            if !rows.contains_key(&(r + 1)) {
                held += 1;
                if held > MAX_ROWS {
                    return Err(TableError::TooManyRows {
                        cell: format!("{name}!{}", cell_name(r, c)),
                    });
                }
            }
            let row = rows.entry(r + 1).or_default();
            if row.len() <= c {
                row.resize(c + 1, String::new());
            }
            row[c] = text;
        }
        sheets.push((
            name,
            rows.into_iter()
                .map(|(line, cells)| Row { line, cells })
                .collect(),
        ));
    }
    Ok((sheets, passed_over))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_bom_and_semicolons() {
        let t = read("\u{feff}Họ tên;Lớp\nAn;1A\n\n;\nBình;1B\n".as_bytes(), None).unwrap();
        assert_eq!(t.rows[0].cells, ["Họ tên", "Lớp"]);
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.rows[2].cells, ["Bình", "1B"]);
        assert_eq!(
            t.rows[2].line, 5,
            "lines count blank ones, as the file shows them"
        );
    }

    #[test]
    fn csv_lines_as_excel_shows_them_with_crlf_and_blank_lines() {
        let t = read(b"STT;Ho ten\r\n1;An\r\n\r\n\r\n2;Binh\r\n", None).unwrap();
        let lines: Vec<usize> = t.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 2, 5]);
    }

    #[test]
    fn csv_with_commas_and_quotes() {
        let t = read(b"full_name,class\n\"Nguyen, An\",1A\n", None).unwrap();
        assert_eq!(t.rows[1].cells, ["Nguyen, An", "1A"]);
    }

    #[test]
    fn not_a_table() {
        assert_eq!(read(b"", None).err(), Some(TableError::Empty));
        // A UTF-16 byte order mark before an odd number of bytes.
        assert!(matches!(
            read(&[0xff, 0xfe, 0x00], None).err(),
            Some(TableError::Encoding(_))
        ));
        assert_eq!(
            read(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0", None).err(),
            Some(TableError::LegacyXls)
        );
    }
}
