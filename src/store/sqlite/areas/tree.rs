//! SQLite side of the organisation tree: Sở, Phòng, schools and classes, and each node's approval policy.

use super::super::*;

#[async_trait::async_trait]
impl OrgStore for SqliteStore {
    async fn create_org(&self, o: &NewOrg, now: Millis) -> Result<Org> {
        let parent = match o.parent_id {
            Some(p) => Some(
                self.fetch_org(p)
                    .await
                    .map_err(|_| StoreError::InvalidReference(format!("parent_id {p}")))?,
            ),
            None => None,
        };
        if !o.kind.allowed_parent(parent.as_ref().map(|p| p.kind)) {
            return Err(StoreError::Invalid(format!(
                "a {} cannot be placed under {}",
                o.kind.as_str(),
                parent
                    .as_ref()
                    .map(|p| p.kind.as_str())
                    .unwrap_or("nothing (root)")
            )));
        }
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let id: i64 = sqlx::query("INSERT INTO orgs (parent_id, kind, code, name, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id")
            .bind(o.parent_id)
            .bind(o.kind.as_str())
            .bind(o.code.trim())
            .bind(o.name.trim())
            .bind(now)
            .written_row(&mut *tx)
            .await?
            .try_get(0)?;
        let path = format!(
            "{}{id}/",
            parent.as_ref().map(|p| p.path.as_str()).unwrap_or("/")
        );
        sqlx::query("UPDATE orgs SET path = ? WHERE id = ?")
            .bind(&path)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.fetch_org(id).await
    }

    async fn get_org(&self, id: i64) -> Result<Org> {
        self.fetch_org(id).await
    }

    async fn list_orgs(&self, parent_id: Option<i64>) -> Result<Vec<Org>> {
        let rows = match parent_id {
            Some(p) => {
                sqlx::query(&format!(
                    "SELECT {ORG_COLS} FROM orgs WHERE parent_id = ? ORDER BY id"
                ))
                .bind(p)
                .fetch_all(&self.reader)
                .await?
            }
            None => {
                sqlx::query(&format!("SELECT {ORG_COLS} FROM orgs ORDER BY path"))
                    .fetch_all(&self.reader)
                    .await?
            }
        };
        rows.iter().map(org_from).collect()
    }

    async fn set_self_approval(&self, org_id: i64, allowed: bool) -> Result<Org> {
        self.do_set_self_approval(org_id, allowed).await?;
        self.fetch_org(org_id).await
    }
}
