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
    /// Data rows read (the header and blank rows not counted).
    pub rows: usize,
    pub imported: usize,
    #[serde(flatten)]
    pub counts: ImportCounts,
    /// Every rejected row: line, column, code and a Vietnamese message. Nothing of them was written.
    pub rejected: Vec<RowError>,
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
    let (rows, good, rejected) = tokio::task::spawn_blocking(move || {
        let t = table::read(&bytes, sheet.as_deref())?;
        let (good, rejected) = roster::parse(&t)?;
        Ok::<_, ImportError>((t.rows.len(), good, rejected))
    })
    .await
    .map_err(|e| table::TableError::Xlsx(format!("lỗi nội bộ khi đọc tệp: {e}")))??;
    let mut report = ImportReport {
        rows,
        imported: good.len(),
        rejected,
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
