//! Which grids each device holds as far as the server knows (`device_grids`), and when the server told a device
//! that one of them left its team (`removal_told_at`).

use crate::store::db::{in_list, values_list, MAX_BINDS};
use crate::store::StoreResult;
use sqlx::{Any, AnyConnection, Transaction};
use std::collections::HashMap;

type Tx = Transaction<'static, Any>;

/// The grids the device holds, each with when it was told the grid left its team (if it was).
pub async fn held_by(conn: &mut AnyConnection, device: &str) -> StoreResult<Vec<(String, Option<i64>)>> {
    Ok(sqlx::query_as("SELECT grid_code, removal_told_at FROM device_grids WHERE device_id = $1")
        .bind(device)
        .fetch_all(&mut *conn)
        .await?)
}

/// Remembers grids a device holds from now on; grids it is known to hold already stay as they are.
pub async fn note_held(tx: &mut Tx, device: &str, grids: &[String]) -> StoreResult<()> {
    const COLS: usize = 2;
    for chunk in grids.chunks(MAX_BINDS / COLS) {
        let sql = format!(
            "INSERT INTO device_grids (device_id, grid_code) VALUES {} ON CONFLICT (device_id, grid_code) DO NOTHING",
            values_list(tx, chunk.len(), COLS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for grid in chunk {
            query = query.bind(device).bind(grid);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// When each device was told that one of `grids` left its team, by device and grid; devices never told are
/// left out.
pub async fn removal_told(conn: &mut AnyConnection, grids: &[&str]) -> StoreResult<HashMap<(String, String), i64>> {
    let mut told = HashMap::new();
    for chunk in grids.chunks(MAX_BINDS) {
        let sql = format!(
            "SELECT device_id, grid_code, removal_told_at FROM device_grids \
             WHERE removal_told_at IS NOT NULL AND grid_code IN ({})",
            in_list(conn, chunk.len())
        );
        let mut query = sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(sql));
        for grid in chunk {
            query = query.bind(*grid);
        }
        told.extend(query.fetch_all(&mut *conn).await?.into_iter().map(|(d, g, at)| ((d, g), at)));
    }
    Ok(told)
}

/// Records that the device was told at `now` that `told` left its team (the first telling counts), and forgets
/// it for `given_back`, grids its team holds again.
pub async fn note_removal_told(
    tx: &mut Tx,
    device: &str,
    told: &[String],
    given_back: &[String],
    now: i64,
) -> StoreResult<()> {
    for grid in told {
        sqlx::query(
            "UPDATE device_grids SET removal_told_at = $1 \
             WHERE device_id = $2 AND grid_code = $3 AND removal_told_at IS NULL",
        )
        .bind(now)
        .bind(device)
        .bind(grid)
        .execute(&mut **tx)
        .await?;
    }
    for grid in given_back {
        sqlx::query("UPDATE device_grids SET removal_told_at = NULL WHERE device_id = $1 AND grid_code = $2")
            .bind(device)
            .bind(grid)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
