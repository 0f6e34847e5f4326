//! `PsaConnection.spec.noise`: limits that keep an alert storm from becoming a ticket storm.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// Noise control. Absent = every new group opens a ticket.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoiseSettings {
    /// Storm breaker: beyond `count` new tickets of one customer within `per`, further new
    /// groups of that customer in the window go as notes on one roll-up ticket ("N more alerts
    /// for Contoso Ltd"), which closes itself once a whole `per` passes without one.
    pub max_new_tickets_per_customer: Option<TicketRate>,
}

/// At most `count` per `per`.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketRate {
    /// New tickets of one customer allowed per window.
    #[schemars(range(min = 1, max = 100000))]
    pub count: u32,
    /// The window (`10m`, `1h`, `30s`).
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub per: String,
}
