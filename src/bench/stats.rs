//! Latency summaries: nearest-rank percentiles over measured durations, in milliseconds.

use std::time::Duration;

use serde::Serialize;

/// p50/p99/max of a set of latencies, in milliseconds (rounded to 0.01 ms).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Nearest-rank percentile (`p` in 0..=100) of sorted values; `None` when there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

/// Summarises latencies (any order). Empty input gives zeros with `samples: 0`.
pub fn summarize(mut values: Vec<Duration>) -> Latency {
    values.sort_unstable();
    let at = |p| percentile(&values, p).map(ms).unwrap_or(0.0);
    Latency {
        samples: values.len(),
        p50_ms: at(50.0),
        p99_ms: at(99.0),
        max_ms: at(100.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let hundred: Vec<u64> = (1..=100).collect();
        let cases: &[(&[u64], f64, Option<u64>)] = &[
            (&[], 50.0, None),
            (&[7], 50.0, Some(7)),
            (&[7], 99.0, Some(7)),
            (&[1, 2], 50.0, Some(1)),
            (&[1, 2], 99.0, Some(2)),
            (&hundred, 50.0, Some(50)),
            (&hundred, 99.0, Some(99)),
            (&hundred, 100.0, Some(100)),
            (&hundred, 0.0, Some(1)),
        ];
        for (values, p, want) in cases {
            let got = percentile(&millis(values), *p).map(|d| d.as_millis() as u64);
            assert_eq!(got, *want, "p{p} of {values:?}");
        }
    }

    #[test]
    fn summary_sorts_and_reports_milliseconds() {
        let s = summarize(millis(&[30, 10, 20]));
        assert_eq!(
            s,
            Latency {
                samples: 3,
                p50_ms: 20.0,
                p99_ms: 30.0,
                max_ms: 30.0
            }
        );
        assert_eq!(summarize(vec![]).samples, 0);
        assert_eq!(summarize(vec![Duration::from_micros(1234)]).p50_ms, 1.23);
    }
}
