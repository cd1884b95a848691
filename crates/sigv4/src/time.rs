//! Timestamp formatting and parsing. All times are unix seconds (UTC); the
//! crate never reads a clock.

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

fn from_parts(year: i64, month: i64, day: i64, hour: i64, min: i64, sec: i64) -> Option<i64> {
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&min)
        && (0..60).contains(&sec);
    valid.then(|| days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Format unix seconds as the SigV4 timestamp, ISO 8601 basic format
/// `YYYYMMDD'T'HHMMSS'Z'` (e.g. `20150830T123600Z`).
pub fn format_amz_date(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Parse a SigV4 timestamp (`YYYYMMDD'T'HHMMSS'Z'`, exactly 16 characters)
/// into unix seconds. Anything else, including impossible dates, is `None`.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    from_parts(
        digits(s.get(0..4)?)?,
        digits(s.get(4..6)?)?,
        digits(s.get(6..8)?)?,
        digits(s.get(9..11)?)?,
        digits(s.get(11..13)?)?,
        digits(s.get(13..15)?)?,
    )
}

/// Parse an HTTP `Date` header in IMF-fixdate form
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), also with a `UTC`, `+0000` or `-0000`
/// zone (botocore sends `-0000` when a request carries a `Date` header); the
/// weekday is not checked.
pub(crate) fn parse_http_date(s: &str) -> Option<i64> {
    let mut parts = s.split_ascii_whitespace();
    let weekday = parts.next()?;
    if !weekday.ends_with(',') {
        return None;
    }
    let day = parts.next()?;
    let month = parts.next()?;
    let year = parts.next()?;
    let time = parts.next()?;
    let zone = parts.next()?;
    if !matches!(zone, "GMT" | "UTC" | "+0000" | "-0000") || parts.next().is_some() || day.len() != 2 || year.len() != 4
    {
        return None;
    }
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let mut hms = time.split(':');
    let (h, m, sec) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() || h.len() != 2 || m.len() != 2 || sec.len() != 2 {
        return None;
    }
    from_parts(digits(year)?, month, digits(day)?, digits(h)?, digits(m)?, digits(sec)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_TIME: i64 = 1_440_938_160; // 2015-08-30T12:36:00Z

    #[test]
    fn formats_and_parses() {
        assert_eq!(format_amz_date(VECTOR_TIME), "20150830T123600Z");
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(VECTOR_TIME));
        assert_eq!(format_amz_date(0), "19700101T000000Z");
        assert_eq!(parse_amz_date("20000229T235959Z"), Some(951_868_799));
        assert_eq!(format_amz_date(951_868_799), "20000229T235959Z");
        assert_eq!(format_amz_date(-1), "19691231T235959Z");
    }

    #[test]
    fn rejects_bad_timestamps() {
        for s in [
            "",
            "20150830T123600",
            "20150830t123600Z",
            "2015083OT123600Z",
            "20150230T123600Z",
            "20190229T000000Z",
            "20151330T123600Z",
            "20150830T243600Z",
            "20150830T126000Z",
            "+0150830T123600Z",
            "2015-08-30T12:36:00Z",
            "20150830T1236ሴZ",
        ] {
            assert_eq!(parse_amz_date(s), None, "{s}");
        }
    }

    #[test]
    fn roundtrips_many_days() {
        let mut t = -10_000_000_000_i64;
        while t < 10_000_000_000 {
            assert_eq!(parse_amz_date(&format_amz_date(t)), Some(t), "{t}");
            t += 7_777_777;
        }
    }

    #[test]
    fn http_date() {
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"), Some(VECTOR_TIME));
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 -0000"), Some(VECTOR_TIME));
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 +0100"), None);
        assert_eq!(parse_http_date("Sun 30 Aug 2015 12:36:00 GMT"), None);
        assert_eq!(parse_http_date("Sun, 31 Sep 2015 12:36:00 GMT"), None);
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36 GMT"), None);
    }

    #[test]
    fn extreme_values_do_not_panic() {
        for t in [i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1] {
            let _ = format_amz_date(t);
        }
    }
}
