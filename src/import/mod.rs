//! Contact import: a roster file (CSV or XLSX) -> validated rows -> the store, where good rows go in
//! and each bad row is reported by line, column and reason. Shared by the API and the CLI.

pub mod roster;
pub mod table;

use serde::Serialize;

pub use roster::{RosterEntry, RowError};

use crate::clock::now_ms;
use crate::store::{ImportCounts, Store, StoreError};

/// Rows written per transaction: large enough to be fast, small enough to report progress.
const CHUNK: usize = 2_000;

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The sheet read (absent for CSV).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// The Excel line of the header row Loa found (the lower row of a two-row header).
    pub header_line: usize,
    /// The class taken from the sheet name or the title, for rows without a class column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_from_title: Option<String>,
    /// Data rows read: from the header to the end of the table (totals, signatures), blank rows
    /// not counted.
    pub rows: usize,
    pub imported: usize,
    #[serde(flatten)]
    pub counts: ImportCounts,
    /// Every rejected row (no student, or nothing to find the student by again): line, column, code
    /// and a Vietnamese message. Nothing of them was written.
    pub rejected: Vec<RowError>,
    /// Cells left out of rows that went in (a bad phone or email): the rest of the row was imported.
    pub cell_errors: Vec<RowError>,
    /// What staff should know about cells that went in: landlines (kept out of SMS and Zalo), numbers
    /// beyond the first mobile, parents without any address.
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
}

/// Reads, validates and imports a roster into a school; `progress(done, total)` after each chunk.
pub async fn import_roster(
    store: &dyn Store,
    school_id: i64,
    bytes: &[u8],
    sheet: Option<&str>,
    mut progress: impl FnMut(usize, usize),
) -> Result<ImportReport, ImportError> {
    // Reading a spreadsheet is CPU work on what a user sent: on the blocking pool, not the runtime.
    let (bytes, sheet) = (bytes.to_vec(), sheet.map(str::to_string));
    let (t, parsed) = tokio::task::spawn_blocking(move || {
        let sheet = table::read(&bytes, sheet.as_deref())?;
        Ok::<_, ImportError>(roster::parse(sheet)?)
    })
    .await
    .map_err(|e| table::TableError::Xlsx(format!("lỗi nội bộ khi đọc tệp: {e}")))??;
    let good = parsed.entries;
    let mut report = ImportReport {
        sheet: t.sheet,
        header_line: t.header_line,
        class_from_title: t.default_class,
        rows: t.rows.len(),
        imported: good.len(),
        rejected: parsed.rejected,
        cell_errors: parsed.cell_errors,
        notes: parsed.notes,
        ..Default::default()
    };
    let mut done = 0;
    for chunk in good.chunks(CHUNK) {
        let n = store.import_roster(school_id, chunk, now_ms()).await?;
        let c = &mut report.counts;
        c.students_created += n.students_created;
        c.students_updated += n.students_updated;
        c.parents_created += n.parents_created;
        c.parents_updated += n.parents_updated;
        c.classes_created += n.classes_created;
        c.links_created += n.links_created;
        done += chunk.len();
        progress(done, good.len());
    }
    Ok(report)
}
