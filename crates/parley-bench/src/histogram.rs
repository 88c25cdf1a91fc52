//! A small log-linear latency histogram: exact below 128 ns, then 64
//! buckets per power of two (under 1.6 % error), up to about 18 minutes.
//! Each receiving client keeps its own (no sharing on the hot path); they
//! are merged at the end.
//!
//! [`Exact`] keeps every sample instead, for a scenario with few of them
//! whose medians are compared to the per cent (the ping-pong: 1.6 % of a
//! bucket is as large as the differences it measures).

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
const LINEAR: u64 = 2 * SUB as u64;
/// Values are clamped to 2^40 ns.
const MAX_MSB: u32 = 40;
const BUCKETS: usize = LINEAR as usize + (MAX_MSB - SUB_BITS) as usize * SUB;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u32>,
    total: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let v = v.min((1u64 << (MAX_MSB + 1)) - 1);
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    LINEAR as usize + (shift as usize - 1) * SUB + ((v >> shift) as usize - SUB)
}

/// The middle of bucket `i`.
fn value_at(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let j = i - LINEAR as usize;
    let shift = (j / SUB + 1) as u32;
    let mantissa = (j % SUB + SUB) as u64;
    (mantissa << shift) + (1u64 << shift) / 2
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram { counts: vec![0; BUCKETS], total: 0, sum: 0, max: 0 }
    }

    #[inline]
    pub fn record(&mut self, ns: u64) {
        let i = index(ns);
        self.counts[i] = self.counts[i].saturating_add(1);
        self.total += 1;
        self.sum += ns as u128;
        self.max = self.max.max(ns);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        self.total += other.total;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// The value at quantile `q` (0..=1), in ns; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c as u64;
            if seen >= rank {
                return value_at(i).min(self.max);
            }
        }
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// Summary in milliseconds for reports.
    pub fn summary_ms(&self) -> serde_json::Value {
        let ms = |ns: u64| (ns as f64 / 1e6 * 1000.0).round() / 1000.0;
        serde_json::json!({
            "count": self.total,
            "p50_ms": ms(self.quantile(0.5)),
            "p99_ms": ms(self.quantile(0.99)),
            "p999_ms": ms(self.quantile(0.999)),
            "max_ms": ms(self.max),
            "mean_ms": ms(self.mean() as u64),
        })
    }
}

/// Every sample kept, for exact quantiles (the same rank rule as
/// [`Histogram::quantile`]).
#[derive(Clone, Default)]
pub struct Exact {
    samples: Vec<u64>,
    sorted: bool,
}

impl Exact {
    pub fn record(&mut self, ns: u64) {
        self.samples.push(ns);
        self.sorted = false;
    }

    pub fn count(&self) -> u64 {
        self.samples.len() as u64
    }

    /// The sample at quantile `q` (0..=1), in ns; 0 when empty.
    pub fn quantile(&mut self, q: f64) -> u64 {
        if self.samples.is_empty() {
            return 0;
        }
        if !self.sorted {
            self.samples.sort_unstable();
            self.sorted = true;
        }
        let n = self.samples.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.samples[rank - 1]
    }

    pub fn max(&self) -> u64 {
        self.samples.iter().copied().max().unwrap_or(0)
    }

    pub fn mean(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        self.samples.iter().map(|&v| v as u128).sum::<u128>() as f64 / self.samples.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_two_percent() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        for (q, want) in [(0.5, 50_000_000.0), (0.99, 99_000_000.0), (0.999, 99_900_000.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.max(), 100_000_000);
    }

    #[test]
    fn exact_quantiles_are_samples() {
        let mut e = Exact::default();
        assert_eq!(e.quantile(0.5), 0);
        for v in (1..=1001u64).rev() {
            e.record(v);
        }
        assert_eq!((e.quantile(0.5), e.quantile(0.999), e.quantile(1.0)), (501, 1000, 1001));
        assert_eq!((e.count(), e.max(), e.mean()), (1001, 1001, 501.0));
    }

    #[test]
    fn buckets_are_monotonic_and_in_range() {
        let mut last = 0;
        for v in [0u64, 1, 127, 128, 129, 255, 256, 1 << 20, 1 << 39, u64::MAX] {
            let i = index(v);
            assert!(i >= last && i < BUCKETS, "{v} -> {i}");
            last = i;
        }
    }
}
