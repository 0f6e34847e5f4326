//! One way to finish a reconcile: set conditions against the old ones, emit an Event for each
//! transition (one rule for every kind), and write status only when it changed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::condition_types::{READY, SUSPENDED, SYNCED};
use crate::api::{find_condition, make_condition, set_condition};

use super::context::Context;
use super::ReconcileError;

/// Conditions being built for one reconcile.
pub struct Conditions {
    old: Vec<Condition>,
    new: Vec<Condition>,
    generation: Option<i64>,
    now: Timestamp,
}

impl Conditions {
    /// Starts from the stored conditions (kept when not set again, with their transition times).
    pub fn new(old: &[Condition], generation: Option<i64>, now: Timestamp) -> Self {
        Conditions {
            old: old.to_vec(),
            new: old.to_vec(),
            generation,
            now,
        }
    }

    pub fn set(&mut self, type_: &str, ok: bool, reason: &str, message: impl Into<String>) {
        let c = make_condition(
            &self.old,
            type_,
            ok,
            reason,
            message,
            self.generation,
            self.now,
        );
        set_condition(&mut self.new, c);
    }

    pub fn get(&self, type_: &str) -> Option<&Condition> {
        find_condition(&self.new, type_)
    }

    pub fn is_true(&self, type_: &str) -> bool {
        self.get(type_).is_some_and(|c| c.status == "True")
    }

    /// The conditions an Event should be emitted for (see [`is_transition`]).
    pub fn transitions(&self) -> Vec<Condition> {
        self.new
            .iter()
            .filter(|c| is_transition(find_condition(&self.old, &c.type_), c))
            .cloned()
            .collect()
    }

    pub fn into_vec(self) -> Vec<Condition> {
        self.new
    }
}

/// An Event is due when a condition changes status or reason, or appears other than True — and
/// for the first Ready=True, so `kubectl describe` shows when a resource started working.
pub fn is_transition(before: Option<&Condition>, now: &Condition) -> bool {
    match before {
        Some(b) => b.status != now.status || b.reason != now.reason,
        None => now.status != "True" || now.type_ == READY,
    }
}

/// Warning unless the condition holds; Suspended is the user's decision, never a warning.
pub fn is_warning(c: &Condition) -> bool {
    c.status != "True" && c.type_ != SUSPENDED && !(c.type_ == SYNCED && c.status == "Unknown")
}

/// Emits the transition Events and writes `status` (server-side apply) when it differs from `old`.
pub async fn finish<K, S>(
    ctx: &Context,
    obj: &K,
    kind: &str,
    transitions: &[Condition],
    old: &S,
    new: &S,
) -> Result<(), ReconcileError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if !ctx.is_leader() {
        // Another replica writes status; this one only keeps its routing index current.
        return Ok(());
    }
    for c in transitions {
        ctx.event(
            obj,
            is_warning(c),
            &c.reason,
            &c.type_,
            format!("{}={}: {}", c.type_, c.status, c.message),
        )
        .await;
    }
    if old == new {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    super::apply_status(&api, &obj.name_any(), kind, serde_json::json!(new)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::condition_types::{AUTHENTICATED, RESOLVED};

    #[test]
    fn events_follow_one_rule_for_every_kind() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = Timestamp::from_second(2_000).unwrap();
        let mut first = Conditions::new(&[], Some(1), t0);
        first.set(READY, true, "Ready", "ok");
        first.set(SYNCED, true, "ReconcileSuccess", "ok");
        first.set(RESOLVED, false, "CompanyNotFound", "no company");
        let kinds: Vec<String> = first.transitions().into_iter().map(|c| c.type_).collect();
        assert_eq!(
            kinds,
            [READY, RESOLVED],
            "first Ready and a failing condition"
        );
        let stored = first.into_vec();

        let mut same = Conditions::new(&stored, Some(1), t1);
        same.set(READY, true, "Ready", "ok, reworded");
        same.set(RESOLVED, false, "CompanyNotFound", "no company");
        assert!(same.transitions().is_empty(), "no change, no Event");
        let kept = same.into_vec();
        assert_eq!(
            find_condition(&kept, READY).unwrap().last_transition_time,
            find_condition(&stored, READY).unwrap().last_transition_time
        );

        let mut changed = Conditions::new(&stored, Some(2), t1);
        changed.set(RESOLVED, false, "ContactNotFound", "no contact");
        changed.set(AUTHENTICATED, true, "Authenticated", "ok");
        let t = changed.transitions();
        assert_eq!(t.len(), 1, "a new True condition other than Ready is quiet");
        assert_eq!(t[0].reason, "ContactNotFound");
        assert!(is_warning(&t[0]));
    }
}
