//! Places as stored, beyond their projection (`projection.rs`): what lies where, the places found in the field
//! and corrections awaiting review (`place_corrections`), the office's review decisions, and household contacts
//! (`place_contacts`).

use crate::store::db::{in_list, values_list, Db, MAX_BINDS};
use crate::store::StoreResult;
use client_core::grid::found::{Correction, FoundPlace};
use sqlx::{Any, AnyConnection, Transaction};

type Tx = Transaction<'static, Any>;

/// A place's grid, village, town and address, if there is such a place.
pub async fn areas_and_address(
    db: &Db,
    place_id: &str,
) -> StoreResult<Option<(String, String, String, Option<String>)>> {
    Ok(sqlx::query_as("SELECT grid_code, village_code, town_code, address FROM places WHERE place_id = $1")
        .bind(place_id)
        .fetch_optional(&db.pool)
        .await?)
}

/// Marks a just projected registry place as found in the field, awaiting review, in the caller's transaction.
pub async fn mark_found(tx: &mut Tx, found: &FoundPlace) -> StoreResult<()> {
    sqlx::query(
        "UPDATE places SET status = 'provisional', added_by = $1, added_device = $2, added_at = $3 \
         WHERE place_id = $4 AND status = 'registry'",
    )
    .bind(&found.added_by)
    .bind(&found.device)
    .bind(found.added_at.timestamp_millis())
    .bind(&found.place.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores a correction for review (once), in the caller's transaction.
pub async fn insert_correction(tx: &mut Tx, grid: &str, c: &Correction) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO place_corrections (correction_id, grid_code, place_id, label, address, volunteer, device_id, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (correction_id) DO NOTHING",
    )
    .bind(c.id.to_string())
    .bind(grid)
    .bind(&c.place_id)
    .bind(&c.label)
    .bind(&c.address)
    .bind(&c.volunteer)
    .bind(&c.device)
    .bind(c.at.timestamp_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What awaits review is filtered by grid ($1), team ($2) and area ($3), each ignored when empty.
const PENDING_SCOPE: &str = "($1 = '' OR p.grid_code = $1) AND ($2 = '' OR p.grid_code IN \
                 (SELECT grid_code FROM assignments WHERE team = $2)) AND ($3 = '' OR p.grid_code = $3 \
                 OR p.village_code = $3 OR p.town_code = $3 OR p.town_code IN (SELECT code FROM areas WHERE parent_code = $3))";

/// A found place awaiting review: id, grid, kind, label, address, lat, lon, added by, device, added at, visits.
pub type PendingPlaceRow =
    (String, String, String, String, Option<String>, Option<f64>, Option<f64>, String, String, i64, i64);

/// Found places awaiting review, in the order they were found.
pub async fn pending_places(db: &Db, grid: &str, team: &str, area: &str) -> StoreResult<Vec<PendingPlaceRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT p.place_id, p.grid_code, p.kind, p.label, p.address, p.lat, p.lon, p.added_by, p.added_device, \
         p.added_at, CAST((SELECT COUNT(*) FROM visits v WHERE v.place_id = p.place_id) AS BIGINT) \
         FROM places p WHERE p.status = 'provisional' AND {PENDING_SCOPE} ORDER BY p.added_at, p.place_id"
    )))
    .bind(grid)
    .bind(team)
    .bind(area)
    .fetch_all(&db.pool)
    .await?)
}

/// A correction awaiting review: id, grid, place, the place's label and address now, the proposed label and
/// address, volunteer, at.
pub type PendingCorrectionRow =
    (String, String, String, String, Option<String>, Option<String>, Option<String>, String, i64);

/// Corrections awaiting review, in the order they were made.
pub async fn pending_corrections(
    db: &Db,
    grid: &str,
    team: &str,
    area: &str,
) -> StoreResult<Vec<PendingCorrectionRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT c.correction_id, c.grid_code, c.place_id, p.label, p.address, c.label, c.address, c.volunteer, c.at \
         FROM place_corrections c JOIN places p ON p.place_id = c.place_id \
         WHERE c.status = 'pending' AND {PENDING_SCOPE} ORDER BY c.at, c.correction_id"
    )))
    .bind(grid)
    .bind(team)
    .bind(area)
    .fetch_all(&db.pool)
    .await?)
}

/// A place's grid and coordinates, if there is such a place.
pub async fn grid_and_position(db: &Db, place_id: &str) -> StoreResult<Option<(String, Option<f64>, Option<f64>)>> {
    Ok(sqlx::query_as("SELECT grid_code, lat, lon FROM places WHERE place_id = $1")
        .bind(place_id)
        .fetch_optional(&db.pool)
        .await?)
}

/// The places of a grid but one that still count on their own, by id: id, kind, label, address, lat, lon.
pub async fn counting_places_of_grid_but(
    db: &Db,
    grid: &str,
    but: &str,
) -> StoreResult<Vec<(String, String, String, Option<String>, Option<f64>, Option<f64>)>> {
    Ok(sqlx::query_as(
        "SELECT place_id, kind, label, address, lat, lon FROM places \
         WHERE grid_code = $1 AND place_id <> $2 AND status NOT IN ('rejected', 'merged') ORDER BY place_id",
    )
    .bind(grid)
    .bind(but)
    .fetch_all(&db.pool)
    .await?)
}

/// A place's grid and review status, if there is such a place.
pub async fn grid_and_status(db: &Db, place_id: &str) -> StoreResult<Option<(String, String)>> {
    Ok(sqlx::query_as("SELECT grid_code, status FROM places WHERE place_id = $1")
        .bind(place_id)
        .fetch_optional(&db.pool)
        .await?)
}

/// Moves a merged place's visits to the place it was merged into, remembering where they were recorded.
pub async fn move_visits(tx: &mut Tx, from: &str, into: &str) -> StoreResult<()> {
    sqlx::query(
        "UPDATE visits SET recorded_place_id = COALESCE(recorded_place_id, place_id), place_id = $1 \
         WHERE place_id = $2",
    )
    .bind(into)
    .bind(from)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores the office's decision on a found place.
pub async fn set_review(
    tx: &mut Tx,
    place_id: &str,
    status: &str,
    merged_into: Option<&str>,
    by: &str,
    at_ms: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE places SET status = $1, merged_into = $2, reviewed_by = $3, reviewed_at = $4 WHERE place_id = $5",
    )
    .bind(status)
    .bind(merged_into)
    .bind(by)
    .bind(at_ms)
    .bind(place_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A correction's grid, place, review status and proposed label and address, if there is such a correction.
pub async fn correction(
    db: &Db,
    correction_id: &str,
) -> StoreResult<Option<(String, String, String, Option<String>, Option<String>)>> {
    Ok(sqlx::query_as(
        "SELECT grid_code, place_id, status, label, address FROM place_corrections WHERE correction_id = $1",
    )
    .bind(correction_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// Relabels a place: the label and address given replace the stored ones.
pub async fn relabel(tx: &mut Tx, place_id: &str, label: Option<&str>, address: Option<&str>) -> StoreResult<()> {
    sqlx::query("UPDATE places SET label = COALESCE($1, label), address = COALESCE($2, address) WHERE place_id = $3")
        .bind(label)
        .bind(address)
        .bind(place_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Stores the office's decision on a correction.
pub async fn set_correction_review(
    tx: &mut Tx,
    correction_id: &str,
    status: &str,
    by: &str,
    at_ms: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE place_corrections SET status = $1, reviewed_by = $2, reviewed_at = $3 WHERE correction_id = $4",
    )
    .bind(status)
    .bind(by)
    .bind(at_ms)
    .bind(correction_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The grids of those of `place_ids` the server holds, by place id, in multi-row statements.
pub async fn grids_of(conn: &mut AnyConnection, place_ids: &[&str]) -> StoreResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in place_ids.chunks(MAX_BINDS) {
        let list = in_list(conn, part.len());
        let sql = format!("SELECT place_id, grid_code FROM places WHERE place_id IN ({list})");
        let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
        for id in part {
            query = query.bind(*id);
        }
        out.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// Contact details of a grid's places: place id, name, phone; by place id.
pub async fn contacts_in_grid(db: &Db, grid: &str) -> StoreResult<Vec<(String, Option<String>, Option<String>)>> {
    Ok(sqlx::query_as(
        "SELECT c.place_id, c.contact_name, c.contact_phone FROM place_contacts c \
         JOIN places p ON p.place_id = c.place_id WHERE p.grid_code = $1 ORDER BY c.place_id",
    )
    .bind(grid)
    .fetch_all(&db.pool)
    .await?)
}

/// Removes the contacts of these places, in multi-row statements.
pub async fn delete_contacts(tx: &mut Tx, place_ids: &[&str]) -> StoreResult<()> {
    for chunk in place_ids.chunks(MAX_BINDS) {
        let list = in_list(tx, chunk.len());
        let sql = format!("DELETE FROM place_contacts WHERE place_id IN ({list})");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Sets places' contacts: place id, name, phone; in multi-row statements.
pub async fn upsert_contacts(tx: &mut Tx, contacts: &[(&str, Option<&str>, Option<&str>)]) -> StoreResult<()> {
    const COLS: usize = 3;
    for chunk in contacts.chunks(MAX_BINDS / COLS) {
        let sql = format!(
            "INSERT INTO place_contacts (place_id, contact_name, contact_phone) VALUES {} ON CONFLICT (place_id) \
             DO UPDATE SET contact_name = excluded.contact_name, contact_phone = excluded.contact_phone",
            values_list(tx, chunk.len(), COLS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (place_id, name, phone) in chunk {
            query = query.bind(*place_id).bind(*name).bind(*phone);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The demo town's task targets: the first four households of team-east's grids.
pub async fn demo_task_targets(db: &Db) -> StoreResult<Vec<String>> {
    let places: Vec<(String,)> = sqlx::query_as(
        "SELECT p.place_id FROM places p JOIN assignments a ON a.grid_code = p.grid_code \
         WHERE a.team = 'team-east' AND p.kind = 'household' ORDER BY p.place_id LIMIT 4",
    )
    .fetch_all(&db.pool)
    .await?;
    Ok(places.into_iter().map(|(p,)| p).collect())
}
