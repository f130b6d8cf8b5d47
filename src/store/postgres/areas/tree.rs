//! PostgreSQL side of the organisation tree: Sở, Phòng, schools and classes, and each node's approval policy.

use super::super::*;

#[async_trait::async_trait]
impl OrgStore for PgStore {
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
        // The path needs the new id: one statement takes it from the identity and writes both.
        let row = sqlx::query(&format!(
            "WITH n AS (SELECT nextval(pg_get_serial_sequence('orgs', 'id')) AS id) \
             INSERT INTO orgs (id, parent_id, kind, code, name, path, created_at) \
             SELECT n.id, $1, $2, $3, $4, $5 || n.id || '/', $6 FROM n RETURNING {ORG_COLS}"
        ))
        .bind(o.parent_id)
        .bind(o.kind.as_str())
        .bind(o.code.trim())
        .bind(o.name.trim())
        .bind(parent.as_ref().map(|p| p.path.as_str()).unwrap_or("/"))
        .bind(now)
        .written_row(&self.pool)
        .await?;
        org_from(&row)
    }

    async fn get_org(&self, id: i64) -> Result<Org> {
        self.fetch_org(id).await
    }

    async fn list_orgs(&self, parent_id: Option<i64>) -> Result<Vec<Org>> {
        let rows = match parent_id {
            Some(p) => {
                sqlx::query(&format!(
                    "SELECT {ORG_COLS} FROM orgs WHERE parent_id = $1 ORDER BY id"
                ))
                .bind(p)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {ORG_COLS} FROM orgs ORDER BY path COLLATE \"C\""
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(org_from).collect()
    }

    async fn set_self_approval(&self, org_id: i64, allowed: bool) -> Result<Org> {
        let row = sqlx::query(&format!(
            "UPDATE orgs SET self_approval = $1 WHERE id = $2 RETURNING {ORG_COLS}"
        ))
        .bind(allowed)
        .bind(org_id)
        .written_opt(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("org"))?;
        org_from(&row)
    }
}
