//! Places found in the field and corrections proposed from it: their projection when they arrive, the list
//! awaiting the office's review, and the review itself (confirm, reject, or merge a duplicate into the place it
//! duplicates), written into the grid document with the server's actor so that every device follows it.

use crate::accounts::audit;
use crate::refusal::Refusal;
use crate::store::grids::GridRepo;
use crate::store::places as stored;
use crate::store::projection::{self, AreaDeltas};
use crate::AppState;
use client_core::campaign::Campaign;
use client_core::grid::found::{Correction, CorrectionReview, FoundPlace, PlaceReview};
use client_core::grid::model::GridInfo;
use client_core::GridDoc;
use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};

type Tx = Transaction<'static, Any>;

/// Projects a newly synced found place: it counts in coverage at once, marked as awaiting review.
pub async fn project_found_place(
    tx: &mut Tx,
    campaign: &Campaign,
    grid: &GridInfo,
    found: &FoundPlace,
    deltas: &mut AreaDeltas,
) -> Result<(), Refusal> {
    projection::project_places(tx, campaign, &[(grid, &found.place)], deltas).await?;
    stored::mark_found(tx, found).await?;
    Ok(())
}

/// Records a newly synced correction for review.
pub async fn project_correction(tx: &mut Tx, grid: &str, c: &Correction) -> Result<(), Refusal> {
    stored::insert_correction(tx, grid, c).await?;
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
) -> Result<Pending, Refusal> {
    let (grid, team, area) = (grid.unwrap_or(""), team.unwrap_or(""), area.unwrap_or(""));
    let places = stored::pending_places(&state.db, grid, team, area).await?;
    let corrections = stored::pending_corrections(&state.db, grid, team, area).await?;
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
pub async fn merge_candidates(state: &AppState, place_id: &str) -> Result<Vec<MergeCandidate>, Refusal> {
    let (grid, lat, lon) = stored::grid_and_position(&state.db, place_id)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("no place {place_id}")))?;
    let rows = stored::counting_places_of_grid_but(&state.db, &grid, place_id).await?;
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
) -> Result<(), Refusal> {
    let (grid, status) = stored::grid_and_status(&state.db, place_id)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("no place {place_id}")))?;
    if status == "registry" {
        return Err(Refusal::conflict(format!(
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
    // A merge recounts the place it keeps: with a version another server instance applied, if there is one.
    if state.db.backend == crate::store::db::Backend::Postgres {
        state.campaigns.refresh(&state.db).await?;
    }
    let campaign = state.campaigns.current();
    with_grid(
        state,
        &grid,
        move |doc| match doc.found_place(place_id)?.and_then(|p| p.review) {
            Some(done) => Err(Refusal::conflict(format!("place {place_id} was already reviewed ({})", done.id()))),
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
                        stored::move_visits(tx, place_id, target).await?;
                        projection::uncount_place(tx, place_id).await?;
                        projection::recount_place(tx, &campaign.campaign, target).await?;
                    }
                }
                let merged_into = match &review {
                    PlaceReview::MergedInto(target) => Some(target.as_str()),
                    _ => None,
                };
                stored::set_review(tx, place_id, status, merged_into, username, crate::store::db::now_ms()).await?;
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
    if matches!(decision, PlaceDecision::Reject) {
        crate::photos::retention::forget_place_photos(state, place_id, username).await?;
    }
    let detail = match decision {
        PlaceDecision::Merge { into } => format!("{place_id} merged into {into}"),
        PlaceDecision::Confirm => format!("{place_id} confirmed"),
        PlaceDecision::Reject => format!("{place_id} rejected"),
    };
    audit::record(&state.db, Some(username), "place.review", &detail).await;
    Ok(())
}

/// A merge target is another place of the same grid that still counts on its own.
async fn check_merge_target(state: &AppState, place_id: &str, grid: &str, into: &str) -> Result<(), Refusal> {
    if into == place_id {
        return Err(Refusal::invalid("a place cannot be merged into itself"));
    }
    let target = stored::grid_and_status(&state.db, into).await?;
    match target {
        None => Err(Refusal::not_found(format!("no place {into} to merge into"))),
        Some((g, _)) if g != grid => Err(Refusal::unacceptable(
            "invalid_merge",
            format!("place {into} is in grid {g}, not in {grid}; merge only within a grid"),
        )),
        Some((_, s)) if s == "rejected" || s == "merged" => Err(Refusal::unacceptable(
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
) -> Result<(), Refusal> {
    let (grid, place_id, status, label, address) = stored::correction(&state.db, correction_id)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("no correction {correction_id}")))?;
    if status != "pending" {
        return Err(Refusal::conflict(format!("correction {correction_id} was already reviewed ({status})")));
    }
    let (id, user) = (correction_id.to_string(), username.to_string());
    with_grid(
        state,
        &grid,
        move |doc| match doc.correction(correction_id)?.and_then(|c| c.review) {
            Some(done) => {
                Err(Refusal::conflict(format!("correction {correction_id} was already reviewed ({})", done.id())))
            }
            None => Ok(doc.review_correction(correction_id, review)?),
        },
        move |tx, _| {
            Box::pin(async move {
                let (correction_id, username) = (id.as_str(), user.as_str());
                if review == CorrectionReview::Confirmed {
                    stored::relabel(tx, &place_id, label.as_deref(), address.as_deref()).await?;
                }
                stored::set_correction_review(tx, correction_id, review.id(), username, crate::store::db::now_ms())
                    .await?;
                Ok(())
            })
        },
    )
    .await?;
    audit::record(&state.db, Some(username), "correction.review", &format!("{correction_id} {}", review.id())).await;
    Ok(())
}

pub(crate) type ProjectFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Refusal>> + Send + 'a>>;

/// Writes one server change into a locked grid and updates the projection, all in one transaction.
pub(crate) async fn with_grid(
    state: &AppState,
    grid: &str,
    write: impl FnOnce(&mut GridDoc) -> Result<automerge::Change, Refusal>,
    project: impl for<'t> FnOnce(&'t mut Tx, &'t mut AreaDeltas) -> ProjectFuture<'t>,
) -> Result<(), Refusal> {
    let (mut locks, mut session) = state.grids.begin(&[grid.to_string()]).await?;
    let cached = state
        .grids
        .current(&mut locks[0], session.reader())
        .await?
        .ok_or_else(|| Refusal::not_found(format!("grid {grid} has no document")))?;
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
