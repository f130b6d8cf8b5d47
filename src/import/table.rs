//! Reads a roster file into rows of text cells with their line numbers, as a person sees them in
//! Excel: CSV (UTF-8, UTF-16 or a legacy Vietnamese encoding; `;` or `,`) or XLSX (every visible
//! worksheet, or a named one).

use std::io::{Cursor, Read};

use calamine::{Data, Reader, SheetType, SheetVisible, Xlsx};

use super::encoding::{self, Encoding};

/// Non-blank rows a file may have, over all its sheets: 50,000 students (a whole district's schools
/// in one export) with each class sheet's title, header, total and signature rows.
pub const MAX_ROWS: usize = 60_000;
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

/// The non-blank rows of one sheet (or of a CSV file), in file order, and the sheet's name: what
/// `read` collects for tests and small callers; imports take the rows as a stream (`stream_book`).
pub struct Sheet {
    /// The XLSX sheet's name; `None` for CSV.
    pub name: Option<String>,
    pub rows: Vec<Row>,
}

/// What a file held besides its rows: the sheets passed over and the text encoding of a CSV.
#[derive(Default)]
pub struct BookInfo {
    /// `(sheet, why)`: hidden sheets, chart sheets.
    pub passed_over: Vec<(String, String)>,
    pub encoding: Option<Encoding>,
}

/// A sheet's non-blank rows as they are read: one row in memory at a time.
pub type Rows<'r> = dyn Iterator<Item = Result<Row, TableError>> + 'r;

/// What is called with each sheet's name (`None` for CSV) and rows.
pub type EachSheet<'f, E> = dyn FnMut(Option<&str>, &mut Rows<'_>) -> Result<(), E> + 'f;

/// XLSX is a zip file: it starts with `PK`.
pub fn is_xlsx(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// The first (or only) sheet of a file, collected: for tests and callers that read one table.
pub fn read(bytes: &[u8], sheet: Option<&str>) -> Result<Sheet, TableError> {
    let mut first: Option<Sheet> = None;
    stream_book(bytes, sheet, None, &mut |name, rows| {
        if first.is_none() {
            let rows = rows.collect::<Result<Vec<_>, _>>()?;
            if !rows.is_empty() {
                first = Some(Sheet {
                    name: name.map(str::to_string),
                    rows,
                });
            }
        }
        Ok::<_, TableError>(())
    })?;
    first.ok_or(TableError::Empty)
}

/// Hands every visible worksheet of an XLSX (or only `sheet`), or a CSV in `encoding` (detected
/// when not given), to `each` with its non-blank rows as a stream, in file order; lines keep the
/// numbers the file shows. `each` may stop reading a sheet early (the end of its table): the rows
/// after are never read. Memory is one row, besides the file and what `each` keeps.
pub fn stream_book<E: From<TableError>>(
    bytes: &[u8],
    sheet: Option<&str>,
    encoding: Option<Encoding>,
    each: &mut EachSheet<'_, E>,
) -> Result<BookInfo, E> {
    if bytes.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        // Reading BIFF means building the sheet's whole grid (up to 65,536 x 256 cells, as the
        // file claims), which the streaming XLSX reader avoids; staff can re-save as .xlsx.
        return Err(TableError::LegacyXls.into());
    }
    if is_xlsx(bytes) {
        return stream_xlsx(bytes, sheet, each);
    }
    let (text, used) = encoding::decode(bytes, encoding).map_err(|e| TableError::Encoding(e.0))?;
    let mut rows = csv_rows(&text);
    let mut any = false;
    let mut counted = (&mut rows).inspect(|_| any = true);
    each(None, &mut counted)?;
    if !any {
        return Err(TableError::Empty.into());
    }
    Ok(BookInfo {
        passed_over: vec![],
        encoding: Some(used),
    })
}

/// The separator of a CSV (the import and the error workbook read it alike). Vietnamese Excel
/// exports CSV with `;` (its decimal separator is `,`); "Unicode text" (UTF-16) uses tabs; title
/// rows may come first ("DANH SÁCH HỌC SINH ..."), so the first 30 lines are counted together and
/// the most frequent of tab, `;` and `,` wins (`,` on a tie).
pub(crate) fn csv_delimiter(text: &str) -> u8 {
    let (mut tabs, mut semis, mut commas) = (0, 0, 0);
    for line in text.lines().take(30) {
        tabs += line.matches('\t').count();
        semis += line.matches(';').count();
        commas += line.matches(',').count();
    }
    if tabs > semis && tabs > commas {
        b'\t'
    } else if semis > commas {
        b';'
    } else {
        b','
    }
}

/// The line each CSV record starts on, as a text editor numbers it: blank lines count, and a
/// CRLF or LF or CR ends a line.
///
/// Not `record.position().line()`: the csv crate takes a record's position where the previous
/// record ended, before the blank lines and the `\n` of a CRLF it then skips are counted, so after
/// a blank line the number is too small, and in a CRLF file (what Excel on Windows saves) the
/// first two records both say line 1. The byte offset it gives is exact, so the record's first
/// byte is found from it and the line breaks before it are counted, once, as records come in order.
pub(crate) struct CsvLines<'t> {
    text: &'t [u8],
    /// Bytes before `at` are counted: `line` is the line `at` is on.
    at: usize,
    line: usize,
}

impl<'t> CsvLines<'t> {
    /// `text` is what the csv reader reads (after any BOM), so that offsets agree.
    pub(crate) fn new(text: &'t str) -> Self {
        CsvLines {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    /// The line (from 1) `record` starts on. Records must be asked for in file order.
    pub(crate) fn line_of(&mut self, record: &csv::StringRecord) -> usize {
        let from = record
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(self.at)
            .clamp(self.at, self.text.len());
        // The reader skips line ends between records (blank lines are no record), so the first
        // byte that is not one is where this record starts.
        let start = self.text[from..]
            .iter()
            .position(|b| *b != b'\r' && *b != b'\n')
            .map_or(self.text.len(), |i| from + i);
        for i in self.at..start {
            match self.text[i] {
                b'\n' => self.line += 1,
                // A CR ends a line unless an LF follows, which then ends it.
                b'\r' if self.text.get(i + 1) != Some(&b'\n') => self.line += 1,
                _ => {}
            }
        }
        self.at = start;
        self.line
    }
}

fn is_blank(cells: &[String]) -> bool {
    cells.iter().all(|c| c.trim().is_empty())
}

/// A CSV's non-blank records as rows.
fn csv_rows(text: &str) -> impl Iterator<Item = Result<Row, TableError>> + '_ {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let delimiter = csv_delimiter(text);
    let reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut lines = CsvLines::new(text);
    let mut index = 0usize;
    reader.into_records().filter_map(move |rec| {
        let rec = match rec {
            Ok(rec) => rec,
            Err(e) => {
                return Some(Err(TableError::Csv {
                    line: e.position().map(|p| p.line() as usize).unwrap_or(0),
                    reason: e.to_string(),
                }));
            }
        };
        let line = lines.line_of(&rec);
        for (col, c) in rec.iter().enumerate() {
            if let Err(e) = check_cell(index, col, c) {
                return Some(Err(e));
            }
        }
        index += 1;
        let cells: Vec<String> = rec.iter().map(|c| c.trim().to_string()).collect();
        (!is_blank(&cells)).then_some(Ok(Row { line, cells }))
    })
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

/// Streams each worksheet (or only `sheet`) as its rows, cell by cell in file order. A sheet's
/// declared dimension is never trusted (`A1:XFD4294967295` would size a grid of 10^13 cells): only
/// cells that exist are kept, and a cell past `MAX_ROWS` (counted over all sheets) or `MAX_COLS`
/// ends the read with its name.
fn stream_xlsx<E: From<TableError>>(
    bytes: &[u8],
    sheet: Option<&str>,
    each: &mut EachSheet<'_, E>,
) -> Result<BookInfo, E> {
    check_unzipped(bytes)?;
    let mut book: Xlsx<_> =
        Xlsx::new(Cursor::new(bytes)).map_err(|e| TableError::Xlsx(e.to_string()))?;
    let mut info = BookInfo::default();
    let names: Vec<String> = match sheet {
        Some(s) => {
            if !book.sheet_names().iter().any(|n| n == s) {
                return Err(TableError::NoSheet(s.to_string()).into());
            }
            vec![s.to_string()]
        }
        None => {
            let mut names = Vec::new();
            for m in book.sheets_metadata() {
                if m.typ != SheetType::WorkSheet {
                    info.passed_over
                        .push((m.name.clone(), "không phải trang dữ liệu".into()));
                } else if m.visible != SheetVisible::Visible {
                    info.passed_over
                        .push((m.name.clone(), "trang tính bị ẩn".into()));
                } else {
                    names.push(m.name.clone());
                }
            }
            names
        }
    };
    // Rows read across sheets: one upload may hold a whole school, never more than MAX_ROWS.
    let mut held = 0usize;
    let mut any = false;
    for name in names {
        let cells = book
            .worksheet_cells_reader(&name)
            .map_err(|e| TableError::Xlsx(e.to_string()))?;
        let mut rows = XlsxRows {
            cells,
            sheet: &name,
            current: None,
            held: &mut held,
            last_line: 0,
            done: false,
        };
        let mut counted = (&mut rows).inspect(|_| any = true);
        each(Some(&name), &mut counted)?;
    }
    if !any {
        return Err(TableError::Empty.into());
    }
    Ok(info)
}

/// The rows of one sheet from calamine's stream of cells: a row is complete when a cell of a later
/// row arrives.
struct XlsxRows<'a, 'b, RS: std::io::Read + std::io::Seek> {
    cells: calamine::XlsxCellReader<'a, RS>,
    sheet: &'b str,
    /// The row being filled: its line and cells.
    current: Option<(usize, Vec<String>)>,
    held: &'b mut usize,
    last_line: usize,
    done: bool,
}

impl<RS: std::io::Read + std::io::Seek> Iterator for XlsxRows<'_, '_, RS> {
    type Item = Result<Row, TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let cell = match self.cells.next_cell() {
                Ok(c) => c,
                Err(e) => {
                    self.done = true;
                    return Some(Err(TableError::Xlsx(e.to_string())));
                }
            };
            let Some(cell) = cell else {
                self.done = true;
                break;
            };
            let (r, c) = cell.get_position();
            let (r, c) = (r as usize, c as usize);
            let text = cell_text(&Data::from(cell.get_value().clone()));
            if text.is_empty() {
                continue;
            }
            if let Err(e) = check_cell(r, c, &text) {
                self.done = true;
                return Some(Err(e));
            }
            let line = r + 1;
            let mut finished = None;
            match &mut self.current {
                Some((l, _)) if *l == line => {}
                _ if line <= self.last_line => {
                    // Excel writes rows in order; a file that does not is refused rather than
                    // held whole to sort it.
                    self.done = true;
                    return Some(Err(TableError::Xlsx(format!(
                        "trang \"{}\": dòng {line} đứng sau dòng {} trong tệp; hãy mở tệp bằng Excel và lưu lại",
                        self.sheet, self.last_line
                    ))));
                }
                _ => {
                    *self.held += 1;
                    if *self.held > MAX_ROWS {
                        self.done = true;
                        return Some(Err(TableError::TooManyRows {
                            cell: format!("{}!{}", self.sheet, cell_name(r, c)),
                        }));
                    }
                    finished = self.current.replace((line, Vec::new()));
                    self.last_line = line;
                }
            }
            if let Some((_, cells)) = &mut self.current {
                if cells.len() <= c {
                    cells.resize(c + 1, String::new());
                }
                cells[c] = text;
            }
            if let Some((line, cells)) = finished
                && !is_blank(&cells)
            {
                return Some(Ok(Row { line, cells }));
            }
        }
        self.current
            .take()
            .filter(|(_, cells)| !is_blank(cells))
            .map(|(line, cells)| Ok(Row { line, cells }))
    }
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
    fn excel_unicode_text_is_utf16_with_tabs() {
        let text = "Họ và tên\tLớp\tSĐT\r\nAn, Bình\t4B\t0912000001\r\n";
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
        let t = read(&bytes, None).unwrap();
        assert_eq!(t.rows[1].cells, ["An, Bình", "4B", "0912000001"]);
        assert_eq!(t.rows[1].line, 2);
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
