//! What `plan` reports, as data: rendered as a table or written as JSON.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_with::skip_serializing_none;

use crate::api::format_decimal_4;
use crate::psa::{LineValues, MinorUnits};

/// The whole plan: one entry per PsaConnection of the input.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub connections: Vec<ConnectionPlan>,
    pub summary: Summary,
}

/// Counts over all connections.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub services_to_create: usize,
    pub services_to_correct: usize,
    pub services_to_adopt: usize,
    pub lines_to_add: usize,
    pub lines_to_change: usize,
    pub lines_to_adopt: usize,
    /// Price per billing period, all customers, after minus before (decimal string).
    pub price_delta: String,
    pub cost_delta: String,
    /// Names that do not resolve, unreachable PSAs, customers falling to the catch-all.
    pub problems: usize,
    /// Reads made in the PSA; writes are refused by construction.
    pub psa_reads: u64,
}

impl Summary {
    pub fn has_changes(&self) -> bool {
        self.services_to_create
            + self.services_to_correct
            + self.services_to_adopt
            + self.lines_to_add
            + self.lines_to_change
            + self.lines_to_adopt
            > 0
    }
}

#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionPlan {
    pub namespace: String,
    pub name: String,
    pub provider: String,
    /// The PSA URL planned against (a sandbox's when planning offline).
    pub url: String,
    /// The seed file of the sandbox planned against, when planning offline.
    pub sandbox_seed: Option<String>,
    /// Where the credentials came from (`Secret demo-cw-keys in the input`, …).
    pub credentials: String,
    /// Set when the connection could not be planned (no credentials, PSA unreachable, …).
    pub error: Option<Problem>,
    pub names: Vec<NameCheck>,
    /// `spec.routes`: first match wins, after a mapping's own routes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RoutePlan>,
    pub catalog: Vec<ServicePlan>,
    pub customers: Vec<CustomerPlan>,
    /// Organizations whose alerts would go to the catch-all company instead of their mapping.
    pub catch_all: Vec<CatchAllEntry>,
    /// How organizations without a mapping are routed (`Manual`: catch-all; otherwise by name).
    pub account_mapping: String,
    /// How long held events wait before the failsafe: `spec.dispatch.unresolvedHold`, or
    /// `None` = the operator's `--unresolved-hold`.
    pub unresolved_hold: Option<String>,
    /// The alert lifecycle and noise behaviours configured (reopen window, storm breaker),
    /// one sentence each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub behaviour: Vec<String>,
    /// PSA reads by method.
    pub psa_calls: BTreeMap<String, u64>,
    /// `spec.sources`: the webhook and CloudEvents mappings the intake will use.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourcePlan>,
}

/// One `spec.sources` entry as the intake will use it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourcePlan {
    pub name: String,
    /// Intake path below the connection (`webhook/<name>`).
    pub path: String,
    /// `hmacSha256 (X-Signature)`, `svix`, or `none`.
    pub signature: String,
    /// CloudEvents types it maps on `/cloudevents`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cloud_event_types: Vec<String>,
    /// Expressions that do not compile (`organization: invalid CEL expression …`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub reason: String,
    pub message: String,
}

/// One configured PSA name (ticket settings, catch-all).
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NameCheck {
    /// Field path in the connection's spec, e.g. `ticket.priority.map.critical`.
    pub field: String,
    pub value: String,
    /// `None`: not looked up because the name it depends on did not resolve.
    #[serialize_always]
    pub resolves: Option<bool>,
    pub id: Option<String>,
    /// `not found (did you mean …?)` when it does not resolve.
    pub problem: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ServiceAction {
    /// Not in the catalog: the operator creates it.
    Create,
    /// In the catalog and as the spec says: the operator adopts it as is.
    Adopt,
    /// Already managed by this resource (its live status records this catalog id) and as the
    /// spec says: nothing to do. Not a change for `--detailed-exitcode`.
    InStep,
    /// In the catalog with other values: the operator adopts it and corrects the fields.
    Correct,
    /// The spec cannot be applied (a money field is not a decimal).
    Invalid,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    pub field: String,
    pub from: String,
    pub to: String,
}

#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePlan {
    /// The ContractService resource.
    pub resource: String,
    /// Catalog name in the PSA.
    pub service: String,
    pub action: ServiceAction,
    pub id: Option<String>,
    pub changes: Vec<FieldChange>,
    pub problem: Option<String>,
}

/// What one name of a mapping resolved to.
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    pub wanted: String,
    pub id: Option<String>,
    pub found: Option<String>,
    pub problem: Option<String>,
}

impl Resolution {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerPlan {
    pub mapping: String,
    pub organization: String,
    pub company: Resolution,
    pub contact: Option<Resolution>,
    pub contract: Option<Resolution>,
    pub line: Option<LinePlanReport>,
    /// Whether alerts of this organization reach the mapped company.
    pub routed: bool,
    /// The mapping's `ticket` overrides and `routes`, as the reconciler resolves them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ticket: Vec<RoutePlan>,
}

/// A route, or a mapping's `ticket` overrides: what it matches and the names it sets.
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutePlan {
    /// `routes[0]`, or `ticket` for a mapping's overrides.
    pub field: String,
    /// What the route matches (`severity in [critical]`); `None` for `ticket`.
    pub matches: Option<String>,
    /// Each name it sets with the id it resolves to on the board the ticket ends up on.
    pub sets: Vec<NameCheck>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum LineAction {
    /// No line for the service on the contract: the operator adds one.
    Add,
    /// A line with other quantity, cost or price: the operator updates it.
    Update,
    /// The line is as the spec says.
    InStep,
    /// A line is on the contract, but its units are neither readable (Kaseya BMS) nor in the
    /// mapping's status (added by hand in the PSA, or planned without a cluster): the operator
    /// adopts it, takes its units to be the wanted ones and brings cost and price in step.
    Adopt,
    /// The line cannot be planned (service or contract missing).
    Blocked,
}

#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinePlanReport {
    pub service: String,
    pub action: LineAction,
    pub before: Option<Billing>,
    pub after: Option<Billing>,
    /// after − before (before counted as zero when there is no line yet).
    pub delta: Option<BillingDelta>,
    pub note: Option<String>,
}

/// A contract line's amounts per billing period, as exact decimal strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Billing {
    pub quantity: i64,
    pub unit_price: String,
    pub unit_cost: String,
    /// quantity × unit price.
    pub price: Amount,
    /// quantity × unit cost.
    pub cost: Amount,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingDelta {
    pub quantity: i64,
    pub price: Amount,
    pub cost: Amount,
}

/// An amount of money as the plan shows it, with its exact value kept for the summary's sums
/// (the text is never parsed back). Written as the text alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Amount {
    text: String,
    #[serde(skip)]
    pub minor: MinorUnits,
}

impl Amount {
    /// `12.00`, `-3.50`.
    fn decimal(minor: MinorUnits) -> Amount {
        Amount {
            text: format_decimal_4(minor),
            minor,
        }
    }

    /// A change: `+12.00`, `-3.50`, `0.00`.
    fn change(minor: MinorUnits) -> Amount {
        Amount {
            text: signed(minor),
            minor,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Amounts in ten-thousandths can overflow only for absurd quantities; those saturate.
fn times(q: i64, unit: MinorUnits) -> MinorUnits {
    q.checked_mul(unit).unwrap_or(if (q < 0) != (unit < 0) {
        i64::MIN
    } else {
        i64::MAX
    })
}

impl Billing {
    pub fn of(v: LineValues) -> Billing {
        Billing {
            quantity: v.quantity,
            unit_price: format_decimal_4(v.price),
            unit_cost: format_decimal_4(v.cost),
            price: Amount::decimal(times(v.quantity, v.price)),
            cost: Amount::decimal(times(v.quantity, v.cost)),
        }
    }
}

impl BillingDelta {
    /// after − before; no line before counts as zero.
    pub fn between(before: Option<&Billing>, after: &Billing) -> BillingDelta {
        let (q0, p0, c0) = before
            .map(|b| (b.quantity, b.price.minor, b.cost.minor))
            .unwrap_or((0, 0, 0));
        BillingDelta {
            quantity: after.quantity.saturating_sub(q0),
            price: Amount::change(after.price.minor.saturating_sub(p0)),
            cost: Amount::change(after.cost.minor.saturating_sub(c0)),
        }
    }
}

/// `+12.00`, `-3.50`, `0.00`.
pub fn signed(v: MinorUnits) -> String {
    if v > 0 {
        format!("+{}", format_decimal_4(v))
    } else {
        format_decimal_4(v)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatchAllEntry {
    pub organization: String,
    pub mapping: String,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_is_exact() {
        let before = Billing::of(LineValues {
            quantity: 42,
            cost: 15_000,
            price: 40_000,
        });
        assert_eq!(
            (before.price.as_str(), before.cost.as_str()),
            ("168.00", "63.00")
        );
        let after = Billing::of(LineValues {
            quantity: 40,
            cost: 15_000,
            price: 41_250,
        });
        assert_eq!(after.price.as_str(), "165.00");
        let d = BillingDelta::between(Some(&before), &after);
        assert_eq!(
            (d.quantity, d.price.as_str(), d.cost.as_str()),
            (-2, "-3.00", "-3.00")
        );
        let new = BillingDelta::between(None, &after);
        assert_eq!((new.quantity, new.price.as_str()), (40, "+165.00"));
        // 0.0001 steps survive: 3 × 0.3333 = 0.9999, no float rounding.
        let tiny = Billing::of(LineValues {
            quantity: 3,
            cost: 0,
            price: 3_333,
        });
        assert_eq!(tiny.price.as_str(), "0.9999");
    }

    /// `plan --output json` is read by scripts: amounts are decimal strings, absent values are
    /// left out, and a name not looked up says `"resolves": null`.
    #[test]
    fn json_keeps_its_shape() {
        let after = Billing::of(LineValues {
            quantity: 2,
            cost: 15_000,
            price: 40_000,
        });
        let line = LinePlanReport {
            service: "Monitoring".into(),
            action: LineAction::Add,
            before: None,
            delta: Some(BillingDelta::between(None, &after)),
            after: Some(after),
            note: None,
        };
        assert_eq!(
            serde_json::to_value(&line).unwrap(),
            serde_json::json!({
                "service": "Monitoring",
                "action": "Add",
                "after": {"quantity": 2, "unitPrice": "4.00", "unitCost": "1.50",
                          "price": "8.00", "cost": "3.00"},
                "delta": {"quantity": 2, "price": "+8.00", "cost": "+3.00"},
            })
        );
        let unchecked = NameCheck {
            field: "ticket.status.value".into(),
            value: "New".into(),
            resolves: None,
            id: None,
            problem: None,
        };
        assert_eq!(
            serde_json::to_value(&unchecked).unwrap(),
            serde_json::json!({"field": "ticket.status.value", "value": "New", "resolves": null})
        );
    }
}
