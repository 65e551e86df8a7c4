//! The monthly report (排名通报): per village or community, the month's visits, coverage at month end and its
//! change since the previous month's end, the rank, and the laggards below a threshold (挂牌整治).
//!
//! Coverage "at" a time T is computed from visit times alone, so a report of a past month gives the same
//! figures whenever it is printed: a place counts as reached for an indicator if a visit before T reached it
//! (`place_indicators.reached_at < T`), and as excluded if its last visit before T (greatest `(at, visit_id)`)
//! found it gone. The denominator is the current territory (places carry no import date).
//!
//! Each unit, and the report as a whole, also carries the month's urgent dissuasion task figures (`tasks_read`).

use crate::refusal::Refusal;
use crate::reports::sheet::Cell;
use crate::reports::time::{self, day_start_ms, next_month, offset_text, time_text};
use crate::store::{areas, coverage};
use crate::tasks::read::{self, TaskFigures};
use crate::AppState;
use chrono::FixedOffset;
use client_core::campaign::Campaign;
use client_core::grid::coverage::Figure;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Laggard threshold when none is given: a unit whose score is below 80% is listed for rectification.
pub const DEFAULT_THRESHOLD: f64 = 0.8;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthlyIndicator {
    pub indicator: String,
    /// Places still in the denominator at month end.
    pub eligible: u64,
    pub reached: u64,
    pub excluded: u64,
    pub rate: f64,
    /// The rate at the previous month's end.
    pub previous_rate: f64,
    pub change: f64,
}

/// One ranked unit: the public JSON row of `doorstep report monthly`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthlyRow {
    pub rank: u32,
    pub month: String,
    pub area: String,
    pub name: String,
    /// `village` or `community`.
    pub kind: String,
    /// Visits whose time falls within the month.
    pub visits: u64,
    pub places_visited: u64,
    /// Mean rate over the indicators the unit has places for, at month end.
    pub score: f64,
    pub previous_score: f64,
    pub score_change: f64,
    /// Below the threshold: listed for rectification.
    pub laggard: bool,
    pub indicators: Vec<MonthlyIndicator>,
    /// Urgent dissuasion tasks issued in the month for targets in this unit.
    pub tasks: TaskFigures,
    /// The month's bulletins meant for the teams working in this unit: how many of their expected readings
    /// (reader × bulletin) were done, of the current edition; none when no bulletin was meant for them.
    #[serde(default)]
    pub bulletins: Option<BulletinReads>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BulletinReads {
    pub read: u64,
    pub expected: u64,
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthlyReport {
    pub month: String,
    pub utc_offset: String,
    /// The area the report covers (a town, usually), or none for everything the reader may see.
    pub area: Option<String>,
    pub area_name: Option<String>,
    pub threshold: f64,
    /// The month's bounds: visits at or after `starts_at` and before `ends_at` count.
    pub starts_at: String,
    pub ends_at: String,
    pub rows: Vec<MonthlyRow>,
    /// Urgent dissuasion tasks issued in the month within the report's scope, including those outside any unit.
    pub tasks: TaskFigures,
    /// The version of the campaign in force at the month's end, whose indicators the month is counted with
    /// (0: the default campaign).
    #[serde(default)]
    pub campaign_version: i64,
    /// That version's indicators, in its report order, with their names.
    #[serde(default)]
    pub indicators: Vec<IndicatorName>,
}

impl MonthlyReport {
    /// The report's heading: the month and area, how it ranks, and the month's urgent tasks.
    pub fn title(&self) -> String {
        let place = match (&self.area_name, &self.area) {
            (Some(n), Some(c)) => format!(" · {n} ({c})"),
            _ => String::new(),
        };
        let t = &self.tasks;
        format!(
            "Monthly report {}{place}: ranked by mean coverage at month end; laggards below {:.0}%; campaign version {}\n\
             Urgent dissuasion tasks: {} issued, {} completed, {} overdue, {} effective; median response {} min",
            self.month,
            self.threshold * 100.0,
            self.campaign_version,
            t.created,
            t.completed,
            t.overdue,
            t.effective,
            t.median_response_minutes.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
        )
    }

    /// The ranking as a table, a row per unit: what `doorstep report monthly` prints and exports, and what the
    /// dashboard's Excel download holds.
    pub fn table(&self) -> (Vec<String>, Vec<Vec<Cell>>) {
        let mut header: Vec<String> =
            ["rank", "area", "name", "visits", "score", "change"].iter().map(|h| h.to_string()).collect();
        header.extend(self.indicators.iter().map(|i| i.id.clone()));
        header.extend(
            ["laggard", "tasks", "tasks done", "tasks overdue", "median response (min)", "bulletins read"]
                .iter()
                .map(|h| h.to_string()),
        );
        let rows = self
            .rows
            .iter()
            .map(|row| {
                let mut cells = vec![
                    Cell::Int(row.rank as u64),
                    Cell::Text(row.area.clone()),
                    Cell::Text(row.name.clone()),
                    Cell::Int(row.visits),
                    Cell::Rate(row.score),
                    Cell::Rate(row.score_change),
                ];
                for ind in &self.indicators {
                    cells.push(match row.indicators.iter().find(|i| i.indicator == ind.id) {
                        Some(i) => Cell::Rate(i.rate),
                        None => Cell::Text(String::new()),
                    });
                }
                cells.push(Cell::Text(if row.laggard { "挂牌整治".into() } else { String::new() }));
                let t = &row.tasks;
                cells.extend([
                    Cell::Int(t.created),
                    Cell::Int(t.completed),
                    Cell::Int(t.overdue),
                    Cell::Text(t.median_response_minutes.map(|m| m.to_string()).unwrap_or_default()),
                ]);
                cells.push(match row.bulletins {
                    Some(b) => Cell::Rate(b.rate),
                    None => Cell::Text(String::new()),
                });
                cells
            })
            .collect();
        (header, rows)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorName {
    pub id: String,
    pub zh: String,
    pub en: String,
}

/// Per unit and indicator: (eligible, reached, excluded) at a time.
pub type UnitCoverage = BTreeMap<(String, String), (u64, u64, u64)>;

/// Coverage per village or community as it stood at `at_ms` (exclusive), within the area and team filter, with
/// the indicators of `campaign` as it defines them. The projected rows follow the campaign in force now: an
/// indicator whose places or reach `campaign` defines otherwise is counted from places and visits instead.
pub async fn coverage_at(
    state: &AppState,
    campaign: &Campaign,
    at_ms: i64,
    area: &str,
    team: &str,
) -> Result<UnitCoverage, Refusal> {
    let now = state.campaigns.current();
    let differ = campaign.changes_to(&now.campaign).recounted_indicators();
    let mut out = UnitCoverage::new();
    for (unit, indicator, e, r, x) in coverage::village_counts_at(&state.db, at_ms, area, team).await? {
        if campaign.indicator(&indicator).is_some() && !differ.contains(&indicator) {
            out.insert((unit, indicator), (e as u64, r as u64, x as u64));
        }
    }
    for indicator in campaign.indicators.iter().filter(|i| differ.contains(&i.id)) {
        for (unit, id, e, r, x) in
            coverage::village_counts_at_as_defined(&state.db, at_ms, area, team, indicator).await?
        {
            out.insert((unit, id), (e as u64, r as u64, x as u64));
        }
    }
    Ok(out)
}

/// Visits and distinct places visited per unit in `[from, to)`.
async fn visits_between(
    state: &AppState,
    from: i64,
    to: i64,
    area: &str,
    team: &str,
) -> Result<HashMap<String, (u64, u64)>, Refusal> {
    let rows = coverage::village_visits_between(&state.db, (from, to), area, team).await?;
    Ok(rows.into_iter().map(|(u, n, p)| (u, (n as u64, p as u64))).collect())
}

fn rate(e: u64, r: u64) -> f64 {
    Figure { indicator: String::new(), eligible: e, reached: r, excluded: 0 }.rate()
}

/// The ranking score: the mean rate over the indicators a unit has places for.
pub fn score(rates: &[f64]) -> f64 {
    if rates.is_empty() {
        1.0
    } else {
        rates.iter().sum::<f64>() / rates.len() as f64
    }
}

/// Orders rows by score (highest first), then by code; units whose scores agree to 0.01 percentage point
/// (four decimals) share a rank, and the next rank skips (1, 2, 2, 4).
pub fn assign_ranks(rows: &mut [MonthlyRow]) {
    let key = |s: f64| (s * 10_000.0).round() as i64;
    rows.sort_by(|a, b| key(b.score).cmp(&key(a.score)).then_with(|| a.area.cmp(&b.area)));
    for i in 0..rows.len() {
        rows[i].rank =
            if i > 0 && key(rows[i].score) == key(rows[i - 1].score) { rows[i - 1].rank } else { i as u32 + 1 };
    }
}

pub struct MonthlyParams<'a> {
    pub month: &'a str,
    pub offset: FixedOffset,
    pub threshold: f64,
    pub area: Option<&'a str>,
    pub team: Option<&'a str>,
}

pub async fn monthly(state: &AppState, p: MonthlyParams<'_>) -> Result<MonthlyReport, Refusal> {
    let first = time::parse_month(p.month)?;
    if !(0.0..=1.0).contains(&p.threshold) {
        return Err(Refusal::invalid(format!("threshold={} is not a rate between 0 and 1", p.threshold)));
    }
    let area = p.area.unwrap_or("");
    let team = p.team.unwrap_or("");
    let names = area_records(state).await?;
    if !area.is_empty() && !names.contains_key(area) {
        return Err(Refusal::not_found(format!("no area with code {area:?}")));
    }
    let start = day_start_ms(first, p.offset);
    let end = day_start_ms(next_month(first), p.offset);
    // The month is counted with the campaign in force at its end, its start too, so that the change is
    // measured against the same rules.
    let campaign = crate::campaign::in_force_at(state, end - 1).await?;
    let now = coverage_at(state, &campaign.campaign, end, area, team).await?;
    let before = coverage_at(state, &campaign.campaign, start, area, team).await?;
    let visits = visits_between(state, start, end, area, team).await?;
    let (mut unit_tasks, tasks) = read::monthly_figures(state, (start, end), area, team).await?;
    let reads = crate::bulletins::village_read_rates(state, start, end).await?;
    let mut units: BTreeMap<String, Vec<MonthlyIndicator>> = BTreeMap::new();
    for ind in &campaign.campaign.indicators {
        for ((unit, id), &(e, r, x)) in now.iter().filter(|((_, id), _)| *id == ind.id) {
            let (pe, pr, _) = before.get(&(unit.clone(), id.clone())).copied().unwrap_or((e, 0, x));
            let (now_rate, prev_rate) = (rate(e, r), rate(pe, pr));
            units.entry(unit.clone()).or_default().push(MonthlyIndicator {
                indicator: id.clone(),
                eligible: e,
                reached: r,
                excluded: x,
                rate: now_rate,
                previous_rate: prev_rate,
                change: now_rate - prev_rate,
            });
        }
    }
    let mut rows: Vec<MonthlyRow> = units
        .into_iter()
        .map(|(unit, indicators)| {
            let score_now = score(&indicators.iter().map(|i| i.rate).collect::<Vec<_>>());
            let score_before = score(&indicators.iter().map(|i| i.previous_rate).collect::<Vec<_>>());
            let (n, places) = visits.get(&unit).copied().unwrap_or_default();
            let (name, kind) = names.get(&unit).cloned().unwrap_or_default();
            let tasks = unit_tasks.remove(&unit).unwrap_or_default();
            let bulletins = reads.get(&unit).filter(|t| t.expected > 0).map(|t| BulletinReads {
                read: t.read as u64,
                expected: t.expected as u64,
                rate: t.read as f64 / t.expected as f64,
            });
            MonthlyRow {
                bulletins,
                rank: 0,
                month: p.month.to_string(),
                area: unit,
                name,
                kind,
                visits: n,
                places_visited: places,
                score: score_now,
                previous_score: score_before,
                score_change: score_now - score_before,
                laggard: score_now < p.threshold,
                tasks,
                indicators,
            }
        })
        .collect();
    assign_ranks(&mut rows);
    Ok(MonthlyReport {
        month: p.month.to_string(),
        utc_offset: offset_text(p.offset),
        area: p.area.map(str::to_string),
        area_name: p.area.and_then(|a| names.get(a)).map(|n| n.0.clone()),
        threshold: p.threshold,
        starts_at: time_text(start, p.offset),
        ends_at: time_text(end, p.offset),
        rows,
        tasks,
        campaign_version: campaign.version,
        indicators: campaign
            .campaign
            .indicators
            .iter()
            .map(|i| IndicatorName { id: i.id.clone(), zh: i.zh.clone(), en: i.en.clone() })
            .collect(),
    })
}

/// Every area's (name, kind), by code.
async fn area_records(state: &AppState) -> Result<HashMap<String, (String, String)>, Refusal> {
    Ok(areas::names_and_kinds(&state.db).await?.into_iter().map(|(c, n, k)| (c, (n, k))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(area: &str, score: f64) -> MonthlyRow {
        MonthlyRow {
            rank: 0,
            month: "2026-11".into(),
            area: area.into(),
            name: String::new(),
            kind: "village".into(),
            visits: 0,
            places_visited: 0,
            score,
            previous_score: 0.0,
            score_change: 0.0,
            laggard: false,
            indicators: vec![],
            tasks: TaskFigures::default(),
            bulletins: None,
        }
    }

    #[test]
    fn ranks_by_score_then_code_sharing_ties() {
        let mut rows = vec![row("V3", 0.5), row("V2", 0.9), row("V1", 0.5), row("V4", 0.2), row("V5", 1.0 / 3.0)];
        // A score that differs only by float noise ties.
        rows.push(row("V0", (1.0 / 3.0 + 2.0 / 3.0) / 2.0 + 1e-12));
        assign_ranks(&mut rows);
        let got: Vec<(&str, u32)> = rows.iter().map(|r| (r.area.as_str(), r.rank)).collect();
        assert_eq!(got, [("V2", 1), ("V0", 2), ("V1", 2), ("V3", 2), ("V5", 5), ("V4", 6)]);
    }

    #[test]
    fn score_is_the_mean_rate() {
        assert_eq!(score(&[1.0, 0.5]), 0.75);
        assert_eq!(score(&[]), 1.0);
    }
}
