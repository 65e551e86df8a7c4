//! Places found in the field and corrections proposed from it: their projection when they arrive, the list
//! awaiting the office's review, and the review itself (confirm, reject, or merge a duplicate into the place it
//! duplicates), written into the grid document with the server's actor so that every device follows it.

use crate::accounts::audit;
use crate::http::error::ApiError;
use crate::store::grids::GridRepo;
use crate::store::projection::{self, AreaDeltas};
use crate::AppState;
use client_core::grid::found::{Correction, CorrectionReview, FoundPlace, PlaceReview};
use client_core::grid::model::GridInfo;
use client_core::GridDoc;
use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};

type Tx = Transaction<'static, Any>;

/// Projects a newly synced found place: it counts in coverage at once, marked as awaiting review.
pub async fn project_found_place(
    tx: &mut Tx,
    grid: &GridInfo,
    found: &FoundPlace,
    deltas: &mut AreaDeltas,
) -> Result<(), ApiError> {
    projection::project_places(tx, &[(grid, &found.place)], deltas).await?;
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

/// Records a newly synced correction for review.
pub async fn project_correction(tx: &mut Tx, grid: &str, c: &Correction) -> Result<(), ApiError> {
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

/// A found place awaiting review.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PendingPlace {
    pub place_id: String,
    pub grid: String,
    pub kind: String,
    pub label: String,
    pub address: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub added_by: String,
    pub device: String,
    /// Milliseconds since the epoch.
    pub added_at: i64,
    pub visits: i64,
}

/// A correction awaiting review, beside what the place says now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PendingCorrection {
    pub correction_id: String,
    pub grid: String,
    pub place_id: String,
    pub current_label: String,
    pub current_address: Option<String>,
    pub label: Option<String>,
    pub address: Option<String>,
    pub volunteer: String,
    pub at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pending {
    pub places: Vec<PendingPlace>,
    pub corrections: Vec<PendingCorrection>,
}

/// What awaits review, in `grid` (or everywhere), within `area` (a grid, village, town or district) and, for a
/// lead, in the team's grids.
pub async fn pending(
    state: &AppState,
    grid: Option<&str>,
    area: Option<&str>,
    team: Option<&str>,
) -> Result<Pending, ApiError> {
    let (grid, team, area) = (grid.unwrap_or(""), team.unwrap_or(""), area.unwrap_or(""));
    let scope = "($1 = '' OR p.grid_code = $1) AND ($2 = '' OR p.grid_code IN \
                 (SELECT grid_code FROM assignments WHERE team = $2)) AND ($3 = '' OR p.grid_code = $3 \
                 OR p.village_code = $3 OR p.town_code = $3 OR p.town_code IN (SELECT code FROM areas WHERE parent_code = $3))";
    type PlaceRow =
        (String, String, String, String, Option<String>, Option<f64>, Option<f64>, String, String, i64, i64);
    let places: Vec<PlaceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT p.place_id, p.grid_code, p.kind, p.label, p.address, p.lat, p.lon, p.added_by, p.added_device, \
         p.added_at, CAST((SELECT COUNT(*) FROM visits v WHERE v.place_id = p.place_id) AS BIGINT) \
         FROM places p WHERE p.status = 'provisional' AND {scope} ORDER BY p.added_at, p.place_id"
    )))
    .bind(grid)
    .bind(team)
    .bind(area)
    .fetch_all(&state.db.pool)
    .await?;
    type CorrectionRow = (String, String, String, String, Option<String>, Option<String>, Option<String>, String, i64);
    let corrections: Vec<CorrectionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT c.correction_id, c.grid_code, c.place_id, p.label, p.address, c.label, c.address, c.volunteer, c.at \
         FROM place_corrections c JOIN places p ON p.place_id = c.place_id \
         WHERE c.status = 'pending' AND {scope} ORDER BY c.at, c.correction_id"
    )))
    .bind(grid)
    .bind(team)
    .bind(area)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(Pending {
        places: places
            .into_iter()
            .map(|(place_id, grid, kind, label, address, lat, lon, added_by, device, added_at, visits)| PendingPlace {
                place_id,
                grid,
                kind,
                label,
                address,
                lat,
                lon,
                added_by,
                device,
                added_at,
                visits,
            })
            .collect(),
        corrections: corrections
            .into_iter()
            .map(|(correction_id, grid, place_id, current_label, current_address, label, address, volunteer, at)| {
                PendingCorrection {
                    correction_id,
                    grid,
                    place_id,
                    current_label,
                    current_address,
                    label,
                    address,
                    volunteer,
                    at,
                }
            })
            .collect(),
    })
}

/// A place a found place may be merged into.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MergeCandidate {
    pub place_id: String,
    pub kind: String,
    pub label: String,
    pub address: Option<String>,
    /// Metres from the found place, when both have coordinates.
    pub distance_m: Option<f64>,
}

/// Most candidates listed for one found place: a grid holds a few hundred places, the nearest matter.
const MAX_CANDIDATES: usize = 100;

/// The places of a found place's grid it may be merged into (those that still count on their own), nearest first
/// when coordinates are known, then by id.
pub async fn merge_candidates(state: &AppState, place_id: &str) -> Result<Vec<MergeCandidate>, ApiError> {
    let row: Option<(String, Option<f64>, Option<f64>)> =
        sqlx::query_as("SELECT grid_code, lat, lon FROM places WHERE place_id = $1")
            .bind(place_id)
            .fetch_optional(&state.db.pool)
            .await?;
    let (grid, lat, lon) = row.ok_or_else(|| ApiError::not_found(format!("no place {place_id}")))?;
    type Row = (String, String, String, Option<String>, Option<f64>, Option<f64>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT place_id, kind, label, address, lat, lon FROM places \
         WHERE grid_code = $1 AND place_id <> $2 AND status NOT IN ('rejected', 'merged') ORDER BY place_id",
    )
    .bind(&grid)
    .bind(place_id)
    .fetch_all(&state.db.pool)
    .await?;
    let mut out: Vec<MergeCandidate> = rows
        .into_iter()
        .map(|(place_id, kind, label, address, plat, plon)| MergeCandidate {
            distance_m: match (lat, lon, plat, plon) {
                (Some(a), Some(b), Some(c), Some(d)) => Some(metres_between((a, b), (c, d))),
                _ => None,
            },
            place_id,
            kind,
            label,
            address,
        })
        .collect();
    // Stable: places without a distance keep their id order after the others.
    out.sort_by(|a, b| match (a.distance_m, b.distance_m) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    out.truncate(MAX_CANDIDATES);
    Ok(out)
}

/// Great-circle distance in metres (haversine; plenty for places a few hundred metres apart).
fn metres_between((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    const EARTH_RADIUS_M: f64 = 6_371_000.0;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let (dp, dl) = ((lat2 - lat1).to_radians(), (lon2 - lon1).to_radians());
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

/// The office's decision on a found place.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
pub enum PlaceDecision {
    Confirm,
    Reject,
    /// A duplicate of `into`, an existing place of the same grid.
    Merge {
        into: String,
    },
}

/// Applies the office's decision on a found place: into the grid document (so devices follow it) and the
/// projection (coverage recomputed), in one transaction; audited.
pub async fn decide_place(
    state: &AppState,
    place_id: &str,
    decision: &PlaceDecision,
    username: &str,
) -> Result<(), ApiError> {
    let row: Option<(String, String)> = sqlx::query_as("SELECT grid_code, status FROM places WHERE place_id = $1")
        .bind(place_id)
        .fetch_optional(&state.db.pool)
        .await?;
    let (grid, status) = row.ok_or_else(|| ApiError::not_found(format!("no place {place_id}")))?;
    if status == "registry" {
        return Err(ApiError::conflict(format!(
            "place {place_id} comes from the territory file; only places found in the field are reviewed"
        )));
    }
    let review = match decision {
        PlaceDecision::Confirm => PlaceReview::Confirmed,
        PlaceDecision::Reject => PlaceReview::Rejected,
        PlaceDecision::Merge { into } => {
            check_merge_target(state, place_id, &grid, into).await?;
            PlaceReview::MergedInto(into.clone())
        }
    };
    let decided = review.clone();
    let (place, user) = (place_id.to_string(), username.to_string());
    with_grid(
        state,
        &grid,
        move |doc| match doc.found_place(place_id)?.and_then(|p| p.review) {
            Some(done) => Err(ApiError::conflict(format!("place {place_id} was already reviewed ({})", done.id()))),
            None => Ok(doc.review_place(place_id, &decided)?),
        },
        move |tx, deltas| {
            Box::pin(async move {
                let (place_id, username) = (place.as_str(), user.as_str());
                let status = review.id();
                match &review {
                    PlaceReview::Confirmed => {}
                    PlaceReview::Rejected => {
                        deltas.before(tx, place_id).await?;
                        projection::uncount_place(tx, place_id).await?;
                    }
                    PlaceReview::MergedInto(target) => {
                        deltas.before(tx, place_id).await?;
                        deltas.before(tx, target).await?;
                        sqlx::query(
                    "UPDATE visits SET recorded_place_id = COALESCE(recorded_place_id, place_id), place_id = $1 \
                     WHERE place_id = $2",
                )
                .bind(target)
                .bind(place_id)
                .execute(&mut **tx)
                .await?;
                        projection::uncount_place(tx, place_id).await?;
                        projection::recount_place(tx, target).await?;
                    }
                }
                let merged_into = match &review {
                    PlaceReview::MergedInto(target) => Some(target.as_str()),
                    _ => None,
                };
                sqlx::query(
            "UPDATE places SET status = $1, merged_into = $2, reviewed_by = $3, reviewed_at = $4 WHERE place_id = $5",
        )
        .bind(status)
        .bind(merged_into)
        .bind(username)
        .bind(crate::store::db::now_ms())
        .bind(place_id)
        .execute(&mut **tx)
        .await?;
                if status != "confirmed" {
                    deltas.after(tx, place_id).await?;
                }
                if let Some(target) = merged_into {
                    deltas.after(tx, target).await?;
                }
                Ok(())
            })
        },
    )
    .await?;
    let detail = match decision {
        PlaceDecision::Merge { into } => format!("{place_id} merged into {into}"),
        PlaceDecision::Confirm => format!("{place_id} confirmed"),
        PlaceDecision::Reject => format!("{place_id} rejected"),
    };
    audit::record(&state.db, Some(username), "place.review", &detail).await;
    Ok(())
}

/// A merge target is another place of the same grid that still counts on its own.
async fn check_merge_target(state: &AppState, place_id: &str, grid: &str, into: &str) -> Result<(), ApiError> {
    if into == place_id {
        return Err(ApiError::bad_request("a place cannot be merged into itself"));
    }
    let target: Option<(String, String)> = sqlx::query_as("SELECT grid_code, status FROM places WHERE place_id = $1")
        .bind(into)
        .fetch_optional(&state.db.pool)
        .await?;
    match target {
        None => Err(ApiError::not_found(format!("no place {into} to merge into"))),
        Some((g, _)) if g != grid => Err(ApiError::unprocessable(
            "invalid_merge",
            format!("place {into} is in grid {g}, not in {grid}; merge only within a grid"),
        )),
        Some((_, s)) if s == "rejected" || s == "merged" => Err(ApiError::unprocessable(
            "invalid_merge",
            format!("place {into} was {s}; merge into a place that still counts"),
        )),
        Some(_) => Ok(()),
    }
}

/// Applies the office's decision on a correction: a confirmed one relabels the place everywhere.
pub async fn decide_correction(
    state: &AppState,
    correction_id: &str,
    review: CorrectionReview,
    username: &str,
) -> Result<(), ApiError> {
    type Row = (String, String, String, Option<String>, Option<String>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT grid_code, place_id, status, label, address FROM place_corrections WHERE correction_id = $1",
    )
    .bind(correction_id)
    .fetch_optional(&state.db.pool)
    .await?;
    let (grid, place_id, status, label, address) =
        row.ok_or_else(|| ApiError::not_found(format!("no correction {correction_id}")))?;
    if status != "pending" {
        return Err(ApiError::conflict(format!("correction {correction_id} was already reviewed ({status})")));
    }
    let (id, user) = (correction_id.to_string(), username.to_string());
    with_grid(state, &grid, move |doc| {
        match doc.correction(correction_id)?.and_then(|c| c.review) {
            Some(done) => Err(ApiError::conflict(format!("correction {correction_id} was already reviewed ({})", done.id()))),
            None => Ok(doc.review_correction(correction_id, review)?),
        }
    }, move |tx, _| Box::pin(async move {
        let (correction_id, username) = (id.as_str(), user.as_str());
        if review == CorrectionReview::Confirmed {
            sqlx::query("UPDATE places SET label = COALESCE($1, label), address = COALESCE($2, address) WHERE place_id = $3")
                .bind(&label)
                .bind(&address)
                .bind(&place_id)
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query("UPDATE place_corrections SET status = $1, reviewed_by = $2, reviewed_at = $3 WHERE correction_id = $4")
            .bind(review.id())
            .bind(username)
            .bind(crate::store::db::now_ms())
            .bind(correction_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }))
    .await?;
    audit::record(&state.db, Some(username), "correction.review", &format!("{correction_id} {}", review.id())).await;
    Ok(())
}

type ProjectFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ApiError>> + Send + 'a>>;

/// Writes one server change into a locked grid and updates the projection, all in one transaction.
async fn with_grid(
    state: &AppState,
    grid: &str,
    write: impl FnOnce(&mut GridDoc) -> Result<automerge::Change, ApiError>,
    project: impl for<'t> FnOnce(&'t mut Tx, &'t mut AreaDeltas) -> ProjectFuture<'t>,
) -> Result<(), ApiError> {
    let (mut locks, mut session) = state.grids.begin(&[grid.to_string()]).await?;
    let cached = state
        .grids
        .current(&mut locks[0], session.reader())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("grid {grid} has no document")))?;
    let before = (cached.version, cached.log_count);
    let mut doc = cached.doc.fork();
    let change = write(&mut doc)?;
    let (_gate, mut tx) = session.into_writer().await?;
    let versions = state.grids.persist(&mut tx, &locks[0], Some(before), &doc, &[change]).await?;
    let mut deltas = AreaDeltas::default();
    project(&mut tx, &mut deltas).await?;
    deltas.flush(&mut tx).await?;
    if let Err(e) = tx.commit().await {
        GridRepo::discard_cache(&mut locks[0]);
        return Err(e.into());
    }
    GridRepo::commit_cache(&mut locks[0], versions, doc);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn distances_between_nearby_places() {
        let d = super::metres_between((30.18, 105.83), (30.181, 105.83));
        assert!((d - 111.2).abs() < 0.5, "a thousandth of a degree of latitude is about 111 m: {d}");
        assert_eq!(super::metres_between((30.18, 105.83), (30.18, 105.83)), 0.0);
    }
}
