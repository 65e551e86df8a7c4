//! Report tables as spreadsheets: the cells a report row holds, and the one XLSX writer that the CLI's exports
//! and the dashboard's downloads share, so that a report saved either way is the same workbook.

/// A cell of a report table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(u64),
    /// A proportion 0..1, shown as a percentage in tables and spreadsheets.
    Rate(f64),
}

impl Cell {
    /// As a person reads it: a rate as a percentage.
    pub fn display(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Rate(r) => format!("{:.1}%", r * 100.0),
        }
    }

    /// As a program reads it (CSV): a rate as its proportion.
    pub fn plain(&self) -> String {
        match self {
            Cell::Rate(r) => format!("{r:.4}"),
            other => other.display(),
        }
    }
}

/// One sheet: a bold header row, then the rows; rates formatted as percentages, text always as text cells (a
/// spreadsheet never runs one as a formula).
pub fn xlsx(header: &[String], rows: &[Vec<Cell>]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    let bold = Format::new().set_bold();
    let percent = Format::new().set_num_format("0.0%");
    for (c, h) in header.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, h.as_str(), &bold)?;
    }
    for (r, row) in rows.iter().enumerate() {
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
    wb.save_to_buffer()
}
