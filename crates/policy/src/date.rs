//! Dates for the `Date…` condition operators: ISO 8601 (`2024-05-01`,
//! `2024-05-01T12:00:00Z`, fractional seconds, `±HH:MM` offsets) or epoch
//! seconds (`1714564800`, optionally with a fraction), as IAM accepts.
//! Parsed into milliseconds since the Unix epoch, without allocating.

/// Milliseconds since 1970-01-01T00:00:00Z, or `None` if `s` is not a date.
pub(crate) fn parse_millis(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-') && !s[1..].contains('-') {
        return epoch(s);
    }
    iso(s)
}

fn epoch(s: &str) -> Option<i64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() || int == "-" || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let ms = frac_millis(frac)?;
    let ms = if int.starts_with('-') { -ms } else { ms };
    secs.checked_mul(1000)?.checked_add(ms)
}

fn frac_millis(frac: &str) -> Option<i64> {
    let mut ms = 0i64;
    for (i, b) in frac.bytes().take(3).enumerate() {
        ms += i64::from(b - b'0') * [100, 10, 1][i];
    }
    Some(ms)
}

fn num(s: &str, len: usize) -> Option<(i64, &str)> {
    let digits = s.get(..len)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, &s[len..]))
}

fn iso(s: &str) -> Option<i64> {
    let (y, r) = num(s, 4)?;
    let r = r.strip_prefix('-')?;
    let (mo, r) = num(r, 2)?;
    let r = r.strip_prefix('-')?;
    let (d, mut r) = num(r, 2)?;
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    let (mut h, mut mi, mut sec, mut ms, mut offset) = (0, 0, 0, 0, 0);
    if let Some(t) = r.strip_prefix('T').or_else(|| r.strip_prefix('t')).or_else(|| r.strip_prefix(' ')) {
        let (hh, t) = num(t, 2)?;
        let t = t.strip_prefix(':')?;
        let (mm, mut t) = num(t, 2)?;
        h = hh;
        mi = mm;
        if let Some(t2) = t.strip_prefix(':') {
            let (ss, t3) = num(t2, 2)?;
            sec = ss;
            t = t3;
            if let Some(f) = t.strip_prefix('.') {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                if n == 0 {
                    return None;
                }
                ms = frac_millis(&f[..n])?;
                t = &f[n..];
            }
        }
        if h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        r = t;
        if r == "Z" || r == "z" {
            r = "";
        } else if let Some(sign) = r.chars().next().filter(|c| *c == '+' || *c == '-') {
            let o = &r[1..];
            let (oh, o) = num(o, 2)?;
            let o = o.strip_prefix(':').unwrap_or(o);
            let (om, o) = num(o, 2)?;
            if !o.is_empty() || oh > 23 || om > 59 {
                return None;
            }
            offset = (oh * 60 + om) * if sign == '+' { 1 } else { -1 };
            r = "";
        }
    }
    if !r.is_empty() {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset * 60;
    Some(secs * 1000 + ms)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(parse_millis("1970-01-01"), Some(0));
        assert_eq!(parse_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_millis("2024-05-01T12:00:00Z"), Some(1_714_564_800_000));
        assert_eq!(parse_millis("2024-05-01T14:00:00+02:00"), Some(1_714_564_800_000));
        assert_eq!(parse_millis("2024-05-01T10:00:00-0200"), Some(1_714_564_800_000));
        assert_eq!(parse_millis("2024-05-01T12:00:00.250Z"), Some(1_714_564_800_250));
        assert_eq!(parse_millis("2024-05-01T12:00Z"), Some(1_714_564_800_000));
        assert_eq!(parse_millis("1714564800"), Some(1_714_564_800_000));
        assert_eq!(parse_millis("1714564800.5"), Some(1_714_564_800_500));
        assert_eq!(parse_millis("2000-02-29"), Some(951_782_400_000));
        assert_eq!(parse_millis("-0.5"), Some(-500));
        assert_eq!(parse_millis("-1"), Some(-1000));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "x",
            "2024-13-01",
            "2023-02-29",
            "2024-05-01T25:00:00Z",
            "2024-05-01Tx",
            "2024-5-1",
            "2024-05-01T12:00:00Zjunk",
            "1.2.3",
            "-",
            "12-3",
            "2024-05-01T12:00:00.Z",
        ] {
            assert_eq!(parse_millis(bad), None, "{bad}");
        }
    }
}
