//! Projection of merged grid documents into SQL rows (places, visits, per-indicator reach), updated
//! incrementally from new changes only, so that reports never load documents.

use crate::store::area_progress::{place_changes, VisitMark, BUCKET_MS, FROM_THE_START};
use crate::store::campaign_sql::{id_list, indicator_reach_sql};
use crate::store::db::{in_list, now_ms, values_list, MAX_BINDS};
use crate::store::error::StoreError;
use client_core::campaign::Campaign;
use client_core::grid::doc::millis_to_time;
use client_core::grid::model::{
    Deliveries, GridInfo, Outcome, PhotoRef, PhotoRejection, Place, PlaceKind, Visit, ALWAYS_RECORDED,
};
use sqlx::{Any, AnyConnection, Transaction};
use std::collections::{BTreeMap, BTreeSet, HashMap};

type Tx = Transaction<'static, Any>;

/// What one place adds to the coverage counts and the progress changes of its grid, village and town.
struct PlaceState {
    grid: String,
    village: String,
    town: String,
    excluded: bool,
    /// Eligible indicators, and when each was first reached.
    indicators: Vec<(String, Option<i64>)>,
    /// Its visits if one of them found it gone (they decide when it counts); empty otherwise.
    gone_history: Vec<VisitMark>,
}

async fn place_state(tx: &mut Tx, place_id: &str) -> Result<Option<PlaceState>, StoreError> {
    let row: Option<(String, String, String, i64, Option<String>)> = sqlx::query_as(
        "SELECT grid_code, village_code, town_code, excluded, last_visit_id FROM places WHERE place_id = $1",
    )
    .bind(place_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((grid, village, town, excluded, last_visit)) = row else { return Ok(None) };
    let indicators: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT indicator, reached_at FROM place_indicators WHERE place_id = $1")
            .bind(place_id)
            .fetch_all(&mut **tx)
            .await?;
    let gone_history = match last_visit {
        Some(_) => visit_histories(tx, &[place_id], true).await?.remove(place_id).unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(Some(PlaceState { grid, village, town, excluded: excluded != 0, indicators, gone_history }))
}

/// The stored visits of `places`, per place, in one statement per chunk: of every one of them, or (`only_gone`)
/// of those a visit found gone.
async fn visit_histories(
    conn: &mut AnyConnection,
    places: &[&str],
    only_gone: bool,
) -> Result<HashMap<String, Vec<VisitMark>>, StoreError> {
    let mut histories: HashMap<String, Vec<VisitMark>> = HashMap::new();
    let gone = if only_gone {
        "AND EXISTS (SELECT 1 FROM visits g WHERE g.place_id = v.place_id AND g.outcome = 'gone')"
    } else {
        ""
    };
    for chunk in places.chunks(MAX_BINDS) {
        let list = in_list(conn, chunk.len());
        let sql =
            format!("SELECT v.place_id, v.at, v.visit_id, v.outcome FROM visits v WHERE v.place_id IN ({list}) {gone}");
        let mut query = sqlx::query_as::<_, (String, i64, String, String)>(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        for (place_id, at, visit_id, outcome) in query.fetch_all(&mut *conn).await? {
            let gone = outcome == Outcome::Gone.id();
            histories.entry(place_id).or_default().push(VisitMark { at, visit_id, gone });
        }
    }
    Ok(histories)
}

/// Changes to the per-area coverage counts and progress changes, gathered while projecting and written once
/// per transaction.
#[derive(Default)]
pub struct AreaDeltas {
    /// (level, area, indicator) -> (eligible, reached, excluded)
    counts: std::collections::HashMap<(&'static str, String, String), (i64, i64, i64)>,
    /// (level, area, indicator, bucket) -> (eligible, reached) changes of the daily progress series.
    progress: HashMap<(&'static str, String, String, i64), (i64, i64)>,
    /// (level, area) -> (village, town) above it, as they are after the changes (a grid may change village).
    parents: std::collections::HashMap<(&'static str, String), (String, String)>,
}

impl AreaDeltas {
    /// The grid, village and town a place counts in, each with the village and town above it, noted for the
    /// rows `flush` may create (as they are after the changes: a grid may change village).
    fn levels<'a>(
        &mut self,
        (grid, village, town): (&'a String, &'a String, &'a String),
        sign: i64,
    ) -> [(&'static str, &'a String, &'a String); 3] {
        static NONE: String = String::new();
        let levels = [("grid", grid, village), ("village", village, village), ("town", town, &NONE)];
        for (level, area, village) in levels {
            let parents = (village.clone(), town.clone());
            match self.parents.entry((level, area.clone())) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(parents);
                }
                std::collections::hash_map::Entry::Occupied(mut e) if sign > 0 => {
                    e.insert(parents);
                }
                std::collections::hash_map::Entry::Occupied(_) => {}
            }
        }
        levels
    }

    /// Adds (`sign` 1) or takes out (-1) `n` places of one grid that no visit found gone, eligible for
    /// `indicator` and first reached in bucket `reached` (`None`: not reached): what `add` does for each.
    fn add_never_gone(
        &mut self,
        areas: (&String, &String, &String),
        indicator: &str,
        reached: Option<i64>,
        n: i64,
        sign: i64,
    ) {
        let levels = self.levels(areas, sign);
        let r = i64::from(reached.is_some());
        for (level, area, _) in levels {
            let entry = self.counts.entry((level, area.clone(), indicator.to_string())).or_default();
            *entry = (entry.0 + sign * n, entry.1 + sign * r * n, entry.2);
            let entry = self.progress.entry((level, area.clone(), indicator.to_string(), FROM_THE_START)).or_default();
            entry.0 += sign * n;
            if let Some(bucket) = reached {
                let entry = self.progress.entry((level, area.clone(), indicator.to_string(), bucket)).or_default();
                entry.1 += sign * n;
            }
        }
    }

    fn add(&mut self, place: &PlaceState, sign: i64) {
        let levels = self.levels((&place.grid, &place.village, &place.town), sign);
        for (indicator, reached_at) in &place.indicators {
            let (e, r, x) = if place.excluded { (0, 0, 1) } else { (1, i64::from(reached_at.is_some()), 0) };
            for (level, area, _) in levels {
                let entry = self.counts.entry((level, area.clone(), indicator.clone())).or_default();
                *entry = (entry.0 + sign * e, entry.1 + sign * r, entry.2 + sign * x);
            }
        }
        for ((indicator, bucket), (e, r)) in place_changes(&place.indicators, &place.gone_history) {
            for (level, area, _) in levels {
                let entry = self.progress.entry((level, area.clone(), indicator.clone(), bucket)).or_default();
                *entry = (entry.0 + sign * e, entry.1 + sign * r);
            }
        }
    }

    /// Takes a place's contribution out before it changes (`before`) or puts it back after (`after`).
    pub async fn before(&mut self, tx: &mut Tx, place_id: &str) -> Result<(), StoreError> {
        if let Some(state) = place_state(tx, place_id).await? {
            self.add(&state, -1);
        }
        Ok(())
    }

    pub async fn after(&mut self, tx: &mut Tx, place_id: &str) -> Result<(), StoreError> {
        if let Some(state) = place_state(tx, place_id).await? {
            self.add(&state, 1);
        }
        Ok(())
    }

    /// Writes the gathered changes; call once, before the transaction commits. Rows are written in key order,
    /// so concurrent transactions on PostgreSQL lock shared rows in the same order and cannot deadlock.
    pub async fn flush(self, tx: &mut Tx) -> Result<(), StoreError> {
        const COLS: usize = 8;
        let mut rows = Vec::new();
        for ((level, area, indicator), (e, r, x)) in self.counts {
            let (village, town) = self.parents.get(&(level, area.clone())).cloned().unwrap_or_default();
            if (e, r, x) != (0, 0, 0) || !village.is_empty() {
                rows.push((level, area, village, town, indicator, e, r, x));
            }
        }
        rows.sort();
        for chunk in rows.chunks(MAX_BINDS / COLS) {
            let sql = format!(
                "INSERT INTO area_coverage (level, area_code, village_code, town_code, indicator, eligible, reached, \
                 excluded) VALUES {} ON CONFLICT (level, area_code, indicator) DO UPDATE SET \
                 eligible = area_coverage.eligible + excluded.eligible, reached = area_coverage.reached + excluded.reached, \
                 excluded = area_coverage.excluded + excluded.excluded, village_code = excluded.village_code, \
                 town_code = excluded.town_code",
                values_list(tx, chunk.len(), COLS)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (level, area, village, town, indicator, e, r, x) in chunk {
                query = query.bind(*level).bind(area).bind(village).bind(town).bind(indicator).bind(e).bind(r).bind(x);
            }
            query.execute(&mut **tx).await?;
        }
        flush_progress(tx, self.progress).await
    }
}

async fn flush_progress(
    tx: &mut Tx,
    progress: HashMap<(&'static str, String, String, i64), (i64, i64)>,
) -> Result<(), StoreError> {
    const COLS: usize = 6;
    let mut rows: Vec<_> = progress.into_iter().filter(|(_, change)| *change != (0, 0)).collect();
    rows.sort();
    for chunk in rows.chunks(MAX_BINDS / COLS) {
        let sql = format!(
            "INSERT INTO area_progress (level, area_code, indicator, bucket, eligible, reached) VALUES {} \
             ON CONFLICT (level, area_code, indicator, bucket) DO UPDATE SET \
             eligible = area_progress.eligible + excluded.eligible, reached = area_progress.reached + excluded.reached",
            values_list(tx, chunk.len(), COLS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((level, area, indicator, bucket), (e, r)) in chunk {
            query = query.bind(*level).bind(area).bind(indicator).bind(bucket).bind(e).bind(r);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Brings places' registry rows up to date with a few statements per chunk of places, whatever their number.
/// A place whose kind or setting (rural or not) changed has its indicator rows recomputed from its visits; the
/// per-area counts follow, each place's contribution taken out before and put back after.
pub async fn project_places(
    tx: &mut Tx,
    campaign: &Campaign,
    places: &[(&GridInfo, &Place)],
    deltas: &mut AreaDeltas,
) -> Result<(), StoreError> {
    const COLS: usize = 10;
    for chunk in places.chunks(MAX_BINDS / COLS) {
        let ids: Vec<&str> = chunk.iter().map(|(_, p)| p.id.as_str()).collect();
        let mut before = load_places(tx, &ids).await?;
        let visited: Vec<&str> =
            before.iter().filter(|(_, p)| p.last_visit.is_some()).map(|(id, _)| id.as_str()).collect();
        for (id, history) in visit_histories(tx, &visited, true).await? {
            if let Some(place) = before.get_mut(&id) {
                place.gone_history = history;
            }
        }
        for place in before.values() {
            deltas.add(&place.state(), -1);
        }
        // A place never moves to another grid (its visits live in its grid's document): the update is skipped
        // for a row of another grid, and the place it skipped fails the transaction. Checked by the database
        // itself, so that two writers that each checked before (two grids' syncs at once) cannot both win.
        let sql = format!(
            "INSERT INTO places (place_id, grid_code, village_code, town_code, kind, label, address, rural, lat, lon) \
             VALUES {} ON CONFLICT (place_id) DO UPDATE SET \
             village_code = excluded.village_code, town_code = excluded.town_code, kind = excluded.kind, \
             label = excluded.label, address = excluded.address, rural = excluded.rural, lat = excluded.lat, \
             lon = excluded.lon WHERE places.grid_code = excluded.grid_code RETURNING place_id",
            values_list(tx, chunk.len(), COLS)
        );
        let mut query = sqlx::query_as::<_, (String,)>(sqlx::AssertSqlSafe(sql));
        for (grid, place) in chunk {
            query = query
                .bind(&place.id)
                .bind(&grid.code)
                .bind(&grid.village_code)
                .bind(&grid.town_code)
                .bind(place.kind.id())
                .bind(&place.label)
                .bind(&place.address)
                .bind(i64::from(grid.is_rural()))
                .bind(NullableF64(place.lat))
                .bind(NullableF64(place.lon));
        }
        let written: BTreeSet<String> = query.fetch_all(&mut **tx).await?.into_iter().map(|(id,)| id).collect();
        if let Some((grid, place)) = chunk.iter().find(|(_, p)| !written.contains(&p.id)) {
            return Err(StoreError::place_taken(&place.id, &grid.code));
        }
        // New places have no visits yet; existing ones are recounted only when their rules changed.
        let changed_rules: Vec<(&str, PlaceKind, bool)> = chunk
            .iter()
            .filter(|(grid, place)| {
                before.get(&place.id).is_none_or(|b| b.kind != place.kind || b.rural != grid.is_rural())
            })
            .map(|(grid, place)| (place.id.as_str(), place.kind, grid.is_rural()))
            .collect();
        let mut recounted = reproject_indicators(tx, campaign, &changed_rules, None).await?;
        for (grid, place) in chunk {
            let (excluded, gone_history, old_indicators) = match before.remove(&place.id) {
                Some(b) => (b.excluded, b.gone_history, b.reached_at.into_iter().collect()),
                None => (false, Vec::new(), Vec::new()),
            };
            let after = PlaceState {
                grid: grid.code.clone(),
                village: grid.village_code.clone(),
                town: grid.town_code.clone(),
                excluded,
                indicators: recounted.remove(place.id.as_str()).unwrap_or(old_indicators),
                gone_history,
            };
            deltas.add(&after, 1);
        }
    }
    Ok(())
}

/// Recomputes places' indicator rows from their stored visits with the coverage rules, for each place its
/// kind and whether it is rural. Rejected and merged places count nowhere and keep no indicator rows.
/// Returns each recounted place's eligible indicators with the time each was first reached.
async fn reproject_indicators(
    tx: &mut Tx,
    campaign: &Campaign,
    places: &[(&str, PlaceKind, bool)],
    only: Option<&BTreeSet<String>>,
) -> Result<HashMap<String, Vec<(String, Option<i64>)>>, StoreError> {
    let mut out = HashMap::new();
    let chunk_size = MAX_BINDS - only.map_or(0, BTreeSet::len);
    for chunk in places.chunks(chunk_size) {
        let ids: Vec<&str> = chunk.iter().map(|(id, _, _)| *id).collect();
        let uncounted: BTreeSet<String> =
            select_ids(tx, "SELECT place_id FROM places WHERE status IN ('rejected', 'merged') AND place_id IN", &ids)
                .await?;
        for table in INDICATOR_TABLES {
            match only {
                None => delete_by_place(tx, table, &ids).await?,
                Some(indicators) => delete_indicators_of(tx, table, &ids, indicators).await?,
            }
        }
        let mut visits = load_visits(tx, &ids).await?;
        let mut place_rows: Vec<(&str, &str, Option<i64>)> = Vec::new();
        let mut visit_rows: Vec<(Visit, &str)> = Vec::new();
        for (place_id, kind, rural) in chunk.iter().filter(|(id, _, _)| !uncounted.contains(*id)) {
            let visits = visits.remove(*place_id).unwrap_or_default();
            let mut indicators = Vec::new();
            for ind in campaign.eligible_indicators(*kind, *rural).filter(|i| only.is_none_or(|o| o.contains(&i.id))) {
                let reaching: Vec<&Visit> = visits.iter().filter(|v| Campaign::is_reached_by_visit(ind, v)).collect();
                let first = reaching.iter().map(|v| v.at.timestamp_millis()).min();
                place_rows.push((place_id, &ind.id, first));
                visit_rows.extend(reaching.into_iter().map(|v| (v.clone(), ind.id.as_str())));
                indicators.push((ind.id.clone(), first));
            }
            out.insert(place_id.to_string(), indicators);
        }
        insert_place_indicators(tx, &place_rows).await?;
        let visit_rows: Vec<(&Visit, &str, &str)> =
            visit_rows.iter().map(|(v, ind)| (v, v.place_id.as_str(), *ind)).collect();
        insert_visit_indicators(tx, &visit_rows).await?;
    }
    Ok(out)
}

/// The ids among `ids` that `select` (a query ending in `place_id IN`) returns, one statement per chunk.
async fn select_ids(
    conn: &mut AnyConnection,
    select: &str,
    ids: &[impl AsRef<str>],
) -> Result<BTreeSet<String>, StoreError> {
    let mut out = BTreeSet::new();
    for chunk in ids.chunks(MAX_BINDS) {
        let list = in_list(conn, chunk.len());
        let mut query = sqlx::query_as::<_, (String,)>(sqlx::AssertSqlSafe(format!("{select} ({list})")));
        for id in chunk {
            query = query.bind(id.as_ref());
        }
        out.extend(query.fetch_all(&mut *conn).await?.into_iter().map(|(id,)| id));
    }
    Ok(out)
}

/// The tables holding a place's indicator rows, each with an index led by `place_id` (migration 0011): a
/// recount deletes and writes back the rows of a few places, behind the write gate.
const INDICATOR_TABLES: [&str; 2] = ["place_indicators", "visit_indicators"];

fn delete_by_place_sql(table: &str, list: &str) -> String {
    format!("DELETE FROM {table} WHERE place_id IN ({list})")
}

async fn delete_by_place(tx: &mut Tx, table: &str, ids: &[&str]) -> Result<(), StoreError> {
    for chunk in ids.chunks(MAX_BINDS) {
        let list = in_list(tx, chunk.len());
        let sql = delete_by_place_sql(table, &list);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Deletes the rows of these indicators of these places (at most `MAX_BINDS` values in all).
async fn delete_indicators_of(
    tx: &mut Tx,
    table: &str,
    ids: &[&str],
    indicators: &BTreeSet<String>,
) -> Result<(), StoreError> {
    let all = in_list(tx, ids.len() + indicators.len());
    let placeholders: Vec<&str> = all.split(", ").collect();
    let (place_list, indicator_list) = placeholders.split_at(ids.len());
    let sql = format!(
        "{} AND indicator IN ({})",
        delete_by_place_sql(table, &place_list.join(", ")),
        indicator_list.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(*id);
    }
    for indicator in indicators {
        query = query.bind(indicator.as_str());
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

async fn insert_place_indicators(tx: &mut Tx, rows: &[(&str, &str, Option<i64>)]) -> Result<(), StoreError> {
    const COLS: usize = 3;
    for chunk in rows.chunks(MAX_BINDS / COLS) {
        let sql = format!(
            "INSERT INTO place_indicators (place_id, indicator, reached_at) VALUES {}",
            values_list(tx, chunk.len(), COLS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (place_id, indicator, reached_at) in chunk {
            query = query.bind(*place_id).bind(*indicator).bind(*reached_at);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The stored visits of places, per place, in one statement per chunk.
async fn load_visits(tx: &mut Tx, ids: &[&str]) -> Result<HashMap<String, Vec<Visit>>, StoreError> {
    type Row = (String, String, String, String, i64, String, i64, i64, i64, i64, i64, String);
    let mut out: HashMap<String, Vec<Visit>> = HashMap::new();
    for chunk in ids.chunks(MAX_BINDS) {
        let list = in_list(tx, chunk.len());
        let sql = format!(
            "SELECT place_id, visit_id, volunteer, device_id, at, outcome, handbook, briefed, poster, banner, \
             led_playing, further_deliveries FROM visits WHERE place_id IN ({list})"
        );
        let mut query = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        for (place_id, id, volunteer, device, at, outcome, hb, br, po, ba, led, further) in
            query.fetch_all(&mut **tx).await?
        {
            let mut deliveries = Deliveries::of_flags([hb != 0, br != 0, po != 0, ba != 0, led != 0]);
            for id in further.split(',').filter(|d| !d.is_empty()) {
                deliveries.insert(id);
            }
            let visit = Visit {
                id: id.parse().map_err(|_| StoreError::internal("stored visit id is not a UUID"))?,
                place_id: place_id.clone(),
                volunteer,
                device,
                at: millis_to_time(at),
                outcome: outcome.parse().map_err(StoreError::internal)?,
                deliveries,
                note: None,
                gps: None,
                photos: Vec::new(),
            };
            out.entry(place_id).or_default().push(visit);
        }
        load_photo_refs(tx, chunk, &mut out).await?;
    }
    Ok(out)
}

/// Adds their photo references to visits loaded for `places` (reach may depend on them).
async fn load_photo_refs(
    tx: &mut Tx,
    places: &[&str],
    visits: &mut HashMap<String, Vec<Visit>>,
) -> Result<(), StoreError> {
    type Row = (String, String, String, String, i64, i64, Option<i64>, Option<String>);
    let list = in_list(tx, places.len());
    let sql = format!(
        "SELECT place_id, visit_id, sha256, media_type, size, taken_at, rejected_at, reason FROM visit_photos \
         WHERE place_id IN ({list})"
    );
    let mut query = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql));
    for id in places {
        query = query.bind(*id);
    }
    for (place_id, visit_id, sha256, media_type, size, taken_at, rejected_at, reason) in
        query.fetch_all(&mut **tx).await?
    {
        let Some(visit) = visits.get_mut(&place_id).and_then(|vs| vs.iter_mut().find(|v| v.id.to_string() == visit_id))
        else {
            continue;
        };
        let rejected = rejected_at.map(|at| PhotoRejection {
            sha256: sha256.clone(),
            reason: reason.unwrap_or_default(),
            at: millis_to_time(at),
        });
        let size = u64::try_from(size).unwrap_or(0);
        visit.photos.push(PhotoRef { sha256, size, media_type, taken_at: millis_to_time(taken_at), rejected });
    }
    Ok(())
}

/// A visit's deliveries beyond `ALWAYS_RECORDED` (which have columns of their own), comma-separated.
fn further_deliveries(deliveries: &Deliveries) -> String {
    deliveries.iter().filter(|d| !ALWAYS_RECORDED.contains(d)).collect::<Vec<_>>().join(",")
}

/// An optional double for the `Any` driver. sqlx 0.9 sends a NULL `Option<f64>` to PostgreSQL typed as
/// `float4` (its `Null(Double)` and `Null(Real)` cases are swapped), after which binding a real `f64` to the same
/// prepared statement fails. Encoding NULL as `Option<f32>` lands in the swapped case and comes out as `float8`.
pub struct NullableF64(pub Option<f64>);

impl sqlx::Type<sqlx::Any> for NullableF64 {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <f64 as sqlx::Type<sqlx::Any>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Any> for NullableF64 {
    fn encode_by_ref(
        &self,
        buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        match self.0 {
            Some(x) => <f64 as sqlx::Encode<sqlx::Any>>::encode_by_ref(&x, buf),
            None => <Option<f32> as sqlx::Encode<sqlx::Any>>::encode_by_ref(&None, buf),
        }
    }
}

/// A place as the visit projection needs it: where it counts, its rules, and the state new visits change.
struct ProjectedPlace {
    grid: String,
    village: String,
    town: String,
    kind: PlaceKind,
    rural: bool,
    excluded: bool,
    last_visit: Option<(i64, String)>,
    last_outcome: Option<String>,
    /// Eligible indicator -> first time it was reached.
    reached_at: std::collections::BTreeMap<String, Option<i64>>,
    /// Its visits if one of them found it gone.
    gone_history: Vec<VisitMark>,
}

impl ProjectedPlace {
    /// What `update_last_visits` writes of the place: its last visit, that visit's outcome and its exclusion.
    fn last_seen(&self) -> (Option<(i64, String)>, Option<String>, bool) {
        (self.last_visit.clone(), self.last_outcome.clone(), self.excluded)
    }

    fn state(&self) -> PlaceState {
        PlaceState {
            grid: self.grid.clone(),
            village: self.village.clone(),
            town: self.town.clone(),
            excluded: self.excluded,
            indicators: self.reached_at.iter().map(|(i, r)| (i.clone(), *r)).collect(),
            gone_history: self.gone_history.clone(),
        }
    }
}

/// Loads the places new visits refer to, with their indicator rows, in a few statements.
async fn load_places(
    conn: &mut AnyConnection,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, ProjectedPlace>, StoreError> {
    type PlaceRow = (String, String, String, String, String, i64, i64, Option<i64>, Option<String>, Option<String>);
    let mut places = std::collections::HashMap::new();
    for chunk in ids.chunks(MAX_BINDS) {
        let list = in_list(conn, chunk.len());
        let sql = format!(
            "SELECT place_id, grid_code, village_code, town_code, kind, rural, excluded, last_visit_at, \
             last_visit_id, last_outcome FROM places WHERE place_id IN ({list})"
        );
        let mut query = sqlx::query_as::<_, PlaceRow>(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        for (id, grid, village, town, kind, rural, excluded, last_at, last_id, last_outcome) in
            query.fetch_all(&mut *conn).await?
        {
            let place = ProjectedPlace {
                grid,
                village,
                town,
                kind: PlaceKind::of(&kind),
                rural: rural != 0,
                excluded: excluded != 0,
                last_visit: last_at.zip(last_id),
                last_outcome,
                reached_at: Default::default(),
                gone_history: Vec::new(),
            };
            places.insert(id, place);
        }
        let sql = format!("SELECT place_id, indicator, reached_at FROM place_indicators WHERE place_id IN ({list})");
        let mut query = sqlx::query_as::<_, (String, String, Option<i64>)>(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        for (id, indicator, reached_at) in query.fetch_all(&mut *conn).await? {
            if let Some(place) = places.get_mut(&id) {
                place.reached_at.insert(indicator, reached_at);
            }
        }
    }
    Ok(places)
}

/// Where visits recorded for these places count: the place itself, the place it was merged into (following
/// merges), or nowhere (`None`: a rejected place; its visits are kept but count for nothing).
async fn counted_places(conn: &mut AnyConnection, ids: &[&str]) -> Result<HashMap<String, Option<String>>, StoreError> {
    let mut counted = HashMap::new();
    // Recorded place -> the place it leads to so far.
    let mut pending: BTreeMap<String, String> = ids.iter().map(|id| (id.to_string(), id.to_string())).collect();
    // Merges only go into places that still count, so one step is the rule; the bound guards against bad data.
    for _ in 0..4 {
        if pending.is_empty() {
            return Ok(counted);
        }
        let candidates: Vec<String> = pending.values().cloned().collect::<BTreeSet<_>>().into_iter().collect();
        let mut review: HashMap<String, (String, Option<String>)> = HashMap::new();
        for chunk in candidates.chunks(MAX_BINDS) {
            let list = in_list(conn, chunk.len());
            let sql = format!("SELECT place_id, status, merged_into FROM places WHERE place_id IN ({list})");
            let mut query = sqlx::query_as::<_, (String, String, Option<String>)>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id);
            }
            for (id, status, merged_into) in query.fetch_all(&mut *conn).await? {
                review.insert(id, (status, merged_into));
            }
        }
        let mut next = BTreeMap::new();
        for (recorded, place) in pending {
            match review.get(&place) {
                Some((status, Some(target))) if status == "merged" => {
                    next.insert(recorded, target.clone());
                }
                Some((status, _)) if status == "rejected" => {
                    counted.insert(recorded, None);
                }
                _ => {
                    counted.insert(recorded, Some(place));
                }
            }
        }
        pending = next;
    }
    if pending.is_empty() {
        Ok(counted)
    } else {
        Err(StoreError::internal(format!("places merged in a loop: {pending:?}")))
    }
}

/// Inserts the visits not stored yet and returns the ids of those it inserted. Each is stored under the place it
/// counts for, with the place it was recorded for beside it when that differs (a merged duplicate).
async fn insert_visits(tx: &mut Tx, visits: &[(&str, &Visit, Option<&str>)]) -> Result<BTreeSet<String>, StoreError> {
    const COLS: usize = 19;
    let mut inserted = BTreeSet::new();
    let received_at = now_ms();
    for chunk in visits.chunks(MAX_BINDS / COLS) {
        let sql = format!(
            "INSERT INTO visits (visit_id, place_id, grid_code, volunteer, device_id, at, outcome, handbook, briefed, \
             poster, banner, led_playing, further_deliveries, note, lat, lon, received_at, recorded_place_id, photos) \
             VALUES {} \
             ON CONFLICT (visit_id) DO NOTHING RETURNING visit_id",
            values_list(tx, chunk.len(), COLS)
        );
        let mut query = sqlx::query_as::<_, (String,)>(sqlx::AssertSqlSafe(sql));
        for (grid_code, v, counted) in chunk {
            let place = counted.unwrap_or(&v.place_id);
            let recorded = (place != v.place_id).then_some(v.place_id.as_str());
            let flags = v.deliveries.flags();
            query = query
                .bind(v.id.to_string())
                .bind(place)
                .bind(*grid_code)
                .bind(&v.volunteer)
                .bind(&v.device)
                .bind(v.at.timestamp_millis())
                .bind(v.outcome.id())
                .bind(i64::from(flags[0]))
                .bind(i64::from(flags[1]))
                .bind(i64::from(flags[2]))
                .bind(i64::from(flags[3]))
                .bind(i64::from(flags[4]))
                .bind(further_deliveries(&v.deliveries))
                .bind(&v.note)
                .bind(NullableF64(v.gps.map(|g| g.0)))
                .bind(NullableF64(v.gps.map(|g| g.1)))
                .bind(received_at)
                .bind(recorded)
                .bind(v.photos.iter().filter(|p| p.rejected.is_none()).count() as i64);
        }
        inserted.extend(query.fetch_all(&mut **tx).await?.into_iter().map(|(id,)| id));
    }
    insert_visit_photos(tx, visits, &inserted).await?;
    Ok(inserted)
}

/// The photo references of the visits just inserted, a row each (the gallery, the upload's checks and reach read
/// these, never the documents).
async fn insert_visit_photos(
    tx: &mut Tx,
    visits: &[(&str, &Visit, Option<&str>)],
    inserted: &BTreeSet<String>,
) -> Result<(), StoreError> {
    const COLS: usize = 13;
    let rows: Vec<(&str, &Visit, &str, &PhotoRef)> = visits
        .iter()
        .filter(|(_, v, _)| !v.photos.is_empty() && inserted.contains(&v.id.to_string()))
        .flat_map(|(grid, v, counted)| v.photos.iter().map(move |p| (*grid, *v, counted.unwrap_or(&v.place_id), p)))
        .collect();
    for chunk in rows.chunks(MAX_BINDS / COLS) {
        let sql = format!(
            "INSERT INTO visit_photos (visit_id, sha256, place_id, grid_code, volunteer, device_id, media_type, size, \
             taken_at, visited_at, rejected_at, rejected_by, reason) VALUES {} ON CONFLICT (visit_id, sha256) DO NOTHING",
            values_list(tx, chunk.len(), COLS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (grid, v, place, p) in chunk {
            let rejected = p.rejected.as_ref();
            query = query
                .bind(v.id.to_string())
                .bind(&p.sha256)
                .bind(*place)
                .bind(*grid)
                .bind(&v.volunteer)
                .bind(&v.device)
                .bind(&p.media_type)
                .bind(i64::try_from(p.size).unwrap_or(i64::MAX))
                .bind(p.taken_at.timestamp_millis())
                .bind(v.at.timestamp_millis())
                .bind(rejected.map(|r| r.at.timestamp_millis()))
                .bind(rejected.map(|_| "office"))
                .bind(rejected.map(|r| r.reason.as_str()));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// What new visits change in the projection, worked out from the stored rows before the write transaction
/// (`plan_visits`) and written behind the write gate (`apply_visits`), so that the reads and the working out take
/// no turn at the gate. Valid while the visits' grids stay locked: every write to their places' rows, visits and
/// indicators holds the lock of the place's grid.
pub struct VisitPlan {
    /// Each visit with its grid and the place it counts for (`None`: a rejected place). Owned, so that the
    /// plan can go to the thread that writes it.
    placed: Vec<(String, Visit, Option<String>)>,
    /// Visits not stored yet: what inserting `placed` must insert, no more and no less.
    new_ids: BTreeSet<String>,
    /// (visit's index in `placed`, place, indicator) the new visits reach.
    visit_indicators: Vec<(usize, String, String)>,
    /// (place, indicator, first reached): earlier than stored.
    reached: Vec<(String, String, i64)>,
    /// Places whose last visit (and so exclusion) is to be written.
    places: Vec<(String, ProjectedPlace)>,
}

/// Works out what `visits` add to the projection, reading through `conn` (outside the write transaction on
/// SQLite), and adds their places' changes to the per-area counts in `deltas`. Idempotent: visits already stored
/// change nothing.
pub async fn plan_visits(
    conn: &mut AnyConnection,
    campaign: &Campaign,
    visits: &[(&str, &Visit)],
    deltas: &mut AreaDeltas,
) -> Result<VisitPlan, StoreError> {
    let mut plan = VisitPlan {
        placed: Vec::new(),
        new_ids: BTreeSet::new(),
        visit_indicators: Vec::new(),
        reached: Vec::new(),
        places: Vec::new(),
    };
    if visits.is_empty() {
        return Ok(plan);
    }
    let recorded: Vec<&str> =
        visits.iter().map(|(_, v)| v.place_id.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    let counted = counted_places(conn, &recorded).await?;
    plan.placed = visits
        .iter()
        .map(|(grid, v)| (grid.to_string(), (*v).clone(), counted.get(&v.place_id).cloned().flatten()))
        .collect();
    let ids: Vec<String> = plan.placed.iter().map(|(_, v, _)| v.id.to_string()).collect();
    let stored = select_ids(conn, "SELECT visit_id FROM visits WHERE visit_id IN", &ids).await?;
    plan.new_ids = ids.into_iter().filter(|id| !stored.contains(id)).collect();
    // New visits with the place they count for; those of rejected places count nowhere.
    let new: Vec<(usize, &Visit, &str)> = plan
        .placed
        .iter()
        .enumerate()
        .filter(|(_, (_, v, _))| plan.new_ids.contains(&v.id.to_string()))
        .filter_map(|(i, (_, v, place))| Some((i, v, place.as_deref()?)))
        .collect();
    if new.is_empty() {
        return Ok(plan);
    }
    let place_ids: Vec<&str> = new.iter().map(|(_, _, place)| *place).collect::<BTreeSet<_>>().into_iter().collect();
    let mut places = load_places(conn, &place_ids).await?;
    // A place's visits decide when it counts once one of them found it gone: before the new visits, those
    // stored; after them, those and the new ones.
    let newly_gone: BTreeSet<&str> =
        new.iter().filter(|(_, v, _)| v.outcome == Outcome::Gone).map(|(_, _, place)| *place).collect();
    let (gone_before, gone_now): (Vec<&str>, Vec<&str>) = place_ids.iter().partition(|p| !newly_gone.contains(*p));
    let mut stored_histories = visit_histories(conn, &gone_before, true).await?;
    stored_histories.extend(visit_histories(conn, &gone_now, false).await?);
    for place_id in &gone_now {
        stored_histories.entry(place_id.to_string()).or_default();
    }
    let mut histories = stored_histories.clone();
    for (_, v, place_id) in &new {
        if let Some(history) = histories.get_mut(*place_id) {
            let mark =
                VisitMark { at: v.at.timestamp_millis(), visit_id: v.id.to_string(), gone: v.outcome == Outcome::Gone };
            history.push(mark);
        }
    }
    for (place_id, history) in stored_histories {
        if let Some(place) = places.get_mut(&place_id) {
            place.gone_history = history;
        }
    }
    let mut before = std::collections::HashMap::new();
    for (i, v, place_id) in &new {
        let Some(place) = places.get_mut(*place_id) else {
            return Err(StoreError::internal(format!("visit {} for unknown place {place_id}", v.id)));
        };
        before.entry(*place_id).or_insert_with(|| (place.state(), place.reached_at.clone(), place.last_seen()));
        let at = v.at.timestamp_millis();
        for ind in campaign.eligible_indicators(place.kind, place.rural).filter(|i| Campaign::is_reached_by_visit(i, v))
        {
            plan.visit_indicators.push((*i, place_id.to_string(), ind.id.clone()));
            if let Some(reached) = place.reached_at.get_mut(&ind.id) {
                if reached.is_none_or(|r| r > at) {
                    *reached = Some(at);
                }
            }
        }
        // The last visit (by time, then id, as in client_core::grid::coverage::later_visit) decides exclusion.
        let id = v.id.to_string();
        if place.last_visit.as_ref().is_none_or(|(last_at, last_id)| (*last_at, last_id.as_str()) < (at, id.as_str())) {
            place.last_visit = Some((at, id));
            place.last_outcome = Some(v.outcome.id().to_string());
            place.excluded = v.outcome == Outcome::Gone;
        }
    }
    for (place_id, (old_state, old_reached, old_last)) in before {
        deltas.add(&old_state, -1);
        let mut place = places.remove(place_id).expect("loaded above");
        place.gone_history = histories.remove(place_id).unwrap_or_default();
        deltas.add(&place.state(), 1);
        for (indicator, reached) in &place.reached_at {
            if let Some(at) = reached.filter(|_| old_reached.get(indicator) != Some(reached)) {
                plan.reached.push((place_id.to_string(), indicator.clone(), at));
            }
        }
        // A visit earlier than the place's last one leaves its row as it is: one random page fewer to write.
        if place.last_seen() != old_last {
            plan.places.push((place_id.to_string(), place));
        }
    }
    Ok(plan)
}

/// Writes what `plan_visits` worked out, with a fixed number of statements whatever the number of visits. Fails
/// (and the transaction with it) if the visits stored meanwhile are not those the plan was made against.
pub async fn apply_visits(tx: &mut Tx, plan: &VisitPlan) -> Result<(), StoreError> {
    if plan.placed.is_empty() {
        return Ok(());
    }
    let placed: Vec<(&str, &Visit, Option<&str>)> =
        plan.placed.iter().map(|(grid, v, place)| (grid.as_str(), v, place.as_deref())).collect();
    if insert_visits(tx, &placed).await? != plan.new_ids {
        return Err(StoreError::conflict(
            "visits of these grids were stored concurrently while this request wrote them; retry",
        ));
    }
    let indicators: Vec<(&Visit, &str, &str)> = plan
        .visit_indicators
        .iter()
        .map(|(i, place, ind)| (&plan.placed[*i].1, place.as_str(), ind.as_str()))
        .collect();
    insert_visit_indicators(tx, &indicators).await?;
    let reached: Vec<(&str, &str, i64)> =
        plan.reached.iter().map(|(place, ind, at)| (place.as_str(), ind.as_str(), *at)).collect();
    update_reached(tx, &reached).await?;
    let places: Vec<(&str, &ProjectedPlace)> = plan.places.iter().map(|(id, p)| (id.as_str(), p)).collect();
    update_last_visits(tx, &places).await
}

async fn insert_visit_indicators(tx: &mut Tx, rows: &[(&Visit, &str, &str)]) -> Result<(), StoreError> {
    const COLS: usize = 5;
    for chunk in rows.chunks(MAX_BINDS / COLS) {
        let sql = format!(
            "INSERT INTO visit_indicators (visit_id, indicator, place_id, volunteer, at) VALUES {} \
             ON CONFLICT (visit_id, indicator) DO NOTHING",
            values_list(tx, chunk.len(), COLS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (v, place_id, indicator) in chunk {
            query = query
                .bind(v.id.to_string())
                .bind(*indicator)
                .bind(*place_id)
                .bind(&v.volunteer)
                .bind(v.at.timestamp_millis());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Moves places' first-reached times earlier (never later: a concurrent writer cannot undo a reach).
async fn update_reached(tx: &mut Tx, rows: &[(&str, &str, i64)]) -> Result<(), StoreError> {
    const COLS: usize = 3;
    for chunk in rows.chunks(MAX_BINDS / COLS) {
        let sql = format!(
            "WITH v (place_id, indicator, reached_at) AS (VALUES {}) \
             UPDATE place_indicators SET reached_at = v.reached_at FROM v \
             WHERE place_indicators.place_id = v.place_id AND place_indicators.indicator = v.indicator \
             AND (place_indicators.reached_at IS NULL OR place_indicators.reached_at > v.reached_at)",
            values_list(tx, chunk.len(), COLS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (place_id, indicator, at) in chunk {
            query = query.bind(*place_id).bind(*indicator).bind(*at);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Records each place's last visit (which decides whether it is excluded as gone).
async fn update_last_visits(tx: &mut Tx, rows: &[(&str, &ProjectedPlace)]) -> Result<(), StoreError> {
    const COLS: usize = 5;
    for chunk in rows.chunks(MAX_BINDS / COLS) {
        let sql = format!(
            "WITH v (place_id, last_visit_at, last_visit_id, last_outcome, excluded) AS (VALUES {}) \
             UPDATE places SET last_visit_at = v.last_visit_at, last_visit_id = v.last_visit_id, \
             last_outcome = v.last_outcome, excluded = v.excluded FROM v WHERE places.place_id = v.place_id",
            values_list(tx, chunk.len(), COLS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (place_id, place) in chunk {
            let (at, id) = place.last_visit.clone().unzip();
            query = query
                .bind(*place_id)
                .bind(at)
                .bind(id)
                .bind(place.last_outcome.clone())
                .bind(i64::from(place.excluded));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Recomputes everything a place's coverage depends on from its stored visits: its indicator rows, its last
/// visit and whether that excludes it (after visits moved to it). Call between `deltas` before and after.
pub async fn recount_place(tx: &mut Tx, campaign: &Campaign, place_id: &str) -> Result<(), StoreError> {
    let (kind, rural): (String, i64) = sqlx::query_as("SELECT kind, rural FROM places WHERE place_id = $1")
        .bind(place_id)
        .fetch_one(&mut **tx)
        .await?;
    reproject_indicators(tx, campaign, &[(place_id, PlaceKind::of(&kind), rural != 0)], None).await?;
    let last: Option<(String, i64, String)> = sqlx::query_as(
        "SELECT visit_id, at, outcome FROM visits WHERE place_id = $1 ORDER BY at DESC, visit_id DESC LIMIT 1",
    )
    .bind(place_id)
    .fetch_optional(&mut **tx)
    .await?;
    let (id, at, outcome) = match last {
        Some((id, at, outcome)) => (Some(id), Some(at), Some(outcome)),
        None => (None, None, None),
    };
    let excluded = i64::from(outcome.as_deref() == Some(Outcome::Gone.id()));
    sqlx::query(
        "UPDATE places SET last_visit_at = $1, last_visit_id = $2, last_outcome = $3, excluded = $4 WHERE place_id = $5",
    )
    .bind(at)
    .bind(id)
    .bind(outcome)
    .bind(excluded)
    .bind(place_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Places of one kind and setting that a new campaign version recounts, and which of their indicators.
pub struct Recount<'a> {
    pub kind: PlaceKind,
    pub rural: bool,
    pub indicators: &'a BTreeSet<String>,
}

/// Recounts `ids`, places as `recount` says, under `campaign`: the rows of the indicators they leave, join or
/// whose reach changed, from their stored visits, and the per-area counts through `deltas`. Their other rows
/// stay as they are.
pub async fn recount_places(
    tx: &mut Tx,
    campaign: &Campaign,
    ids: &[&str],
    recount: &Recount<'_>,
    deltas: &mut AreaDeltas,
) -> Result<(), StoreError> {
    for chunk in ids.chunks(MAX_BINDS) {
        let mut states = load_places(tx, chunk).await?;
        let visited: Vec<&str> =
            states.iter().filter(|(_, p)| p.last_visit.is_some()).map(|(id, _)| id.as_str()).collect();
        for (id, history) in visit_histories(tx, &visited, true).await? {
            if let Some(place) = states.get_mut(&id) {
                place.gone_history = history;
            }
        }
        let before: HashMap<&str, PlaceState> = states.iter().map(|(id, p)| (id.as_str(), p.state())).collect();
        for state in before.values() {
            deltas.add(state, -1);
        }
        let places: Vec<(&str, PlaceKind, bool)> = chunk.iter().map(|id| (*id, recount.kind, recount.rural)).collect();
        let mut recounted = reproject_indicators(tx, campaign, &places, Some(recount.indicators)).await?;
        for (id, mut state) in before {
            state.indicators.retain(|(indicator, _)| !recount.indicators.contains(indicator));
            state.indicators.extend(recounted.remove(id).unwrap_or_default());
            deltas.add(&state, 1);
        }
    }
    Ok(())
}

/// Recounts, as [`recount_places`] does, the counted places of `recount`'s kind and setting whose ids lie
/// between `first` and `last` (both included), in a few statements whatever their number: over the rows in
/// SQL for the places no visit found gone, and through `recount_places` for the others (their visits decide
/// when they count). The range holds at most `MAX_BINDS - 4` places that a visit found gone.
pub async fn recount_range(
    tx: &mut Tx,
    campaign: &Campaign,
    (first, last): (&str, &str),
    recount: &Recount<'_>,
    deltas: &mut AreaDeltas,
) -> Result<(), StoreError> {
    let of_range = "p.kind = $1 AND p.rural = $2 AND p.place_id >= $3 AND p.place_id <= $4 \
        AND p.status NOT IN ('rejected', 'merged')";
    let range = RangeBinds { kind: recount.kind.id(), rural: i64::from(recount.rural), first, last, gone: &[] };
    let gone: Vec<(String,)> = range
        .bind_as(format!(
            "SELECT DISTINCT p.place_id FROM places p JOIN visits g ON g.place_id = p.place_id \
             WHERE {of_range} AND g.outcome = 'gone'"
        ))
        .fetch_all(&mut **tx)
        .await?;
    let gone: Vec<&str> = gone.iter().map(|(id,)| id.as_str()).collect();
    recount_places(tx, campaign, &gone, recount, deltas).await?;

    // The others, each visit read once: found by the ids of those above rather than by their visits again.
    let range = RangeBinds { gone: &gone, ..range };
    let places = if gone.is_empty() {
        of_range.to_string()
    } else {
        let list: Vec<String> = (5..5 + gone.len()).map(|i| format!("${i}")).collect();
        format!("{of_range} AND p.place_id NOT IN ({})", list.join(", "))
    };
    let indicators = id_list(recount.indicators)?;
    // Such a place is never excluded: it counts from the start, and as reached from its first reach.
    let contributions = format!(
        "SELECT p.grid_code, p.village_code, p.town_code, pi.indicator, \
           CASE WHEN pi.reached_at IS NULL THEN NULL WHEN pi.reached_at < 0 THEN 0 \
             ELSE pi.reached_at / {BUCKET_MS} END AS bucket, CAST(COUNT(*) AS BIGINT) \
         FROM places p JOIN place_indicators pi ON pi.place_id = p.place_id AND pi.indicator IN ({indicators}) \
         WHERE {places} GROUP BY p.grid_code, p.village_code, p.town_code, pi.indicator, bucket"
    );
    type Contribution = (String, String, String, String, Option<i64>, i64);
    let before: Vec<Contribution> = range.bind_as(contributions.clone()).fetch_all(&mut **tx).await?;
    for (grid, village, town, indicator, bucket, n) in before {
        deltas.add_never_gone((&grid, &village, &town), &indicator, bucket, n, -1);
    }
    for table in INDICATOR_TABLES {
        range
            .bind(format!(
                "DELETE FROM {table} WHERE indicator IN ({indicators}) AND place_id IN \
                 (SELECT p.place_id FROM places p WHERE {places})"
            ))
            .execute(&mut **tx)
            .await?;
    }
    for indicator in campaign.eligible_indicators(recount.kind, recount.rural) {
        if !recount.indicators.contains(&indicator.id) {
            continue;
        }
        let id = id_list([&indicator.id])?;
        let reached = indicator_reach_sql(indicator)?;
        range
            .bind(format!(
                "INSERT INTO visit_indicators (visit_id, indicator, place_id, volunteer, at) \
                 SELECT v.visit_id, {id}, v.place_id, v.volunteer, v.at \
                 FROM places p JOIN visits v ON v.place_id = p.place_id WHERE {places} AND {reached}"
            ))
            .execute(&mut **tx)
            .await?;
        // The first reach from the rows just written, rather than from the visits again.
        range
            .bind(format!(
                "INSERT INTO place_indicators (place_id, indicator, reached_at) SELECT p.place_id, {id}, \
                 (SELECT MIN(vi.at) FROM visit_indicators vi WHERE vi.place_id = p.place_id AND vi.indicator = {id}) \
                 FROM places p WHERE {places}"
            ))
            .execute(&mut **tx)
            .await?;
    }
    let after: Vec<Contribution> = range.bind_as(contributions).fetch_all(&mut **tx).await?;
    for (grid, village, town, indicator, bucket, n) in after {
        deltas.add_never_gone((&grid, &village, &town), &indicator, bucket, n, 1);
    }
    Ok(())
}

/// The values of `recount_range`'s statements: $1 kind, $2 rural, $3 and $4 the range, then the places a
/// visit found gone.
#[derive(Clone, Copy)]
struct RangeBinds<'a> {
    kind: &'a str,
    rural: i64,
    first: &'a str,
    last: &'a str,
    gone: &'a [&'a str],
}

impl<'a> RangeBinds<'a> {
    fn bind(&self, sql: String) -> sqlx::query::Query<'a, Any, sqlx::any::AnyArguments> {
        let mut query =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(self.kind).bind(self.rural).bind(self.first).bind(self.last);
        for id in self.gone {
            query = query.bind(*id);
        }
        query
    }

    fn bind_as<O>(&self, sql: String) -> sqlx::query::QueryAs<'a, Any, O, sqlx::any::AnyArguments>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let mut query =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(self.kind).bind(self.rural).bind(self.first).bind(self.last);
        for id in self.gone {
            query = query.bind(*id);
        }
        query
    }
}

/// Takes a place out of coverage (rejected, or merged into another): it keeps its row, but no indicator rows.
/// Call between `deltas` before and after.
pub async fn uncount_place(tx: &mut Tx, place_id: &str) -> Result<(), StoreError> {
    for table in INDICATOR_TABLES {
        delete_by_place(tx, table, &[place_id]).await?;
    }
    sqlx::query("UPDATE places SET excluded = 0 WHERE place_id = $1").bind(place_id).execute(&mut **tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deleting a place's indicator rows finds them by index: a scan of `visit_indicators` took a second at three
    /// million visits, holding the write gate.
    #[tokio::test]
    async fn a_places_indicator_rows_are_deleted_by_index() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::db::Db::connect(&crate::store::db::sqlite_url(dir.path())).await.unwrap();
        for table in INDICATOR_TABLES {
            let sql = format!("EXPLAIN QUERY PLAN {}", delete_by_place_sql(table, "?, ?"));
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind("P1").bind("P2").fetch_all(&db.pool).await.unwrap();
            let steps: Vec<&str> = plan.iter().map(|(_, _, _, step)| step.as_str()).collect();
            assert!(steps.iter().any(|s| s.starts_with(&format!("SEARCH {table} USING"))), "{table}: {steps:?}");
            assert!(!steps.iter().any(|s| s.starts_with("SCAN")), "{table}: {steps:?}");
        }
    }
}
