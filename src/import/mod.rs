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
    /// Whether its cells were read (within the limits): only those are copied into the error
    /// workbook.
    #[serde(skip)]
    pub read: bool,
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

/// Everything the upload yields before the store sees it.
struct Read {
    report: ImportReport,
    parsed: roster::Parsed,
}

/// Reads every sheet and validates its rows (CPU work on what a user sent); a sheet that does not
/// say what it lists is `default`.
fn read_upload(bytes: &[u8], opts: &ImportOptions, default: ListKind) -> Result<Read, ImportError> {
    let book = table::read_book(bytes, opts.sheet.as_deref(), opts.encoding)?;
    let mut report = ImportReport {
        dry_run: opts.dry_run,
        encoding: book.encoding.map(Encoding::name),
        ..Default::default()
    };
    let mut parsed = roster::Parsed::default();
    let mut last_error = None;
    for sheet in book.sheets {
        let name = sheet.name.clone();
        match roster::locate(sheet, opts.kind, default) {
            Ok(t) => {
                let before = parsed.entries.len() + parsed.staff.len();
                roster::parse_located(&t, &mut parsed);
                report.sheets.push(SheetReport {
                    name,
                    kind: Some(t.kind),
                    header_line: Some(t.header_line),
                    class_from_title: t.default_class.clone(),
                    rows: t.rows.len(),
                    imported: parsed.entries.len() + parsed.staff.len() - before,
                    skipped: None,
                    read: true,
                });
                report.rows += t.rows.len();
            }
            Err(e) => {
                report.sheets.push(SheetReport {
                    name,
                    kind: None,
                    header_line: None,
                    class_from_title: None,
                    rows: 0,
                    imported: 0,
                    skipped: Some(e.0.clone()),
                    read: true,
                });
                last_error = Some(e);
            }
        }
    }
    for (name, why) in book.passed_over {
        report.sheets.push(SheetReport {
            name: Some(name),
            kind: None,
            header_line: None,
            class_from_title: None,
            rows: 0,
            imported: 0,
            skipped: Some(why),
            read: false,
        });
    }
    // A file in which no sheet holds a list is refused as a whole, with the reason of the last.
    if report.sheets.iter().all(|s| s.kind.is_none())
        && let Some(e) = last_error
    {
        return Err(e.into());
    }
    report.imported = parsed.entries.len() + parsed.staff.len();
    report.figures = parsed.figures();
    report.rejected = std::mem::take(&mut parsed.rejected);
    report.cell_errors = std::mem::take(&mut parsed.cell_errors);
    report.notes = std::mem::take(&mut parsed.notes);
    Ok(Read { report, parsed })
}

/// Reads, validates and imports a roster or staff list into a node (rosters only into a school);
/// `progress(done, total)` after each chunk. A dry run writes nothing and reports what the import
/// would do: the same counts, rejections and notes.
pub async fn import_file(
    store: &dyn Store,
    org_id: i64,
    bytes: &[u8],
    opts: &ImportOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<ImportReport, ImportError> {
    let kind = store.get_org(org_id).await?.kind;
    let school = kind == crate::domain::org::OrgKind::School;
    // A school's lists are rosters unless they say otherwise; a Phòng's or a Sở's are its staff.
    let default = if school {
        ListKind::Roster
    } else {
        ListKind::Staff
    };
    // Reading a spreadsheet is CPU work on what a user sent: on the blocking pool, not the runtime.
    let (bytes, o) = (bytes.to_vec(), opts.clone());
    let Read { mut report, parsed } =
        tokio::task::spawn_blocking(move || read_upload(&bytes, &o, default))
            .await
            .map_err(|e| table::TableError::Xlsx(format!("lỗi nội bộ khi đọc tệp: {e}")))??;
    let (students, staff) = (parsed.entries, parsed.staff);
    if !school
        && report
            .sheets
            .iter()
            .any(|s| s.kind == Some(ListKind::Roster))
    {
        return Err(ImportError::NotASchool);
    }
    if kind == crate::domain::org::OrgKind::Class && !staff.is_empty() {
        return Err(ImportError::StaffIntoClass);
    }
    let total = students.len() + staff.len();
    let c = &mut report.counts;
    if opts.dry_run {
        c.add(
            &store
                .import_roster(org_id, &students, now_ms(), ImportMode::DryRun)
                .await?,
        );
    } else {
        let mut done = 0;
        for chunk in students.chunks(IMPORT_CHUNK) {
            c.add(
                &store
                    .import_roster(org_id, chunk, now_ms(), ImportMode::Commit)
                    .await?,
            );
            done += chunk.len();
            progress(done, total);
        }
    }
    if !staff.is_empty() {
        let mode = if opts.dry_run {
            ImportMode::DryRun
        } else {
            ImportMode::Commit
        };
        c.add(&store.import_staff(org_id, &staff, now_ms(), mode).await?);
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
        .filter(|s| s.read)
        .filter_map(|s| s.name.as_deref())
        .collect();
    error_book::error_workbook(upload, &copied, &headers, &marks)
        .map_err(|e| ImportError::Table(table::TableError::Xlsx(e.0)))
}
