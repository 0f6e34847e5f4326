//! Resolution of `spec.noise` (the storm breaker's limit). Pure, no PSA call: the reconciler
//! and `validate` report the same misses.

use crate::api::{parse_duration, PsaConnectionSpec};
use crate::dispatch::decide::storm::StormLimit;

use super::Unresolved;

/// `noise.maxNewTicketsPerCustomer` as the dispatcher applies it; `None` = no limit.
pub fn storm_limit(spec: &PsaConnectionSpec) -> Result<Option<StormLimit>, Unresolved> {
    let Some(rate) = spec
        .noise
        .as_ref()
        .and_then(|n| n.max_new_tickets_per_customer.as_ref())
    else {
        return Ok(None);
    };
    let per = match parse_duration(&rate.per) {
        Some(d) if !d.is_zero() => d,
        _ => {
            return Err(Unresolved {
                field: "noise.maxNewTicketsPerCustomer.per".into(),
                value: rate.per.clone(),
                problem: "is not a positive duration like 10m, 1h or 30s".into(),
            })
        }
    };
    if rate.count == 0 {
        return Err(Unresolved {
            field: "noise.maxNewTicketsPerCustomer.count".into(),
            value: "0".into(),
            problem: "must be at least 1".into(),
        });
    }
    Ok(Some(StormLimit {
        count: rate.count,
        per,
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn storm_limit_table() {
        let spec = |noise: serde_json::Value| -> PsaConnectionSpec {
            serde_json::from_value(serde_json::json!({"provider": {}, "noise": noise})).unwrap()
        };
        let rate = |count: u32, per: &str| {
            spec(serde_json::json!({"maxNewTicketsPerCustomer": {"count": count, "per": per}}))
        };
        let limit = |count, secs| {
            Ok(Some(StormLimit {
                count,
                per: Duration::from_secs(secs),
            }))
        };
        let table: Vec<(PsaConnectionSpec, Result<Option<StormLimit>, &str>)> = vec![
            (spec(serde_json::Value::Null), Ok(None)),
            (spec(serde_json::json!({})), Ok(None)),
            (rate(20, "10m"), limit(20, 600)),
            (rate(1, "1h30m"), limit(1, 5400)),
            (rate(20, "0s"), Err("noise.maxNewTicketsPerCustomer.per")),
            (rate(20, "soon"), Err("noise.maxNewTicketsPerCustomer.per")),
            (rate(0, "10m"), Err("noise.maxNewTicketsPerCustomer.count")),
        ];
        for (s, want) in table {
            let got = storm_limit(&s).map_err(|u| u.field);
            assert_eq!(got, want.map_err(String::from), "{:?}", s.noise);
        }
    }
}
