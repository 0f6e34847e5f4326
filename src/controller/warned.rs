//! Which Warning each object's conditions last raised in this process.
//!
//! A condition's Event is due on a transition of the stored status (`status::is_transition`),
//! but a reconcile can start from a cached copy that does not show the status this process
//! wrote a moment ago; it would see the same problem as new and warn twice. This memory keeps
//! the (status, reason) of each Warning emitted per object and condition until the condition
//! recovers, so a problem warns once per process. Only problems are kept, and the inventory
//! sweep forgets objects that no longer exist: the map stays as small as the number of broken
//! resources.

use std::collections::HashMap;
use std::sync::Mutex;

type Key = (String, String);

#[derive(Default)]
pub struct Warned {
    last: Mutex<HashMap<Key, (String, String)>>,
}

impl Warned {
    /// Whether an Event for `condition` of object `uid` at (`status`, `reason`) is still due,
    /// recording it: a Warning already raised at the same status and reason is not; any
    /// non-warning outcome clears the record (a later relapse warns again).
    pub fn due(
        &self,
        uid: &str,
        condition: &str,
        status: &str,
        reason: &str,
        warning: bool,
    ) -> bool {
        let key = (uid.to_string(), condition.to_string());
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if !warning {
            last.remove(&key);
            return true;
        }
        let now = (status.to_string(), reason.to_string());
        if last.get(&key) == Some(&now) {
            return false;
        }
        last.insert(key, now);
        true
    }

    /// Forgets the objects `exists` no longer finds (deleted while broken); cheap when nothing
    /// is broken, which is the common case the sweep calls it in.
    pub fn forget_unless(&self, exists: impl Fn(&str) -> bool) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.retain(|(uid, _), _| exists(uid));
    }

    /// Whether no problem is remembered.
    pub fn is_empty(&self) -> bool {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_warns_once_until_it_recovers() {
        let w = Warned::default();
        // (condition, status, reason, warning) → due
        let table = [
            ("Ready", "False", "CompanyNotFound", true, true),
            ("Ready", "False", "CompanyNotFound", true, false),
            ("Synced", "False", "CompanyNotFound", true, true),
            ("Ready", "False", "NamesNotFound", true, true),
            ("Ready", "True", "Active", false, true),
            ("Ready", "False", "NamesNotFound", true, true),
        ];
        for (i, (condition, status, reason, warning, due)) in table.into_iter().enumerate() {
            assert_eq!(
                w.due("uid-1", condition, status, reason, warning),
                due,
                "row {i}"
            );
        }
        assert!(
            w.due("uid-2", "Ready", "False", "NamesNotFound", true),
            "per object"
        );
    }

    #[test]
    fn a_deleted_broken_object_is_forgotten_and_a_new_one_with_its_name_warns() {
        let w = Warned::default();
        assert!(w.due("gone", "Ready", "False", "CompanyNotFound", true));
        assert!(w.due("kept", "Ready", "False", "CompanyNotFound", true));
        w.forget_unless(|uid| uid == "kept");
        assert!(!w.is_empty());
        assert!(
            !w.due("kept", "Ready", "False", "CompanyNotFound", true),
            "a live object's problem is still remembered"
        );
        assert!(
            w.due("gone", "Ready", "False", "CompanyNotFound", true),
            "the deleted object's record is gone"
        );
        w.forget_unless(|_| false);
        assert!(w.is_empty());
    }
}
