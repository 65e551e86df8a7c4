//! Applying a territory CSV: areas, grid documents and place projections, all in one transaction.
//! A dry run does the same work and rolls it back, so its summary is exactly what a real run would do.

use crate::error::ApiError;
use crate::grids::GridRepo;
use crate::territory_csv::{parse_territory_csv, TerritoryRow};
use crate::{audit, projection, AppState};
use client_core::model::{AreaKind, GridInfo};
use client_core::GridDoc;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct ImportSummary {
    pub dry_run: bool,
    pub rows: u64,
    pub places_added: u64,
    pub places_changed: u64,
    pub places_unchanged: u64,
    pub areas_added: u64,
    pub areas_changed: u64,
    pub grids_changed: u64,
}

pub async fn import(state: &AppState, bytes: &[u8], dry_run: bool, username: &str) -> Result<ImportSummary, ApiError> {
    let rows = parse_territory_csv(bytes).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        ApiError::unprocessable(
            "invalid_csv",
            format!("the file was not imported; fix these rows and try again:\n{}", lines.join("\n")),
        )
    })?;
    let mut summary = ImportSummary { dry_run, rows: rows.len() as u64, ..Default::default() };
    let mut by_grid: BTreeMap<String, Vec<&TerritoryRow>> = BTreeMap::new();
    for row in &rows {
        by_grid.entry(row.grid.code.clone()).or_default().push(row);
    }
    check_against_database(state, &rows).await?;

    let codes: Vec<String> = by_grid.keys().cloned().collect();
    let (mut locks, mut session) = state.grids.begin(&codes).await?;
    let mut current = Vec::with_capacity(locks.len());
    for lock in locks.iter_mut() {
        current
            .push(state.grids.current(lock, session.reader()).await?.map(|c| (c.doc.fork(), c.version, c.log_count)));
    }
    let (_gate, mut tx) = session.into_writer().await?;
    let mut areas: Vec<(String, String, AreaKind, Option<String>)> = Vec::new();
    for info in by_grid.values().map(|r| &r[0].grid) {
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
    for (code, name, kind, parent) in &areas {
        let old: Option<(String, String, Option<String>)> =
            sqlx::query_as("SELECT name, kind, parent_code FROM areas WHERE code = $1")
                .bind(code)
                .fetch_optional(&mut *tx)
                .await?;
        let same = old.as_ref().is_some_and(|(n, k, p)| n == name && k == kind.id() && p == parent);
        if same {
            continue;
        }
        if old.is_some() {
            summary.areas_changed += 1;
        } else {
            summary.areas_added += 1;
        }
        sqlx::query(
            "INSERT INTO areas (code, name, kind, parent_code) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind, parent_code = excluded.parent_code",
        )
        .bind(code)
        .bind(name)
        .bind(kind.id())
        .bind(parent)
        .execute(&mut *tx)
        .await?;
    }

    let mut new_docs = Vec::new();
    let mut deltas = projection::AreaDeltas::default();
    for (i, lock) in locks.iter_mut().enumerate() {
        let group = &by_grid[&lock.code];
        let info: &GridInfo = &group[0].grid;
        let (base, before) = match current[i].take() {
            Some((doc, version, log_count)) => (doc, Some((version, log_count))),
            None => (GridDoc::genesis(), None),
        };
        let mut doc = base.clone();
        doc.set_actor(state.grids.actor().clone());
        let info_changed = base.grid_info()?.as_ref() != Some(info);
        let places: Vec<_> = group.iter().map(|r| r.place.clone()).collect();
        let change = doc.update_registry(info, &places)?;
        for row in group {
            let old = base.place(&row.place.id)?;
            match &old {
                None => summary.places_added += 1,
                Some(p) if p != &row.place => summary.places_changed += 1,
                Some(_) => summary.places_unchanged += 1,
            }
            if info_changed || old.as_ref() != Some(&row.place) {
                projection::project_place(&mut tx, info, &row.place, &mut deltas).await?;
            }
            upsert_contact(&mut tx, row).await?;
        }
        if change.is_some() || before.is_none() {
            summary.grids_changed += 1;
            let changes: Vec<_> = change.into_iter().collect();
            let versions = state.grids.persist(&mut tx, lock, before, &doc, &changes).await?;
            new_docs.push((i, versions, doc));
        }
    }
    deltas.flush(&mut tx).await?;
    if dry_run {
        tx.rollback().await?;
        return Ok(summary);
    }
    if let Err(e) = tx.commit().await {
        for (i, _, _) in &new_docs {
            GridRepo::discard_cache(&mut locks[*i]);
        }
        return Err(e.into());
    }
    for (i, versions, doc) in new_docs {
        GridRepo::commit_cache(&mut locks[i], versions, doc);
    }
    drop(locks);
    audit::record(
        &state.db,
        Some(username),
        "territory.import",
        &format!(
            "{} rows: {} places added, {} changed, {} unchanged",
            summary.rows, summary.places_added, summary.places_changed, summary.places_unchanged
        ),
    )
    .await;
    Ok(summary)
}

/// Rejects rows that contradict what the server already holds: a place moving to another grid (its visits
/// live in the old grid's document) or a code already used for another level of the area tree.
async fn check_against_database(state: &AppState, rows: &[TerritoryRow]) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let mut area_kinds: HashMap<String, String> = HashMap::new();
    for (code, kind) in
        sqlx::query_as::<_, (String, String)>("SELECT code, kind FROM areas").fetch_all(&state.db.pool).await?
    {
        area_kinds.insert(code, kind);
    }
    for row in rows {
        let existing: Option<(String,)> = sqlx::query_as("SELECT grid_code FROM places WHERE place_id = $1")
            .bind(&row.place.id)
            .fetch_optional(&state.db.pool)
            .await?;
        if let Some((grid,)) = existing {
            if grid != row.grid.code {
                errors.push(format!(
                    "line {}: place {} already belongs to grid {grid}; moving places between grids is not supported",
                    row.line, row.place.id
                ));
            }
        }
        let levels = [
            (&row.grid.code, "grid", AreaKind::Grid),
            (&row.grid.village_code, "village_code", row.grid.village_kind),
            (&row.grid.town_code, "town_code", AreaKind::Town),
        ];
        for (code, column, kind) in levels {
            let level_ok = match area_kinds.get(code.as_str()).map(String::as_str) {
                None => true,
                Some(k) if kind == AreaKind::Grid || kind == AreaKind::Town => k == kind.id(),
                Some(k) => k == AreaKind::Village.id() || k == AreaKind::Community.id(),
            };
            if !level_ok {
                errors.push(format!(
                    "line {}: {column} {code} is already used for a {} on this server",
                    row.line,
                    area_kinds[code.as_str()]
                ));
            }
        }
        if errors.len() >= 100 {
            break;
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid_csv",
            format!("the file was not imported; fix these rows and try again:\n{}", errors.join("\n")),
        ))
    }
}

async fn upsert_contact(tx: &mut sqlx::Transaction<'static, sqlx::Any>, row: &TerritoryRow) -> Result<(), ApiError> {
    if row.contact_name.is_none() && row.contact_phone.is_none() {
        sqlx::query("DELETE FROM place_contacts WHERE place_id = $1").bind(&row.place.id).execute(&mut **tx).await?;
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO place_contacts (place_id, contact_name, contact_phone) VALUES ($1, $2, $3) \
         ON CONFLICT (place_id) DO UPDATE SET contact_name = excluded.contact_name, contact_phone = excluded.contact_phone",
    )
    .bind(&row.place.id)
    .bind(&row.contact_name)
    .bind(&row.contact_phone)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
