//! The liaison roster (联络员名单): each village, community (or town) names its 分管领导 and 联络员 (name, unit,
//! post, phone) by a deadline the office sets; who has not yet named both; and the list as the seed's XLSX
//! (title row; 姓名 / 职务 / 联系电话 / 备注, grouped by village or community and unit).

use crate::refusal::Refusal;
use crate::reports::time::{day_start_ms, next_month, parse_date, parse_offset, today};
use crate::store::db::now_ms;
use crate::store::liaisons::{self, EntryRecord};
use crate::store::settings;
use crate::submissions::{mask_phone, text_field, Actor, Areas, UNIT_KINDS};
use crate::AppState;
use chrono::Days;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The setting that holds the roster's deadline, a date (YYYY-MM-DD, the whole day counts).
pub const DEADLINE_SETTING: &str = "roster_deadline";
/// The duties an area names: its 分管领导 and its 联络员.
pub const DUTIES: [(&str, &str); 2] = [("leader", "分管领导"), ("liaison", "联络员")];
/// The most entries one area files (several liaisons for several units are usual; hundreds are a mistake).
pub const MAX_ENTRIES: usize = 50;

/// One entry as written by a cadre or the office.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NewEntry {
    pub duty: String,
    pub name: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub post: String,
    pub phone: String,
    #[serde(default)]
    pub note: String,
}

/// One entry as read: the phone masked unless the reader may see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub duty: String,
    pub name: String,
    pub unit: String,
    pub post: String,
    pub phone: String,
    pub phone_masked: bool,
    pub note: String,
    pub updated_by: String,
    pub updated_at: i64,
}

/// One area's part of the roster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AreaRoster {
    pub area: String,
    pub name: String,
    pub kind: String,
    pub town: Option<String>,
    pub town_name: Option<String>,
    /// Whether the reader may replace this area's entries.
    pub writable: bool,
    pub entries: Vec<Entry>,
    /// Duties the area has named nobody for yet (`leader`, `liaison`).
    pub missing: Vec<String>,
}

/// The roster as one reader sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Roster {
    /// The deadline (YYYY-MM-DD), if the office set one.
    pub deadline: Option<String>,
    /// The deadline's day is over.
    pub past_deadline: bool,
    /// Every village and community the reader may see, then any other area with entries.
    pub areas: Vec<AreaRoster>,
    /// Villages and communities that have not named both a 分管领导 and a 联络员.
    pub not_filed: Vec<String>,
}

/// The roster's deadline, if set.
pub async fn deadline(state: &AppState) -> Result<Option<String>, Refusal> {
    Ok(settings::stored_value(&state.db, DEADLINE_SETTING).await?.filter(|d| !d.is_empty()))
}

/// Whether the deadline's day (in the campaign's local time) is over at `now`.
pub fn past(deadline: &str, now: i64) -> Result<bool, Refusal> {
    let day = parse_date("deadline", deadline)?;
    let end = day_start_ms(day.checked_add_days(Days::new(1)).expect("date in range"), parse_offset(None)?);
    Ok(now >= end)
}

/// Sets (or with an empty text clears) the roster's deadline; the office only (checked by the caller).
pub async fn set_deadline(state: &AppState, deadline: &str) -> Result<Option<String>, Refusal> {
    let deadline = deadline.trim();
    if !deadline.is_empty() {
        let day = parse_date("deadline", deadline)?;
        // A deadline years away is a typing mistake, not a plan.
        let limit = next_month(next_month(today(parse_offset(None)?))).checked_add_months(chrono::Months::new(12));
        if limit.is_some_and(|l| day > l) {
            return Err(Refusal::invalid(format!("deadline {deadline} is more than a year away; give a nearer date")));
        }
    }
    settings::store_value(&state.db, DEADLINE_SETTING, deadline, now_ms()).await?;
    Ok(Some(deadline.to_string()).filter(|d| !d.is_empty()))
}

/// The roster as `actor` may read it.
pub async fn read(state: &AppState, actor: &Actor) -> Result<Roster, Refusal> {
    let areas = Areas::read(state).await?;
    let mut by_area: BTreeMap<String, Vec<EntryRecord>> = BTreeMap::new();
    for e in liaisons::all_entries(&state.db).await? {
        by_area.entry(e.area_code.clone()).or_default().push(e);
    }
    let mut codes: Vec<String> = areas.visible_units(actor).iter().map(|a| a.code.clone()).collect();
    for code in by_area.keys() {
        if !codes.contains(code) && areas.get(code).is_some() && areas.visible(actor, code) {
            codes.push(code.clone());
        }
    }
    let mut out = Vec::new();
    let mut not_filed = Vec::new();
    for code in codes {
        let info = areas.known(&code)?;
        let records = by_area.remove(&code).unwrap_or_default();
        let missing: Vec<String> =
            DUTIES.iter().filter(|(d, _)| !records.iter().any(|e| e.duty == *d)).map(|(d, _)| d.to_string()).collect();
        if !missing.is_empty() && UNIT_KINDS.contains(&info.kind.as_str()) {
            not_filed.push(code.clone());
        }
        let shown = actor.sees_phone_of(&code);
        let town = areas.town_of(&code);
        out.push(AreaRoster {
            area: code.clone(),
            name: info.name.clone(),
            kind: info.kind.clone(),
            town: town.map(|t| t.code.clone()),
            town_name: town.map(|t| t.name.clone()),
            writable: actor.owns(&code) && info.kind != "grid",
            entries: records
                .into_iter()
                .map(|e| Entry {
                    phone: if shown { e.phone } else { mask_phone(&e.phone) },
                    phone_masked: !shown,
                    duty: e.duty,
                    name: e.name,
                    unit: e.unit,
                    post: e.post,
                    note: e.note,
                    updated_by: e.updated_by,
                    updated_at: e.updated_at,
                })
                .collect(),
            missing,
        });
    }
    let deadline = deadline(state).await?;
    let past_deadline = match &deadline {
        Some(d) => past(d, now_ms())?,
        None => false,
    };
    Ok(Roster { deadline, past_deadline, areas: out, not_filed })
}

/// A phone number as people write them: digits, with an optional leading +, dashes or spaces; 3 to 20 digits.
fn check_phone(at: &str, phone: &str) -> Result<String, Refusal> {
    let p = phone.trim();
    let digits = p.chars().filter(char::is_ascii_digit).count();
    let shape = p.chars().enumerate().all(|(i, c)| c.is_ascii_digit() || c == '-' || c == ' ' || (c == '+' && i == 0));
    if !shape || !(3..=20).contains(&digits) {
        return Err(Refusal::invalid(format!(
            "{at}: phone {p:?} is not a phone number (3 to 20 digits, with an optional leading + and dashes or spaces)"
        )));
    }
    Ok(p.to_string())
}

/// Checks entries as written, naming the entry and field of the first problem.
pub fn check_entries(entries: &[NewEntry]) -> Result<Vec<NewEntry>, Refusal> {
    if entries.len() > MAX_ENTRIES {
        return Err(Refusal::invalid(format!("{} entries given; an area files at most {MAX_ENTRIES}", entries.len())));
    }
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let at = format!("entry {}", i + 1);
        if !DUTIES.iter().any(|(d, _)| *d == e.duty) {
            return Err(Refusal::invalid(format!(
                "{at}: duty {:?} is not one of leader (分管领导) or liaison (联络员)",
                e.duty
            )));
        }
        out.push(NewEntry {
            duty: e.duty.clone(),
            name: text_field(&format!("{at}: name"), &e.name, 50, true)?,
            unit: text_field(&format!("{at}: unit"), &e.unit, 100, true)?,
            post: text_field(&format!("{at}: post"), &e.post, 50, true)?,
            phone: check_phone(&at, &e.phone)?,
            note: text_field(&format!("{at}: note"), &e.note, 200, false)?,
        });
    }
    Ok(out)
}

/// Whether the actor may replace `area`'s entries: the office any area's, a cadre their own area's. Decided from
/// the session alone, so that the caller can refuse before reading a request's body.
pub fn may_write(actor: &Actor, area: &str) -> Result<(), Refusal> {
    match actor {
        Actor::Cadre { area: own, .. } if own != area => {
            Err(Refusal::forbidden(format!("you file the roster of your own area ({own}) only, not of {area}")))
        }
        _ => Ok(()),
    }
}

/// Replaces an area's entries: the office any area, a cadre their own. Returns the area's name.
pub async fn replace(state: &AppState, actor: &Actor, area: &str, entries: &[NewEntry]) -> Result<String, Refusal> {
    let areas = Areas::read(state).await?;
    let info = areas.known(area)?;
    if info.kind == "grid" {
        return Err(Refusal::invalid(format!("{area} is a grid; a roster is named by a village, community or town")));
    }
    may_write(actor, area)?;
    let checked = check_entries(entries)?;
    let now = now_ms();
    let records: Vec<EntryRecord> = checked
        .into_iter()
        .enumerate()
        .map(|(i, e)| EntryRecord {
            entry_id: uuid::Uuid::new_v4().to_string(),
            area_code: area.to_string(),
            position: i as i64,
            duty: e.duty,
            name: e.name,
            unit: e.unit,
            post: e.post,
            phone: e.phone,
            note: e.note,
            updated_by: actor.username().to_string(),
            updated_at: now,
        })
        .collect();
    liaisons::replace_area(&state.db, area, &records).await?;
    Ok(info.name.clone())
}

fn duty_name(duty: &str) -> &str {
    DUTIES.iter().find(|(d, _)| *d == duty).map(|(_, zh)| *zh).unwrap_or(duty)
}

/// The roster the reader may see as an XLSX workbook, in the seed's layout: a title row, the columns 姓名 / 职务
/// / 联系电话 / 备注, and the entries grouped by village or community, then by unit, each group under a row
/// naming it. Phones are masked as in [`read`].
pub fn xlsx(roster: &Roster, title: &str) -> Result<Vec<u8>, Refusal> {
    use rust_xlsxwriter::{Format, FormatAlign, FormatBorder, Workbook};
    let fail = |e: rust_xlsxwriter::XlsxError| Refusal::internal(format!("writing the roster's workbook: {e}"));
    let mut wb = Workbook::new();
    let sheet = wb.add_worksheet();
    sheet.set_name("联络员名单").map_err(fail)?;
    let title_format = Format::new().set_bold().set_font_size(16).set_align(FormatAlign::Center);
    let head = Format::new().set_bold().set_border(FormatBorder::Thin).set_align(FormatAlign::Center);
    let group = Format::new().set_bold().set_border(FormatBorder::Thin).set_background_color("#E5E7EB");
    let unit = Format::new().set_italic().set_border(FormatBorder::Thin);
    let cell = Format::new().set_border(FormatBorder::Thin);
    // Phones are text: a spreadsheet would otherwise show 13812341234 as 1.38E+10 and drop a leading 0.
    let text = Format::new().set_border(FormatBorder::Thin).set_num_format("@");
    sheet.merge_range(0, 0, 0, 3, title, &title_format).map_err(fail)?;
    for (col, name) in ["姓名", "职务", "联系电话", "备注"].iter().enumerate() {
        sheet.write_with_format(1, col as u16, *name, &head).map_err(fail)?;
    }
    let mut row = 2u32;
    for area in roster.areas.iter().filter(|a| !a.entries.is_empty()) {
        sheet.merge_range(row, 0, row, 3, &area.name, &group).map_err(fail)?;
        row += 1;
        // Units in the order they first appear, their entries together.
        let mut units: Vec<&str> = Vec::new();
        for e in &area.entries {
            if !units.contains(&e.unit.as_str()) {
                units.push(&e.unit);
            }
        }
        for u in units {
            sheet.merge_range(row, 0, row, 3, u, &unit).map_err(fail)?;
            row += 1;
            for e in area.entries.iter().filter(|e| e.unit == u) {
                sheet.write_with_format(row, 0, &e.name, &cell).map_err(fail)?;
                sheet
                    .write_with_format(row, 1, format!("{}（{}）", duty_name(&e.duty), e.post), &cell)
                    .map_err(fail)?;
                sheet.write_with_format(row, 2, &e.phone, &text).map_err(fail)?;
                sheet.write_with_format(row, 3, &e.note, &cell).map_err(fail)?;
                row += 1;
            }
        }
    }
    for (col, width) in [(0u16, 14.0), (1, 28.0), (2, 18.0), (3, 30.0)] {
        sheet.set_column_width(col, width).map_err(fail)?;
    }
    wb.save_to_buffer().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(duty: &str, phone: &str) -> NewEntry {
        NewEntry {
            duty: duty.into(),
            name: " 张三 ".into(),
            unit: "龙凤村委会".into(),
            post: "副书记".into(),
            phone: phone.into(),
            note: String::new(),
        }
    }

    #[test]
    fn entries_are_checked_field_by_field() {
        let ok = check_entries(&[entry("leader", "138 1234 1234"), entry("liaison", "+86-571-8888")]).unwrap();
        assert_eq!(ok[0].name, "张三");
        let err = check_entries(&[entry("leader", "13812341234"), entry("boss", "1")]).unwrap_err().to_string();
        assert!(err.contains("entry 2: duty \"boss\""), "{err}");
        let err = check_entries(&[entry("leader", "call me")]).unwrap_err().to_string();
        assert!(err.contains("entry 1: phone \"call me\""), "{err}");
        let mut nameless = entry("leader", "13812341234");
        nameless.name = "  ".into();
        assert!(check_entries(&[nameless]).unwrap_err().to_string().contains("entry 1: name is required"));
    }

    #[test]
    fn the_deadline_day_counts_whole_in_local_time() {
        // 2026-12-15 ends at 2026-12-16T00:00+08:00 = 2026-12-15T16:00Z.
        let end = chrono::DateTime::parse_from_rfc3339("2026-12-15T16:00:00Z").unwrap().timestamp_millis();
        assert!(!past("2026-12-15", end - 1).unwrap());
        assert!(past("2026-12-15", end).unwrap());
    }
}
