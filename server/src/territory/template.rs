//! The territory file templates the dashboard offers: every column the reader accepts (`csv::column_names`), in
//! its order, and two example rows, as CSV and as an .xlsx workbook, both of which import as they are.

use crate::territory::csv::column_names;
use rust_xlsxwriter::{Format, Workbook, XlsxError};

/// Two places of one grid, a household and a shop, with every column filled in.
const EXAMPLES: [[&str; 15]; 2] = [
    [
        "V01-G1-001",
        "household",
        "1组3号",
        "V01-G1",
        "东村一网格",
        "V01",
        "东村",
        "village",
        "T01",
        "城关镇",
        "东村1组3号",
        "王伟",
        "13800000000",
        "30.5",
        "114.25",
    ],
    [
        "V01-G1-002",
        "shop",
        "东村小卖部",
        "V01-G1",
        "东村一网格",
        "V01",
        "东村",
        "village",
        "T01",
        "城关镇",
        "",
        "",
        "",
        "",
        "",
    ],
];

/// The CSV template, UTF-8 with a byte-order mark so that Excel and WPS open it as UTF-8.
pub fn csv_template() -> Vec<u8> {
    let mut text = String::from("\u{FEFF}");
    text.push_str(&column_names().map(|(name, _)| name).collect::<Vec<_>>().join(","));
    text.push('\n');
    for row in EXAMPLES {
        text.push_str(&row.join(","));
        text.push('\n');
    }
    text.into_bytes()
}

/// The same as a workbook: required columns' headers bold, codes and phone numbers stored as text so that a
/// spreadsheet does not turn them into numbers.
pub fn xlsx_template() -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("territory")?;
    let required = Format::new().set_bold();
    let text = Format::new().set_num_format("@");
    for (column, (name, mandatory)) in column_names().enumerate() {
        let column = column as u16;
        if mandatory {
            sheet.write_string_with_format(0, column, name, &required)?;
        } else {
            sheet.write_string(0, column, name)?;
        }
        sheet.set_column_width(column, 14)?;
        for (row, example) in EXAMPLES.iter().enumerate() {
            let value = example[column as usize];
            let row = row as u32 + 1;
            if value.is_empty() {
                continue;
            }
            match (name, value.parse::<f64>()) {
                ("lat" | "lon", Ok(number)) => {
                    sheet.write_number(row, column, number)?;
                }
                _ => {
                    sheet.write_string_with_format(row, column, value, &text)?;
                }
            }
        }
    }
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::territory::csv::{parse_territory_file, Numbering};
    use client_core::campaign::Campaign;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    fn rows(bytes: &[u8], numbering: Numbering) -> Vec<crate::territory::csv::TerritoryRow> {
        let campaign = Arc::new(Campaign::default_campaign().clone());
        let territory = parse_territory_file(bytes, campaign, numbering, &AtomicU64::new(0)).expect("valid template");
        territory.rows().unwrap()
    }

    /// Both templates are valid territory files, with the same places.
    #[test]
    fn templates_import_as_they_are() {
        let from_csv = rows(&csv_template(), Numbering::PhysicalLines);
        let dir = tempfile::tempdir().unwrap();
        let workbook = xlsx_template().unwrap();
        let converted = crate::territory::xlsx::to_csv(&workbook, dir.path(), &AtomicU64::new(0)).unwrap();
        let from_xlsx = rows(&converted, Numbering::Records);
        assert_eq!(from_csv.len(), 2);
        assert_eq!(from_csv, from_xlsx);
        assert_eq!(from_xlsx[0].contact_phone.as_deref(), Some("13800000000"));
        assert_eq!(from_xlsx[0].place.lat, Some(30.5));
    }
}
