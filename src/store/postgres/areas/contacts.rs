//! PostgreSQL side of the contacts area (not yet ported: each method says so).
#![allow(unused_variables)]

use super::super::*;

#[async_trait::async_trait]
impl ContactStore for PgStore {
    async fn create_contact(&self, c: &NewContact, now: Millis) -> Result<Contact> {
        Err(not_ported("create_contact"))
    }

    async fn get_contact(&self, id: i64) -> Result<Contact> {
        Err(not_ported("get_contact"))
    }

    async fn list_contacts(&self, f: &ContactFilter) -> Result<ContactPage> {
        Err(not_ported("list_contacts"))
    }

    async fn set_opt_out(
        &self,
        id: i64,
        channel: Channel,
        out: bool,
        now: Millis,
    ) -> Result<Contact> {
        Err(not_ported("set_opt_out"))
    }

    async fn set_consent(&self, id: i64, source: &str, at: Millis, now: Millis) -> Result<Contact> {
        Err(not_ported("set_consent"))
    }

    async fn erase_contact(&self, id: i64, now: Millis) -> Result<bool> {
        Err(not_ported("erase_contact"))
    }

    async fn link_guardian(
        &self,
        parent_id: i64,
        student_id: i64,
        relation: Option<&str>,
    ) -> Result<()> {
        Err(not_ported("link_guardian"))
    }

    async fn insert_contacts(&self, rows: &[NewContact], now: Millis) -> Result<Vec<i64>> {
        Err(not_ported("insert_contacts"))
    }

    async fn link_guardians(&self, pairs: &[(i64, i64)]) -> Result<u64> {
        Err(not_ported("link_guardians"))
    }

    async fn import_roster(
        &self,
        school_id: i64,
        pieces: &mut tokio::sync::mpsc::Receiver<Vec<crate::domain::roster::RosterEntry>>,
        now: Millis,
        mode: ImportMode,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<ImportCounts> {
        Err(not_ported("import_roster"))
    }

    async fn import_staff(
        &self,
        org_id: i64,
        entries: &[crate::domain::roster::StaffEntry],
        now: Millis,
        mode: ImportMode,
    ) -> Result<ImportCounts> {
        Err(not_ported("import_staff"))
    }

    async fn seed_synthetic(&self, s: &SyntheticAudience, now: Millis) -> Result<()> {
        Err(not_ported("seed_synthetic"))
    }
}
