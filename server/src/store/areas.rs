//! The area tree as stored (`areas`: towns, villages and communities, grids) and which team each grid is
//! assigned to (`assignments`).

use crate::store::db::{values_list, Db, MAX_BINDS};
use crate::store::StoreResult;
use client_core::grid::model::AreaKind;
use sqlx::{Any, AnyConnection, Transaction};
use std::collections::BTreeSet;

type Tx = Transaction<'static, Any>;

/// The kind of an area (town, village, community, grid), if there is an area with this code.
pub async fn kind_of(db: &Db, code: &str) -> StoreResult<Option<String>> {
    let kind: Option<(String,)> =
        sqlx::query_as("SELECT kind FROM areas WHERE code = $1").bind(code).fetch_optional(&db.pool).await?;
    Ok(kind.map(|k| k.0))
}

/// The area an area lies in, if any (none for a town, or an unknown code).
pub async fn parent_of(db: &Db, code: &str) -> StoreResult<Option<String>> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT parent_code FROM areas WHERE code = $1").bind(code).fetch_optional(&db.pool).await?;
    Ok(row.and_then(|(p,)| p))
}

/// A grid's village: `None` if there is no grid with this code, `Some(None)` if it lies in none.
pub async fn village_of_grid(db: &Db, grid: &str) -> StoreResult<Option<Option<String>>> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT parent_code FROM areas WHERE code = $1 AND kind = 'grid'")
            .bind(grid)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(|r| r.0))
}

/// Whether there is an area with this code.
pub async fn area_exists(db: &Db, code: &str) -> StoreResult<bool> {
    let found: Option<(String,)> =
        sqlx::query_as("SELECT code FROM areas WHERE code = $1").bind(code).fetch_optional(&db.pool).await?;
    Ok(found.is_some())
}

/// Whether there is a grid with this code.
pub async fn grid_exists(db: &Db, code: &str) -> StoreResult<bool> {
    let found: Option<(String,)> = sqlx::query_as("SELECT code FROM areas WHERE code = $1 AND kind = 'grid'")
        .bind(code)
        .fetch_optional(&db.pool)
        .await?;
    Ok(found.is_some())
}

/// Every area's code and name.
pub async fn names(db: &Db) -> StoreResult<Vec<(String, String)>> {
    Ok(sqlx::query_as::<_, (String, String)>("SELECT code, name FROM areas").fetch_all(&db.pool).await?)
}

/// Every area's code, name and kind.
pub async fn names_and_kinds(db: &Db) -> StoreResult<Vec<(String, String, String)>> {
    Ok(sqlx::query_as::<_, (String, String, String)>("SELECT code, name, kind FROM areas").fetch_all(&db.pool).await?)
}

/// Every grid's code, in order.
pub async fn grid_codes(db: &Db) -> StoreResult<Vec<String>> {
    let grids: Vec<(String,)> =
        sqlx::query_as("SELECT code FROM areas WHERE kind = 'grid' ORDER BY code").fetch_all(&db.pool).await?;
    Ok(grids.into_iter().map(|(g,)| g).collect())
}

/// How many areas there are.
pub async fn count_areas(db: &Db) -> StoreResult<i64> {
    let (areas,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM areas").fetch_one(&db.pool).await?;
    Ok(areas)
}

/// Every area, in the caller's transaction: code, name, kind, parent.
pub async fn all_areas(tx: &mut Tx) -> StoreResult<Vec<(String, String, String, Option<String>)>> {
    Ok(sqlx::query_as::<_, (String, String, String, Option<String>)>("SELECT code, name, kind, parent_code FROM areas")
        .fetch_all(&mut **tx)
        .await?)
}

/// Adds areas, or updates their name, kind and parent, in multi-row statements.
pub async fn upsert_areas(tx: &mut Tx, areas: &[&(String, String, AreaKind, Option<String>)]) -> StoreResult<()> {
    const COLS: usize = 4;
    for chunk in areas.chunks(MAX_BINDS / COLS) {
        let sql = format!(
            "INSERT INTO areas (code, name, kind, parent_code) VALUES {} ON CONFLICT (code) DO UPDATE SET \
             name = excluded.name, kind = excluded.kind, parent_code = excluded.parent_code",
            values_list(tx, chunk.len(), COLS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (code, name, kind, parent) in chunk.iter().copied() {
            query = query.bind(code).bind(name).bind(kind.id()).bind(parent);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The team a grid is assigned to, if any.
pub async fn team_of_grid(db: &Db, grid: &str) -> StoreResult<Option<String>> {
    let team: Option<(String,)> =
        sqlx::query_as("SELECT team FROM assignments WHERE grid_code = $1").bind(grid).fetch_optional(&db.pool).await?;
    Ok(team.map(|t| t.0))
}

/// The grids assigned to a team.
pub async fn grids_of_team(conn: &mut AnyConnection, team: &str) -> StoreResult<BTreeSet<String>> {
    Ok(sqlx::query_as::<_, (String,)>("SELECT grid_code FROM assignments WHERE team = $1")
        .bind(team)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(g,)| g)
        .collect())
}

/// Assigns a grid to a team, replacing any earlier assignment.
pub async fn assign_grid(db: &Db, grid: &str, team: &str, now_ms: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO assignments (grid_code, team, assigned_at) VALUES ($1, $2, $3) \
         ON CONFLICT (grid_code) DO UPDATE SET team = excluded.team, assigned_at = excluded.assigned_at",
    )
    .bind(grid)
    .bind(team)
    .bind(now_ms)
    .execute(&db.pool)
    .await?;
    Ok(())
}
