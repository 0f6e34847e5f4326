//! Which CustomerMappings claim the same organization on the same connection, kept current from
//! the mapping watch itself.
//!
//! Two mappings of one connection naming the same organization block each other
//! (`DuplicateOrganization`), so a mapping's reconcile asks for its rivals and a change of one
//! mapping re-checks the others of its claim. Scanning every mapping for that made a wave of
//! 10,000 mappings quadratic (once per reconcile, and once per watch event in the trigger); this
//! index answers both in time independent of the number of mappings. It is fed every event of
//! the controller's own mapping watch before the reflector's cache is, so a reconcile never sees
//! an object its rivals are not indexed for yet. Pure: no I/O, table-tested.

use std::collections::{BTreeSet, HashMap, HashSet};

use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use crate::api::CustomerMapping;

use super::index::organization_key;

/// An organization claimed on a connection (namespace, connection name, organization key).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Claim {
    pub namespace: String,
    pub connection: String,
    /// As the routing compares organizations (trimmed, lower-cased).
    pub organization: String,
}

impl Claim {
    /// What a mapping's spec claims, whether or not it is being deleted.
    pub fn of(m: &CustomerMapping) -> Claim {
        Claim {
            namespace: m.namespace().unwrap_or_default(),
            connection: m.spec.connection_ref.name.clone(),
            organization: organization_key(&m.spec.organization),
        }
    }
}

/// A mapping by namespace and name.
pub type MappingId = (String, String);

/// The claims of every mapping that exists and is not being deleted.
#[derive(Debug, Default)]
pub struct Claims {
    holders: HashMap<Claim, BTreeSet<String>>,
    claim_of: HashMap<MappingId, Claim>,
    /// During a re-list: the mappings listed so far (the others are gone at its end).
    relisted: Option<HashSet<MappingId>>,
}

impl Claims {
    /// The other mappings claiming `claim` besides `name`, sorted by name.
    pub fn rivals(&self, claim: &Claim, name: &str) -> Vec<String> {
        self.holders
            .get(claim)
            .map(|names| names.iter().filter(|n| *n != name).cloned().collect())
            .unwrap_or_default()
    }

    /// Records the mapping as it is now; returns the mappings whose rivals changed with it (the
    /// holders of the claim it left and of the claim it joined, itself excluded: its own change
    /// reaches its reconciler through the watch).
    pub fn upsert(&mut self, m: &CustomerMapping) -> Vec<MappingId> {
        let id = (m.namespace().unwrap_or_default(), m.name_any());
        if let Some(seen) = &mut self.relisted {
            seen.insert(id.clone());
        }
        let claim = m.meta().deletion_timestamp.is_none().then(|| Claim::of(m));
        if self.claim_of.get(&id) == claim.as_ref() {
            return vec![];
        }
        let mut touched = self.release(&id);
        if let Some(claim) = claim {
            touched.extend(self.others(&claim, &id.1));
            self.holders
                .entry(claim.clone())
                .or_default()
                .insert(id.1.clone());
            self.claim_of.insert(id, claim);
        }
        touched
    }

    /// Forgets a deleted mapping; returns the mappings that claimed the same organization.
    pub fn remove(&mut self, m: &CustomerMapping) -> Vec<MappingId> {
        self.release(&(m.namespace().unwrap_or_default(), m.name_any()))
    }

    /// Applies one event of the mapping watch; returns the mappings to re-check.
    pub fn observe(&mut self, event: &watcher::Event<CustomerMapping>) -> Vec<MappingId> {
        match event {
            watcher::Event::Apply(m) | watcher::Event::InitApply(m) => self.upsert(m),
            watcher::Event::Delete(m) => self.remove(m),
            watcher::Event::Init => {
                self.relisted = Some(HashSet::new());
                vec![]
            }
            watcher::Event::InitDone => {
                let Some(seen) = self.relisted.take() else {
                    return vec![];
                };
                let gone: Vec<MappingId> = self
                    .claim_of
                    .keys()
                    .filter(|id| !seen.contains(*id))
                    .cloned()
                    .collect();
                gone.iter().flat_map(|id| self.release(id)).collect()
            }
        }
    }

    /// Drops the mapping's claim; returns the other holders of it.
    fn release(&mut self, id: &MappingId) -> Vec<MappingId> {
        let Some(old) = self.claim_of.remove(id) else {
            return vec![];
        };
        let others = self.others(&old, &id.1);
        if let Some(names) = self.holders.get_mut(&old) {
            names.remove(&id.1);
            if names.is_empty() {
                self.holders.remove(&old);
            }
        }
        others
    }

    fn others(&self, claim: &Claim, name: &str) -> Vec<MappingId> {
        self.rivals(claim, name)
            .into_iter()
            .map(|n| (claim.namespace.clone(), n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built from JSON, as the API server hands it out (fields other branches add stay optional).
    fn mapping(ns: &str, name: &str, conn: &str, org: &str) -> CustomerMapping {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "psa-operator.io/v1alpha1",
            "kind": "CustomerMapping",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "connectionRef": {"name": conn},
                "organization": org,
                "company": {"identifier": "X"},
            },
        }))
        .expect("a CustomerMapping")
    }

    fn deleting(mut m: CustomerMapping) -> CustomerMapping {
        m.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap(),
        ));
        m
    }

    fn id(ns: &str, name: &str) -> MappingId {
        (ns.into(), name.into())
    }

    fn claim(ns: &str, conn: &str, org: &str) -> Claim {
        Claim {
            namespace: ns.into(),
            connection: conn.into(),
            organization: organization_key(org),
        }
    }

    #[test]
    fn rivals_are_the_same_organization_on_the_same_connection_and_namespace() {
        let mut c = Claims::default();
        assert!(c.upsert(&mapping("psa", "a", "cw", "Contoso")).is_empty());
        // Case and surrounding blanks do not make another organization.
        assert_eq!(
            c.upsert(&mapping("psa", "b", "cw", "  contoso ")),
            [id("psa", "a")]
        );
        // Another connection, another namespace, another organization: no rivals.
        assert!(c.upsert(&mapping("psa", "c", "bms", "Contoso")).is_empty());
        assert!(c.upsert(&mapping("other", "d", "cw", "Contoso")).is_empty());
        assert!(c.upsert(&mapping("psa", "e", "cw", "Fabrikam")).is_empty());
        let contoso = claim("psa", "cw", "CONTOSO");
        assert_eq!(c.rivals(&contoso, "a"), ["b"]);
        assert_eq!(c.rivals(&contoso, "b"), ["a"]);
        assert_eq!(c.rivals(&contoso, "new"), ["a", "b"]);
        assert!(c.rivals(&claim("psa", "cw", "Fabrikam"), "e").is_empty());
    }

    #[test]
    fn a_changed_organization_re_checks_the_claims_it_left_and_joined() {
        let mut c = Claims::default();
        c.upsert(&mapping("psa", "a", "cw", "Contoso"));
        c.upsert(&mapping("psa", "b", "cw", "Contoso"));
        c.upsert(&mapping("psa", "f", "cw", "Fabrikam"));
        let touched = c.upsert(&mapping("psa", "b", "cw", "Fabrikam"));
        assert_eq!(touched, [id("psa", "a"), id("psa", "f")]);
        assert!(c.rivals(&claim("psa", "cw", "Contoso"), "a").is_empty());
        // The same claim again (a status write, a label) touches nobody.
        assert!(c.upsert(&mapping("psa", "b", "cw", "fabrikam")).is_empty());
    }

    #[test]
    fn a_mapping_being_deleted_or_deleted_no_longer_claims() {
        let mut c = Claims::default();
        c.upsert(&mapping("psa", "a", "cw", "Contoso"));
        c.upsert(&mapping("psa", "b", "cw", "Contoso"));
        let touched = c.upsert(&deleting(mapping("psa", "b", "cw", "Contoso")));
        assert_eq!(touched, [id("psa", "a")]);
        assert!(c.rivals(&claim("psa", "cw", "Contoso"), "a").is_empty());
        c.upsert(&mapping("psa", "b", "cw", "Contoso"));
        assert_eq!(
            c.remove(&mapping("psa", "b", "cw", "Contoso")),
            [id("psa", "a")]
        );
        assert!(c.remove(&mapping("psa", "b", "cw", "Contoso")).is_empty());
    }

    #[test]
    fn a_relist_forgets_the_mappings_it_did_not_list() {
        let mut c = Claims::default();
        c.upsert(&mapping("psa", "a", "cw", "Contoso"));
        c.upsert(&mapping("psa", "b", "cw", "Contoso"));
        c.upsert(&mapping("psa", "c", "cw", "Fabrikam"));
        assert!(c.observe(&watcher::Event::Init).is_empty());
        assert!(c
            .observe(&watcher::Event::InitApply(mapping(
                "psa", "a", "cw", "Contoso"
            )))
            .is_empty());
        assert!(c
            .observe(&watcher::Event::InitApply(mapping(
                "psa", "c", "cw", "Fabrikam"
            )))
            .is_empty());
        // b was deleted while the watch was down: a learns it has no rival any more.
        assert_eq!(c.observe(&watcher::Event::InitDone), [id("psa", "a")]);
        assert!(c.rivals(&claim("psa", "cw", "Contoso"), "a").is_empty());
        assert!(c.observe(&watcher::Event::InitDone).is_empty());
    }
}
