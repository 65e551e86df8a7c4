//! Writing report rows as a table, JSON, CSV or XLSX, to stdout or a file. A file appears only once it is
//! complete: it is written beside its final name and renamed into place, so a failed or interrupted export
//! leaves no partial file (and an older file of that name untouched).

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    Xlsx,
}

/// A cell of a report: the server's, so that a report exported here and one downloaded from the dashboard are
/// the same workbook.
pub use server::reports::sheet::Cell;

/// Rows with a header, plus the same data as JSON values for `--format json`.
pub struct Report {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    pub json: serde_json::Value,
}

/// A header's column names.
pub fn names(columns: &[&str]) -> Vec<String> {
    columns.iter().map(|c| c.to_string()).collect()
}

pub fn write(report: &Report, format: Format, output: Option<&Path>) -> Result<()> {
    let bytes = match format {
        Format::Table => {
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_header(report.header.clone());
            for row in &report.rows {
                t.add_row(row.iter().map(Cell::display).collect::<Vec<_>>());
            }
            format!("{}\n{t}\n", report.title).into_bytes()
        }
        Format::Json => {
            let mut v = serde_json::to_vec_pretty(&report.json)?;
            v.push(b'\n');
            v
        }
        Format::Csv => {
            // Cells that start like formulas are neutralised: reports hold names from territory files and phones.
            let mut w = server::reports::csv_safe::Writer::from_writer(Vec::new());
            w.write_record(&report.header)?;
            for row in &report.rows {
                w.write_record(row.iter().map(Cell::plain))?;
            }
            w.into_inner()?
        }
        Format::Xlsx => {
            let Some(path) = output else {
                bail!("--format xlsx writes a spreadsheet file: add --output FILE.xlsx");
            };
            return write_xlsx(report, path);
        }
    };
    let mut out = Destination::open(output)?;
    out.write_all(&bytes)?;
    out.finish()
}

fn write_xlsx(report: &Report, path: &Path) -> Result<()> {
    let bytes = server::reports::sheet::xlsx(&report.header, &report.rows)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let mut out = Destination::open(Some(path))?;
    out.write_all(&bytes)?;
    out.finish()
}

/// The most data rows one XLSX sheet holds (1,048,576 rows, one of them the header).
pub const XLSX_MAX_ROWS: u32 = 1_048_575;

/// Copies a gap list (the server's JSON: `[`, one row per line, `]`) into an XLSX sheet as it is read, in
/// rust_xlsxwriter's constant-memory mode, so the memory used does not grow with the number of rows. Cells are
/// text cells holding the data as it is (a spreadsheet never runs a text cell), so the JSON is read rather than
/// the CSV, whose cells are neutralised for spreadsheets. Refuses more than `max_rows` rows.
pub fn gaps_to_xlsx(json: impl Read, path: &Path, max_rows: u32) -> Result<()> {
    use rust_xlsxwriter::{Format as XFormat, Workbook};
    use std::io::BufRead;
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet_with_constant_memory();
    let bold = XFormat::new().set_bold();
    for (c, h) in server::reports::gaps::CSV_HEADER.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &bold)?;
        ws.set_column_width(c as u16, 16)?;
    }
    let mut row = 0;
    for line in std::io::BufReader::new(json).lines() {
        let line = line?;
        let line = line.trim().trim_end_matches(',');
        if matches!(line, "" | "[" | "]" | "[]") {
            continue;
        }
        let gap: server::reports::gaps::GapRow =
            serde_json::from_str(line).context("the server sent a gap list row this version cannot read")?;
        if row == max_rows {
            bail!(
                "this export has more than {max_rows} rows, the most one XLSX sheet holds; export it with \
                 --format csv, or narrow it with --area or --grid"
            );
        }
        row += 1;
        for (c, value) in gap.cells().iter().enumerate() {
            ws.write_string(row, c as u16, value.as_ref())?;
        }
    }
    let mut out = Destination::open(Some(path))?;
    let Destination::File { part, .. } = &mut out else { unreachable!("a file destination") };
    wb.save_to_writer(part).with_context(|| format!("cannot write {}", path.display()))?;
    out.finish()
}

/// Where a report goes: standard output, or a file written under a temporary name beside its final one.
pub enum Destination {
    Stdout(std::io::Stdout),
    File { path: PathBuf, part: tempfile::NamedTempFile },
}

impl Destination {
    pub fn open(path: Option<&Path>) -> Result<Destination> {
        let Some(path) = path else { return Ok(Destination::Stdout(std::io::stdout())) };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let part = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Destination::File { path: path.to_path_buf(), part })
    }

    /// The file's name, for messages ("standard output" otherwise).
    pub fn name(&self) -> String {
        match self {
            Destination::Stdout(_) => "standard output".into(),
            Destination::File { path, .. } => path.display().to_string(),
        }
    }

    /// Makes the output complete: flushed, and for a file, on disk under its final name.
    pub fn finish(self) -> Result<()> {
        match self {
            Destination::Stdout(mut out) => Ok(out.flush()?),
            Destination::File { path, mut part } => {
                let context = || format!("cannot write {}", path.display());
                part.flush().with_context(context)?;
                part.as_file().sync_all().with_context(context)?;
                part.persist(&path).map_err(|e| e.error).with_context(context)?;
                Ok(())
            }
        }
    }
}

impl Write for Destination {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Destination::Stdout(out) => out.write(buf),
            Destination::File { part, .. } => part.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Destination::Stdout(out) => out.flush(),
            Destination::File { part, .. } => part.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spreadsheet_over_the_row_limit_is_refused_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gaps.xlsx");
        let row = |id: &str| {
            format!(
                r#"{{"place_id":"{id}","grid":"G1","kind":"household","label":"=1+2","address":null,"reached":[],"missing":["handbook"],"excluded":false,"needs_revisit":false,"last_visit_at":null,"last_outcome":null}}"#
            )
        };
        let json = format!("[\n{},\n{},\n{}\n]\n", row("P1"), row("P2"), row("P3"));
        gaps_to_xlsx(json.as_bytes(), &path, 3).unwrap();
        assert!(path.exists());
        std::fs::remove_file(&path).unwrap();
        let err = gaps_to_xlsx(json.as_bytes(), &path, 2).unwrap_err().to_string();
        assert!(err.contains("more than 2 rows") && err.contains("--format csv"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "nothing is left behind: {left:?}");
        gaps_to_xlsx("[]\n".as_bytes(), &path, 2).unwrap();
    }

    #[test]
    fn a_file_appears_only_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        std::fs::write(&path, "older report\n").unwrap();
        let mut out = Destination::open(Some(&path)).unwrap();
        out.write_all(b"half a rep").unwrap();
        drop(out);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "older report\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "the partial file is gone");
        let mut out = Destination::open(Some(&path)).unwrap();
        out.write_all(b"new report\n").unwrap();
        out.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new report\n");
    }
}
