//! One way to finish a reconcile: set conditions against the old ones, emit an Event for each
//! transition (one rule for every kind), and write status only when it changed.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::condition_types::{READY, SUSPENDED, SYNCED};

/// kstatus conditions ("abnormal-true"): present only while they hold.
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
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

    /// Sets a condition to `Unknown` (the PSA could not be asked), keeping its transition time
    /// while it stays Unknown.
    pub fn set_unknown(&mut self, type_: &str, reason: &str, message: impl Into<String>) {
        let ltt = find_condition(&self.old, type_)
            .filter(|c| c.status == "Unknown")
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(self.now));
        set_condition(
            &mut self.new,
            Condition {
                type_: type_.to_string(),
                status: "Unknown".into(),
                reason: reason.to_string(),
                message: message.into(),
                observed_generation: self.generation,
                last_transition_time: ltt,
            },
        );
    }

    /// How long `Synced` has been False before this reconcile (the PSA outage so far).
    pub fn outage_so_far(&self) -> Duration {
        find_condition(&self.old, SYNCED)
            .filter(|c| c.status == "False")
            .and_then(|c| {
                self.now
                    .duration_since(c.last_transition_time.0)
                    .try_into()
                    .ok()
            })
            .unwrap_or_default()
    }

    /// A transient PSA failure: `Synced=False`, and `Ready` kept as last known while the outage
    /// is shorter than `grace` (then `Unknown`): a maintenance window does not turn GitOps red,
    /// and events keep queueing. A resource never checked before is `Unknown` at once.
    pub fn psa_unavailable(&mut self, message: &str, grace: Duration) {
        let within_grace = self.outage_so_far() < grace;
        self.set(SYNCED, false, "PsaUnavailable", message.to_string());
        let known = find_condition(&self.old, READY).is_some_and(|c| c.status != "Unknown");
        if !(known && within_grace) {
            self.set_unknown(
                READY,
                "PsaUnavailable",
                format!("the PSA cannot be reached; last state unknown: {message}"),
            );
        } else if let Some(old) = find_condition(&self.old, READY).cloned() {
            set_condition(&mut self.new, old);
        }
    }

    /// Derives the kstatus conditions from Ready: `Stalled` while it is False for a reason only a
    /// change can fix, `Reconciling` while it is Unknown.
    pub fn set_kstatus(&mut self) {
        let ready = self.get(READY).cloned();
        // Not stalled: suspension is the user's choice; an unavailable store is an outage the
        // operator recovers from by itself (Reconciling, like an unknown Ready).
        let recovers = |r: &&Condition| r.reason == super::store_health::STORE_UNAVAILABLE;
        let stalled = ready
            .as_ref()
            .filter(|r| r.status == "False" && r.reason != "Suspended" && !recovers(r));
        match stalled {
            Some(r) => self.set(STALLED, true, &r.reason, r.message.clone()),
            None => self.remove(STALLED),
        }
        match ready
            .as_ref()
            .filter(|r| r.status == "Unknown" || recovers(r))
        {
            Some(r) => self.set(RECONCILING, true, &r.reason, r.message.clone()),
            None => self.remove(RECONCILING),
        }
    }

    pub fn remove(&mut self, type_: &str) {
        self.new.retain(|c| c.type_ != type_);
    }

    pub fn get(&self, type_: &str) -> Option<&Condition> {
        find_condition(&self.new, type_)
    }

    pub fn is_true(&self, type_: &str) -> bool {
        self.get(type_).is_some_and(|c| c.status == "True")
    }

    /// The conditions an Event should be emitted for (see [`is_transition`]): one Event per
    /// problem — Ready repeating another condition's reason, and the kstatus conditions that
    /// mirror Ready, add none.
    pub fn transitions(&self) -> Vec<Condition> {
        let changed: Vec<&Condition> = self
            .new
            .iter()
            .filter(|c| c.type_ != STALLED && c.type_ != RECONCILING)
            .filter(|c| is_transition(find_condition(&self.old, &c.type_), c))
            .collect();
        let repeats = |c: &Condition| {
            c.type_ == READY
                && changed
                    .iter()
                    .any(|o| o.type_ != READY && o.status == c.status && o.reason == c.reason)
        };
        changed
            .iter()
            .filter(|c| !repeats(c))
            .map(|c| (*c).clone())
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
        // A connection that is not suspended is the normal case: no Event for it.
        None if now.type_ == SUSPENDED => now.status == "True",
        None => now.status != "True" || now.type_ == READY,
    }
}

/// Warning unless the condition holds; Suspended is the user's decision, and waiting for the
/// connection is no fault (`event_type`): neither is a warning.
pub fn is_warning(c: &Condition) -> bool {
    c.type_ != SUSPENDED
        && c.status != "Unknown"
        && super::event_type::is_warning(c.status == "True", &c.reason)
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
    // The Events and the status write go out together: each is a round trip to the API
    // server, and a reconcile holds one of the controller's few slots until both are back.
    let uid = obj.meta().uid.clone().unwrap_or_default();
    let events = async {
        for c in transitions {
            if !ctx
                .warned
                .due(&uid, &c.type_, &c.status, &c.reason, is_warning(c))
            {
                continue;
            }
            ctx.event(
                obj,
                is_warning(c),
                &c.reason,
                &c.type_,
                format!("{}={}: {}", c.type_, c.status, c.message),
            )
            .await;
        }
    };
    let status = async {
        if old == new {
            return Ok(());
        }
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
        super::apply_status(&api, &obj.name_any(), kind, serde_json::json!(new)).await?;
        ctx.metrics
            .status_written(super::metrics::STATUS_WRITER_RECONCILER);
        Ok(())
    };
    let ((), written) = futures::join!(events, status);
    written
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

    #[test]
    fn one_event_per_problem() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let mut c = Conditions::new(&[], Some(1), t0);
        c.set(RESOLVED, false, "CompanyNotFound", "no company");
        c.set(READY, false, "CompanyNotFound", "no company; held");
        c.set_kstatus();
        let t = c.transitions();
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(t[0].type_, RESOLVED);
        assert!(
            c.is_true(STALLED),
            "a configuration problem stalls (kstatus)"
        );
    }

    /// (Ready before, outage so far, grace) → Ready after a transient failure.
    #[test]
    fn outages_keep_ready_within_the_grace() {
        let grace = Duration::from_secs(30 * 60);
        let start = Timestamp::from_second(1_000_000).unwrap();
        let at = |secs: i64| Timestamp::from_second(1_000_000 + secs).unwrap();
        let healthy = {
            let mut c = Conditions::new(&[], Some(1), start);
            c.set(READY, true, "Ready", "ok");
            c.set(SYNCED, true, "ReconcileSuccess", "ok");
            c.into_vec()
        };
        // First failure: Synced False, Ready still True, no kstatus Reconciling.
        let mut c = Conditions::new(&healthy, Some(1), at(10));
        c.psa_unavailable("503", grace);
        c.set_kstatus();
        assert!(c.is_true(READY));
        assert_eq!(c.get(SYNCED).unwrap().status, "False");
        assert!(c.get(RECONCILING).is_none());
        let during = c.into_vec();
        // 20 minutes in: still Ready.
        let mut c = Conditions::new(&during, Some(1), at(20 * 60));
        c.psa_unavailable("503", grace);
        assert!(c.is_true(READY));
        // 31 minutes in: Unknown, Reconciling (kstatus), never False.
        let mut c = Conditions::new(&during, Some(1), at(31 * 60));
        c.psa_unavailable("503", grace);
        c.set_kstatus();
        assert_eq!(c.get(READY).unwrap().status, "Unknown");
        assert!(c.is_true(RECONCILING));
        assert!(c.get(STALLED).is_none());
        // Never checked before: Unknown at once.
        let mut c = Conditions::new(&[], Some(1), at(0));
        c.psa_unavailable("503", grace);
        assert_eq!(c.get(READY).unwrap().status, "Unknown");
    }
}
