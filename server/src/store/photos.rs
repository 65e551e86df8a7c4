//! Photo evidence as rows: the references visits make (`visit_photos`, written by the projection), the photos that
//! arrived (`photos`), and the queries of the upload's checks, the galleries and the office's rejections.

use crate::store::coverage::AREA_FILTER;
use crate::store::db::{in_list, now_ms, Db};
use crate::store::StoreResult;
use serde::Serialize;
use sqlx::{Any, Transaction};

type Tx = Transaction<'static, Any>;

/// A photo a visit references, as the team of `team` may upload it: its declared size and type, if a visit in
/// one of the team's grids references it.
pub async fn referenced_by_team(db: &Db, sha256: &str, team: &str) -> StoreResult<Option<(u64, String)>> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT vp.size, vp.media_type FROM visit_photos vp JOIN assignments a ON a.grid_code = vp.grid_code \
         WHERE vp.sha256 = $1 AND a.team = $2 LIMIT 1",
    )
    .bind(sha256)
    .bind(team)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|(size, media_type)| (u64::try_from(size).unwrap_or(0), media_type)))
}

/// Whether the photo `sha256` arrived already.
pub async fn is_held(db: &Db, sha256: &str) -> StoreResult<bool> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT sha256 FROM photos WHERE sha256 = $1").bind(sha256).fetch_optional(&db.pool).await?;
    Ok(row.is_some())
}

/// Of `hashes`, those a visit of the team references and that have not arrived.
pub async fn missing_for_team(db: &Db, hashes: &[String], team: &str) -> StoreResult<Vec<String>> {
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = db.pool.acquire().await?;
    let list = in_list(&conn, hashes.len());
    let n = hashes.len();
    let sql = format!(
        "SELECT DISTINCT vp.sha256 FROM visit_photos vp JOIN assignments a ON a.grid_code = vp.grid_code \
         WHERE vp.sha256 IN ({list}) AND a.team = ${} \
         AND NOT EXISTS (SELECT 1 FROM photos ph WHERE ph.sha256 = vp.sha256)",
        n + 1
    );
    let mut query = sqlx::query_as::<_, (String,)>(sqlx::AssertSqlSafe(sql));
    for h in hashes {
        query = query.bind(h);
    }
    let found: std::collections::BTreeSet<String> =
        query.bind(team).fetch_all(&mut *conn).await?.into_iter().map(|(h,)| h).collect();
    Ok(hashes.iter().filter(|h| found.contains(*h)).cloned().collect())
}

/// What is kept of a photo that arrived.
pub struct NewPhoto<'a> {
    pub sha256: &'a str,
    pub stored_sha256: &'a str,
    pub thumbnail_sha256: &'a str,
    pub media_type: &'a str,
    pub width: u32,
    pub height: u32,
    pub size: u64,
    pub stripped: &'a str,
    pub uploaded_by: &'a str,
    pub device_id: Option<&'a str>,
}

/// Records a photo that arrived, with the rows of its file and thumbnail (written already), in one write
/// transaction: one turn at the writer per photo, so that uploads keep out of the syncs' way. The same photo twice
/// keeps its first row.
pub async fn insert(db: &Db, p: &NewPhoto<'_>, file_size: u64, thumbnail_size: u64) -> StoreResult<()> {
    let (_gate, mut tx) = db.begin_write().await?;
    crate::store::blobs::index(&mut tx, p.stored_sha256, file_size, p.media_type, p.uploaded_by).await?;
    crate::store::blobs::index(&mut tx, p.thumbnail_sha256, thumbnail_size, "image/jpeg", p.uploaded_by).await?;
    sqlx::query(
        "INSERT INTO photos (sha256, stored_sha256, thumbnail_sha256, media_type, width, height, size, stripped, \
         received_at, uploaded_by, device_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(p.sha256)
    .bind(p.stored_sha256)
    .bind(p.thumbnail_sha256)
    .bind(p.media_type)
    .bind(i64::from(p.width))
    .bind(i64::from(p.height))
    .bind(i64::try_from(p.size).unwrap_or(i64::MAX))
    .bind(p.stripped)
    .bind(now_ms())
    .bind(p.uploaded_by)
    .bind(p.device_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// How many photos a device uploaded since `since` (ms): its daily bound.
pub async fn uploaded_by_device_since(db: &Db, device_id: &str, since: i64) -> StoreResult<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM photos WHERE device_id = $1 AND received_at >= $2")
            .bind(device_id)
            .bind(since)
            .fetch_one(&db.pool)
            .await?;
    Ok(n)
}

/// The stored file and thumbnail of a photo that arrived.
pub async fn files_of(db: &Db, sha256: &str) -> StoreResult<Option<(String, String)>> {
    Ok(sqlx::query_as("SELECT stored_sha256, thumbnail_sha256 FROM photos WHERE sha256 = $1 AND deleted_at IS NULL")
        .bind(sha256)
        .fetch_optional(&db.pool)
        .await?)
}

/// One photo as a gallery lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GalleryPhoto {
    pub sha256: String,
    pub visit_id: String,
    pub place_id: String,
    pub place_label: String,
    pub place_kind: String,
    pub grid_code: String,
    pub village_code: String,
    pub volunteer: String,
    pub visited_at: i64,
    pub taken_at: i64,
    pub media_type: String,
    pub size: i64,
    /// The photo arrived (its thumbnail and file can be read).
    pub received: bool,
    /// Its files were deleted (the place it shows was rejected as not a place).
    pub deleted: bool,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub rejected_at: Option<i64>,
    pub rejected_by: Option<String>,
    pub reason: Option<String>,
}

/// What a gallery shows: within an area's subtree and a team's grids (as the coverage report's filter), of
/// one indicator's reaching visits, in one state, a page at a time (the newest visit first, then by key).
pub struct GalleryQuery<'a> {
    pub area: &'a str,
    pub team: &'a str,
    pub place: Option<&'a str>,
    pub indicator: Option<&'a str>,
    /// `standing`, `rejected` or `all`.
    pub state: &'a str,
    /// The last row of the previous page: (visited_at, visit_id, sha256).
    pub after: Option<(i64, String, String)>,
    pub limit: i64,
}

pub async fn gallery(db: &Db, q: &GalleryQuery<'_>) -> StoreResult<Vec<GalleryPhoto>> {
    let state = match q.state {
        "rejected" => "AND vp.rejected_at IS NOT NULL",
        "standing" => "AND vp.rejected_at IS NULL",
        _ => "",
    };
    let indicator = if q.indicator.is_some() {
        "AND EXISTS (SELECT 1 FROM visit_indicators vi WHERE vi.visit_id = vp.visit_id AND vi.indicator = $3)"
    } else {
        "AND $3 = ''"
    };
    let place = if q.place.is_some() { "AND vp.place_id = $4" } else { "AND $4 = ''" };
    // A grid's or a village's photos are read by the index of their grids, newest first; without this the filter
    // on places reads every newer photo of the whole territory until a page is full (1.1 s for a grid's page among
    // 1,000,000 photos). A town's or more is a large enough share to read in time order.
    let kind: Option<(String,)> = if q.area.is_empty() {
        None
    } else {
        sqlx::query_as("SELECT kind FROM areas WHERE code = $1").bind(q.area).fetch_optional(&db.pool).await?
    };
    let by_grids = match kind.as_ref().map(|(k,)| k.as_str()) {
        Some("grid") => "AND vp.grid_code = $1",
        Some("village" | "community") => "AND vp.grid_code IN (SELECT code FROM areas WHERE parent_code = $1)",
        _ => "",
    };
    let after = if q.after.is_some() {
        "AND (vp.visited_at < $5 OR (vp.visited_at = $5 AND (vp.visit_id < $6 OR (vp.visit_id = $6 AND vp.sha256 < $7))))"
    } else {
        "AND $5 = 0 AND $6 = '' AND $7 = ''"
    };
    let sql = format!(
        "SELECT vp.sha256, vp.visit_id, vp.place_id, p.label, p.kind, p.grid_code, p.village_code, vp.volunteer, \
           vp.visited_at, vp.taken_at, vp.media_type, vp.size, \
           CAST(CASE WHEN ph.sha256 IS NULL OR ph.deleted_at IS NOT NULL THEN 0 ELSE 1 END AS BIGINT) AS received, \
           CAST(CASE WHEN ph.deleted_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS deleted, ph.width, ph.height, \
           vp.rejected_at, vp.rejected_by, vp.reason \
         FROM visit_photos vp JOIN places p ON p.place_id = vp.place_id \
         LEFT JOIN photos ph ON ph.sha256 = vp.sha256 \
         WHERE {AREA_FILTER} {by_grids} {indicator} {place} {state} {after} \
         ORDER BY vp.visited_at DESC, vp.visit_id DESC, vp.sha256 DESC LIMIT {}",
        q.limit.clamp(1, 500)
    );
    let (after_at, after_visit, after_sha) = q.after.clone().unwrap_or_default();
    let rows: Vec<GalleryRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(q.area)
        .bind(q.team)
        .bind(q.indicator.unwrap_or(""))
        .bind(q.place.unwrap_or(""))
        .bind(after_at)
        .bind(after_visit)
        .bind(after_sha)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| GalleryPhoto {
            sha256: r.sha256,
            visit_id: r.visit_id,
            place_id: r.place_id,
            place_label: r.label,
            place_kind: r.kind,
            grid_code: r.grid_code,
            village_code: r.village_code,
            volunteer: r.volunteer,
            visited_at: r.visited_at,
            taken_at: r.taken_at,
            media_type: r.media_type,
            size: r.size,
            received: r.received != 0,
            deleted: r.deleted != 0,
            width: r.width,
            height: r.height,
            rejected_at: r.rejected_at,
            rejected_by: r.rejected_by,
            reason: r.reason,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct GalleryRow {
    sha256: String,
    visit_id: String,
    place_id: String,
    label: String,
    kind: String,
    grid_code: String,
    village_code: String,
    volunteer: String,
    visited_at: i64,
    taken_at: i64,
    media_type: String,
    size: i64,
    received: i64,
    deleted: i64,
    width: Option<i64>,
    height: Option<i64>,
    rejected_at: Option<i64>,
    rejected_by: Option<String>,
    reason: Option<String>,
}

/// The grid and place of a visit's photo, and whether it was rejected.
pub async fn reference(db: &Db, visit_id: &str, sha256: &str) -> StoreResult<Option<(String, String, bool)>> {
    let row: Option<(String, String, Option<i64>)> =
        sqlx::query_as("SELECT grid_code, place_id, rejected_at FROM visit_photos WHERE visit_id = $1 AND sha256 = $2")
            .bind(visit_id)
            .bind(sha256)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(|(grid, place, rejected)| (grid, place, rejected.is_some())))
}

/// Marks a visit's photo rejected and recounts how many of the visit's photos stand.
pub async fn mark_rejected(
    tx: &mut Tx,
    visit_id: &str,
    sha256: &str,
    by: &str,
    reason: &str,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE visit_photos SET rejected_at = $1, rejected_by = $2, reason = $3 WHERE visit_id = $4 AND sha256 = $5",
    )
    .bind(at)
    .bind(by)
    .bind(reason)
    .bind(visit_id)
    .bind(sha256)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE visits SET photos = (SELECT CAST(COUNT(*) AS BIGINT) FROM visit_photos vp \
         WHERE vp.visit_id = visits.visit_id AND vp.rejected_at IS NULL) WHERE visit_id = $1",
    )
    .bind(visit_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether a reader within `area` and `team` (as the coverage report's filter) may see the place's photos.
pub async fn place_in_scope(db: &Db, place_id: &str, area: &str, team: &str) -> StoreResult<bool> {
    let sql = format!("SELECT p.place_id FROM places p WHERE p.place_id = $3 AND {AREA_FILTER}");
    let row: Option<(String,)> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(area).bind(team).bind(place_id).fetch_optional(&db.pool).await?;
    Ok(row.is_some())
}

/// A place a photo shows, any that is in scope (a photo referenced from several places is rare but possible).
pub async fn places_of(db: &Db, sha256: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT place_id FROM visit_photos WHERE sha256 = $1")
        .bind(sha256)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.into_iter().map(|(p,)| p).collect())
}

/// Per indicator of `indicators` within the filter: reached places, and those of them with evidence (a reaching
/// visit whose photo arrived and stands).
pub async fn evidence_counts(
    db: &Db,
    area: &str,
    team: &str,
    indicators: &[String],
) -> StoreResult<Vec<(String, i64, i64)>> {
    if indicators.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = db.pool.acquire().await?;
    let list: Vec<String> = (3..3 + indicators.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT pi.indicator, CAST(COUNT(*) AS BIGINT), \
           CAST(SUM(CASE WHEN EXISTS (SELECT 1 FROM visit_indicators vi JOIN visit_photos vp ON vp.visit_id = vi.visit_id \
             JOIN photos ph ON ph.sha256 = vp.sha256 WHERE vi.place_id = p.place_id AND vi.indicator = pi.indicator \
             AND vp.rejected_at IS NULL AND ph.deleted_at IS NULL) THEN 1 ELSE 0 END) AS BIGINT) \
         FROM place_indicators pi JOIN places p ON p.place_id = pi.place_id \
         WHERE {AREA_FILTER} AND p.excluded = 0 AND pi.reached_at IS NOT NULL AND pi.indicator IN ({}) \
         GROUP BY pi.indicator",
        list.join(", ")
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(area).bind(team);
    for i in indicators {
        query = query.bind(i);
    }
    Ok(query.fetch_all(&mut *conn).await?)
}

/// The photos of a place that no other place's visits reference, with their stored files not shared with another
/// photo: what forgetting the place deletes.
pub async fn only_of_place(db: &Db, place_id: &str) -> StoreResult<Vec<(String, Vec<String>)>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT ph.sha256, ph.stored_sha256, ph.thumbnail_sha256 FROM photos ph \
         WHERE ph.deleted_at IS NULL AND ph.sha256 IN (SELECT vp.sha256 FROM visit_photos vp WHERE vp.place_id = $1) \
         AND NOT EXISTS (SELECT 1 FROM visit_photos o WHERE o.sha256 = ph.sha256 AND o.place_id <> $1)",
    )
    .bind(place_id)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for (sha256, stored, thumb) in rows {
        let mut files = Vec::new();
        for file in [stored, thumb] {
            let (others,): (i64,) = sqlx::query_as(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM photos WHERE sha256 <> $1 AND deleted_at IS NULL \
                 AND (stored_sha256 = $2 OR thumbnail_sha256 = $2)",
            )
            .bind(&sha256)
            .bind(&file)
            .fetch_one(&db.pool)
            .await?;
            if others == 0 {
                files.push(file);
            }
        }
        out.push((sha256, files));
    }
    Ok(out)
}

/// Marks a photo's files deleted (its row stays: phones that still hold it are told it arrived).
pub async fn mark_deleted(db: &Db, sha256: &str) -> StoreResult<()> {
    let (_gate, mut tx) = db.begin_write().await?;
    sqlx::query("UPDATE photos SET deleted_at = $1 WHERE sha256 = $2")
        .bind(now_ms())
        .bind(sha256)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
