//! Types shared by the three resources: references, conditions, decimal money.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Reference to an object in the same namespace by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    /// Name of the referenced object in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Reference to a Secret in the same namespace. Secret values never appear in status, Events or logs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret in the same namespace as the referencing resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A name in the PSA that a ticket layer sets (a board, priority, ticket type, issue type), as
/// people write it; at most 256 characters, like the alert values it is matched against.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct PsaName(#[schemars(length(min = 1, max = 256))] pub String);

impl From<&str> for PsaName {
    fn from(name: &str) -> Self {
        PsaName(name.to_string())
    }
}

impl From<PsaName> for String {
    fn from(name: PsaName) -> Self {
        name.0
    }
}

/// A decimal amount of money as a string (`"4.00"`); never a float, so no rounding on the way.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Money(#[schemars(regex(pattern = r"^-?[0-9]{1,12}(\.[0-9]{1,4})?$"))] pub String);

impl Money {
    /// The amount in ten-thousandths (four decimals), exact. `None` when the string is not a decimal.
    pub fn to_minor(&self) -> Option<i64> {
        parse_decimal_4(&self.0)
    }
}

/// Parses a decimal with at most four fraction digits into ten-thousandths.
pub fn parse_decimal_4(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if int.is_empty() || int.len() > 12 || frac.len() > 4 {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: i64 = int.parse().ok()?;
    let mut f = frac.to_string();
    while f.len() < 4 {
        f.push('0');
    }
    v = v.checked_mul(10_000)?.checked_add(f.parse::<i64>().ok()?)?;
    Some(if neg { -v } else { v })
}

/// Formats ten-thousandths as a decimal string with two to four fraction digits (`42000` → `"4.20"`).
pub fn format_decimal_4(v: i64) -> String {
    let neg = v < 0;
    let a = v.unsigned_abs();
    let int = a / 10_000;
    let mut frac = format!("{:04}", a % 10_000);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{}{}.{}", if neg { "-" } else { "" }, int, frac)
}

/// Condition types used on every kind.
pub mod condition_types {
    pub const READY: &str = "Ready";
    pub const SYNCED: &str = "Synced";
    pub const AUTHENTICATED: &str = "Authenticated";
    pub const SETTINGS_RESOLVED: &str = "SettingsResolved";
    pub const SUSPENDED: &str = "Suspended";
    pub const RESOLVED: &str = "Resolved";
    pub const CONTRACT_SYNCED: &str = "ContractSynced";
    /// CustomerMapping: its tickets have a default contact (informational, not part of Ready).
    pub const CONTACT_RESOLVED: &str = "ContactResolved";
    /// PsaConnection: the share used of a request budget the PSA shares with the MSP's other
    /// integrations (Autotask's database threshold); informational, not part of Ready.
    pub const PSA_BUDGET: &str = "PsaBudget";
}

/// Builds a Kubernetes-convention condition. `last_transition_time` is kept from `previous`
/// when the status did not change, so a periodic re-check does not churn the timestamp.
pub fn make_condition(
    previous: &[Condition],
    type_: &str,
    ok: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: k8s_openapi::jiff::Timestamp,
) -> Condition {
    let status = if ok { "True" } else { "False" }.to_string();
    let ltt = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.to_string(),
        status,
        reason: reason.to_string(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: ltt,
    }
}

/// Replaces (by type) or appends `cond` in `conditions`, keeping the list a map keyed by type.
pub fn set_condition(conditions: &mut Vec<Condition>, cond: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == cond.type_) {
        Some(slot) => *slot = cond,
        None => conditions.push(cond),
    }
}

/// Finds a condition by type.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Schema for a conditions list: a list-map keyed by `type`, as Kubernetes conventions ask.
pub fn conditions_schema(gen: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = <Vec<Condition> as JsonSchema>::json_schema(gen);
    let obj = s.ensure_object();
    obj.insert("x-kubernetes-list-type".into(), "map".into());
    obj.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_round_trip_exactly() {
        let cases = [
            ("4.00", Some(40_000)),
            ("1.5", Some(15_000)),
            ("0.0001", Some(1)),
            ("-2.25", Some(-22_500)),
            ("12", Some(120_000)),
            ("1.23456", None),
            ("abc", None),
            ("", None),
            ("1e3", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_decimal_4(input), want, "{input}");
        }
        assert_eq!(format_decimal_4(40_000), "4.00");
        assert_eq!(format_decimal_4(15_001), "1.5001");
        assert_eq!(format_decimal_4(-22_500), "-2.25");
    }

    #[test]
    fn transition_time_kept_when_status_unchanged() {
        let t0 = k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap();
        let t1 = k8s_openapi::jiff::Timestamp::from_second(2_000).unwrap();
        let c0 = make_condition(&[], "Ready", true, "Ok", "fine", Some(1), t0);
        let c1 = make_condition(
            std::slice::from_ref(&c0),
            "Ready",
            true,
            "Ok",
            "fine",
            Some(2),
            t1,
        );
        assert_eq!(c1.last_transition_time.0, t0);
        let c2 = make_condition(&[c1], "Ready", false, "Broken", "no", Some(2), t1);
        assert_eq!(c2.last_transition_time.0, t1);
    }
}

/// Parses a duration like `2s`, `1m30s`, `500ms`, `1h` (the subset of Go durations the schema allows).
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit_ms, len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('s') {
            (1_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else {
            return None;
        };
        rest = &rest[len..];
        total_ms = total_ms.checked_add(n.checked_mul(unit_ms)?)?;
    }
    Some(std::time::Duration::from_millis(total_ms))
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_style_durations() {
        let table = [
            ("2s", Some(Duration::from_secs(2))),
            ("0s", Some(Duration::ZERO)),
            ("1m30s", Some(Duration::from_secs(90))),
            ("500ms", Some(Duration::from_millis(500))),
            ("10m", Some(Duration::from_secs(600))),
            ("1h", Some(Duration::from_secs(3600))),
            ("", None),
            ("5", None),
            ("s", None),
            ("3d", None),
            ("-1s", None),
        ];
        for (input, want) in table {
            assert_eq!(parse_duration(input), want, "{input}");
        }
    }
}
