//! Reads a roster file into rows of text cells with their line numbers, as a person sees them in
//! Excel: CSV (UTF-8 with or without BOM, `;` or `,`) or XLSX (the first sheet or a named one).

use std::io::{Cursor, Read};

use calamine::{Data, Reader, Xlsx};

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
    #[error("tệp không phải CSV (UTF-8) hay Excel .xlsx")]
    UnknownFormat,
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

/// XLSX is a zip file: it starts with `PK`.
pub fn is_xlsx(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

pub fn read(bytes: &[u8], sheet: Option<&str>) -> Result<Sheet, TableError> {
    let (name, rows) = if is_xlsx(bytes) {
        let (name, rows) = read_xlsx(bytes, sheet)?;
        (Some(name), rows)
    } else {
        (None, read_csv(bytes)?)
    };
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| r.cells.iter().any(|c| !c.trim().is_empty()))
        .collect();
    if rows.is_empty() {
        return Err(TableError::Empty);
    }
    Ok(Sheet { name, rows })
}

fn read_csv(bytes: &[u8]) -> Result<Vec<Row>, TableError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| TableError::UnknownFormat)?;
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
    for rec in reader.records() {
        let rec = rec.map_err(|e| TableError::Csv {
            line: e.position().map(|p| p.line() as usize).unwrap_or(0),
            reason: e.to_string(),
        })?;
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
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

/// Reads a sheet as the stream of its cells, in file order. The sheet's declared dimension is never
/// trusted (`A1:XFD4294967295` would size a grid of 10^13 cells): only cells that exist are kept,
/// and a cell past `MAX_ROWS` or `MAX_COLS` ends the read with its name.
fn read_xlsx(bytes: &[u8], sheet: Option<&str>) -> Result<(String, Vec<Row>), TableError> {
    check_unzipped(bytes)?;
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
        let row = rows.entry(r + 1).or_default();
        if row.len() <= c {
            row.resize(c + 1, String::new());
        }
        row[c] = text;
    }
    Ok((
        name,
        rows.into_iter()
            .map(|(line, cells)| Row { line, cells })
            .collect(),
    ))
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
    fn csv_with_commas_and_quotes() {
        let t = read(b"full_name,class\n\"Nguyen, An\",1A\n", None).unwrap();
        assert_eq!(t.rows[1].cells, ["Nguyen, An", "1A"]);
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
