//! Territory files kept as Excel or WPS workbooks (.xlsx): recognised by their content, and turned into the CSV
//! the territory reader checks, one CSV record per worksheet row, so that there is one validation and its
//! messages name the rows Excel shows.
//!
//! The first worksheet is read a cell at a time (calamine's `XlsxCellReader`) and written to an unnamed temporary
//! file as it goes, so that a million-row workbook costs its shared strings and one row in memory, not a sheet.

use calamine::{DataRef, Reader, Xlsx, XlsxError};
use std::io::{BufWriter, Cursor};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a territory file is, read from its first bytes, never from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    /// A zip archive (an .xlsx workbook), or an OLE compound file: what Excel makes of a password-protected
    /// workbook, and the old .xls format; both are refused with their own message.
    Workbook,
}

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

/// A worksheet holds at most this many rows and columns (Excel's limits); a file claiming more is not a sheet
/// anyone typed, and would only make the converted file huge.
const MAX_ROWS: u32 = 1 << 20;
const MAX_COLUMNS: u32 = 1 << 14;

/// The converted CSV may be as large as a CSV file the server accepts (512 MiB), no larger: a workbook is
/// compressed, and a small one may hold a sheet far larger than that.
const MAX_CONVERTED_BYTES: u64 = 512 * 1024 * 1024;

pub fn detect(bytes: &[u8]) -> Format {
    if bytes.starts_with(ZIP_MAGIC) || bytes.starts_with(OLE_MAGIC) {
        Format::Workbook
    } else {
        Format::Csv
    }
}

/// The first worksheet as CSV, in an unnamed temporary file mapped into memory.
pub struct Converted {
    map: memmap2::Mmap,
}

impl std::ops::Deref for Converted {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

/// Why a workbook cannot be read: for the office, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum WorkbookError {
    #[error("{0}")]
    Unreadable(String),
    /// The temporary file could not be written: the server's disk, not the file.
    #[error("cannot write the converted workbook: {0}")]
    Storage(std::io::Error),
}

fn unreadable(message: impl Into<String>) -> WorkbookError {
    WorkbookError::Unreadable(message.into())
}

fn refused(e: XlsxError) -> WorkbookError {
    match e {
        XlsxError::Password => unreadable(
            "the workbook is password-protected; open it in Excel or WPS, remove the password \
             (File > Info > Protect Workbook) and upload it again",
        ),
        XlsxError::Io(e) => WorkbookError::Storage(e),
        e => unreadable(format!(
            "the file is not a readable .xlsx workbook ({e}); open it in Excel or WPS and save it as \
             \"Excel Workbook (.xlsx)\" or as \"CSV UTF-8\", then upload it again"
        )),
    }
}

/// Reads the first worksheet of `bytes` into CSV written in `dir`: row N of the sheet is record N of the CSV
/// (rows the sheet skips become blank records), numbers are written as the sheet shows them in General format,
/// and `rows_read` follows the rows read.
pub fn to_csv(bytes: &[u8], dir: &Path, rows_read: &AtomicU64) -> Result<Converted, WorkbookError> {
    to_csv_within(bytes, dir, rows_read, MAX_CONVERTED_BYTES)
}

/// `to_csv`, refusing a sheet whose CSV would be larger than `limit` bytes.
fn to_csv_within(bytes: &[u8], dir: &Path, rows_read: &AtomicU64, limit: u64) -> Result<Converted, WorkbookError> {
    let mut workbook = Xlsx::new(Cursor::new(bytes)).map_err(refused)?;
    let Some(sheet) = workbook.sheet_names().into_iter().next() else {
        return Err(unreadable("the workbook has no worksheet"));
    };
    let file = tempfile::tempfile_in(dir).map_err(WorkbookError::Storage)?;
    let bounded = Bounded { inner: BufWriter::with_capacity(1 << 20, file), written: 0, limit };
    let mut out = csv::WriterBuilder::new().flexible(true).from_writer(bounded);
    let mut cells = workbook.worksheet_cells_reader(&sheet).map_err(refused)?;
    let mut rows = RowWriter::default();
    while let Some(cell) = cells.next_cell().map_err(refused)? {
        let (row, column) = cell.get_position();
        if row >= MAX_ROWS || column >= MAX_COLUMNS {
            return Err(unreadable(format!(
                "the worksheet {sheet:?} names a cell beyond Excel's {MAX_ROWS} rows and {MAX_COLUMNS} columns"
            )));
        }
        rows.cell(&mut out, row, column, cell.get_value())?;
        if row.is_multiple_of(1024) {
            rows_read.store(u64::from(row), Ordering::Relaxed);
        }
    }
    rows.finish(&mut out)?;
    rows_read.store(rows.written, Ordering::Relaxed);
    if rows.header_width.is_none() {
        return Err(unreadable(format!(
            "the first worksheet ({sheet:?}) is empty: it needs a header row naming the columns, then a row per place"
        )));
    }
    let bounded = out.into_inner().map_err(|e| storage(e.into_error()))?;
    let file = bounded.inner.into_inner().map_err(|e| storage(e.into_error()))?;
    // SAFETY: the file is unnamed and only this function holds it, so no one changes it while it is mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(WorkbookError::Storage)?;
    Ok(Converted { map })
}

/// Gathers one worksheet row's cells and writes each row as one CSV record, in order.
#[derive(Default)]
struct RowWriter {
    /// The row being gathered (0-based), and its cells' text by column.
    row: Option<u32>,
    fields: Vec<String>,
    /// Records written: the rows before `row`.
    written: u64,
    /// Fields of the header (the first row with a value), up to its last non-empty cell.
    header_width: Option<usize>,
}

type Out = csv::Writer<Bounded>;

/// The converted file, refusing to grow past `limit` bytes.
struct Bounded {
    inner: BufWriter<std::fs::File>,
    written: u64,
    limit: u64,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(std::io::ErrorKind::FileTooLarge.into());
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A write of the converted file failed: the sheet is too large, or the disk failed.
fn storage(e: std::io::Error) -> WorkbookError {
    if e.kind() == std::io::ErrorKind::FileTooLarge {
        return unreadable(format!(
            "the first worksheet holds more text than a territory file may ({} MiB as CSV); import the territory \
             a few towns at a time",
            MAX_CONVERTED_BYTES >> 20
        ));
    }
    WorkbookError::Storage(e)
}

impl RowWriter {
    fn cell(&mut self, out: &mut Out, row: u32, column: u32, value: &DataRef<'_>) -> Result<(), WorkbookError> {
        if self.row != Some(row) {
            if u64::from(row) < self.written + u64::from(self.row.is_some()) {
                return Err(unreadable("the worksheet's rows are out of order; save it again in Excel or WPS"));
            }
            self.flush(out)?;
            self.row = Some(row);
        }
        let text = cell_text(value);
        if !text.is_empty() {
            let column = column as usize;
            if self.fields.len() <= column {
                self.fields.resize(column + 1, String::new());
            }
            self.fields[column] = text;
        }
        Ok(())
    }

    /// Writes the gathered row, after a blank record for every row the sheet skipped before it.
    fn flush(&mut self, out: &mut Out) -> Result<(), WorkbookError> {
        let Some(row) = self.row.take() else { return Ok(()) };
        let write = |out: &mut Out, record: &[&str]| out.write_record(record).map_err(csv_storage);
        // A blank record: the reader skips it but counts it as a row.
        while self.written < u64::from(row) {
            write(out, &["", ""])?;
            self.written += 1;
        }
        while self.fields.last().is_some_and(String::is_empty) {
            self.fields.pop();
        }
        if self.fields.is_empty() {
            write(out, &["", ""])?;
        } else {
            // Short rows are padded to the header, as a spreadsheet's CSV export does; cells past it stay, and
            // the reader reports them.
            let width = *self.header_width.get_or_insert(self.fields.len());
            if self.fields.len() < width {
                self.fields.resize(width, String::new());
            }
            out.write_record(&self.fields).map_err(csv_storage)?;
        }
        self.fields.clear();
        self.written += 1;
        Ok(())
    }

    fn finish(&mut self, out: &mut Out) -> Result<(), WorkbookError> {
        self.flush(out)?;
        out.flush().map_err(storage)
    }
}

fn csv_storage(e: csv::Error) -> WorkbookError {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => storage(e),
        other => WorkbookError::Storage(std::io::Error::other(format!("{other:?}"))),
    }
}

/// A cell as a spreadsheet's CSV export writes it: text as it is, numbers as General format shows them.
fn cell_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Empty => String::new(),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => s.to_string(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => number_text(*f),
        // A code or coordinate Excel took for a date keeps its serial number; the reader then says what is wrong.
        DataRef::DateTime(d) => number_text(d.as_f64()),
        DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        DataRef::Error(e) => e.to_string(),
    }
}

/// A number as General format shows it: at most 15 significant digits (what Excel keeps of what was typed), never
/// an exponent, no ".0" for a whole number; so a code typed as a number reads as it was typed.
pub fn number_text(n: f64) -> String {
    if !n.is_finite() {
        return n.to_string();
    }
    let rounded: f64 = format!("{n:.14e}").parse().unwrap_or(n);
    // Rust prints the shortest text that reads back as the same number, in plain positional notation.
    let text = rounded.to_string();
    if text == "-0" {
        "0".to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_typed() {
        assert_eq!(number_text(1.0), "1");
        assert_eq!(number_text(30.5), "30.5");
        assert_eq!(number_text(-114.25), "-114.25");
        assert_eq!(number_text(13_800_000_000.0), "13800000000");
        assert_eq!(number_text(1e20), "100000000000000000000");
        assert_eq!(number_text(0.000_000_1), "0.0000001");
        assert_eq!(number_text(0.1 + 0.2), "0.3");
        assert_eq!(number_text(114.250_000_000_000_01), "114.25");
        assert_eq!(number_text(-0.0), "0");
    }

    #[test]
    fn workbooks_are_told_from_csv_by_content() {
        assert_eq!(detect(b"PK\x03\x04rest"), Format::Workbook);
        assert_eq!(detect(OLE_MAGIC), Format::Workbook);
        assert_eq!(detect(b"place_id,kind\n"), Format::Csv);
        assert_eq!(detect(b""), Format::Csv);
    }

    fn convert(workbook: &mut rust_xlsxwriter::Workbook) -> Result<String, WorkbookError> {
        let bytes = workbook.save_to_buffer().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let read = AtomicU64::new(0);
        let csv = to_csv(&bytes, dir.path(), &read)?;
        Ok(String::from_utf8(csv.to_vec()).unwrap())
    }

    #[test]
    fn rows_become_records_at_their_row_number() {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        // Header on row 2 (after a blank row), a gap at row 4, a line break in a cell, a number as a code.
        for (column, name) in ["place_id", "label", "lat"].iter().enumerate() {
            sheet.write_string(1, column as u16, *name).unwrap();
        }
        sheet.write_number(2, 0, 1001.0).unwrap();
        sheet.write_string(2, 1, "two\nlines").unwrap();
        sheet.write_number(2, 2, 30.5).unwrap();
        sheet.write_string(4, 0, "P2").unwrap();
        let csv = convert(&mut workbook).unwrap();
        assert_eq!(csv, ",\nplace_id,label,lat\n1001,\"two\nlines\",30.5\n,\nP2,,\n");
    }

    #[test]
    fn a_sheet_larger_than_a_territory_file_is_refused() {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        for row in 0..200 {
            sheet.write_string(row, 0, "x".repeat(100)).unwrap();
        }
        let bytes = workbook.save_to_buffer().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let error = to_csv_within(&bytes, dir.path(), &AtomicU64::new(0), 10_000).err().unwrap().to_string();
        assert!(error.contains("holds more text than a territory file may (512 MiB as CSV)"), "{error}");
        assert!(to_csv_within(&bytes, dir.path(), &AtomicU64::new(0), 30_000).is_ok());
    }

    #[test]
    fn an_empty_sheet_has_no_header() {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        workbook.add_worksheet();
        let error = convert(&mut workbook).unwrap_err().to_string();
        assert!(error.contains("is empty: it needs a header row"), "{error}");
    }

    #[test]
    fn corrupt_and_encrypted_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let read = AtomicU64::new(0);
        let error = to_csv(b"PK\x03\x04 not really a zip", dir.path(), &read).err().unwrap().to_string();
        assert!(error.contains("not a readable .xlsx workbook"), "{error}");
        let mut ole = OLE_MAGIC.to_vec();
        ole.extend([0; 512]);
        let error = to_csv(&ole, dir.path(), &read).err().unwrap().to_string();
        assert!(error.contains("not a readable .xlsx workbook") || error.contains("password"), "{error}");
    }
}
