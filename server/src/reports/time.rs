//! Calendar arithmetic for reports: months and days in a fixed UTC offset (China Standard Time, +08:00, by
//! default), turned into the millisecond bounds that the SQL tables store.

use crate::http::error::ApiError;
use chrono::{Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc};

/// The campaign's local time when a request names none: China Standard Time (no daylight saving).
pub const DEFAULT_UTC_OFFSET: &str = "+08:00";
pub const DAY_MS: i64 = 24 * 3600 * 1000;

/// Parses `+08:00`, `-05:30`, `Z`. A `+` sent unencoded in a query string arrives as a space; that is accepted.
pub fn parse_offset(s: Option<&str>) -> Result<FixedOffset, ApiError> {
    let raw = s.map(str::trim).filter(|s| !s.is_empty()).unwrap_or(DEFAULT_UTC_OFFSET);
    let bad = || ApiError::bad_request(format!("utc_offset={raw:?} is not an offset such as +08:00 or -05:00"));
    if raw == "Z" {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    let (sign, rest) = match raw.as_bytes()[0] {
        b'+' => (1, &raw[1..]),
        b'-' => (-1, &raw[1..]),
        b'0'..=b'9' => (1, raw),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h.abs() > 14 || !(0..60).contains(&m) || h < 0 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

/// `+08:00` style text of an offset, for report headers.
pub fn offset_text(offset: FixedOffset) -> String {
    let secs = offset.local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", secs.abs() / 3600, secs.abs() % 3600 / 60)
}

/// The first day of `YYYY-MM`.
pub fn parse_month(s: &str) -> Result<NaiveDate, ApiError> {
    let bad = || ApiError::bad_request(format!("month={s:?} is not a month such as 2026-11 (YYYY-MM)"));
    if s.len() != 7 || s.as_bytes()[4] != b'-' {
        return Err(bad());
    }
    let d = NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").map_err(|_| bad())?;
    if !(2000..=2200).contains(&d.year()) {
        return Err(bad());
    }
    Ok(d)
}

pub fn parse_date(name: &str, s: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|d| (2000..=2200).contains(&d.year()))
        .ok_or_else(|| ApiError::bad_request(format!("{name}={s:?} is not a date such as 2026-11-27 (YYYY-MM-DD)")))
}

/// The first day of the month after `first`.
pub fn next_month(first: NaiveDate) -> NaiveDate {
    first.checked_add_months(chrono::Months::new(1)).expect("month in range")
}

pub fn previous_month(first: NaiveDate) -> NaiveDate {
    first.checked_sub_months(chrono::Months::new(1)).expect("month in range")
}

/// Milliseconds since the epoch of the local midnight that starts `day`.
pub fn day_start_ms(day: NaiveDate, offset: FixedOffset) -> i64 {
    offset
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("fixed offsets are unambiguous")
        .timestamp_millis()
}

/// Today's date in the given offset.
pub fn today(offset: FixedOffset) -> NaiveDate {
    Utc::now().with_timezone(&offset).date_naive()
}

/// RFC 3339 text of a millisecond time, in the report's offset.
pub fn time_text(ms: i64, offset: FixedOffset) -> String {
    client_core::grid::doc::millis_to_time(ms).with_timezone(&offset).to_rfc3339()
}

/// Days from `from` to `to` inclusive, refusing reversed or overlong ranges.
pub fn day_range(from: NaiveDate, to: NaiveDate, max_days: i64) -> Result<Vec<NaiveDate>, ApiError> {
    if to < from {
        return Err(ApiError::bad_request(format!("from={from} is after to={to}")));
    }
    let n = (to - from).num_days() + 1;
    if n > max_days {
        return Err(ApiError::bad_request(format!("a series covers at most {max_days} days; this asks for {n}")));
    }
    Ok((0..n).map(|i| from + Duration::days(i)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_months_parse_strictly() {
        assert_eq!(parse_offset(None).unwrap().local_minus_utc(), 8 * 3600);
        assert_eq!(parse_offset(Some(" 08:00")).unwrap().local_minus_utc(), 8 * 3600);
        assert_eq!(parse_offset(Some("-05:30")).unwrap().local_minus_utc(), -(5 * 3600 + 1800));
        assert_eq!(offset_text(parse_offset(Some("-05:30")).unwrap()), "-05:30");
        for bad in ["8", "+8", "+25:00", "+08:75", "abc"] {
            assert!(parse_offset(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(parse_month("2026-11").unwrap(), NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "2026-11-01", ""] {
            assert!(parse_month(bad).is_err(), "{bad}");
        }
        let dec = parse_month("2026-12").unwrap();
        assert_eq!(next_month(dec), NaiveDate::from_ymd_opt(2027, 1, 1).unwrap());
        assert_eq!(previous_month(parse_month("2026-01").unwrap()), NaiveDate::from_ymd_opt(2025, 12, 1).unwrap());
    }

    #[test]
    fn local_midnight_is_offset_from_utc() {
        let cst = parse_offset(None).unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        // 2026-11-01T00:00+08:00 is 2026-10-31T16:00Z.
        assert_eq!(day_start_ms(d, cst), Utc.with_ymd_and_hms(2026, 10, 31, 16, 0, 0).unwrap().timestamp_millis());
        assert!(day_range(d, d - Duration::days(1), 10).is_err());
        assert_eq!(day_range(d, d + Duration::days(2), 10).unwrap().len(), 3);
        assert!(day_range(d, d + Duration::days(20), 10).is_err());
    }
}
