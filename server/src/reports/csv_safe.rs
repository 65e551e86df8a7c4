//! CSV that spreadsheets cannot run: every CSV Doorstep writes (the gap list over the API, every report and list
//! the CLI writes with `--format csv`) goes through `Writer`, which neutralises each cell a spreadsheet would read
//! as a formula. Labels come from territory files and from volunteers' phones, so a cell such as
//! `=HYPERLINK("http://…")` must reach Excel, LibreOffice or WPS as text (OWASP, "CSV injection").

use std::borrow::Cow;
use std::io::Write;

/// First characters that make a spreadsheet read a cell as a formula. Tab and carriage return are dropped or
/// shift the cell when some spreadsheets read it, leaving the next character first.
pub const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The cell as written: with a single quote in front if it starts like a formula (spreadsheets then show it as
/// text, quote included). A plain number (`-3`, `-0.0500`: a change of coverage) and a lone `-` are left as
/// they are: spreadsheets read them as that number or as text, never as a formula, and a sign is data.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some(first) if FORMULA_STARTS.contains(&first) && !harmless(cell) => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// A lone dash, or a decimal number with an optional sign: digits, optionally a point and more digits.
fn harmless(cell: &str) -> bool {
    if cell == "-" {
        return true;
    }
    let unsigned = cell.strip_prefix(['-', '+']).unwrap_or(cell);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// A CSV writer (the `csv` crate's, RFC 4180 quoting) whose every cell goes through `neutralise`.
pub struct Writer<W: Write>(csv::Writer<W>);

impl<W: Write> Writer<W> {
    pub fn from_writer(out: W) -> Writer<W> {
        Writer(csv::Writer::from_writer(out))
    }

    /// Writes one record (a header too: it is neutralised like any row).
    pub fn write_record<I, T>(&mut self, record: I) -> csv::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        for cell in record {
            self.0.write_field(neutralise(cell.as_ref()).as_bytes())?;
        }
        // An empty record after fields ends the record.
        self.0.write_record(None::<&[u8]>)
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }

    pub fn get_ref(&self) -> &W {
        self.0.get_ref()
    }

    /// The output, once everything is flushed to it.
    pub fn into_inner(self) -> std::io::Result<W> {
        self.0.into_inner().map_err(|e| e.into_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_start_like_formulas_are_written_as_text() {
        for (cell, written) in [
            ("=1+2*3", "'=1+2*3"),
            ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"),
            ("+1+2", "'+1+2"),
            ("-1+2", "'-1+2"),
            ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("--", "'--"),
            ("-1e5", "'-1e5"),
            ("-.5", "'-.5"),
            ("-5.", "'-5."),
            // Left alone: numbers, a lone dash, text starting otherwise (a quote inside is not special).
            ("-3", "-3"),
            ("-0.0500", "-0.0500"),
            ("+7", "+7"),
            ("-", "-"),
            ("1组1号", "1组1号"),
            ("2024-05-01T08:00:00+08:00", "2024-05-01T08:00:00+08:00"),
            ("a=b", "a=b"),
            ("'=x", "'=x"),
            ("", ""),
        ] {
            assert_eq!(neutralise(cell), written, "{cell:?}");
        }
    }

    #[test]
    fn the_writer_neutralises_every_cell_and_quotes_as_csv_does() {
        let mut w = Writer::from_writer(Vec::new());
        w.write_record(["place", "label"]).unwrap();
        w.write_record(["P1", "=HYPERLINK(\"http://x\",\"y\")"]).unwrap();
        w.write_record(vec!["-2".to_string(), "@x, y".to_string()]).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text, "place,label\nP1,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\n-2,\"'@x, y\"\n");
    }
}
