//! A small log-linear latency histogram (HdrHistogram-like): values below
//! 128 are counted exactly; above, each power-of-two range is split into 128
//! buckets, so any reported percentile is within 1/128 (< 0.8 %) of the
//! true value. Fixed memory (about 60 KB), O(1) record, cheap merge.

use serde::Serialize;

/// Sub-bucket bits: 2^7 = 128 buckets per power of two.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Groups: group 0 holds 0..128, group g ≥ 1 holds [128·2^(g-1), 128·2^g).
const GROUPS: usize = 64 - SUB_BITS as usize + 1;

/// Counts of `u64` samples (the bench records nanoseconds).
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

fn index(v: u64) -> usize {
    if v < SUB {
        v as usize
    } else {
        let msb = 63 - v.leading_zeros(); // ≥ SUB_BITS
        let group = msb - SUB_BITS + 1;
        let sub = (v >> (group - 1)) - SUB; // in 0..SUB
        (group as usize) * SUB as usize + sub as usize
    }
}

/// Highest value that lands in bucket `i`.
fn bucket_high(i: usize) -> u64 {
    let group = (i / SUB as usize) as u32;
    let sub = (i % SUB as usize) as u64;
    if group == 0 {
        sub
    } else {
        let low = (SUB + sub) << (group - 1);
        low + ((1u64 << (group - 1)) - 1)
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram { counts: vec![0; GROUPS * SUB as usize], total: 0, min: u64::MAX, max: 0, sum: 0 }
    }

    /// Count one sample.
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    /// Add every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The value at quantile `q` (0..=1): the smallest recorded bucket such
    /// that at least `ceil(q × n)` samples are at or below it, reported as
    /// that bucket's highest value (capped at the largest sample).
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_high(i).min(self.max).max(self.min));
            }
        }
        Some(self.max)
    }

    /// Summary in microseconds, for a histogram of nanoseconds.
    pub fn summary_us(&self) -> LatencySummary {
        let us = |v: Option<u64>| v.map(|ns| ns as f64 / 1000.0);
        LatencySummary {
            count: self.total,
            min_us: us((self.total > 0).then_some(self.min)),
            mean_us: (self.total > 0).then(|| self.sum as f64 / self.total as f64 / 1000.0),
            p50_us: us(self.quantile(0.50)),
            p90_us: us(self.quantile(0.90)),
            p99_us: us(self.quantile(0.99)),
            p999_us: us(self.quantile(0.999)),
            max_us: us((self.total > 0).then_some(self.max)),
        }
    }
}

/// Latency percentiles in microseconds (`None` without samples).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Smallest sample.
    pub min_us: Option<f64>,
    /// Arithmetic mean.
    pub mean_us: Option<f64>,
    /// Median.
    pub p50_us: Option<f64>,
    /// 90th percentile.
    pub p90_us: Option<f64>,
    /// 99th percentile.
    pub p99_us: Option<f64>,
    /// 99.9th percentile.
    pub p999_us: Option<f64>,
    /// Largest sample.
    pub max_us: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        // Every value maps into a bucket whose high end is ≥ the value and
        // whose predecessor's high end is < the value.
        for v in (0..100_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let i = index(v);
            assert!(bucket_high(i) >= v, "v={v}");
            if i > 0 {
                assert!(bucket_high(i - 1) < v, "v={v}");
            }
        }
        assert_eq!(index(u64::MAX), GROUPS * SUB as usize - 1);
    }

    #[test]
    fn exact_below_128() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(1.0), Some(100));
        assert_eq!(h.quantile(0.0), Some(1));
    }

    #[test]
    fn percentiles_within_relative_error() {
        let mut h = Histogram::new();
        for v in 1..=1_000_000u64 {
            h.record(v * 1000); // 1 µs .. 1 s in ns
        }
        for (q, exact) in [(0.5, 500_000_000f64), (0.99, 990_000_000.0), (0.999, 999_000_000.0)] {
            let got = h.quantile(q).unwrap() as f64;
            assert!((got - exact).abs() / exact < 1.0 / 128.0, "q={q} got={got} exact={exact}");
        }
        assert_eq!(h.quantile(1.0), Some(1_000_000_000));
        let s = h.summary_us();
        assert_eq!(s.count, 1_000_000);
        assert!((s.mean_us.unwrap() - 500_000.5).abs() < 0.01);
    }

    #[test]
    fn merge_adds_up() {
        let (mut a, mut b) = (Histogram::new(), Histogram::new());
        for v in 0..500 {
            a.record(v);
            b.record(v + 500);
        }
        a.merge(&b);
        assert_eq!(a.len(), 1000);
        let p50 = a.quantile(0.5).unwrap();
        assert!((496..=503).contains(&p50), "{p50}");
        assert_eq!(a.quantile(1.0), Some(999));
        assert!(Histogram::new().quantile(0.5).is_none());
    }
}
