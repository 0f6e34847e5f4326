//! `PsaConnection.spec.lifecycle`: what a resolved alert does to its group's ticket.
//!
//! Kept apart from `connection.rs` so the settings of the alert lifecycle live in one place.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// What happens to a group's ticket when its alerts resolve. Absent = a note per resolution,
/// the ticket stays open for a technician.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("!has(self.closedStatus) || (has(self.onResolve) && self.onResolve == 'Close')")
        .message("closedStatus is only used with onResolve: Close")
        .reason(Reason::FieldValueInvalid),
    validation = Rule::new("!has(self.neverReopen) || size(self.neverReopen) == 0 || has(self.reopenWithin)")
        .message("neverReopen is only used with reopenWithin")
        .reason(Reason::FieldValueInvalid)
)]
pub struct LifecycleSettings {
    /// `Note` (default): a resolution is a note on the group's ticket. `Close`: the resolution that
    /// leaves no alert of the ticket firing closes it with `closedStatus` and a note, unless a
    /// technician moved the ticket to another status.
    pub on_resolve: Option<OnResolve>,
    /// Status (of the board, where the PSA scopes statuses per board) a resolved group's ticket is
    /// closed with. Default: `ticket.closedStatus`, else the board's preferred closed status.
    #[schemars(length(min = 1, max = 256))]
    pub closed_status: Option<String>,
    /// An alert of a group whose ticket was closed less than this ago (by a technician or by
    /// `onResolve: Close`) reopens that ticket (its status back to the open status, a note
    /// "re-occurred") instead of opening a new one. Absent: a closed ticket is never reopened.
    /// The close time is the PSA's (ConnectWise `closedDate`, Kaseya BMS `CompletedDate`,
    /// Autotask `completedDate`), read when the group's next alert arrives.
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub reopen_within: Option<String>,
    /// Closed statuses (names, of the board where the PSA scopes statuses) whose tickets are
    /// never reopened ("Closed - Won't fix"): the next alert opens a new ticket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.all(s, size(s) > 0 && size(s) <= 256)").message("neverReopen names are 1 to 256 characters"))]
    pub never_reopen: Vec<String>,
}

/// What a resolved alert does to its group's ticket.
#[derive(JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnResolve {
    /// A note on the ticket; a technician closes it.
    #[default]
    Note,
    /// Close the ticket once every alert that fed it is resolved.
    Close,
}
