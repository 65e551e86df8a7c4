//! Applying a territory file (CSV, or an .xlsx workbook read into the same CSV: `xlsx.rs`): areas, grid documents
//! and place projections, all in one transaction, a chunk of grids at a time with a few multi-row statements per
//! chunk, so that a province's million places take minutes and memory stays bounded. A dry run does the same work
//! and rolls it back, so its summary is exactly what a real run would do.

pub mod csv;
pub mod jobs;
pub mod template;
pub mod xlsx;

use crate::accounts::audit;
use crate::refusal::Refusal;
use crate::store::areas::{all_areas, upsert_areas};
use crate::store::grids::GridWrite;
use crate::store::StoreError;
use crate::store::{places, projection};
use crate::territory::csv::{parse_territory_file, Numbering, RowError, Territory, TerritoryRow};
use crate::territory::jobs::{ImportProgress, Phase};
use crate::territory::xlsx::{Format, WorkbookError};
use crate::AppState;
use automerge::Change;
use client_core::grid::model::{AreaKind, GridInfo, Place};
use client_core::GridDoc;
use serde::Serialize;
use sqlx::{Any, Transaction};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::atomic::Ordering;

type Tx = Transaction<'static, Any>;

/// Places applied together: enough for the multi-row statements to pay, few enough to keep a chunk's rows and
/// documents small.
const CHUNK_PLACES: usize = 20_000;

/// A grid document to store: its lock's index, the version it was read at, the document and its new changes.
type Written = (usize, Option<(i64, i64)>, GridDoc, Vec<Change>);

/// Errors listed at most, as for the file's own errors.
const MAX_ERRORS: usize = 100;

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct ImportSummary {
    pub dry_run: bool,
    pub rows: u64,
    pub places_added: u64,
    pub places_changed: u64,
    pub places_unchanged: u64,
    pub areas_added: u64,
    pub areas_changed: u64,
    pub grids_changed: u64,
    /// What the file does in each village or community it names, by code.
    pub villages: Vec<VillageSummary>,
}

/// What an import does to one village's (or community's) places.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct VillageSummary {
    pub village_code: String,
    pub village_name: String,
    pub town_code: String,
    pub places_added: u64,
    pub places_changed: u64,
    pub places_unchanged: u64,
    /// Places whose grid changed: none is ever applied (a place cannot move to another grid; such a row is an
    /// error naming the grid that holds it), so a summary, which only a valid file gets, always says 0.
    pub places_moved: u64,
    /// Places of the file's grids that the file no longer lists. An import never removes a place (its visits
    /// stay counted); the office sees them here, and in the gap lists.
    pub places_not_in_file: u64,
}

/// Why an import was not done: rows to fix (every one found, by line), or a refusal of another kind.
#[derive(Debug)]
pub enum ImportFailure {
    Rows(Vec<RowError>),
    Refused(Refusal),
}

impl ImportFailure {
    /// The refusal the API answers: the rows to fix in one message, a line each.
    pub fn into_refusal(self) -> Refusal {
        match self {
            ImportFailure::Rows(errors) => {
                not_imported(errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))
            }
            ImportFailure::Refused(refusal) => refusal,
        }
    }
}

impl From<Refusal> for ImportFailure {
    fn from(r: Refusal) -> Self {
        ImportFailure::Refused(r)
    }
}
impl From<StoreError> for ImportFailure {
    fn from(e: StoreError) -> Self {
        ImportFailure::Refused(e.into())
    }
}
impl From<sqlx::Error> for ImportFailure {
    fn from(e: sqlx::Error) -> Self {
        ImportFailure::Refused(e.into())
    }
}
impl From<client_core::grid::doc::DocError> for ImportFailure {
    fn from(e: client_core::grid::doc::DocError) -> Self {
        ImportFailure::Refused(e.into())
    }
}

/// Imports a territory file (CSV or .xlsx, told by its content), or with `dry_run` says exactly what it would do.
pub async fn import(state: &AppState, bytes: &[u8], dry_run: bool, username: &str) -> Result<ImportSummary, Refusal> {
    import_with_progress(state, bytes, dry_run, username, &ImportProgress::default())
        .await
        .map_err(ImportFailure::into_refusal)
}

/// Refuses a workbook that cannot be read, in the import's terms.
fn workbook_refusal(e: WorkbookError) -> Refusal {
    match e {
        WorkbookError::Unreadable(message) => {
            Refusal::unacceptable("invalid_workbook", format!("the file was not imported: {message}"))
        }
        WorkbookError::Storage(e) => Refusal::Store(StoreError::Full(sqlx::Error::Io(e))),
    }
}

/// `import`, keeping `progress` up to date as it goes, and answering a file's row errors as a list.
pub async fn import_with_progress(
    state: &AppState,
    bytes: &[u8],
    dry_run: bool,
    username: &str,
    progress: &ImportProgress,
) -> Result<ImportSummary, ImportFailure> {
    // Another server instance may have applied a version (its kinds) that this one has not put in force yet.
    if state.db.backend == crate::store::db::Backend::Postgres {
        state.campaigns.refresh(&state.db).await?;
    }
    let campaign = state.campaigns.current();
    let converted;
    let (csv, numbering): (&[u8], Numbering) = match xlsx::detect(bytes) {
        Format::Csv => (bytes, Numbering::PhysicalLines),
        Format::Workbook => {
            progress.enter(Phase::Reading);
            converted =
                xlsx::to_csv(bytes, state.imports.spool_dir(), &progress.rows_read).map_err(workbook_refusal)?;
            // Line N of the messages is then row N of the worksheet.
            (&converted, Numbering::Records)
        }
    };
    progress.enter(Phase::Checking);
    let territory = parse_territory_file(csv, campaign.campaign.clone(), numbering, &progress.rows_read)
        .map_err(ImportFailure::Rows)?;
    let mut summary = ImportSummary { dry_run, rows: territory.row_count() as u64, ..Default::default() };
    progress.places_total.store(summary.rows, Ordering::Relaxed);
    let mut villages: BTreeMap<String, VillageSummary> = BTreeMap::new();
    let codes: Vec<String> = territory.grids().map(|(g, _)| g.code.clone()).collect();
    let (mut locks, _gate, mut tx) = state.grids.begin_import(&codes).await?;
    if state.campaigns.for_locked(&state.db, &mut tx).await?.version != campaign.version {
        return Err(Refusal::conflict(
            "a new campaign version was applied while the file was read; import it again to count it with that version",
        )
        .into());
    }
    let lock_of: HashMap<String, usize> = locks.iter().enumerate().map(|(i, l)| (l.code.clone(), i)).collect();

    let mut errors = ErrorList::default();
    let (areas, stored) = check_areas(&mut tx, &territory, &mut errors).await?;
    if !errors.is_empty() {
        return Err(ImportFailure::Rows(errors.finish()));
    }
    progress.enter(Phase::Applying);
    write_areas(&mut tx, &areas, &stored, &mut summary).await?;

    let mut deltas = projection::AreaDeltas::default();
    let grids: Vec<(usize, &GridInfo)> = territory.grids().map(|(g, _)| g).enumerate().collect();
    let mut next = 0;
    while next < grids.len() {
        let mut chunk: Vec<(&GridInfo, Vec<TerritoryRow>)> = Vec::new();
        let mut places = 0;
        while next < grids.len() && places < CHUNK_PLACES {
            let (index, info) = grids[next];
            let rows = territory.grid_rows(index).map_err(Refusal::internal)?;
            places += rows.len();
            chunk.push((info, rows));
            next += 1;
        }
        check_places_stay(&mut tx, &chunk, &mut errors).await?;
        // Past the first error only the checks go on, so that the office gets every error at once.
        if !errors.is_empty() {
            continue;
        }
        let chunk_places: usize = chunk.iter().map(|(_, rows)| rows.len()).sum();
        let codes: Vec<String> = chunk.iter().map(|(info, _)| info.code.clone()).collect();
        let stored = state.grids.stored_versions(&mut tx, &codes).await?;
        let mut changed: Vec<(&GridInfo, &Place)> = Vec::new();
        let mut written: Vec<Written> = Vec::new();
        for (info, rows) in &chunk {
            let lock = lock_of[info.code.as_str()];
            // Out of the cache for good: a province's documents would not fit, and after the import each
            // grid is loaded again from what was committed when it is next used.
            let stored = stored.get(&info.code).copied();
            let (mut doc, before) = match state.grids.take_current(&mut locks[lock], &mut tx, stored).await? {
                Some(c) => (c.doc, Some((c.version, c.log_count))),
                None => (GridDoc::genesis(), None),
            };
            doc.set_actor(state.grids.actor().clone());
            let info_changed = doc.grid_info()?.as_ref() != Some(*info);
            let current = doc.places_by_id()?;
            let village = villages.entry(info.village_code.clone()).or_insert_with(|| VillageSummary {
                village_code: info.village_code.clone(),
                village_name: info.village_name.clone(),
                town_code: info.town_code.clone(),
                ..Default::default()
            });
            let listed: HashSet<&str> = rows.iter().map(|r| r.place.id.as_str()).collect();
            // Places found in the field are the review's, not the file's.
            village.places_not_in_file += current
                .keys()
                .filter(|id| !id.starts_with(client_core::grid::found::FOUND_PREFIX) && !listed.contains(id.as_str()))
                .count() as u64;
            for row in rows {
                let old = current.get(&row.place.id);
                match old {
                    None => {
                        summary.places_added += 1;
                        village.places_added += 1;
                    }
                    Some(p) if p != &row.place => {
                        summary.places_changed += 1;
                        village.places_changed += 1;
                    }
                    Some(_) => {
                        summary.places_unchanged += 1;
                        village.places_unchanged += 1;
                    }
                }
                if info_changed || old != Some(&row.place) {
                    changed.push((info, &row.place));
                }
            }
            let places: Vec<Place> = rows.iter().map(|r| r.place.clone()).collect();
            let change = doc.update_registry(info, &places, &current)?;
            if change.is_some() || before.is_none() {
                written.push((lock, before, doc, change.into_iter().collect()));
            }
        }
        let writes: Vec<GridWrite> = written
            .iter()
            .map(|(lock, before, doc, new_changes)| GridWrite {
                lock: &locks[*lock],
                before: *before,
                doc,
                new_changes,
            })
            .collect();
        state.grids.persist_many(&mut tx, &writes).await?;
        summary.grids_changed += writes.len() as u64;
        drop(writes);
        drop(written);
        projection::project_places(&mut tx, &campaign.campaign, &changed, &mut deltas).await?;
        write_contacts(&mut tx, chunk.iter().flat_map(|(_, rows)| rows)).await?;
        progress.places_applied.fetch_add(chunk_places as u64, Ordering::Relaxed);
    }
    if !errors.is_empty() {
        return Err(ImportFailure::Rows(errors.finish()));
    }
    summary.villages = villages.into_values().collect();
    deltas.flush(&mut tx).await?;
    if dry_run {
        tx.rollback().await?;
        return Ok(summary);
    }
    tx.commit().await?;
    drop(locks);
    audit::record(
        &state.db,
        Some(username),
        "territory.import",
        &format!(
            "{} rows{}: {} places added, {} changed, {} unchanged",
            summary.rows,
            if numbering == Numbering::Records { " (xlsx)" } else { "" },
            summary.places_added,
            summary.places_changed,
            summary.places_unchanged
        ),
    )
    .await;
    Ok(summary)
}

fn not_imported(errors: String) -> Refusal {
    Refusal::unacceptable("invalid_csv", format!("the file was not imported; fix these rows and try again:\n{errors}"))
}

/// Errors of the checks against the database, the first `MAX_ERRORS` by line, with a count of the rest.
#[derive(Default)]
struct ErrorList {
    /// A max-heap by line, so that the last line is the one dropped when it is full.
    kept: BinaryHeap<(u64, String)>,
    omitted: usize,
    last_omitted_line: u64,
}

impl ErrorList {
    fn push(&mut self, line: u64, message: String) {
        self.kept.push((line, message));
        if self.kept.len() > MAX_ERRORS {
            let (line, _) = self.kept.pop().expect("over the bound");
            self.omitted += 1;
            self.last_omitted_line = self.last_omitted_line.max(line);
        }
    }

    fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    fn finish(self) -> Vec<RowError> {
        let mut errors: Vec<RowError> =
            self.kept.into_sorted_vec().into_iter().map(|(line, message)| RowError { line, message }).collect();
        if self.omitted > 0 {
            errors.push(RowError {
                line: self.last_omitted_line,
                message: format!(
                    "{} more errors omitted (up to this line); fix the ones above and try again",
                    self.omitted
                ),
            });
        }
        errors
    }
}

/// An area as the file describes it: code, name, kind, parent.
type AreaRow = (String, String, AreaKind, Option<String>);
/// The areas the server holds: code -> (name, kind, parent).
type StoredAreas = HashMap<String, (String, String, Option<String>)>;

/// Checks the file's area codes against the areas the server holds (a code already used for another level of
/// the area tree is refused), and returns the towns, villages and grids the file describes, sorted and each
/// once, with those already stored as they are.
async fn check_areas(
    tx: &mut Tx,
    territory: &Territory<'_>,
    errors: &mut ErrorList,
) -> Result<(Vec<AreaRow>, StoredAreas), Refusal> {
    let stored: StoredAreas =
        all_areas(tx).await?.into_iter().map(|(code, name, kind, parent)| (code, (name, kind, parent))).collect();
    let mut areas: Vec<AreaRow> = Vec::with_capacity(territory.grids().len() * 3);
    let mut checked = BTreeSet::new();
    for (info, line) in territory.grids() {
        let levels = [
            (&info.code, "grid", AreaKind::Grid),
            (&info.village_code, "village_code", info.village_kind),
            (&info.town_code, "town_code", AreaKind::Town),
        ];
        for (code, column, kind) in levels {
            if !checked.insert(code.as_str()) {
                continue;
            }
            let Some((_, stored_kind, _)) = stored.get(code.as_str()) else { continue };
            let level_ok = if kind == AreaKind::Grid || kind == AreaKind::Town {
                stored_kind == kind.id()
            } else {
                stored_kind == AreaKind::Village.id() || stored_kind == AreaKind::Community.id()
            };
            if !level_ok {
                errors.push(line, format!("{column} {code} is already used for a {stored_kind} on this server"));
            }
        }
        areas.push((info.town_code.clone(), info.town_name.clone(), AreaKind::Town, None));
        areas.push((
            info.village_code.clone(),
            info.village_name.clone(),
            info.village_kind,
            Some(info.town_code.clone()),
        ));
        areas.push((info.code.clone(), info.name.clone(), AreaKind::Grid, Some(info.village_code.clone())));
    }
    areas.sort();
    areas.dedup();
    Ok((areas, stored))
}

/// Adds the areas the server lacks and updates those whose name, kind or parent changed, in multi-row statements.
async fn write_areas(
    tx: &mut Tx,
    areas: &[AreaRow],
    stored: &StoredAreas,
    summary: &mut ImportSummary,
) -> Result<(), Refusal> {
    let mut writes = Vec::new();
    for area @ (code, name, kind, parent) in areas {
        match stored.get(code) {
            Some((n, k, p)) if n == name && k == kind.id() && p == parent => continue,
            Some(_) => summary.areas_changed += 1,
            None => summary.areas_added += 1,
        }
        writes.push(area);
    }
    upsert_areas(tx, &writes).await?;
    Ok(())
}

/// Refuses places that the server holds in another grid: their visits live in that grid's document.
async fn check_places_stay(
    tx: &mut Tx,
    chunk: &[(&GridInfo, Vec<TerritoryRow>)],
    errors: &mut ErrorList,
) -> Result<(), Refusal> {
    let rows: Vec<&TerritoryRow> = chunk.iter().flat_map(|(_, rows)| rows).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.place.id.as_str()).collect();
    let stored: HashMap<String, String> = places::grids_of(tx, &ids).await?.into_iter().collect();
    for row in rows {
        match stored.get(&row.place.id) {
            Some(grid) if grid != &row.grid.code => errors.push(
                row.line,
                format!(
                    "place {} already belongs to grid {grid}; moving places between grids is not supported",
                    row.place.id
                ),
            ),
            _ => {}
        }
    }
    Ok(())
}

/// Contacts as the file gives them: set where given, removed where not, in multi-row statements.
async fn write_contacts<'r>(tx: &mut Tx, rows: impl Iterator<Item = &'r TerritoryRow>) -> Result<(), Refusal> {
    let (with, without): (Vec<&TerritoryRow>, Vec<&TerritoryRow>) =
        rows.partition(|r| r.contact_name.is_some() || r.contact_phone.is_some());
    let without: Vec<&str> = without.iter().map(|r| r.place.id.as_str()).collect();
    places::delete_contacts(tx, &without).await?;
    let with: Vec<(&str, Option<&str>, Option<&str>)> =
        with.iter().map(|r| (r.place.id.as_str(), r.contact_name.as_deref(), r.contact_phone.as_deref())).collect();
    places::upsert_contacts(tx, &with).await?;
    Ok(())
}
