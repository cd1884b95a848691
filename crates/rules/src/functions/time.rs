//! `parse_time` (milliseconds to text, Joda-Time patterns) and
//! `time_to_epoch` (text to milliseconds, `java.time` patterns).
//!
//! Supported pattern letters: `G` era, `y`/`Y`/`u` year (`yy` two digits),
//! `M`/`L` month (`M`, `MM`, `MMM` = Jan, `MMMM` = January), `d` day, `D`
//! day of year, `E` day name (`EEE` = Mon, `EEEE` = Monday), `e` ISO day
//! number, `a` AM/PM, `H` 0–23, `k` 1–24, `h` 1–12, `K` 0–11, `m`, `s`,
//! `S` fraction of a second, `z` zone abbreviation, `Z` offset (`+0100`;
//! `ZZ` = `+01:00`; `ZZZ` = zone id), `X`/`x` ISO offset (`X` prints `Z` for
//! UTC), `VV` zone id, and `'text'` literals (`''` for a quote). Any other
//! letter makes the result `Undefined`.
//!
//! Time zones (the optional third argument of `parse_time`, and zones in
//! text read by `time_to_epoch`): `UTC`, `GMT`, `UT`, `Z`, fixed offsets
//! (`+05:30`, `-0800`, `UTC+01:00`, `GMT-8`, `Etc/GMT+5` with POSIX's
//! inverted sign), and a table of common IANA zones: those without daylight
//! saving time, plus the United States, European Union and south-east
//! Australian zones with today's daylight-saving rules (applied to every
//! year, so dates before 2007 in US zones can be an hour off). Other zones
//! are `Undefined`; there is no full time-zone database in this crate.

use crate::value::Value;

const MS_PER_DAY: i64 = 86_400_000;
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// 0 = Sunday.
fn weekday(days: i64) -> usize {
    (days + 4).rem_euclid(7) as usize
}

/// Day of month of the n-th (1-based) Sunday, or the last when `n` is 0.
fn sunday(y: i64, m: u32, n: u32) -> u32 {
    if n == 0 {
        let last = days_in_month(y, m);
        let wd = weekday(days_from_civil(y, m, last)) as u32;
        last - wd
    } else {
        let wd = weekday(days_from_civil(y, m, 1)) as u32;
        1 + (7 - wd) % 7 + 7 * (n - 1)
    }
}

/// Daylight-saving rules.
#[derive(Clone, Copy, PartialEq)]
enum Dst {
    None,
    /// Second Sunday of March 02:00 local to first Sunday of November 02:00 local.
    Us,
    /// Last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC.
    Eu,
    /// First Sunday of October 02:00 standard to first Sunday of April 03:00 daylight.
    AuSouth,
}

/// A time zone: a standard offset and an optional daylight-saving rule.
#[derive(Clone)]
struct Zone {
    id: String,
    std_secs: i64,
    dst: Dst,
    std_name: String,
    dst_name: String,
}

const KNOWN: &[(&str, i64, Dst, &str, &str)] = &[
    ("America/New_York", -5 * 3600, Dst::Us, "EST", "EDT"),
    ("US/Eastern", -5 * 3600, Dst::Us, "EST", "EDT"),
    ("America/Detroit", -5 * 3600, Dst::Us, "EST", "EDT"),
    ("America/Toronto", -5 * 3600, Dst::Us, "EST", "EDT"),
    ("America/Chicago", -6 * 3600, Dst::Us, "CST", "CDT"),
    ("US/Central", -6 * 3600, Dst::Us, "CST", "CDT"),
    ("America/Denver", -7 * 3600, Dst::Us, "MST", "MDT"),
    ("US/Mountain", -7 * 3600, Dst::Us, "MST", "MDT"),
    ("America/Los_Angeles", -8 * 3600, Dst::Us, "PST", "PDT"),
    ("US/Pacific", -8 * 3600, Dst::Us, "PST", "PDT"),
    ("America/Vancouver", -8 * 3600, Dst::Us, "PST", "PDT"),
    ("America/Anchorage", -9 * 3600, Dst::Us, "AKST", "AKDT"),
    ("America/Phoenix", -7 * 3600, Dst::None, "MST", "MST"),
    ("America/Belize", -6 * 3600, Dst::None, "CST", "CST"),
    ("America/Regina", -6 * 3600, Dst::None, "CST", "CST"),
    ("America/Mexico_City", -6 * 3600, Dst::None, "CST", "CST"),
    ("America/Bogota", -5 * 3600, Dst::None, "COT", "COT"),
    ("America/Lima", -5 * 3600, Dst::None, "PET", "PET"),
    ("America/Sao_Paulo", -3 * 3600, Dst::None, "BRT", "BRT"),
    ("America/Argentina/Buenos_Aires", -3 * 3600, Dst::None, "ART", "ART"),
    ("Pacific/Honolulu", -10 * 3600, Dst::None, "HST", "HST"),
    ("Europe/London", 0, Dst::Eu, "GMT", "BST"),
    ("Europe/Dublin", 0, Dst::Eu, "GMT", "IST"),
    ("Europe/Lisbon", 0, Dst::Eu, "WET", "WEST"),
    ("Europe/Paris", 3600, Dst::Eu, "CET", "CEST"),
    ("Europe/Berlin", 3600, Dst::Eu, "CET", "CEST"),
    ("Europe/Madrid", 3600, Dst::Eu, "CET", "CEST"),
    ("Europe/Rome", 3600, Dst::Eu, "CET", "CEST"),
    ("Europe/Amsterdam", 3600, Dst::Eu, "CET", "CEST"),
    ("Europe/Brussels", 3600, Dst::Eu, "CET", "CEST"),
    ("Europe/Vienna", 3600, Dst::Eu, "CET", "CEST"),
    ("Europe/Zurich", 3600, Dst::Eu, "CET", "CEST"),
    ("Europe/Stockholm", 3600, Dst::Eu, "CET", "CEST"),
    ("Europe/Oslo", 3600, Dst::Eu, "CET", "CEST"),
    ("Europe/Copenhagen", 3600, Dst::Eu, "CET", "CEST"),
    ("Europe/Warsaw", 3600, Dst::Eu, "CET", "CEST"),
    ("Europe/Prague", 3600, Dst::Eu, "CET", "CEST"),
    ("Europe/Budapest", 3600, Dst::Eu, "CET", "CEST"),
    ("Europe/Athens", 2 * 3600, Dst::Eu, "EET", "EEST"),
    ("Europe/Helsinki", 2 * 3600, Dst::Eu, "EET", "EEST"),
    ("Europe/Bucharest", 2 * 3600, Dst::Eu, "EET", "EEST"),
    ("Europe/Kiev", 2 * 3600, Dst::Eu, "EET", "EEST"),
    ("Europe/Kyiv", 2 * 3600, Dst::Eu, "EET", "EEST"),
    ("Europe/Istanbul", 3 * 3600, Dst::None, "TRT", "TRT"),
    ("Europe/Moscow", 3 * 3600, Dst::None, "MSK", "MSK"),
    ("Africa/Lagos", 3600, Dst::None, "WAT", "WAT"),
    ("Africa/Johannesburg", 2 * 3600, Dst::None, "SAST", "SAST"),
    ("Africa/Cairo", 2 * 3600, Dst::None, "EET", "EET"),
    ("Africa/Nairobi", 3 * 3600, Dst::None, "EAT", "EAT"),
    ("Asia/Dubai", 4 * 3600, Dst::None, "GST", "GST"),
    ("Asia/Karachi", 5 * 3600, Dst::None, "PKT", "PKT"),
    ("Asia/Kolkata", 5 * 3600 + 1800, Dst::None, "IST", "IST"),
    ("Asia/Calcutta", 5 * 3600 + 1800, Dst::None, "IST", "IST"),
    ("Asia/Dhaka", 6 * 3600, Dst::None, "BST", "BST"),
    ("Asia/Bangkok", 7 * 3600, Dst::None, "ICT", "ICT"),
    ("Asia/Jakarta", 7 * 3600, Dst::None, "WIB", "WIB"),
    ("Asia/Shanghai", 8 * 3600, Dst::None, "CST", "CST"),
    ("Asia/Hong_Kong", 8 * 3600, Dst::None, "HKT", "HKT"),
    ("Asia/Singapore", 8 * 3600, Dst::None, "SGT", "SGT"),
    ("Asia/Taipei", 8 * 3600, Dst::None, "CST", "CST"),
    ("Australia/Perth", 8 * 3600, Dst::None, "AWST", "AWST"),
    ("Asia/Tokyo", 9 * 3600, Dst::None, "JST", "JST"),
    ("Asia/Seoul", 9 * 3600, Dst::None, "KST", "KST"),
    ("Australia/Brisbane", 10 * 3600, Dst::None, "AEST", "AEST"),
    ("Australia/Sydney", 10 * 3600, Dst::AuSouth, "AEST", "AEDT"),
    ("Australia/Melbourne", 10 * 3600, Dst::AuSouth, "AEST", "AEDT"),
    ("Australia/Canberra", 10 * 3600, Dst::AuSouth, "AEST", "AEDT"),
];

/// Abbreviations read by `time_to_epoch` (`z`).
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("EST", "America/New_York"),
    ("EDT", "America/New_York"),
    ("CST", "America/Chicago"),
    ("CDT", "America/Chicago"),
    ("MST", "America/Denver"),
    ("MDT", "America/Denver"),
    ("PST", "America/Los_Angeles"),
    ("PDT", "America/Los_Angeles"),
    ("CET", "Europe/Paris"),
    ("CEST", "Europe/Paris"),
    ("EET", "Europe/Athens"),
    ("EEST", "Europe/Athens"),
    ("BST", "Europe/London"),
    ("JST", "Asia/Tokyo"),
    ("IST", "Asia/Kolkata"),
];

fn fixed(id: &str, secs: i64) -> Zone {
    let name = if secs == 0 { "UTC".to_string() } else { offset_text(secs, true) };
    Zone { id: id.to_string(), std_secs: secs, dst: Dst::None, std_name: name.clone(), dst_name: name }
}

/// `+hh:mm` (or `+hhmm` without the colon).
fn offset_text(secs: i64, colon: bool) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let (h, m) = (a / 3600, (a % 3600) / 60);
    if colon {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}")
    }
}

/// Reads `+h`, `+hh`, `+hhmm`, `+hh:mm` (with `-` too); seconds east of UTC.
fn parse_offset(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || rest.matches(':').count() > 1 {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i64>().ok()?, 0),
        4 => (digits[..2].parse::<i64>().ok()?, digits[2..].parse::<i64>().ok()?),
        _ => return None,
    };
    if h > 18 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// A zone by id, abbreviation or offset.
fn zone(id: &str) -> Option<Zone> {
    let upper = id.to_ascii_uppercase();
    match upper.as_str() {
        "UTC" | "GMT" | "UT" | "Z" | "ETC/UTC" | "ETC/GMT" | "ETC/UCT" | "UCT" | "ZULU" => {
            return Some(fixed("UTC", 0))
        }
        _ => {}
    }
    if let Some(rest) = upper.strip_prefix("ETC/GMT") {
        return parse_offset(rest).filter(|s| s % 3600 == 0).map(|s| fixed(id, -s));
    }
    for prefix in ["UTC", "GMT", "UT"] {
        if let Some(rest) = upper.strip_prefix(prefix) {
            if let Some(secs) = parse_offset(rest) {
                return Some(fixed(id, secs));
            }
        }
    }
    if let Some(secs) = parse_offset(id) {
        return Some(fixed(id, secs));
    }
    if let Some((k, std, dst, sn, dn)) = KNOWN.iter().find(|(k, ..)| k.eq_ignore_ascii_case(id)) {
        return Some(Zone {
            id: k.to_string(),
            std_secs: *std,
            dst: *dst,
            std_name: sn.to_string(),
            dst_name: dn.to_string(),
        });
    }
    None
}

impl Zone {
    /// Whether daylight saving time is in force at `utc_ms`.
    fn in_dst(&self, utc_ms: i64) -> bool {
        let h = 3_600_000;
        let std_ms = self.std_secs * 1000;
        let (y, _, _) = civil_from_days((utc_ms + std_ms).div_euclid(MS_PER_DAY));
        let at = |m: u32, n: u32, local_hour: i64, offset_ms: i64| {
            days_from_civil(y, m, sunday(y, m, n)) * MS_PER_DAY + local_hour * h - offset_ms
        };
        match self.dst {
            Dst::None => false,
            Dst::Us => utc_ms >= at(3, 2, 2, std_ms) && utc_ms < at(11, 1, 2, std_ms + h),
            Dst::Eu => utc_ms >= at(3, 0, 1, 0) && utc_ms < at(10, 0, 1, 0),
            Dst::AuSouth => utc_ms >= at(10, 1, 2, std_ms) || utc_ms < at(4, 1, 3, std_ms + h),
        }
    }

    /// Offset (seconds) and abbreviation in force at `utc_ms`.
    fn at(&self, utc_ms: i64) -> (i64, &str) {
        if self.in_dst(utc_ms) {
            (self.std_secs + 3600, &self.dst_name)
        } else {
            (self.std_secs, &self.std_name)
        }
    }

    /// The offset for a local time (the standard one when ambiguous).
    fn offset_for_local(&self, local_ms: i64) -> i64 {
        let std = self.std_secs;
        if self.dst != Dst::None && self.in_dst(local_ms - std * 1000) && self.in_dst(local_ms - (std + 3600) * 1000) {
            std + 3600
        } else {
            std
        }
    }
}

/// One piece of a pattern.
#[derive(Debug, PartialEq)]
enum Piece {
    Field(char, usize),
    Literal(String),
}

fn tokenize(pattern: &str) -> Option<Vec<Piece>> {
    let mut out = Vec::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                out.push(Piece::Literal("'".into()));
                i += 2;
                continue;
            }
            let mut lit = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return None,
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        lit.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        lit.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Piece::Literal(lit));
        } else if c.is_ascii_alphabetic() {
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            out.push(Piece::Field(c, n));
            i += n;
        } else {
            out.push(Piece::Literal(c.to_string()));
            i += 1;
        }
    }
    Some(out)
}

fn pad(n: i64, width: usize) -> String {
    if n < 0 {
        format!("-{:0width$}", n.unsigned_abs())
    } else {
        format!("{n:0width$}")
    }
}

/// Times accepted by both functions: years -100,000 to 100,000.
const MAX_MS: i64 = 3_155_760_000_000_000;

/// Formats `utc_ms` in `zone` by a Joda-style pattern.
fn format(pattern: &str, utc_ms: i64, zone: &Zone) -> Option<String> {
    if !(-MAX_MS..=MAX_MS).contains(&utc_ms) {
        return None;
    }
    let (offset, abbrev) = zone.at(utc_ms);
    let local = utc_ms.checked_add(offset * 1000)?;
    let days = local.div_euclid(MS_PER_DAY);
    let ms_of_day = local.rem_euclid(MS_PER_DAY);
    let (y, mo, d) = civil_from_days(days);
    let (hour, minute, second, milli) =
        (ms_of_day / 3_600_000, (ms_of_day / 60_000) % 60, (ms_of_day / 1000) % 60, ms_of_day % 1000);
    let wd = weekday(days);
    let mut out = String::new();
    for piece in tokenize(pattern)? {
        let (c, n) = match piece {
            Piece::Literal(s) => {
                out.push_str(&s);
                continue;
            }
            Piece::Field(c, n) => (c, n),
        };
        let text = match c {
            'G' => (if y > 0 { "AD" } else { "BC" }).to_string(),
            'y' | 'Y' | 'u' if n == 2 => pad(y.rem_euclid(100), 2),
            'y' | 'Y' | 'u' => pad(y, n),
            'M' | 'L' => match n {
                1 | 2 => pad(i64::from(mo), n),
                3 => MONTHS[mo as usize - 1][..3].to_string(),
                _ => MONTHS[mo as usize - 1].to_string(),
            },
            'd' => pad(i64::from(d), n),
            'D' => pad(days - days_from_civil(y, 1, 1) + 1, n),
            'E' if n <= 3 => DAYS[wd][..3].to_string(),
            'E' => DAYS[wd].to_string(),
            'e' => pad(if wd == 0 { 7 } else { wd as i64 }, n),
            'a' => (if hour < 12 { "AM" } else { "PM" }).to_string(),
            'H' => pad(hour, n),
            'k' => pad(if hour == 0 { 24 } else { hour }, n),
            'h' => pad(if hour % 12 == 0 { 12 } else { hour % 12 }, n),
            'K' => pad(hour % 12, n),
            'm' => pad(minute, n),
            's' => pad(second, n),
            'S' => {
                let ms = format!("{milli:03}");
                if n <= 3 {
                    ms[..n].to_string()
                } else {
                    format!("{ms}{}", "0".repeat(n - 3))
                }
            }
            'z' => abbrev.to_string(),
            'Z' => match n {
                1 => offset_text(offset, false),
                2 => offset_text(offset, true),
                _ => zone.id.clone(),
            },
            'X' | 'x' if offset == 0 && c == 'X' => "Z".to_string(),
            'X' | 'x' => match n {
                1 => {
                    let t = offset_text(offset, false);
                    if offset % 3600 == 0 {
                        t[..3].to_string()
                    } else {
                        t
                    }
                }
                2 => offset_text(offset, false),
                _ => offset_text(offset, true),
            },
            'V' => zone.id.clone(),
            _ => return None,
        };
        out.push_str(&text);
    }
    Some(out)
}

/// `parse_time(pattern, millis[, zone])`.
pub(super) fn parse_time(pattern: &Value, millis: &Value, zone_arg: Option<&Value>) -> Value {
    let Value::String(pattern) = pattern else { return Value::Undefined };
    let Some(ms) = millis.to_int_floor() else { return Value::Undefined };
    let z = match zone_arg {
        None => fixed("UTC", 0),
        Some(Value::String(id)) => match zone(id) {
            Some(z) => z,
            None => return Value::Undefined,
        },
        Some(_) => return Value::Undefined,
    };
    format(pattern, ms, &z).map_or(Value::Undefined, Value::String)
}

/// Reads text by a `java.time` pattern.
struct Reader<'t> {
    text: &'t str,
    pos: usize,
}

impl Reader<'_> {
    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let rest = &self.text[self.pos..];
        let n = rest.bytes().take(max).take_while(u8::is_ascii_digit).count();
        if n < min {
            return None;
        }
        self.pos += n;
        rest[..n].parse().ok()
    }

    fn word(&mut self) -> &str {
        let rest = &self.text[self.pos..];
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '+' | '-' | ':')))
            .unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }

    fn letters(&mut self) -> &str {
        let rest = &self.text[self.pos..];
        let n = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }
}

fn is_numeric_field(p: Option<&Piece>) -> bool {
    matches!(p, Some(Piece::Field(c, _)) if "yYuMLdDHkhKmsS".contains(*c))
}

/// Text to epoch milliseconds.
fn parse(text: &str, pattern: &str) -> Option<i64> {
    let pieces = tokenize(pattern)?;
    let mut r = Reader { text, pos: 0 };
    let (mut year, mut month, mut day) = (1970i64, 1u32, 1u32);
    let (mut hour, mut minute, mut second, mut nanos) = (0i64, 0i64, 0i64, 0i64);
    let mut pm: Option<bool> = None;
    let mut twelve_hour = false;
    let mut bc = false;
    let mut zone_found: Option<Zone> = None;
    let mut offset_found: Option<i64> = None;
    for (i, piece) in pieces.iter().enumerate() {
        let adjacent = is_numeric_field(pieces.get(i + 1));
        let (c, n) = match piece {
            Piece::Literal(s) => {
                let rest = &text[r.pos..];
                if rest.len() < s.len() || !rest.is_char_boundary(s.len()) || !rest[..s.len()].eq_ignore_ascii_case(s) {
                    return None;
                }
                r.pos += s.len();
                continue;
            }
            Piece::Field(c, n) => (*c, *n),
        };
        let width = |n: usize, natural: usize| if n >= 2 { n } else { natural };
        match c {
            'y' | 'Y' | 'u' => {
                if n == 2 {
                    year = 2000 + r.digits(2, 2)?;
                } else {
                    let max = if adjacent { n } else { 9 };
                    year = r.digits(n.min(max), max)?;
                }
            }
            'M' | 'L' => {
                if n >= 3 {
                    let w = r.letters().to_ascii_lowercase();
                    let idx = MONTHS.iter().position(|m| {
                        let m = m.to_ascii_lowercase();
                        if n == 3 {
                            m[..3] == w
                        } else {
                            m == w
                        }
                    })?;
                    month = idx as u32 + 1;
                } else {
                    month = u32::try_from(r.digits(n, width(n, 2))?).ok()?;
                }
            }
            'd' => day = u32::try_from(r.digits(n, width(n, 2))?).ok()?,
            'H' | 'k' => {
                hour = r.digits(n, width(n, 2))?;
                if c == 'k' && hour == 24 {
                    hour = 0;
                }
            }
            'h' | 'K' => {
                hour = r.digits(n, width(n, 2))?;
                twelve_hour = true;
            }
            'm' => minute = r.digits(n, width(n, 2))?,
            's' => second = r.digits(n, width(n, 2))?,
            'S' => {
                let start = r.pos;
                let v = r.digits(n, if adjacent { n } else { 9 })?;
                let len = (r.pos - start) as u32;
                nanos = v * 10i64.pow(9 - len);
            }
            'a' => {
                let w = r.letters().to_ascii_uppercase();
                pm = Some(match w.as_str() {
                    "AM" => false,
                    "PM" => true,
                    _ => return None,
                });
            }
            'E' => {
                let w = r.letters().to_ascii_lowercase();
                if !DAYS.iter().any(|d| d.to_ascii_lowercase() == w || d[..3].to_ascii_lowercase() == w) {
                    return None;
                }
            }
            'G' => {
                let w = r.letters().to_ascii_uppercase();
                bc = match w.as_str() {
                    "AD" => false,
                    "BC" => true,
                    _ => return None,
                };
            }
            'z' | 'V' => {
                let w = r.word().to_string();
                let id =
                    ABBREVIATIONS.iter().find(|(a, _)| a.eq_ignore_ascii_case(&w)).map_or(w.as_str(), |(_, id)| id);
                zone_found = Some(zone(id)?);
            }
            'Z' | 'X' | 'x' => {
                let rest = &text[r.pos..];
                if c == 'X' && rest.starts_with('Z') {
                    r.pos += 1;
                    offset_found = Some(0);
                } else {
                    let n = rest
                        .char_indices()
                        .take_while(|(i, ch)| (*i == 0 && matches!(ch, '+' | '-')) || ch.is_ascii_digit() || *ch == ':')
                        .count();
                    offset_found = Some(parse_offset(&rest[..n])?);
                    r.pos += n;
                }
            }
            _ => return None,
        }
    }
    if r.pos != text.len() {
        return None;
    }
    if twelve_hour {
        if !(1..=12).contains(&hour) && !(0..=11).contains(&hour) {
            return None;
        }
        hour %= 12;
        if pm == Some(true) {
            hour += 12;
        }
    }
    if bc {
        year = 1 - year;
    }
    if !(-100_000..=100_000).contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
    {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let local = days_from_civil(year, month, day)
        .checked_mul(MS_PER_DAY)?
        .checked_add(hour * 3_600_000 + minute * 60_000 + second * 1000 + nanos / 1_000_000)?;
    let offset = match (offset_found, zone_found) {
        (Some(o), _) => o,
        (None, Some(z)) => z.offset_for_local(local),
        (None, None) => 0,
    };
    local.checked_sub(offset * 1000).filter(|ms| (-MAX_MS..=MAX_MS).contains(ms))
}

/// `time_to_epoch(text, pattern)`.
pub(super) fn time_to_epoch(text: &Value, pattern: &Value) -> Value {
    match (text, pattern) {
        (Value::String(t), Value::String(p)) => parse(t, p).map_or(Value::Undefined, Value::Int),
        _ => Value::Undefined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 59, 365, 11_016, 18_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn dst_rules() {
        let la = zone("America/Los_Angeles").unwrap();
        // 2021-03-14 10:00 UTC is 03:00 PDT; 09:59 UTC is 01:59 PST.
        assert!(la.in_dst(1_615_716_000_000));
        assert!(!la.in_dst(1_615_715_940_000));
        let paris = zone("Europe/Paris").unwrap();
        assert_eq!(paris.at(1_625_140_800_000).0, 7200); // July
        assert_eq!(paris.at(1_609_502_400_000).0, 3600); // January
        let syd = zone("Australia/Sydney").unwrap();
        assert_eq!(syd.at(1_609_502_400_000).0, 11 * 3600); // January: summer
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+05:30"), Some(19_800));
        assert_eq!(parse_offset("-0800"), Some(-28_800));
        assert_eq!(parse_offset("+1"), Some(3600));
        assert_eq!(parse_offset("5"), None);
        assert_eq!(zone("Etc/GMT+5").unwrap().std_secs, -18_000);
        assert_eq!(zone("UTC+01:00").unwrap().std_secs, 3600);
        assert!(zone("Mars/Olympus").is_none());
    }
}
