//! Contact import: a roster or staff list (CSV or XLSX, every sheet) -> validated rows -> the store,
//! where good rows go in and each bad cell or row is reported by sheet, line, column and reason. A dry
//! run reports the same without writing. Shared by the API and the CLI.

pub mod encoding;
pub mod error_book;
pub mod roster;
pub mod summary;
pub mod table;

use serde::Serialize;

pub use encoding::Encoding;
pub use roster::{ListKind, RosterEntry, RosterFigures, RowError, StaffEntry};

use crate::clock::now_ms;
use crate::store::{IMPORT_CHUNK, ImportCounts, ImportMode, Store, StoreError};

/// How to read and what to do with an upload.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Only this sheet of an XLSX (else every sheet that holds a list).
    pub sheet: Option<String>,
    /// A CSV's text encoding (else detected).
    pub encoding: Option<Encoding>,
    /// What the file lists (else each sheet's columns and title tell).
    pub kind: Option<ListKind>,
    /// Report what would be created, updated and rejected without writing anything.
    pub dry_run: bool,
}

/// One sheet of the upload as Loa read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SheetReport {
    /// The XLSX sheet (absent for CSV).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `roster` or `staff`; absent for a sheet passed over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ListKind>,
    /// The Excel line of the header row Loa found (the lower row of a two-row header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_line: Option<usize>,
    /// The class taken from the sheet name or the title, for rows without a class column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_from_title: Option<String>,
    /// Data rows read: from the header to the end of the table (totals, signatures), blank rows
    /// not counted.
    pub rows: usize,
    /// Rows that went in (students for a roster, people for a staff list).
    pub imported: usize,
    /// Why the sheet was passed over (no table Loa recognises, hidden, empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl SheetReport {
    /// A sheet passed over, with why.
    fn skipped(name: Option<&str>, why: String) -> SheetReport {
        SheetReport {
            name: name.map(str::to_string),
            kind: None,
            header_line: None,
            class_from_title: None,
            rows: 0,
            imported: 0,
            skipped: Some(why),
        }
    }
}

/// What an import did (or, for a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub dry_run: bool,
    /// The text encoding a CSV was read in (`utf-8`, `windows-1258`, `tcvn3`, `utf-16`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<&'static str>,
    /// Every sheet, read or passed over, in the file's order.
    pub sheets: Vec<SheetReport>,
    /// Data rows read over all sheets.
    pub rows: usize,
    pub imported: usize,
    #[serde(flatten)]
    pub counts: ImportCounts,
    /// The roster figures coverage needs, from the file: students, how many have a parent reachable
    /// by each channel, and why the others have none.
    pub figures: RosterFigures,
    /// Every rejected row (no student, or nothing to find the student by again): sheet, line,
    /// column, code and a Vietnamese message. Nothing of them was written.
    pub rejected: Vec<RowError>,
    /// Cells left out of rows that went in (a bad phone or email): the rest of the row was imported.
    pub cell_errors: Vec<RowError>,
    /// What staff should know about cells that went in: landlines (kept, never sent to), further
    /// numbers (kept as other phones), parents without any address.
    pub notes: Vec<RowError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Table(#[from] table::TableError),
    #[error(transparent)]
    Header(#[from] roster::HeaderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Roster sheets for a node that is not a school.
    #[error("danh sách học sinh chỉ nhập được vào một trường học")]
    NotASchool,
    /// A staff list for a class.
    #[error("danh sách cán bộ nhập vào trường, Phòng hoặc Sở, không vào một lớp")]
    StaffIntoClass,
}

/// What a read of the upload yields besides the students it hands on: the report so far and the
/// staff (a node's staff list is short; students stream).
struct Scan {
    report: ImportReport,
    staff: Vec<StaffEntry>,
}

/// Reads every sheet and validates its rows, one row in memory at a time (CPU work on what a user
/// sent, for the blocking pool); hands the students to `students` in pieces of `IMPORT_CHUNK`. A
/// sheet that does not say what it lists is `default`; a roster sheet for a node that is not a
/// school ends the read (`NotASchool`).
fn scan(
    bytes: &[u8],
    opts: &ImportOptions,
    default: ListKind,
    school: bool,
    students: &mut dyn FnMut(Vec<RosterEntry>) -> Result<(), ImportError>,
) -> Result<Scan, ImportError> {
    let mut report = ImportReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let mut parsed = roster::Parsed::default();
    let mut last_error = None;
    let info = table::stream_book(
        bytes,
        opts.sheet.as_deref(),
        opts.encoding,
        &mut |name, rows| -> Result<(), ImportError> {
            let skipped = |why: String| SheetReport::skipped(name, why);
            let mut head = Vec::with_capacity(roster::HEADER_SEARCH);
            while head.len() < roster::HEADER_SEARCH {
                match rows.next() {
                    Some(row) => head.push(row?),
                    None => break,
                }
            }
            if head.is_empty() {
                report.sheets.push(skipped("trang tính trống".into()));
                return Ok(());
            }
            let (t, i) = match roster::locate(name, &head, opts.kind, default) {
                Ok(found) => found,
                Err(e) => {
                    // Only the first rows were read: the copy with errors leaves the sheet empty.
                    report.sheets.push(skipped(e.0.clone()));
                    last_error = Some(e);
                    return Ok(());
                }
            };
            if t.kind == ListKind::Roster && !school {
                return Err(ImportError::NotASchool);
            }
            let (rows_before, before) = (parsed.rows, parsed.entries.len() + parsed.staff.len());
            let mut sent = 0;
            let after_header = head.drain(i + 1..).map(Ok);
            for row in after_header.chain(rows) {
                let row = row?;
                if t.ends_table(&row) {
                    break;
                }
                roster::parse_row(&t, &row, &mut parsed);
                if parsed.entries.len() >= IMPORT_CHUNK {
                    sent += parsed.entries.len();
                    students(std::mem::take(&mut parsed.entries))?;
                }
            }
            report.sheets.push(SheetReport {
                name: name.map(str::to_string),
                kind: Some(t.kind),
                header_line: Some(t.header_line),
                class_from_title: t.default_class.clone(),
                rows: parsed.rows - rows_before,
                imported: sent + parsed.entries.len() + parsed.staff.len() - before,
                skipped: None,
            });
            report.imported += sent;
            Ok(())
        },
    )?;
    if !parsed.entries.is_empty() {
        report.imported += parsed.entries.len();
        students(std::mem::take(&mut parsed.entries))?;
    }
    report.encoding = info.encoding.map(Encoding::name);
    for (name, why) in info.passed_over {
        report.sheets.push(SheetReport::skipped(Some(&name), why));
    }
    // A file in which no sheet holds a list is refused as a whole, with the reason of the last.
    if report.sheets.iter().all(|s| s.kind.is_none())
        && let Some(e) = last_error
    {
        return Err(e.into());
    }
    report.rows = parsed.rows;
    report.imported += parsed.staff.len();
    report.figures = parsed.figures();
    report.rejected = std::mem::take(&mut parsed.rejected);
    report.cell_errors = std::mem::take(&mut parsed.cell_errors);
    report.notes = std::mem::take(&mut parsed.notes);
    Ok(Scan {
        report,
        staff: parsed.staff,
    })
}

/// Reads, validates and imports a roster or staff list into a node (rosters only into a school);
/// `progress(done, total)` after each piece. The file is read twice, one row in memory at a time:
/// first whole, so that a file refused (a limit, no table) writes nothing and the total is known;
/// then into the store piece by piece. A dry run writes nothing and reports what the import would
/// do: the same counts, rejections and notes.
pub async fn import_file(
    store: &dyn Store,
    org_id: i64,
    bytes: &[u8],
    opts: &ImportOptions,
    mut progress: impl FnMut(usize, usize) + Send,
) -> Result<ImportReport, ImportError> {
    let kind = store.get_org(org_id).await?.kind;
    let school = kind == crate::domain::org::OrgKind::School;
    // A school's lists are rosters unless they say otherwise; a Phòng's or a Sở's are its staff.
    let default = if school {
        ListKind::Roster
    } else {
        ListKind::Staff
    };
    let bytes: std::sync::Arc<[u8]> = bytes.into();
    let (b, o) = (bytes.clone(), opts.clone());
    let Scan { mut report, staff } =
        tokio::task::spawn_blocking(move || scan(&b, &o, default, school, &mut |_| Ok(())))
            .await
            .map_err(|e| table::TableError::Xlsx(format!("lỗi nội bộ khi đọc tệp: {e}")))??;
    if kind == crate::domain::org::OrgKind::Class && !staff.is_empty() {
        return Err(ImportError::StaffIntoClass);
    }
    let total = report.imported;
    let mode = if opts.dry_run {
        ImportMode::DryRun
    } else {
        ImportMode::Commit
    };
    let students = total - staff.len();
    if students > 0 {
        // The second read hands each piece to the store as it is parsed; one piece waits at most.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<RosterEntry>>(1);
        let (b, o) = (bytes.clone(), opts.clone());
        let reader = tokio::task::spawn_blocking(move || {
            scan(&b, &o, default, school, &mut |piece| {
                // The store stopped taking pieces (it failed): its error is the one to report.
                tx.blocking_send(piece).map_err(|_| {
                    ImportError::Store(StoreError::Unavailable("import stopped".into()))
                })
            })
        });
        let mut done = 0;
        let counts = store
            .import_roster(org_id, &mut rx, now_ms(), mode, &mut |n| {
                done += n;
                progress(done, total);
            })
            .await;
        drop(rx);
        let read = reader
            .await
            .map_err(|e| table::TableError::Xlsx(format!("lỗi nội bộ khi đọc tệp: {e}")))?;
        report.counts.add(&counts?);
        read?;
    }
    if !staff.is_empty() {
        report
            .counts
            .add(&store.import_staff(org_id, &staff, now_ms(), mode).await?);
    }
    progress(total, total);
    Ok(report)
}

/// The rejected rows and dropped cells as marks for the error workbook, with each sheet's header.
pub fn error_workbook(bytes: &[u8], report: &ImportReport) -> Result<Vec<u8>, ImportError> {
    let headers: Vec<error_book::HeaderAt> = report
        .sheets
        .iter()
        .filter_map(|s| {
            Some(error_book::HeaderAt {
                sheet: s.name.as_deref(),
                line: s.header_line?,
            })
        })
        .collect();
    let marks: Vec<error_book::Mark> = report
        .rejected
        .iter()
        .chain(&report.cell_errors)
        .map(|e| error_book::Mark {
            sheet: e.sheet.as_deref(),
            line: e.line,
            message: &e.message,
        })
        .collect();
    let upload_text;
    let upload = if table::is_xlsx(bytes) {
        error_book::Upload::Xlsx(bytes)
    } else {
        let forced = report.encoding.and_then(Encoding::parse);
        upload_text = encoding::decode(bytes, forced)
            .map_err(|e| table::TableError::Encoding(e.0))?
            .0;
        error_book::Upload::Csv(&upload_text)
    };
    let copied: Vec<&str> = report
        .sheets
        .iter()
        // Only a sheet whose table was found was read within the limits to its end: the others
        // (hidden, no table) come back empty under their names.
        .filter(|s| s.kind.is_some())
        .filter_map(|s| s.name.as_deref())
        .collect();
    error_book::error_workbook(upload, &copied, &headers, &marks)
        .map_err(|e| ImportError::Table(table::TableError::Xlsx(e.0)))
}
