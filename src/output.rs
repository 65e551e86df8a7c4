//! Writing report rows as a table, JSON, CSV or XLSX, to stdout or a file.

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    Xlsx,
}

/// A cell of a report.
#[derive(Debug, Clone)]
pub enum Cell {
    Text(String),
    Int(u64),
    /// A proportion 0..1, shown as a percentage in tables and spreadsheets.
    Rate(f64),
}

impl Cell {
    fn display(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Rate(r) => format!("{:.1}%", r * 100.0),
        }
    }
    fn plain(&self) -> String {
        match self {
            Cell::Rate(r) => format!("{r:.4}"),
            other => other.display(),
        }
    }
}

/// Rows with a header, plus the same data as JSON values for `--format json`.
pub struct Report {
    pub title: String,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
    pub json: serde_json::Value,
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
            let mut w = csv::Writer::from_writer(Vec::new());
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
    match output {
        Some(path) => std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display())),
        None => {
            std::io::stdout().write_all(&bytes)?;
            Ok(())
        }
    }
}

fn write_xlsx(report: &Report, path: &Path) -> Result<()> {
    use rust_xlsxwriter::{Format as XFormat, Workbook};
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    let bold = XFormat::new().set_bold();
    let percent = XFormat::new().set_num_format("0.0%");
    for (c, h) in report.header.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (r, row) in report.rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (c, cell) in row.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Text(s) => ws.write_string(r, c, s)?,
                Cell::Int(n) => ws.write_number(r, c, *n as f64)?,
                Cell::Rate(x) => ws.write_number_with_format(r, c, *x, &percent)?,
            };
        }
    }
    ws.autofit();
    wb.save(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
