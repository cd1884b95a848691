//! Process sampling from Linux /proc: resident memory (VmRSS in
//! `/proc/PID/status`), CPU time (utime + stime in `/proc/PID/stat`, in clock
//! ticks), the whole machine's busy CPU time (`/proc/stat`, to see what else
//! ran during a measurement) and the open-file limit (`/proc/self/limits`).
//!
//! The parsers are pure functions over the file text, tested below.

use std::process::Command;

/// One process to watch.
#[derive(Debug, Clone, Copy)]
pub struct Proc {
    /// Process id.
    pub pid: u32,
    /// Clock ticks per second (`getconf CLK_TCK`).
    pub ticks_per_sec: u64,
}

/// CPU and memory of a process at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// User + system CPU time so far, seconds (all threads).
    pub cpu_s: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
}

impl Proc {
    /// Watch `pid`, reading the clock-tick rate once.
    pub fn new(pid: u32) -> Proc {
        Proc { pid, ticks_per_sec: clock_ticks_per_sec() }
    }

    /// This process (the load generator itself).
    pub fn current() -> Proc {
        Proc::new(std::process::id())
    }

    /// CPU seconds used so far (user + system, every thread).
    pub fn cpu_seconds(&self) -> std::io::Result<f64> {
        let text = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        let ticks = parse_stat_cpu_ticks(&text)
            .ok_or_else(|| std::io::Error::other(format!("cannot parse /proc/{}/stat", self.pid)))?;
        Ok(ticks as f64 / self.ticks_per_sec as f64)
    }

    /// Resident memory, bytes.
    pub fn rss_bytes(&self) -> std::io::Result<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        parse_status_kb(&text, "VmRSS")
            .map(|kb| kb * 1024)
            .ok_or_else(|| std::io::Error::other(format!("no VmRSS in /proc/{}/status", self.pid)))
    }

    /// CPU and RSS now.
    pub fn sample(&self) -> std::io::Result<Sample> {
        Ok(Sample { cpu_s: self.cpu_seconds()?, rss_bytes: self.rss_bytes()? })
    }
}

/// Busy CPU seconds of the whole machine so far (every core, every
/// process): all time in the `cpu` line of `/proc/stat` except idle and
/// iowait.
pub fn machine_busy_seconds() -> std::io::Result<f64> {
    let text = std::fs::read_to_string("/proc/stat")?;
    let ticks = parse_machine_busy_ticks(&text).ok_or_else(|| std::io::Error::other("cannot parse /proc/stat"))?;
    Ok(ticks as f64 / clock_ticks_per_sec() as f64)
}

/// Busy ticks from the aggregate `cpu` line of `/proc/stat`: user + nice +
/// system + irq + softirq + steal (guest time is already inside user).
pub fn parse_machine_busy_ticks(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    let field = |i: usize| v.get(i).copied().unwrap_or(0);
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal guest guest_nice
    Some(field(0) + field(1) + field(2) + field(5) + field(6) + field(7))
}

/// `getconf CLK_TCK`; 100 (the value on every mainstream Linux) if that fails.
pub fn clock_ticks_per_sec() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t: &u64| t > 0)
        .unwrap_or(100)
}

/// utime + stime (fields 14 and 15) from the text of `/proc/PID/stat`.
///
/// The command name (field 2) is in parentheses and may itself contain
/// spaces or parentheses, so fields are counted after the *last* `)`.
pub fn parse_stat_cpu_ticks(text: &str) -> Option<u64> {
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // After ')': field 3 (state) is index 0, so utime (14) is index 11.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `Key:   1234 kB` line of `/proc/PID/status`, in kB.
pub fn parse_status_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let mut parts = rest.split_whitespace();
        let v = parts.next()?.parse().ok()?;
        (parts.next() == Some("kB")).then_some(v)
    })
}

/// Soft limit on open files from the text of `/proc/self/limits`
/// (`None` for "unlimited" or when absent).
pub fn parse_open_files_limit(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// This process's soft open-files limit, if known.
pub fn open_files_limit() -> Option<u64> {
    parse_open_files_limit(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields() {
        let text = "12345 (thingport) S 1 12345 12345 0 -1 4194560 2264 0 0 0 731 42 0 0 20 0 3 0 123 1000 200 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(text), Some(773));
        // A command name with spaces and a closing parenthesis.
        let text = "7 (a b) c)) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_stat_cpu_ticks(text), Some(11));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_fields() {
        let text = "Name:\tmosquitto\nVmPeak:\t   20000 kB\nVmRSS:\t    6144 kB\nThreads:\t1\n";
        assert_eq!(parse_status_kb(text, "VmRSS"), Some(6144));
        assert_eq!(parse_status_kb(text, "VmPeak"), Some(20000));
        assert_eq!(parse_status_kb(text, "VmHWM"), None);
        assert_eq!(parse_status_kb(text, "Threads"), None);
    }

    #[test]
    fn machine_stat() {
        let text = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\nintr 1\n";
        assert_eq!(parse_machine_busy_ticks(text), Some(161));
        assert_eq!(parse_machine_busy_ticks("cpu0 1 2 3 4\n"), None);
        assert!(machine_busy_seconds().unwrap() > 0.0);
    }

    #[test]
    fn limits_file() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             95432                95432                processes \n\
                    Max open files            65536                65536                files     \n";
        assert_eq!(parse_open_files_limit(text), Some(65536));
        let text = "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files_limit(text), None);
    }

    #[test]
    fn sample_self() {
        let p = Proc::current();
        let s = p.sample().unwrap();
        assert!(s.rss_bytes > 0);
        assert!(s.cpu_s >= 0.0);
    }
}
