//! Parsing and validation of the office's territory CSV: the list of places to visit and
//! where each sits in the area tree (grid → village/community → town), with optional contacts.
//!
//! The file comes from spreadsheets edited by hand, so the parser reports every problem it
//! finds, each with the physical line number the office will see in their editor, and
//! accepts nothing unless the whole file is valid: a half-imported territory is worse than none.

use client_core::campaign::Campaign;
use client_core::grid::model::{AreaKind, GridInfo, Place, PlaceKind, UnknownName, MAX_TEXT_BYTES};
use csv::ByteRecord;
use std::collections::HashMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One valid row of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct TerritoryRow {
    /// Physical line where the record starts (the header is line 1).
    pub line: u64,
    pub place: Place,
    pub grid: GridInfo,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
}

/// A problem found in the file, tied to the line where the offending record starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

/// Beyond this many errors the file is clearly wrong as a whole (wrong export, wrong encoding),
/// and a longer list would only bury the useful first ones.
const MAX_ERRORS: usize = 100;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A valid file, held compactly: its grids once, and for each place only where its record starts in the file,
/// so that a province of a million places costs a few dozen bytes per place beyond the file itself. Rows are
/// read again from the file, one grid at a time, when they are applied.
pub struct Territory<'a> {
    bytes: &'a [u8],
    columns: Columns,
    /// Each grid as its rows describe it, in order of first appearance, and the line of its first row.
    grids: Vec<(GridInfo, u64)>,
    /// The valid rows (identical repeats of a place kept once, at their first line), by grid, then line.
    rows: Vec<RowRef>,
    /// Where each grid's rows start in `rows`; one more entry marks the end.
    grid_starts: Vec<usize>,
}

/// Where a valid row's record starts, and its grid (an index into `Territory::grids`).
#[derive(Debug, Clone, Copy)]
struct RowRef {
    grid: u32,
    line: u64,
    offset: u64,
}

impl<'a> Territory<'a> {
    /// Number of places (valid rows, identical repeats counted once).
    pub fn row_count(&self) -> usize {
        self.rows.len()
    }

    /// The grids with the line of each one's first row, in order of first appearance.
    pub fn grids(&self) -> impl ExactSizeIterator<Item = (&GridInfo, u64)> {
        self.grids.iter().map(|(g, line)| (g, *line))
    }

    /// The rows of the `index`th grid, read again from the file.
    pub fn grid_rows(&self, index: usize) -> Result<Vec<TerritoryRow>, String> {
        let refs = &self.rows[self.grid_starts[index]..self.grid_starts[index + 1]];
        let mut reader = RowReader::new(self.bytes);
        refs.iter().map(|r| reader.read(&self.columns, r)).collect()
    }

    /// Every row, in line order.
    pub fn rows(&self) -> Result<Vec<TerritoryRow>, String> {
        let mut refs = self.rows.clone();
        refs.sort_by_key(|r| r.line);
        let mut reader = RowReader::new(self.bytes);
        refs.iter().map(|r| reader.read(&self.columns, r)).collect()
    }
}

/// Reads valid records again from where they start; consecutive records need no seek.
struct RowReader<'a> {
    reader: csv::Reader<Cursor<&'a [u8]>>,
    record: ByteRecord,
}

impl<'a> RowReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        RowReader { reader: csv_reader(Cursor::new(bytes)), record: ByteRecord::new() }
    }

    fn read(&mut self, columns: &Columns, row: &RowRef) -> Result<TerritoryRow, String> {
        if self.reader.position().byte() != row.offset {
            let mut position = csv::Position::new();
            position.set_byte(row.offset).set_line(row.line);
            self.reader.seek(position).map_err(|e| format!("line {}: cannot read again: {e}", row.line))?;
        }
        let unreadable = || format!("line {}: the record cannot be read again", row.line);
        if !self.reader.read_byte_record(&mut self.record).map_err(|_| unreadable())? {
            return Err(unreadable());
        }
        let fields: Option<Vec<&str>> = self.record.iter().map(|f| std::str::from_utf8(f).ok()).collect();
        columns.parse_row(row.line, &fields.ok_or_else(unreadable)?).map_err(|problems| problems.join("; "))
    }
}

/// Fields are read as bytes so that bad UTF-8 (typically a GBK export) is reported with its line instead of
/// aborting the read, and records are flexible so that a wrong field count is one error among others rather
/// than the end of parsing.
fn csv_reader<R: std::io::Read>(input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(input)
}

/// How the lines that messages name are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// Physical lines of the file, as a text editor numbers them (a CSV file).
    PhysicalLines,
    /// One per record, blank ones included: the rows of a worksheet turned into CSV a record per row
    /// (`territory::xlsx`), whose cells may hold line breaks that must not shift the rows after them.
    Records,
}

/// Parses and validates the whole file. Returns either the valid file (identical duplicate places kept once,
/// at their first line) or every error found, sorted by line.
pub fn parse_territory_csv(bytes: &[u8], campaign: Arc<Campaign>) -> Result<Territory<'_>, Vec<RowError>> {
    parse_territory_file(bytes, campaign, Numbering::PhysicalLines, &AtomicU64::new(0))
}

/// `parse_territory_csv` with the lines counted as `numbering` says, and the records read so far kept in
/// `records_read` (an import's progress).
pub fn parse_territory_file<'a>(
    bytes: &'a [u8],
    campaign: Arc<Campaign>,
    numbering: Numbering,
    records_read: &AtomicU64,
) -> Result<Territory<'a>, Vec<RowError>> {
    // Excel's "CSV UTF-8" export starts with a BOM. The csv reader would skip it too, but
    // stripping it here keeps its byte offsets aligned with the slice `LineCounter` scans.
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let mut reader = csv_reader(bytes);
    let mut record = ByteRecord::new();
    let mut lines = LineCounter::new(bytes);
    let mut importer: Option<Importer> = None;
    let mut errors = Errors::default();
    let mut header_line = 1;
    let mut records: u64 = 0;

    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // Unreachable for an in-memory reader in practice, but never panic on input.
                let at = e.position().unwrap_or(reader.position()).byte();
                let line = match numbering {
                    Numbering::PhysicalLines => lines.line_at(at),
                    Numbering::Records => records + 1,
                };
                errors.push(line, format!("unreadable CSV: {e}"));
                break;
            }
        }
        records += 1;
        if records.is_multiple_of(4096) {
            records_read.store(records, Ordering::Relaxed);
        }
        let at = record.position().map_or(0, |p| p.byte());
        let line = match numbering {
            Numbering::PhysicalLines => lines.line_at(at),
            Numbering::Records => records,
        };
        let fields: Vec<Option<&str>> = record.iter().map(|f| std::str::from_utf8(f).ok()).collect();
        // Spreadsheets leave rows of bare commas or spaces behind; they carry no data.
        if fields.iter().all(|f| f.is_some_and(|s| s.trim().is_empty())) {
            continue;
        }
        match importer.as_mut() {
            Some(importer) => importer.record(bytes, at, line, &fields, &mut errors),
            None => {
                header_line = line;
                match parse_header(&fields) {
                    Ok(columns) => importer = Some(Importer::new(columns, campaign.clone())),
                    Err(problems) => {
                        // Without a trustworthy header no row can be interpreted.
                        for problem in problems {
                            errors.push(line, problem);
                        }
                        return Err(errors.finish());
                    }
                }
            }
        }
    }

    records_read.store(records, Ordering::Relaxed);
    let Some(importer) = importer.filter(|i| i.records > 0) else {
        errors.push(header_line, "the file has no rows");
        return Err(errors.finish());
    };
    if errors.is_empty() {
        Ok(importer.finish(bytes))
    } else {
        Err(errors.finish())
    }
}

/// Physical line numbers, computed from byte offsets because csv's own line count is wrong
/// after blank lines and with CRLF endings (both common in Excel exports): a record's reported
/// position is where the reader resumed, before any skipped line breaks.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter { bytes, offset: 0, line: 1 }
    }

    /// Line of the first character at or after `at` that is not a line break. Offsets must
    /// not decrease between calls, which holds for records read in order.
    fn line_at(&mut self, at: u64) -> u64 {
        let bytes = self.bytes;
        let mut end = usize::try_from(at).map_or(bytes.len(), |at| at.min(bytes.len()));
        while matches!(bytes.get(end), Some(b'\r' | b'\n')) {
            end += 1;
        }
        if end > self.offset {
            let start = self.offset;
            for (i, &b) in bytes[start..end].iter().enumerate() {
                // CRLF, LF and a lone CR each end one line, as they do for the csv reader.
                let ends_line = b == b'\n' || (b == b'\r' && bytes.get(start + i + 1) != Some(&b'\n'));
                self.line += u64::from(ends_line);
            }
            self.offset = end;
        }
        self.line
    }
}

/// The columns of the file, in the canonical order used in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    PlaceId,
    Kind,
    Label,
    GridCode,
    GridName,
    VillageCode,
    VillageName,
    VillageKind,
    TownCode,
    TownName,
    Address,
    ContactName,
    ContactPhone,
    Lat,
    Lon,
}

const COLUMN_COUNT: usize = Col::ALL.len();

impl Col {
    const ALL: [Col; 15] = [
        Col::PlaceId,
        Col::Kind,
        Col::Label,
        Col::GridCode,
        Col::GridName,
        Col::VillageCode,
        Col::VillageName,
        Col::VillageKind,
        Col::TownCode,
        Col::TownName,
        Col::Address,
        Col::ContactName,
        Col::ContactPhone,
        Col::Lat,
        Col::Lon,
    ];

    fn name(self) -> &'static str {
        match self {
            Col::PlaceId => "place_id",
            Col::Kind => "kind",
            Col::Label => "label",
            Col::GridCode => "grid_code",
            Col::GridName => "grid_name",
            Col::VillageCode => "village_code",
            Col::VillageName => "village_name",
            Col::VillageKind => "village_kind",
            Col::TownCode => "town_code",
            Col::TownName => "town_name",
            Col::Address => "address",
            Col::ContactName => "contact_name",
            Col::ContactPhone => "contact_phone",
            Col::Lat => "lat",
            Col::Lon => "lon",
        }
    }

    fn mandatory(self) -> bool {
        !matches!(self, Col::Address | Col::ContactName | Col::ContactPhone | Col::Lat | Col::Lon)
    }

    /// Codes become document keys and URL segments, so they are kept to a safe alphabet.
    fn is_identifier(self) -> bool {
        matches!(self, Col::PlaceId | Col::GridCode | Col::VillageCode | Col::TownCode)
    }
}

/// The columns in their canonical order, each with whether it is required: what a template file holds.
pub fn column_names() -> impl Iterator<Item = (&'static str, bool)> {
    Col::ALL.into_iter().map(|c| (c.name(), c.mandatory()))
}

/// The column a row error's message is about, when it names one first ("column kind: …", "grid_code \"G1\": …",
/// "place_id \"P1\" already appears …"): what the dashboard shows in its own column.
pub fn column_of(message: &str) -> Option<&'static str> {
    let named = message.strip_prefix("column ").unwrap_or(message);
    let word = named.split([':', ' ']).next()?;
    Col::ALL.into_iter().map(Col::name).find(|name| *name == word)
}

/// Maps the header's fields to columns, by position.
fn parse_header(fields: &[Option<&str>]) -> Result<Vec<Col>, Vec<String>> {
    let mut problems = Vec::new();
    let mut columns = Vec::with_capacity(fields.len());
    for (position, field) in fields.iter().enumerate() {
        let Some(field) = field else {
            problems.push(format!("header field {} is not valid UTF-8; save the file as \"CSV UTF-8\"", position + 1));
            continue;
        };
        let name = field.trim();
        if name.is_empty() {
            problems.push(format!("header field {} has no column name", position + 1));
            continue;
        }
        match Col::ALL.iter().find(|c| c.name().eq_ignore_ascii_case(name)) {
            Some(&col) if columns.contains(&col) => {
                problems.push(format!("column {} appears more than once", col.name()));
            }
            Some(&col) => columns.push(col),
            None => {
                let accepted: Vec<&str> = Col::ALL.iter().map(|c| c.name()).collect();
                problems.push(format!("unknown column {name:?}; accepted columns: {}", accepted.join(", ")));
            }
        }
    }
    for col in Col::ALL {
        if col.mandatory() && !columns.contains(&col) {
            problems.push(format!("missing column {}", col.name()));
        }
    }
    if problems.is_empty() {
        Ok(columns)
    } else {
        Err(problems)
    }
}

/// Codes already seen at one level of the area tree, with the first line and the attributes
/// every later use of the code must repeat.
type Seen = HashMap<String, (u64, Vec<(Col, String)>)>;

/// The columns of the file by position, and the reverse.
struct Columns {
    /// Column of each field position.
    columns: Vec<Col>,
    /// Field position of each column, if present.
    positions: [Option<usize>; COLUMN_COUNT],
    /// Whose place kinds the kind column names.
    campaign: Arc<Campaign>,
}

/// Row-by-row state once the header is known.
struct Importer {
    columns: Columns,
    /// Non-blank data records seen, valid or not.
    records: usize,
    rows: Vec<RowRef>,
    /// Index into `rows` of each place's first occurrence.
    places: HashMap<Box<str>, u32>,
    /// Each grid as first described, with its line, and its index in that list by code.
    grid_infos: Vec<(GridInfo, u64)>,
    grid_numbers: HashMap<String, u32>,
    grids: Seen,
    villages: Seen,
    towns: Seen,
    /// Which code column each code was first used in, and where: the area tree is keyed by
    /// code, so one code naming two different areas would merge them.
    roles: HashMap<String, (Col, u64)>,
}

impl Importer {
    fn new(columns: Vec<Col>, campaign: Arc<Campaign>) -> Self {
        let mut positions = [None; COLUMN_COUNT];
        for (position, &col) in columns.iter().enumerate() {
            positions[col as usize] = Some(position);
        }
        Importer {
            columns: Columns { columns, positions, campaign },
            records: 0,
            rows: Vec::new(),
            places: HashMap::new(),
            grid_infos: Vec::new(),
            grid_numbers: HashMap::new(),
            grids: HashMap::new(),
            villages: HashMap::new(),
            towns: HashMap::new(),
            roles: HashMap::new(),
        }
    }

    /// Checks one record that starts at byte `offset` of `bytes`.
    fn record(&mut self, bytes: &[u8], offset: u64, line: u64, fields: &[Option<&str>], errors: &mut Errors) {
        self.records += 1;
        let mut broken = false;
        let columns = &self.columns.columns;
        if fields.len() != columns.len() {
            errors.push(
                line,
                format!(
                    "found {} fields but the header has {}; quote values that contain commas",
                    fields.len(),
                    columns.len()
                ),
            );
            broken = true;
        }
        if let Some(position) = fields.iter().position(Option::is_none) {
            let place = match columns.get(position) {
                Some(col) => format!("column {}", col.name()),
                None => format!("field {}", position + 1),
            };
            errors.push(line, format!("{place} is not valid UTF-8; save the file as \"CSV UTF-8\""));
            broken = true;
        }
        if broken {
            return;
        }
        let fields: Vec<&str> = fields.iter().map(|f| f.unwrap_or_default()).collect();
        let row = match self.columns.parse_row(line, &fields) {
            Ok(row) => row,
            Err(problems) => {
                for problem in problems {
                    errors.push(line, problem);
                }
                return;
            }
        };
        for problem in self.check_areas(&row) {
            errors.push(line, problem);
        }
        match self.places.get(row.place.id.as_str()) {
            Some(&first) => {
                // Read back from the file: only the first occurrence's position is kept.
                let first = match RowReader::new(bytes).read(&self.columns, &self.rows[first as usize]) {
                    Ok(first) => first,
                    Err(problem) => return errors.push(line, problem),
                };
                let differing = differing_columns(&first, &row);
                // An identical repeat is harmless (files are often concatenated); a different
                // one means two places claim the same id and only the office can tell which is right.
                if !differing.is_empty() {
                    errors.push(
                        line,
                        format!(
                            "place_id {:?} already appears on line {} with different data ({})",
                            row.place.id,
                            first.line,
                            differing.join(", ")
                        ),
                    );
                }
            }
            None => {
                let grid = match self.grid_numbers.get(&row.grid.code) {
                    Some(&grid) => grid,
                    None => {
                        let grid = self.grid_infos.len() as u32;
                        self.grid_numbers.insert(row.grid.code.clone(), grid);
                        self.grid_infos.push((row.grid.clone(), line));
                        grid
                    }
                };
                self.places.insert(row.place.id.into_boxed_str(), self.rows.len() as u32);
                self.rows.push(RowRef { grid, line, offset });
            }
        }
    }

    /// The valid file, its rows grouped by grid.
    fn finish(self, bytes: &[u8]) -> Territory<'_> {
        let mut rows = self.rows;
        // Stable, and rows were pushed in line order: within a grid they stay in line order.
        rows.sort_by_key(|r| r.grid);
        let mut grid_starts = Vec::with_capacity(self.grid_infos.len() + 1);
        for (i, row) in rows.iter().enumerate() {
            if grid_starts.len() <= row.grid as usize {
                grid_starts.push(i);
            }
        }
        grid_starts.push(rows.len());
        Territory { bytes, columns: self.columns, grids: self.grid_infos, rows, grid_starts }
    }
}

impl Columns {
    /// Validates one record's fields on their own; every problem is reported, not just the first.
    fn parse_row(&self, line: u64, fields: &[&str]) -> Result<TerritoryRow, Vec<String>> {
        let mut problems = Vec::new();
        let mut values: [Option<&str>; COLUMN_COUNT] = [None; COLUMN_COUNT];
        for col in Col::ALL {
            let raw = self.positions[col as usize].map_or("", |p| fields[p]);
            match check_text(col, raw.trim()) {
                Ok(value) => values[col as usize] = value,
                Err(problem) => problems.push(format!("column {}: {problem}", col.name())),
            }
        }
        let get = |col: Col| values[col as usize];
        let text = |col: Col| get(col).map(str::to_string);

        let kind = get(Col::Kind).and_then(|v| match PlaceKind::named(&self.campaign, v) {
            Ok(kind) => Some(kind),
            Err(e) => {
                problems.push(format!("column kind: {e}"));
                None
            }
        });
        let village_kind = get(Col::VillageKind).and_then(|v| match parse_village_kind(v) {
            Ok(kind) => Some(kind),
            Err(e) => {
                problems.push(format!("column village_kind: {e}"));
                None
            }
        });
        let mut coordinate = |col: Col, limit: f64| {
            get(col).and_then(|v| match v.parse::<f64>() {
                // The range check also rejects NaN and infinities, which parse() accepts.
                Ok(n) if (-limit..=limit).contains(&n) => Some(n),
                Ok(_) => {
                    problems.push(format!("column {}: {v} is outside -{limit}..{limit}", col.name()));
                    None
                }
                Err(_) => {
                    problems.push(format!("column {}: {v:?} is not a number", col.name()));
                    None
                }
            })
        };
        let lat = coordinate(Col::Lat, 90.0);
        let lon = coordinate(Col::Lon, 180.0);
        // Half a coordinate cannot be placed on a map; judged on presence so that an
        // unparsable value is not reported twice.
        match (get(Col::Lat), get(Col::Lon)) {
            (Some(_), None) => problems.push("column lon: empty while lat is given".to_string()),
            (None, Some(_)) => problems.push("column lat: empty while lon is given".to_string()),
            _ => {}
        }

        let (Some(kind), Some(village_kind), true) = (kind, village_kind, problems.is_empty()) else {
            return Err(problems);
        };
        let required = |col: Col| text(col).unwrap_or_default();
        Ok(TerritoryRow {
            line,
            place: Place {
                id: required(Col::PlaceId),
                kind,
                label: required(Col::Label),
                address: text(Col::Address),
                lat,
                lon,
            },
            grid: GridInfo {
                code: required(Col::GridCode),
                name: required(Col::GridName),
                village_code: required(Col::VillageCode),
                village_name: required(Col::VillageName),
                village_kind,
                town_code: required(Col::TownCode),
                town_name: required(Col::TownName),
            },
            contact_name: text(Col::ContactName),
            contact_phone: text(Col::ContactPhone),
        })
    }
}

impl Importer {
    /// Checks the row's area data against earlier rows. Each level checks only its own
    /// attributes and the link to its parent, so one disagreement yields one message.
    fn check_areas(&mut self, row: &TerritoryRow) -> Vec<String> {
        let g = &row.grid;
        let mut problems = Vec::new();
        for (col, code) in
            [(Col::GridCode, &g.code), (Col::VillageCode, &g.village_code), (Col::TownCode, &g.town_code)]
        {
            match self.roles.get(code) {
                Some(&(other, first)) if other != col => {
                    problems.push(format!("{} {code:?} is also used as a {} on line {first}", col.name(), other.name()))
                }
                Some(_) => {}
                None => {
                    self.roles.insert(code.clone(), (col, row.line));
                }
            }
        }
        let checks = [
            (
                &mut self.grids,
                Col::GridCode,
                &g.code,
                vec![(Col::GridName, g.name.clone()), (Col::VillageCode, g.village_code.clone())],
            ),
            (
                &mut self.villages,
                Col::VillageCode,
                &g.village_code,
                vec![
                    (Col::VillageName, g.village_name.clone()),
                    (Col::VillageKind, g.village_kind.id().to_string()),
                    (Col::TownCode, g.town_code.clone()),
                ],
            ),
            (&mut self.towns, Col::TownCode, &g.town_code, vec![(Col::TownName, g.town_name.clone())]),
        ];
        for (seen, key_col, key, attrs) in checks {
            problems.extend(check_consistent(seen, key_col, key, row.line, attrs));
        }
        problems
    }
}

/// Checks one already-trimmed value; an empty optional value becomes None.
fn check_text(col: Col, value: &str) -> Result<Option<&str>, String> {
    if value.len() > MAX_TEXT_BYTES {
        return Err(format!("longer than {MAX_TEXT_BYTES} bytes"));
    }
    // Embedded line breaks and tabs would corrupt printed lists and exports downstream.
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!("contains the control character U+{:04X}", c as u32));
    }
    if value.is_empty() {
        return if col.mandatory() { Err("must not be empty".to_string()) } else { Ok(None) };
    }
    let id_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    if col.is_identifier() && !value.chars().all(id_char) {
        return Err(format!("{value:?} is not a valid identifier; use only ASCII letters, digits, '-', '_', '.', ':'"));
    }
    Ok(Some(value))
}

/// A grid's parent is a village or an urban community; the other area kinds are other levels.
fn parse_village_kind(value: &str) -> Result<AreaKind, UnknownName> {
    match value.parse::<AreaKind>() {
        Ok(kind @ (AreaKind::Village | AreaKind::Community)) => Ok(kind),
        // The generic error would list district, town and grid as if they were acceptable.
        _ => Err(UnknownName {
            what: "village kind",
            value: value.to_string(),
            expected: [AreaKind::Village, AreaKind::Community].map(|k| format!("{} ({})", k.id(), k.zh())).join(", "),
        }),
    }
}

/// Records the first use of `key`, or compares a later use against it.
fn check_consistent(seen: &mut Seen, key_col: Col, key: &str, line: u64, attrs: Vec<(Col, String)>) -> Option<String> {
    let Some((first, expected)) = seen.get(key) else {
        seen.insert(key.to_string(), (line, attrs));
        return None;
    };
    let disagreements: Vec<String> = attrs
        .iter()
        .zip(expected)
        .filter(|((_, new), (_, old))| new != old)
        .map(|((col, new), (_, old))| format!("{} {new:?} disagrees with {old:?} on line {first}", col.name()))
        .collect();
    (!disagreements.is_empty()).then(|| format!("{} {key:?}: {}", key_col.name(), disagreements.join("; ")))
}

/// Names the columns (other than place_id) whose values differ between two rows.
fn differing_columns(a: &TerritoryRow, b: &TerritoryRow) -> Vec<&'static str> {
    let (p, q) = (&a.place, &b.place);
    let (g, h) = (&a.grid, &b.grid);
    [
        (Col::Kind, p.kind != q.kind),
        (Col::Label, p.label != q.label),
        (Col::Address, p.address != q.address),
        (Col::Lat, p.lat != q.lat),
        (Col::Lon, p.lon != q.lon),
        (Col::GridCode, g.code != h.code),
        (Col::GridName, g.name != h.name),
        (Col::VillageCode, g.village_code != h.village_code),
        (Col::VillageName, g.village_name != h.village_name),
        (Col::VillageKind, g.village_kind != h.village_kind),
        (Col::TownCode, g.town_code != h.town_code),
        (Col::TownName, g.town_name != h.town_name),
        (Col::ContactName, a.contact_name != b.contact_name),
        (Col::ContactPhone, a.contact_phone != b.contact_phone),
    ]
    .into_iter()
    .filter(|&(_, differs)| differs)
    .map(|(col, _)| col.name())
    .collect()
}

/// Error list capped at `MAX_ERRORS`, counting what it drops.
#[derive(Default)]
struct Errors {
    list: Vec<RowError>,
    omitted: usize,
    last_omitted_line: u64,
}

impl Errors {
    fn push(&mut self, line: u64, message: impl Into<String>) {
        if self.list.len() < MAX_ERRORS {
            self.list.push(RowError { line, message: message.into() });
        } else {
            self.omitted += 1;
            self.last_omitted_line = self.last_omitted_line.max(line);
        }
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn finish(mut self) -> Vec<RowError> {
        // Stable, so errors on the same line keep their column order.
        self.list.sort_by_key(|e| e.line);
        if self.omitted > 0 {
            // Dropped errors come from lines at or after the last kept one, so this stays sorted.
            self.list.push(RowError {
                line: self.last_omitted_line,
                message: format!(
                    "{} more errors omitted (up to this line); fix the ones above and try again",
                    self.omitted
                ),
            });
        }
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_campaign() -> Arc<Campaign> {
        Arc::new(Campaign::default_campaign().clone())
    }

    const HEADER: &str = "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name,address,contact_name,contact_phone,lat,lon";

    /// A valid record for the full header, with the given place id and label.
    fn row(id: &str, label: &str) -> String {
        row_with(id, label, ",,,,")
    }

    /// Same, with `tail` as the address,contact_name,contact_phone,lat,lon fields.
    fn row_with(id: &str, label: &str, tail: &str) -> String {
        format!("{id},household,{label},G1,Grid one,V1,East village,village,T1,Town,{tail}")
    }

    fn csv(lines: &[&str]) -> Vec<u8> {
        let mut text = lines.join("\n");
        text.push('\n');
        text.into_bytes()
    }

    fn errors(bytes: &[u8]) -> Vec<RowError> {
        match parse_territory_csv(bytes, default_campaign()) {
            Ok(territory) => panic!("expected errors, got {:?}", territory.rows()),
            Err(errors) => errors,
        }
    }

    /// The rows of a valid file, in line order.
    fn rows(bytes: &[u8]) -> Vec<TerritoryRow> {
        match parse_territory_csv(bytes, default_campaign()) {
            Ok(territory) => territory.rows().unwrap(),
            Err(errors) => panic!("expected a valid file, got {errors:#?}"),
        }
    }

    /// Asserts there is exactly one error, on `line`, whose message contains every fragment.
    fn assert_single_error(bytes: &[u8], line: u64, fragments: &[&str]) {
        let errs = errors(bytes);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!(errs[0].line, line, "{errs:#?}");
        for fragment in fragments {
            assert!(errs[0].message.contains(fragment), "{:?} lacks {fragment:?}", errs[0]);
        }
    }

    #[test]
    fn valid_file_with_bom_blank_lines_and_chinese_kinds() {
        let mut bytes = UTF8_BOM.to_vec();
        bytes.extend(csv(&[
            HEADER,
            "P1,户,王家,G1,一网格,V1,东村,村,T1,城关镇,东村 12 号,王伟,13800000000,30.5,114.25",
            "",
            "  P2 , LED屏 ,Screen, G2 ,Grid two,C1,Riverside,社区,T1,城关镇, , , ,,",
            ",,,,,,,,,,,,,,",
        ]));
        let grid1 = GridInfo {
            code: "G1".into(),
            name: "一网格".into(),
            village_code: "V1".into(),
            village_name: "东村".into(),
            village_kind: AreaKind::Village,
            town_code: "T1".into(),
            town_name: "城关镇".into(),
        };
        let expected = vec![
            TerritoryRow {
                line: 2,
                place: Place {
                    id: "P1".into(),
                    kind: PlaceKind::Household,
                    label: "王家".into(),
                    address: Some("东村 12 号".into()),
                    lat: Some(30.5),
                    lon: Some(114.25),
                },
                grid: grid1.clone(),
                contact_name: Some("王伟".into()),
                contact_phone: Some("13800000000".into()),
            },
            TerritoryRow {
                line: 4,
                place: Place {
                    id: "P2".into(),
                    kind: PlaceKind::LedScreen,
                    label: "Screen".into(),
                    address: None,
                    lat: None,
                    lon: None,
                },
                grid: GridInfo {
                    code: "G2".into(),
                    name: "Grid two".into(),
                    village_code: "C1".into(),
                    village_name: "Riverside".into(),
                    village_kind: AreaKind::Community,
                    ..grid1
                },
                contact_name: None,
                contact_phone: None,
            },
        ];
        assert_eq!(rows(&bytes), expected);
    }

    #[test]
    fn line_numbers_count_blank_lines_with_any_line_ending() {
        for newline in ["\n", "\r\n", "\r"] {
            let text = [HEADER, "", &row("P1", "a"), "", "", &row("P2", "b"), "P3,shop"].join(newline);
            let errs = errors(text.as_bytes());
            assert_eq!(errs.len(), 1, "{newline:?}: {errs:#?}");
            assert_eq!(errs[0].line, 7, "{newline:?}");
            let fixed = text.replace("P3,shop", "");
            let lines: Vec<u64> = rows(fixed.as_bytes()).iter().map(|r| r.line).collect();
            assert_eq!(lines, vec![3, 6], "{newline:?}");
        }
    }

    #[test]
    fn rows_are_read_again_grid_by_grid_in_line_order() {
        // Grids interleaved, CRLF endings, a blank line, quoted fields and an identical repeat.
        let g2 = |id: &str, label: &str| row(id, label).replace("G1,Grid one", "G2,Grid two");
        let text =
            [HEADER, &row("P1", "a"), &g2("P2", "\"b, quoted\""), "", &row("P3", "c"), &g2("P4", "d"), &row("P1", "a")]
                .join("\r\n");
        let territory = parse_territory_csv(text.as_bytes(), default_campaign()).unwrap();
        assert_eq!(territory.row_count(), 4);
        let grids: Vec<(&str, u64)> = territory.grids().map(|(g, line)| (g.code.as_str(), line)).collect();
        assert_eq!(grids, vec![("G1", 2), ("G2", 3)]);
        let read = |g: usize| -> Vec<(u64, String, String)> {
            let rows = territory.grid_rows(g).unwrap();
            rows.into_iter().map(|r| (r.line, r.place.id, r.place.label)).collect()
        };
        assert_eq!(read(0), vec![(2, "P1".into(), "a".into()), (5, "P3".into(), "c".into())]);
        assert_eq!(read(1), vec![(3, "P2".into(), "b, quoted".into()), (6, "P4".into(), "d".into())]);
        assert_eq!(territory.rows().unwrap().iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 3, 5, 6]);
    }

    #[test]
    fn quoted_fields_may_contain_commas_and_quotes() {
        let bytes = csv(&[
            HEADER,
            r#"P1,shop,"Li's shop, north gate",G1,"Grid, one",V1,East village,village,T1,Town,"No. 5, ""Old"" Street",,,,"#,
        ]);
        let rows = rows(&bytes);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].place.label, "Li's shop, north gate");
        assert_eq!(rows[0].grid.name, "Grid, one");
        assert_eq!(rows[0].place.address.as_deref(), Some("No. 5, \"Old\" Street"));
    }

    #[test]
    fn line_numbers_are_physical_after_a_multi_line_field() {
        // The quoted line break is itself an error, and the next record starts on line 4.
        let bytes = csv(&[
            HEADER,
            "P1,shop,\"two",
            "lines\",G1,Grid one,V1,East village,village,T1,Town,,,,,",
            &row("P2", "ok").replace("household", "castle"),
        ]);
        let errs = errors(&bytes);
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert_eq!(errs[0].line, 2);
        assert!(errs[0].message.contains("column label"), "{:?}", errs[0]);
        assert!(errs[0].message.contains("U+000A"), "{:?}", errs[0]);
        assert_eq!(errs[1].line, 4);
        assert!(errs[1].message.contains("castle"), "{:?}", errs[1]);
    }

    #[test]
    fn columns_in_any_order_case_and_spacing() {
        let bytes = csv(&[
            " Town_Name ,TOWN_CODE,village_kind,village_name,village_code,grid_name,grid_code,label,kind,place_id,lon,lat",
            "Town,T1,community,Riverside,C1,Grid one,G1,Market hall,market,P9,114.5,-30",
        ]);
        let rows = rows(&bytes);
        assert_eq!(
            rows,
            vec![TerritoryRow {
                line: 2,
                place: Place {
                    id: "P9".into(),
                    kind: PlaceKind::Market,
                    label: "Market hall".into(),
                    address: None,
                    lat: Some(-30.0),
                    lon: Some(114.5),
                },
                grid: GridInfo {
                    code: "G1".into(),
                    name: "Grid one".into(),
                    village_code: "C1".into(),
                    village_name: "Riverside".into(),
                    village_kind: AreaKind::Community,
                    town_code: "T1".into(),
                    town_name: "Town".into(),
                },
                contact_name: None,
                contact_phone: None,
            }]
        );
    }

    #[test]
    fn unknown_kind_lists_accepted_values() {
        let bytes = csv(&[HEADER, &row("P1", "a"), &row("P2", "b").replace("household", "castle")]);
        assert_single_error(&bytes, 3, &["column kind", "\"castle\"", "market (集贸市场)"]);
    }

    #[test]
    fn village_kind_must_be_village_or_community() {
        let bytes = csv(&[HEADER, &row("P1", "a").replace(",village,", ",镇,")]);
        assert_single_error(&bytes, 2, &["column village_kind", "village (村), community (社区)"]);
        let errs = errors(&bytes);
        assert!(!errs[0].message.contains("district"), "{errs:?}");
    }

    #[test]
    fn header_problems_are_reported_on_line_1() {
        let without_label = HEADER.replace(",label,", ",");
        let bytes = csv(&[&without_label, "P1,household,G1,Grid,V1,V,village,T1,Town,,,,,"]);
        assert_single_error(&bytes, 1, &["missing column label"]);

        let doubled = format!("{HEADER},Lat");
        assert_single_error(&csv(&[&doubled]), 1, &["column lat appears more than once"]);

        let unknown = format!("{HEADER},colour");
        assert_single_error(
            &csv(&[&unknown, &format!("{},red", row("P1", "a"))]),
            1,
            &["unknown column \"colour\"", "accepted columns: place_id, kind,", "lon"],
        );
    }

    #[test]
    fn duplicate_place_ids() {
        // An identical repeat (even spelled differently) is kept once, at its first line.
        let same = csv(&[HEADER, &row("P1", "a"), &row("P2", "b"), &row(" P1 ", "a").replace("household", "户")]);
        let rows = rows(&same);
        assert_eq!(rows.iter().map(|r| (r.line, r.place.id.as_str())).collect::<Vec<_>>(), vec![(2, "P1"), (3, "P2")]);

        let different = csv(&[HEADER, &row("P1", "a"), &row("P2", "b"), &row("P1", "c")]);
        assert_single_error(&different, 4, &["place_id \"P1\"", "on line 2", "(label)"]);
    }

    #[test]
    fn invalid_utf8_is_reported_with_its_line() {
        let mut bytes = csv(&[HEADER, &row("P1", "a")]);
        // "王" in GBK: what Excel produces when the sheet is not saved as UTF-8.
        bytes.extend(b"P2,household,\xCD\xF5,G1,Grid one,V1,East village,village,T1,Town,,,,,\n");
        assert_single_error(&bytes, 3, &["column label is not valid UTF-8"]);

        let header = [HEADER.as_bytes(), b",\xFF\n", row("P1", "a").as_bytes()].concat();
        assert_single_error(&header, 1, &["header field 16 is not valid UTF-8"]);
    }

    #[test]
    fn wrong_field_count() {
        let bytes = csv(&[
            HEADER,
            &row("P1", "a"),
            "P2,household,Li, north gate,G1,Grid one,V1,East village,village,T1,Town,,,,,",
            "P3,household",
        ]);
        let errs = errors(&bytes);
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert_eq!((errs[0].line, errs[1].line), (3, 4));
        assert!(errs[0].message.contains("found 16 fields but the header has 15"));
        assert!(errs[1].message.contains("found 2 fields"));
    }

    #[test]
    fn bad_coordinates() {
        let with =
            |lat: &str, lon: &str| csv(&[HEADER, &row("P1", "a"), &row_with("P2", "b", &format!(",,,{lat},{lon}"))]);
        assert!(parse_territory_csv(&with("-90", "180"), default_campaign()).is_ok());
        assert_single_error(&with("91", "10"), 3, &["column lat", "outside -90..90"]);
        assert_single_error(&with("10", "-180.5"), 3, &["column lon", "outside -180..180"]);
        assert_single_error(&with("NaN", "10"), 3, &["column lat"]);
        assert_single_error(&with("north", "10"), 3, &["column lat", "not a number"]);
        assert_single_error(&with("10", ""), 3, &["column lon: empty while lat is given"]);
        assert_single_error(&with("", "10"), 3, &["column lat: empty while lon is given"]);
    }

    #[test]
    fn bad_identifiers_and_text() {
        let bytes = csv(&[HEADER, &row("P1", "a"), &row("P 2", "b")]);
        assert_single_error(&bytes, 3, &["column place_id", "\"P 2\"", "not a valid identifier"]);

        let bytes = csv(&[HEADER, &row("P1", "a").replace("G1", "网格1")]);
        assert_single_error(&bytes, 2, &["column grid_code", "not a valid identifier"]);

        let bytes = csv(&[HEADER, &row("P1", "a\tb")]);
        assert_single_error(&bytes, 2, &["column label", "control character U+0009"]);

        let long = "x".repeat(MAX_TEXT_BYTES + 1);
        let bytes = csv(&[HEADER, &row_with("P1", "a", &format!(",{long},,,"))]);
        assert_single_error(&bytes, 2, &["column contact_name", "longer than 500 bytes"]);

        let bytes = csv(&[HEADER, &row("P1", " ")]);
        assert_single_error(&bytes, 2, &["column label: must not be empty"]);
    }

    #[test]
    fn inconsistent_area_data() {
        let base = row("P1", "a");
        let grid_name = csv(&[HEADER, &base, &row("P2", "b").replace("Grid one", "Grid 1")]);
        assert_single_error(
            &grid_name,
            3,
            &["grid_code \"G1\"", "grid_name \"Grid 1\" disagrees with \"Grid one\" on line 2"],
        );

        let village = csv(&[HEADER, &base, &row("P2", "b").replace("village,T1", "community,T1")]);
        assert_single_error(&village, 3, &["village_code \"V1\"", "village_kind", "line 2"]);

        let town = csv(&[HEADER, &base, &row("P2", "b").replace("Town", "Other town")]);
        assert_single_error(&town, 3, &["town_code \"T1\"", "town_name", "line 2"]);

        let moved = csv(&[HEADER, &base, &row("P2", "b").replace("V1", "V2")]);
        assert_single_error(&moved, 3, &["grid_code \"G1\"", "village_code \"V2\"", "line 2"]);

        let reused = csv(&[HEADER, &base, &row("P2", "b").replace("G1", "V1")]);
        assert_single_error(&reused, 3, &["grid_code \"V1\" is also used as a village_code on line 2"]);
    }

    #[test]
    fn no_rows() {
        for bytes in [b"".to_vec(), UTF8_BOM.to_vec(), csv(&[HEADER]), csv(&[HEADER, "", " ", ",,"])] {
            assert_single_error(&bytes, 1, &["the file has no rows"]);
        }
    }

    #[test]
    fn all_errors_are_reported_in_line_order() {
        let bytes = csv(&[
            HEADER,
            &row("P1", "a"),
            &row("P2", "").replace("household", "castle"),
            &row("P3", "c"),
            "P4,household",
            &row("P1", "changed"),
        ]);
        let errs = errors(&bytes);
        let summary: Vec<(u64, &str)> = errs.iter().map(|e| (e.line, e.message.split(':').next().unwrap())).collect();
        assert_eq!(
            summary,
            vec![
                (3, "column label"),
                (3, "column kind"),
                (5, "found 2 fields but the header has 15; quote values that contain commas"),
                (6, "place_id \"P1\" already appears on line 2 with different data (label)"),
            ]
        );
        assert_eq!(errs[2].to_string(), format!("line 5: {}", errs[2].message));
    }

    #[test]
    fn errors_are_capped() {
        let mut lines = vec![HEADER.to_string()];
        lines.extend((0..150).map(|i| row(&format!("P{i}"), "x").replace("household", "castle")));
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let errs = errors(&csv(&lines));
        assert_eq!(errs.len(), MAX_ERRORS + 1);
        assert_eq!(errs[MAX_ERRORS - 1].line, 101);
        assert_eq!(errs[MAX_ERRORS].line, 151);
        assert!(errs[MAX_ERRORS].message.starts_with("50 more errors omitted"));
    }
}
