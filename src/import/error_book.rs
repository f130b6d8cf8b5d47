//! Builds "a copy of the upload with an error column": the roster staff sent (XLSX or CSV), sheet by
//! sheet and cell by cell, plus a "Lỗi cần sửa" column that names in red what to fix on each row.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::Cursor;

use calamine::{DataRef, ExcelDateTime, Reader, SheetType, Xlsx};
use rust_xlsxwriter::{Color, Format, Workbook, Worksheet, XlsxError};

/// One problem to show in the copy: which sheet (None for CSV), the Excel line (1-based, as the file shows it), and the message.
pub struct Mark<'a> {
    pub sheet: Option<&'a str>,
    pub line: usize,
    pub message: &'a str,
}

/// The header line of each sheet (to put the "Lỗi cần sửa" title on), by sheet name (None for CSV).
pub struct HeaderAt<'a> {
    pub sheet: Option<&'a str>,
    pub line: usize,
}

/// A copy of the uploaded file (XLSX or CSV text already decoded to UTF-8 by the caller — pass it as `Upload::Csv(&str)`) with the error column. Returns the .xlsx bytes.
pub enum Upload<'a> {
    Xlsx(&'a [u8]),
    Csv(&'a str),
}

/// Why the copy could not be made, in Vietnamese for the staff who asked for it.
#[derive(Debug)]
pub struct ErrorBookError(pub String);

impl fmt::Display for ErrorBookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ErrorBookError {}

/// The title of the added column, on the header line.
const TITLE: &str = "Lỗi cần sửa";
/// A CSV has no sheet name; the copy's only sheet gets this one.
const CSV_SHEET: &str = "Danh sách";
/// Wide enough to read a message or two without widening the column by hand.
const ERROR_WIDTH: f64 = 60.0;
/// Excel's limit for the text of one cell, in UTF-16 units (rust_xlsxwriter refuses longer).
const MAX_CELL_TEXT: usize = 32_767;
/// Excel's last column (XFD), from 0: the error column must fit at or before it.
const LAST_COLUMN: u16 = 16_383;
/// Excel's last date (31/12/9999) as a serial number; Excel shows no date past it.
const LAST_SERIAL: f64 = 2_958_466.0;

///
/// `copied` names the XLSX sheets whose cells are copied (the ones the import read, within its
/// limits); any other sheet (hidden, or left out by `sheet=`) comes back empty under its name, so
/// that a sheet the limits never saw cannot make the copy large.
pub fn error_workbook(
    upload: Upload<'_>,
    copied: &[&str],
    headers: &[HeaderAt<'_>],
    marks: &[Mark<'_>],
) -> Result<Vec<u8>, ErrorBookError> {
    let notes = Notes::new(headers, marks);
    let formats = Formats::new();
    let mut book = Workbook::new();
    match upload {
        Upload::Xlsx(bytes) => copy_xlsx(bytes, copied, &mut book, &notes, &formats)?,
        Upload::Csv(text) => copy_csv(text, &mut book, &notes, &formats)?,
    }
    book.save_to_buffer().map_err(write_error)
}

/// The marks and header lines, grouped by sheet once so that each sheet finds its own quickly.
struct Notes<'a> {
    /// Messages by sheet, then by line, each line's in the order given.
    marks: HashMap<Option<&'a str>, BTreeMap<usize, Vec<&'a str>>>,
    /// The header line of each sheet; the first one given wins.
    headers: HashMap<Option<&'a str>, usize>,
}

impl<'a> Notes<'a> {
    fn new(headers: &[HeaderAt<'a>], marks: &[Mark<'a>]) -> Self {
        let mut by_sheet: HashMap<Option<&'a str>, BTreeMap<usize, Vec<&'a str>>> = HashMap::new();
        for m in marks {
            by_sheet
                .entry(m.sheet)
                .or_default()
                .entry(m.line)
                .or_default()
                .push(m.message);
        }
        let mut header_lines = HashMap::new();
        for h in headers {
            header_lines.entry(h.sheet).or_insert(h.line);
        }
        Notes {
            marks: by_sheet,
            headers: header_lines,
        }
    }
}

struct Formats {
    title: Format,
    title_marked: Format,
    marked: Format,
}

impl Formats {
    fn new() -> Self {
        Formats {
            title: Format::new().set_bold(),
            title_marked: Format::new().set_bold().set_font_color(Color::Red),
            marked: Format::new().set_font_color(Color::Red),
        }
    }
}

/// What the copy of one sheet holds so far: which lines have a cell (only those can be marked) and
/// the last column used (the error column goes right after it).
#[derive(Default)]
struct Used {
    rows: HashSet<u32>,
    last_col: Option<u16>,
}

impl Used {
    /// The line (from 1) has at least one cell in the copy.
    fn has_line(&self, line: usize) -> bool {
        line.checked_sub(1)
            .and_then(|r| u32::try_from(r).ok())
            .is_some_and(|r| self.rows.contains(&r))
    }
}

/// One sheet of the copy being written.
struct SheetCopy<'w> {
    sheet: &'w mut Worksheet,
    used: Used,
}

impl<'w> SheetCopy<'w> {
    fn new(book: &'w mut Workbook, name: &str) -> Result<Self, ErrorBookError> {
        let sheet = book.add_worksheet();
        sheet.set_name(name).map_err(|e| {
            ErrorBookError(format!(
                "không tạo được trang tính \"{name}\" trong tệp báo lỗi: {e}"
            ))
        })?;
        Ok(SheetCopy {
            sheet,
            used: Used::default(),
        })
    }

    /// Writes text as text: `write_string` never turns `=1+1` or `@x` into a formula, whatever the
    /// cell starts with.
    fn text(&mut self, row: u32, col: u32, text: &str) -> Result<(), ErrorBookError> {
        // The import refused longer cells; a copy never holds more than it read.
        if text.chars().count() > super::table::MAX_CELL {
            return Err(ErrorBookError(format!(
                "một ô dài quá {} ký tự",
                super::table::MAX_CELL
            )));
        }
        if text.is_empty() {
            // Excel has no empty text cell; rust_xlsxwriter skips it too, so the cell is not "used".
            return Ok(());
        }
        let col = column(col)?;
        self.sheet
            .write_string(row, col, text)
            .map_err(write_error)?;
        self.note(row, col);
        Ok(())
    }

    fn number(&mut self, row: u32, col: u32, n: f64) -> Result<(), ErrorBookError> {
        if !n.is_finite() {
            // Excel has no NaN or infinity; keep what the file said, as text.
            return self.text(row, col, &n.to_string());
        }
        let col = column(col)?;
        self.sheet.write_number(row, col, n).map_err(write_error)?;
        self.note(row, col);
        Ok(())
    }

    fn note(&mut self, row: u32, col: u16) {
        self.used.rows.insert(row);
        self.used.last_col = Some(self.used.last_col.map_or(col, |c| c.max(col)));
    }

    /// Adds the error column after the last used one: the title on the header line, and each
    /// marked line's messages. Lines without a cell in the copy do not exist for the staff, so
    /// marks and headers there are left out.
    fn finish(
        self,
        header: Option<usize>,
        marks: Option<&BTreeMap<usize, Vec<&str>>>,
        formats: &Formats,
    ) -> Result<(), ErrorBookError> {
        let SheetCopy { sheet, used } = self;
        // An empty sheet has no line to mark and no header to title.
        let Some(last) = used.last_col else {
            return Ok(());
        };
        if last >= LAST_COLUMN {
            return Err(ErrorBookError(
                "không thêm được cột lỗi: trang tính đã dùng đến cột cuối cùng của Excel (XFD)"
                    .to_string(),
            ));
        }
        let col = last + 1;
        sheet
            .set_column_width(col, ERROR_WIDTH)
            .map_err(write_error)?;
        let header = header.filter(|&line| used.has_line(line));
        let header_marks = header.and_then(|line| marks.and_then(|m| m.get(&line)));
        if let Some(line) = header {
            let row = excel_row(line)?;
            match header_marks {
                // The header line's own problems (a missing column, say) have no other cell to go.
                Some(messages) => sheet.write_string_with_format(
                    row,
                    col,
                    cell_text(&format!("{TITLE}: {}", messages.join("; "))),
                    &formats.title_marked,
                ),
                None => sheet.write_string_with_format(row, col, TITLE, &formats.title),
            }
            .map_err(write_error)?;
            // Keep the header in sight while scrolling down a long class list.
            sheet.set_freeze_panes(row + 1, 0).map_err(write_error)?;
        }
        for (&line, messages) in marks.into_iter().flatten() {
            if Some(line) == header || !used.has_line(line) {
                continue;
            }
            sheet
                .write_string_with_format(
                    excel_row(line)?,
                    col,
                    cell_text(&messages.join("; ")),
                    &formats.marked,
                )
                .map_err(write_error)?;
        }
        Ok(())
    }
}

fn copy_xlsx(
    bytes: &[u8],
    copied: &[&str],
    book: &mut Workbook,
    notes: &Notes<'_>,
    formats: &Formats,
) -> Result<(), ErrorBookError> {
    let mut upload: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(read_error)?;
    let sheets: Vec<(String, SheetType)> = upload
        .sheets_metadata()
        .iter()
        .map(|s| (s.name.clone(), s.typ))
        .collect();
    if sheets.is_empty() {
        return Err(ErrorBookError(
            "tệp Excel không có trang tính nào".to_string(),
        ));
    }
    for (name, typ) in &sheets {
        let mut copy = SheetCopy::new(book, name)?;
        // A chart or dialog sheet has no cells: it stays as an empty sheet, so names and order
        // match the upload.
        if *typ == SheetType::WorkSheet && copied.contains(&name.as_str()) {
            // Cells as they stream: the sheet's declared dimension is never used to size anything,
            // as a file may claim A1:XFD1048576 and hold three cells.
            let mut cells = upload.worksheet_cells_reader(name).map_err(read_error)?;
            while let Some(cell) = cells.next_cell().map_err(read_error)? {
                let (row, col) = cell.get_position();
                match cell.get_value() {
                    DataRef::Empty => {}
                    DataRef::Int(i) => copy.number(row, col, *i as f64)?,
                    DataRef::Float(f) => copy.number(row, col, *f)?,
                    DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
                        copy.text(row, col, s)?
                    }
                    DataRef::SharedString(s) => copy.text(row, col, s)?,
                    // Excel's words for true and false, as the cell shows them.
                    DataRef::Bool(b) => copy.text(row, col, if *b { "TRUE" } else { "FALSE" })?,
                    DataRef::DateTime(dt) => copy.text(row, col, &datetime_text(dt))?,
                    DataRef::Error(e) => copy.text(row, col, &e.to_string())?,
                }
            }
        }
        let key = Some(name.as_str());
        copy.finish(
            notes.headers.get(&key).copied(),
            notes.marks.get(&key),
            formats,
        )?;
    }
    Ok(())
}

fn copy_csv(
    text: &str,
    book: &mut Workbook,
    notes: &Notes<'_>,
    formats: &Formats,
) -> Result<(), ErrorBookError> {
    // Line numbers must match the import's, which reads the text without its BOM.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let delimiter = super::table::csv_delimiter(text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut copy = SheetCopy::new(book, CSV_SHEET)?;
    let mut lines = super::table::CsvLines::new(text);
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(ErrorBookError(format!(
                    "không đọc được tệp CSV ở dòng {line}: {e}"
                )));
            }
        }
        let row = excel_row(lines.line_of(&record))?;
        for (col, field) in record.iter().enumerate() {
            let col = u32::try_from(col).map_err(|_| too_many_columns())?;
            // Every field stays text: `0912345678` keeps its leading zero.
            copy.text(row, col, field)?;
        }
    }
    copy.finish(
        notes.headers.get(&None).copied(),
        notes.marks.get(&None),
        formats,
    )
}

/// A date, time or duration as a Vietnamese Excel shows it (`12/03/2016`, `07:30`, `25:00:00`):
/// the copy keeps no number formats, and a bare serial number would mean nothing to the staff.
fn datetime_text(dt: &ExcelDateTime) -> String {
    let v = dt.as_f64();
    if dt.is_duration() {
        if !v.is_finite() || v.abs() > 1e9 {
            return number_text(v);
        }
        let secs = (v.abs() * 86_400.0).round() as u64;
        let sign = if v < 0.0 && secs > 0 { "-" } else { "" };
        return format!(
            "{sign}{}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        );
    }
    // Out of Excel's date range it shows `#####`; the number says more.
    if !(0.0..LAST_SERIAL).contains(&v) {
        return number_text(v);
    }
    let (year, month, day, hour, minute, second, _) = dt.to_ymd_hms_milli();
    let time = if second == 0 {
        format!("{hour:02}:{minute:02}")
    } else {
        format!("{hour:02}:{minute:02}:{second:02}")
    };
    if v < 1.0 {
        // A time of day alone: its serial is a fraction of day 0.
        time
    } else if hour == 0 && minute == 0 && second == 0 {
        format!("{day:02}/{month:02}/{year}")
    } else {
        format!("{day:02}/{month:02}/{year} {time}")
    }
}

/// Whole numbers without `.0`, as Excel shows them.
fn number_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        v.to_string()
    }
}

/// The error cell's text, cut to what Excel holds in one cell: a file with thousands of marks on
/// one line must still give a workbook.
fn cell_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.encode_utf16().count() <= MAX_CELL_TEXT {
        return text.into();
    }
    let mut out = String::new();
    let mut units = 0;
    for c in text.chars() {
        units += c.len_utf16();
        // One unit is kept for the ellipsis.
        if units > MAX_CELL_TEXT - 1 {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out.into()
}

/// The 0-based row of a 1-based line.
fn excel_row(line: usize) -> Result<u32, ErrorBookError> {
    line.checked_sub(1)
        .and_then(|r| u32::try_from(r).ok())
        .ok_or_else(|| too_many_lines(line))
}

fn column(col: u32) -> Result<u16, ErrorBookError> {
    u16::try_from(col).map_err(|_| too_many_columns())
}

fn too_many_lines(line: usize) -> ErrorBookError {
    ErrorBookError(format!(
        "dòng {line} vượt quá số dòng tối đa của một trang tính Excel"
    ))
}

fn too_many_columns() -> ErrorBookError {
    ErrorBookError("tệp có nhiều cột hơn một trang tính Excel chứa được".to_string())
}

fn read_error(e: calamine::XlsxError) -> ErrorBookError {
    ErrorBookError(format!("không đọc được tệp Excel: {e}"))
}

fn write_error(e: XlsxError) -> ErrorBookError {
    ErrorBookError(format!("không tạo được tệp Excel báo lỗi: {e}"))
}

#[cfg(test)]
mod tests {
    /// The sheets the tests' workbooks hold, all copied.
    const SHEETS: &[&str] = &["4B", "Ghi chú", "Lớp 1A", "Sheet1"];
    use super::*;
    use calamine::Data;
    use std::time::{Duration, Instant};

    fn open(bytes: &[u8]) -> Xlsx<Cursor<&[u8]>> {
        Xlsx::new(Cursor::new(bytes)).unwrap()
    }

    fn string(s: &str) -> Data {
        Data::String(s.to_string())
    }

    /// A roster as a school exports it: title rows above the header, a note sheet beside.
    fn roster() -> Vec<u8> {
        let mut book = Workbook::new();
        let s = book.add_worksheet().set_name("4B").unwrap();
        s.write_string(0, 0, "DANH SÁCH HỌC SINH LỚP 4B").unwrap();
        s.write_string(1, 0, "Năm học 2025–2026").unwrap();
        for (c, h) in ["STT", "Họ và tên", "Lớp", "SĐT phụ huynh", "Ghi chú"]
            .iter()
            .enumerate()
        {
            s.write_string(3, c as u16, *h).unwrap();
        }
        s.write_number(4, 0, 1).unwrap();
        s.write_string(4, 1, "Nguyễn Văn An").unwrap();
        s.write_string(4, 2, "4B").unwrap();
        s.write_number(4, 3, 912345678).unwrap();
        s.write_string(4, 4, "=1+1").unwrap();
        s.write_number(5, 0, 2).unwrap();
        s.write_string(5, 1, "Trần Thị Bình").unwrap();
        s.write_string(5, 2, "4B").unwrap();
        s.write_string(5, 3, "0987654321").unwrap();
        s.write_number(6, 0, 3).unwrap();
        s.write_string(6, 1, "Lê Hoàng Cường").unwrap();
        s.write_string(6, 3, "-5").unwrap();
        s.write_string(6, 4, "@mẹ bé").unwrap();
        let n = book.add_worksheet().set_name("Ghi chú").unwrap();
        n.write_string(0, 0, "Liên hệ cô Hạnh").unwrap();
        n.write_string(1, 0, "+84 912 345 678").unwrap();
        book.save_to_buffer().unwrap()
    }

    #[test]
    fn copies_every_cell_and_adds_the_error_column() {
        let input = roster();
        let out = error_workbook(
            Upload::Xlsx(&input),
            SHEETS,
            &[HeaderAt {
                sheet: Some("4B"),
                line: 4,
            }],
            &[
                Mark {
                    sheet: Some("4B"),
                    line: 5,
                    message: "Số điện thoại thiếu số 0 ở đầu",
                },
                Mark {
                    sheet: Some("4B"),
                    line: 7,
                    message: "Thiếu lớp",
                },
                Mark {
                    sheet: Some("4B"),
                    line: 7,
                    message: "Số điện thoại không hợp lệ",
                },
            ],
        )
        .unwrap();

        let mut before = open(&input);
        let mut after = open(&out);
        assert_eq!(after.sheet_names(), ["4B", "Ghi chú"]);
        for name in ["4B", "Ghi chú"] {
            let old = before.worksheet_range(name).unwrap();
            let new = after.worksheet_range(name).unwrap();
            assert_eq!(new.start(), old.start(), "{name}");
            for (r, c, v) in old.used_cells() {
                let (r, c) = (r as u32, c as u32);
                assert_eq!(
                    new.get_value((r, c)),
                    Some(v),
                    "{name} R{}C{}",
                    r + 1,
                    c + 1
                );
            }
            // No formula anywhere: `=1+1` stays what the teacher typed.
            let formulas = after.worksheet_formula(name).unwrap();
            assert!(
                formulas.used_cells().all(|(_, _, f)| f.is_empty()),
                "{name}"
            );
        }

        let new = after.worksheet_range("4B").unwrap();
        assert_eq!(new.get_value((4, 3)), Some(&Data::Float(912345678.0)));
        assert_eq!(new.get_value((4, 4)), Some(&string("=1+1")));
        // The last used column is E, so the errors are in F.
        assert_eq!(new.end(), Some((6, 5)));
        let error_cells: Vec<_> = new
            .used_cells()
            .filter(|(_, c, _)| *c == 5)
            .map(|(r, _, v)| (r + 1, v.clone()))
            .collect();
        assert_eq!(
            error_cells,
            [
                (4, string("Lỗi cần sửa")),
                (5, string("Số điện thoại thiếu số 0 ở đầu")),
                (7, string("Thiếu lớp; Số điện thoại không hợp lệ")),
            ]
        );
        let styles = after.worksheet_style("4B").unwrap();
        let font = |r, c| styles.get((r, c)).and_then(|s| s.font.clone()).unwrap();
        assert!(font(3, 5).is_bold());
        let red = font(6, 5).color.unwrap();
        assert_eq!((red.red, red.green, red.blue), (0xFF, 0, 0));

        // The note sheet had no header and no mark: it comes back as it was.
        let notes = after.worksheet_range("Ghi chú").unwrap();
        assert_eq!(notes.end(), Some((1, 0)));
        assert_eq!(notes.get_value((1, 0)), Some(&string("+84 912 345 678")));
    }

    #[test]
    fn csv_with_semicolons_and_vietnamese_text() {
        let csv = "Họ và tên;Lớp;Số điện thoại\n\
                   Nguyễn Văn An;4B;0912345678\n\
                   \n\
                   \"Trần; Thị Bình\";4B;=HYPERLINK(\"x\")\n";
        let out = error_workbook(
            Upload::Csv(csv),
            SHEETS,
            &[HeaderAt {
                sheet: None,
                line: 1,
            }],
            &[Mark {
                sheet: None,
                line: 4,
                message: "Số điện thoại không hợp lệ",
            }],
        )
        .unwrap();
        let mut book = open(&out);
        assert_eq!(book.sheet_names(), ["Danh sách"]);
        let r = book.worksheet_range("Danh sách").unwrap();
        assert_eq!(r.get_value((0, 0)), Some(&string("Họ và tên")));
        // Text stays text: the leading zero is kept.
        assert_eq!(r.get_value((1, 2)), Some(&string("0912345678")));
        // The blank line 3 keeps its place, so line 4 is still line 4.
        assert_eq!(r.get_value((2, 0)), Some(&Data::Empty));
        assert_eq!(r.get_value((3, 0)), Some(&string("Trần; Thị Bình")));
        assert_eq!(r.get_value((3, 2)), Some(&string("=HYPERLINK(\"x\")")));
        assert_eq!(r.get_value((0, 3)), Some(&string("Lỗi cần sửa")));
        assert_eq!(
            r.get_value((3, 3)),
            Some(&string("Số điện thoại không hợp lệ"))
        );
        assert_eq!(r.get_value((1, 3)), Some(&Data::Empty));
        let formulas = book.worksheet_formula("Danh sách").unwrap();
        assert!(formulas.used_cells().all(|(_, _, f)| f.is_empty()));
    }

    #[test]
    fn csv_lines_count_blank_lines_and_crlf() {
        let lines_of = |text: &str| {
            let mut lines = crate::import::table::CsvLines::new(text);
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(text.as_bytes());
            reader
                .records()
                .map(|r| lines.line_of(&r.unwrap()))
                .collect::<Vec<_>>()
        };
        assert_eq!(lines_of("a\nb\nc\n"), [1, 2, 3]);
        assert_eq!(lines_of("a\r\nb\r\nc\r\n"), [1, 2, 3]);
        assert_eq!(lines_of("a\r\n\r\nb\r\n\r\n\r\nc"), [1, 3, 6]);
        assert_eq!(lines_of("\n\na\nb\n\n\nc\n"), [3, 4, 7]);
        // A quoted field over two lines: the next record is on line 3.
        assert_eq!(lines_of("\"x\ny\",1\nz,2\n"), [1, 3]);
        assert_eq!(lines_of("a\rb\r\rc"), [1, 2, 4]);
    }

    #[test]
    fn csv_from_excel_on_windows() {
        // CRLF line ends and a blank line: each record stays on its own line.
        let csv = "Họ tên;Lớp\r\nAn;1A\r\n\r\nBình;1B\r\n";
        let out = error_workbook(
            Upload::Csv(csv),
            SHEETS,
            &[HeaderAt {
                sheet: None,
                line: 1,
            }],
            &[
                Mark {
                    sheet: None,
                    line: 2,
                    message: "Thiếu số điện thoại",
                },
                Mark {
                    sheet: None,
                    line: 4,
                    message: "Lớp không có",
                },
            ],
        )
        .unwrap();
        let r = open(&out).worksheet_range("Danh sách").unwrap();
        let rows: Vec<Vec<String>> = r
            .rows()
            .map(|row| row.iter().map(|c| c.to_string()).collect())
            .collect();
        assert_eq!(
            rows,
            [
                ["Họ tên", "Lớp", "Lỗi cần sửa"],
                ["An", "1A", "Thiếu số điện thoại"],
                ["", "", ""],
                ["Bình", "1B", "Lớp không có"],
            ]
        );
    }

    #[test]
    fn csv_with_commas() {
        let out = error_workbook(
            Upload::Csv("full_name,class\n\"Nguyễn, An\",1A\n"),
            SHEETS,
            &[],
            &[Mark {
                sheet: None,
                line: 2,
                message: "Thiếu số điện thoại",
            }],
        )
        .unwrap();
        let r = open(&out).worksheet_range("Danh sách").unwrap();
        assert_eq!(r.get_value((1, 0)), Some(&string("Nguyễn, An")));
        assert_eq!(r.get_value((1, 2)), Some(&string("Thiếu số điện thoại")));
        // No header given: no title.
        assert_eq!(r.get_value((0, 2)), Some(&Data::Empty));
    }

    #[test]
    fn marks_off_the_sheet_are_ignored() {
        let input = roster();
        let out = error_workbook(
            Upload::Xlsx(&input),
            SHEETS,
            &[
                HeaderAt {
                    sheet: Some("Không có"),
                    line: 1,
                },
                HeaderAt {
                    sheet: Some("Ghi chú"),
                    line: 99,
                },
            ],
            &[
                Mark {
                    sheet: Some("Không có"),
                    line: 5,
                    message: "x",
                },
                Mark {
                    sheet: Some("4B"),
                    line: 999_999_999,
                    message: "x",
                },
                Mark {
                    sheet: Some("4B"),
                    line: 0,
                    message: "x",
                },
                // Line 3 of "4B" is blank.
                Mark {
                    sheet: Some("4B"),
                    line: 3,
                    message: "x",
                },
                Mark {
                    sheet: None,
                    line: 5,
                    message: "x",
                },
            ],
        )
        .unwrap();
        let mut book = open(&out);
        let r = book.worksheet_range("4B").unwrap();
        assert_eq!(r.end(), Some((6, 4)), "no error column was written");
        let r = book.worksheet_range("Ghi chú").unwrap();
        assert_eq!(r.end(), Some((1, 0)));
    }

    #[test]
    fn dates_and_booleans_as_shown() {
        let mut book = Workbook::new();
        let s = book.add_worksheet();
        let date = Format::new().set_num_format("dd/mm/yyyy");
        let time = Format::new().set_num_format("hh:mm");
        let d = rust_xlsxwriter::ExcelDateTime::from_ymd(2016, 3, 12).unwrap();
        s.write_datetime_with_format(0, 0, &d, &date).unwrap();
        let t = rust_xlsxwriter::ExcelDateTime::from_hms(7, 30, 0).unwrap();
        s.write_datetime_with_format(0, 1, &t, &time).unwrap();
        s.write_boolean(0, 2, true).unwrap();
        let input = book.save_to_buffer().unwrap();
        let out = error_workbook(Upload::Xlsx(&input), SHEETS, &[], &[]).unwrap();
        let r = open(&out).worksheet_range("Sheet1").unwrap();
        assert_eq!(r.get_value((0, 0)), Some(&string("12/03/2016")));
        assert_eq!(r.get_value((0, 1)), Some(&string("07:30")));
        assert_eq!(r.get_value((0, 2)), Some(&string("TRUE")));
    }

    #[test]
    fn header_line_marks_share_the_title_cell() {
        let out = error_workbook(
            Upload::Csv("Họ tên;Lớp\nAn;1A\n"),
            SHEETS,
            &[HeaderAt {
                sheet: None,
                line: 1,
            }],
            &[Mark {
                sheet: None,
                line: 1,
                message: "Thiếu cột Số điện thoại",
            }],
        )
        .unwrap();
        let r = open(&out).worksheet_range("Danh sách").unwrap();
        assert_eq!(
            r.get_value((0, 2)),
            Some(&string("Lỗi cần sửa: Thiếu cột Số điện thoại"))
        );
    }

    #[test]
    fn overlong_messages_are_cut_to_one_cell() {
        let long = "ắ".repeat(40_000);
        let out = error_workbook(
            Upload::Csv("a\n"),
            SHEETS,
            &[],
            &[Mark {
                sheet: None,
                line: 1,
                message: &long,
            }],
        )
        .unwrap();
        let r = open(&out).worksheet_range("Danh sách").unwrap();
        let Some(Data::String(s)) = r.get_value((0, 1)) else {
            panic!("no error cell");
        };
        assert_eq!(s.encode_utf16().count(), MAX_CELL_TEXT);
        assert!(s.ends_with('…'));
    }

    /// A zip of stored (uncompressed) parts: enough for an XLSX written by hand.
    fn stored_zip(parts: &[(&str, &str)]) -> Vec<u8> {
        fn crc32(data: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in data {
                crc ^= b as u32;
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        (crc >> 1) ^ 0xEDB8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, body) in parts {
            let (name, body) = (name.as_bytes(), body.as_bytes());
            let offset = out.len() as u32;
            let crc = crc32(body);
            let mut fields = Vec::new();
            fields.extend_from_slice(&0u16.to_le_bytes()); // flags
            fields.extend_from_slice(&0u16.to_le_bytes()); // stored
            fields.extend_from_slice(&0u32.to_le_bytes()); // time, date
            fields.extend_from_slice(&crc.to_le_bytes());
            fields.extend_from_slice(&(body.len() as u32).to_le_bytes());
            fields.extend_from_slice(&(body.len() as u32).to_le_bytes());
            fields.extend_from_slice(&(name.len() as u16).to_le_bytes());
            fields.extend_from_slice(&0u16.to_le_bytes()); // extra
            out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            out.extend_from_slice(&20u16.to_le_bytes());
            out.extend_from_slice(&fields);
            out.extend_from_slice(name);
            out.extend_from_slice(body);
            central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            central.extend_from_slice(&20u16.to_le_bytes());
            central.extend_from_slice(&20u16.to_le_bytes());
            central.extend_from_slice(&fields);
            central.extend_from_slice(&[0; 6]); // comment, disk, internal attrs
            central.extend_from_slice(&0u32.to_le_bytes()); // external attrs
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name);
        }
        let central_at = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(parts.len() as u16).to_le_bytes());
        out.extend_from_slice(&(parts.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&central_at.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn a_huge_declared_dimension_costs_nothing() {
        const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
        const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
        const PKG: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
        let types = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
            <Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
            <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
            <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
            <Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>\
            <Override PartName=\"/xl/worksheets/sheet1.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>\
            </Types>";
        let rels = format!(
            "<Relationships xmlns=\"{PKG}\"><Relationship Id=\"rId1\" \
             Type=\"{REL}/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>"
        );
        let workbook = format!(
            "<workbook xmlns=\"{MAIN}\" xmlns:r=\"{REL}\"><sheets>\
             <sheet name=\"Lớp 1A\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>"
        );
        let workbook_rels = format!(
            "<Relationships xmlns=\"{PKG}\"><Relationship Id=\"rId1\" \
             Type=\"{REL}/worksheet\" Target=\"worksheets/sheet1.xml\"/></Relationships>"
        );
        let sheet = format!(
            "<worksheet xmlns=\"{MAIN}\"><dimension ref=\"A1:XFD1048576\"/><sheetData>\
             <row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>Họ tên</t></is></c></row>\
             <row r=\"2\"><c r=\"A2\" t=\"inlineStr\"><is><t>An</t></is></c>\
             <c r=\"B2\"><v>7</v></c></row></sheetData></worksheet>"
        );
        let input = stored_zip(&[
            ("[Content_Types].xml", types),
            ("_rels/.rels", &rels),
            ("xl/workbook.xml", &workbook),
            ("xl/_rels/workbook.xml.rels", &workbook_rels),
            ("xl/worksheets/sheet1.xml", &sheet),
        ]);
        // The fixture is as hostile as meant: it claims every cell of a sheet.
        let mut hostile = open(&input);
        let declared = hostile
            .worksheet_cells_reader("Lớp 1A")
            .unwrap()
            .dimensions();
        assert_eq!(
            (declared.start, declared.end),
            ((0, 0), (1_048_575, 16_383))
        );
        let started = Instant::now();
        let out = error_workbook(
            Upload::Xlsx(&input),
            SHEETS,
            &[HeaderAt {
                sheet: Some("Lớp 1A"),
                line: 1,
            }],
            &[Mark {
                sheet: Some("Lớp 1A"),
                line: 2,
                message: "Thiếu lớp",
            }],
        )
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        let r = open(&out).worksheet_range("Lớp 1A").unwrap();
        let cells: Vec<_> = r
            .used_cells()
            .map(|(row, col, v)| (row, col, v.clone()))
            .collect();
        assert_eq!(
            cells,
            [
                (0, 0, string("Họ tên")),
                (0, 2, string("Lỗi cần sửa")),
                (1, 0, string("An")),
                (1, 1, Data::Float(7.0)),
                (1, 2, string("Thiếu lớp")),
            ]
        );
    }
}
