//! The routing index: every fact this process has learned about connections and mappings, and
//! the pure building of the snapshot the intake and the dispatcher route by.
//!
//! Reconcilers and the inventory (what exists in the API server) only *apply* facts here; the
//! publisher (`publish.rs`) is the one writer that turns them into `ConnectionEntry` snapshots.
//! Nothing in this file does I/O, so the rules are table-tested:
//!
//! * A connection's snapshot is **complete** once the initial list of CustomerMappings has been
//!   seen (`inventory` synced) and every mapping of the connection that exists has been evaluated
//!   by this process. Before the inventory is synced no snapshot is routable at all (the dispatcher
//!   holds the connection's events): we cannot tell which organizations have mappings.
//! * An organization whose mapping exists but is not routable — not evaluated yet, the company is
//!   gone, a duplicate, the connection not authenticated — is **held**, never sent to the
//!   catch-all: the catch-all is for organizations with no mapping.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::resolved::{
    ConnectionEntry, ConnectionKey, Failsafe, ResolvedConnection, ResolvedCustomer,
};
use crate::secret::SecretString;

/// What the PsaConnection reconciler learned about a connection.
#[derive(Clone, Debug, Default)]
pub struct ConnectionFacts {
    /// Bearer token of the intake; `None` = not readable (the intake answers 503).
    pub intake_token: Option<SecretString>,
    pub suspended: bool,
    /// The PSA accepted the credentials (mappings can be resolved).
    pub authenticated: bool,
    /// Failsafe settings, kept even while nothing else resolves.
    pub failsafe: Option<Failsafe>,
    /// Resolved settings without customers; `None` = the settings do not resolve.
    pub settings: Option<Arc<ResolvedConnection>>,
    /// The PSA could not be asked (outage): keep the settings and authentication known before,
    /// so queued events keep flowing once it answers again.
    pub unreachable: bool,
    /// `spec.dispatch.unresolvedHold`; `None` = the operator's default.
    pub unresolved_hold: Option<std::time::Duration>,
}

/// What the CustomerMapping reconciler learned about one mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MappingFact {
    /// The organization routes to this customer.
    Routable {
        organization: Arc<str>,
        /// Shared with the snapshots built from this fact (never copied per rebuild).
        customer: Arc<ResolvedCustomer>,
    },
    /// The mapping exists but does not route; its organization is held for this reason.
    Blocked {
        organization: Arc<str>,
        reason: String,
    },
    /// The PSA could not be asked: what was known before stands (a routable customer keeps
    /// routing through an outage); never known → held like `Blocked`.
    Unreachable {
        organization: Arc<str>,
        reason: String,
    },
}

impl MappingFact {
    fn organization(&self) -> &str {
        match self {
            MappingFact::Routable { organization, .. }
            | MappingFact::Blocked { organization, .. }
            | MappingFact::Unreachable { organization, .. } => organization,
        }
    }
}

/// Mappings that exist in the API server: connection → mapping name → organization.
pub type MappingInventory = HashMap<ConnectionKey, BTreeMap<String, String>>;

/// How far a connection's routing is established in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completeness {
    /// The initial list of mappings has not been seen yet: nothing is routed.
    InventoryNotSynced,
    /// These many existing mappings have not been evaluated yet (their organizations are held).
    Evaluating(usize),
    Complete,
}

/// The facts, keyed so that applying them in any order gives the same snapshots.
#[derive(Clone, Debug, Default)]
pub struct RoutingIndex {
    connections: BTreeMap<ConnectionKey, ConnectionFacts>,
    facts: HashMap<ConnectionKey, BTreeMap<String, MappingFact>>,
    /// `None` until the initial list of mappings has been synced.
    inventory: Option<MappingInventory>,
}

/// An organization as the routing compares it.
pub fn organization_key(org: &str) -> String {
    org.trim().to_lowercase()
}

impl RoutingIndex {
    pub fn apply_connection_settings(&mut self, key: &ConnectionKey, mut facts: ConnectionFacts) {
        if facts.unreachable {
            if let Some(known) = self.connections.get(key) {
                facts.settings = known.settings.clone();
                facts.authenticated = known.authenticated;
            }
        }
        self.connections.insert(key.clone(), facts);
    }

    pub fn remove_connection(&mut self, key: &ConnectionKey) {
        self.connections.remove(key);
        self.facts.remove(key);
    }

    pub fn apply_customer(&mut self, key: &ConnectionKey, mapping: &str, fact: MappingFact) {
        if let MappingFact::Unreachable { organization, .. } = &fact {
            let known = self.facts.get(key).and_then(|f| f.get(mapping));
            if known.is_some_and(|k| k.organization() == &**organization) {
                return;
            }
        }
        // The reconciler holds the object, so it exists: keep the inventory in step until the
        // next sync confirms it (the reflector is never behind the reconciler).
        if let Some(inv) = &mut self.inventory {
            inv.entry(key.clone())
                .or_default()
                .insert(mapping.to_string(), fact.organization().to_string());
        }
        self.facts
            .entry(key.clone())
            .or_default()
            .insert(mapping.to_string(), fact);
    }

    pub fn remove_customer(&mut self, key: &ConnectionKey, mapping: &str) {
        if let Some(by_name) = self.facts.get_mut(key) {
            by_name.remove(mapping);
        }
        if let Some(inv) = self.inventory.as_mut().and_then(|i| i.get_mut(key)) {
            inv.remove(mapping);
        }
    }

    /// Replaces the inventory with what the API server holds; facts of mappings that no longer
    /// exist are dropped. Returns the connections whose snapshot may have changed.
    pub fn sync_inventory(&mut self, inventory: MappingInventory) -> BTreeSet<ConnectionKey> {
        let mut changed: BTreeSet<ConnectionKey> = BTreeSet::new();
        let first = self.inventory.is_none();
        let old = self.inventory.take().unwrap_or_default();
        for key in old.keys().chain(inventory.keys()) {
            if first || old.get(key) != inventory.get(key) {
                changed.insert(key.clone());
            }
        }
        if first {
            changed.extend(self.connections.keys().cloned());
        }
        for (key, by_name) in self.facts.iter_mut() {
            let live = inventory.get(key);
            by_name.retain(|name, _| live.is_some_and(|l| l.contains_key(name)));
        }
        self.facts.retain(|_, by_name| !by_name.is_empty());
        self.inventory = Some(inventory);
        changed
    }

    pub fn connection_keys(&self) -> Vec<ConnectionKey> {
        self.connections.keys().cloned().collect()
    }

    pub fn facts_of(&self, key: &ConnectionKey) -> Option<&ConnectionFacts> {
        self.connections.get(key)
    }

    pub fn completeness(&self, key: &ConnectionKey) -> Completeness {
        let Some(inv) = &self.inventory else {
            return Completeness::InventoryNotSynced;
        };
        let facts = self.facts.get(key);
        let waiting = inv
            .get(key)
            .map(|maps| {
                maps.iter()
                    .filter(|(name, org)| !evaluated(facts, name, org))
                    .count()
            })
            .unwrap_or(0);
        if waiting == 0 {
            Completeness::Complete
        } else {
            Completeness::Evaluating(waiting)
        }
    }

    /// The snapshot of a connection; `None` when the connection is not known.
    pub fn entry(&self, key: &ConnectionKey) -> Option<ConnectionEntry> {
        let facts = self.connections.get(key)?;
        let resolved = match (&facts.settings, &self.inventory) {
            (Some(settings), Some(inv)) => {
                let (customers, held) = self.routing(key, inv, settings.ticket_fingerprint);
                let complete = self.completeness(key) == Completeness::Complete;
                Some(Arc::new(settings.with_routing(customers, held, complete)))
            }
            // Without the inventory a mapped organization would look unmapped: hold everything.
            _ => None,
        };
        Some(ConnectionEntry {
            intake_token: facts.intake_token.clone(),
            suspended: facts.suspended,
            resolved,
            unresolved_hold: facts.unresolved_hold,
        })
    }

    /// Routable customers by organization, and held organizations (lower-cased) with the reason.
    /// A mapping whose ticket overrides were resolved against other connection settings than
    /// `ticket_fingerprint` is held until it is evaluated again (the publisher asks for that).
    fn routing(
        &self,
        key: &ConnectionKey,
        inv: &MappingInventory,
        ticket_fingerprint: u64,
    ) -> (
        HashMap<Arc<str>, Arc<ResolvedCustomer>>,
        HashMap<String, String>,
    ) {
        let mut customers = HashMap::new();
        let mut held = HashMap::new();
        let facts = self.facts.get(key);
        let Some(mappings) = inv.get(key) else {
            return (customers, held);
        };
        for (name, org) in mappings {
            match facts.and_then(|f| f.get(name)) {
                Some(MappingFact::Routable {
                    organization,
                    customer,
                }) if **organization == **org => match &customer.ticket {
                    Some(t) if t.connection_fingerprint != ticket_fingerprint => {
                        held.insert(
                            organization_key(org),
                            format!(
                                "CustomerMapping {name:?} is evaluated again: its connection's ticket settings or routes changed"
                            ),
                        );
                    }
                    _ => {
                        customers.insert(organization.clone(), customer.clone());
                    }
                },
                Some(
                    MappingFact::Blocked {
                        organization,
                        reason,
                    }
                    | MappingFact::Unreachable {
                        organization,
                        reason,
                    },
                ) if **organization == **org => {
                    held.insert(
                        organization_key(org),
                        format!("CustomerMapping {name:?} is not Ready: {reason}"),
                    );
                }
                // Not evaluated, or evaluated for an organization its spec no longer names.
                _ => {
                    held.insert(
                        organization_key(org),
                        format!("CustomerMapping {name:?} has not been evaluated yet"),
                    );
                }
            }
        }
        // An organization another mapping routes wins over a held one (e.g. a renamed mapping).
        let routed: BTreeSet<String> = customers.keys().map(|o| organization_key(o)).collect();
        held.retain(|org, _| !routed.contains(org));
        (customers, held)
    }
}

fn evaluated(facts: Option<&BTreeMap<String, MappingFact>>, name: &str, org: &str) -> bool {
    facts
        .and_then(|f| f.get(name))
        .is_some_and(|f| f.organization() == org)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psa::connectwise::{ConnectWiseClient, ConnectWiseConfig};
    use crate::psa::Psa;

    /// A client that is never called: the index only carries it.
    fn psa() -> Arc<dyn Psa> {
        let cfg = ConnectWiseConfig::new(
            "http://127.0.0.1:9",
            "acme",
            "client",
            SecretString::new("public".to_string()),
            SecretString::new("private".to_string()),
        );
        Arc::new(ConnectWiseClient::new(cfg).expect("client"))
    }

    fn key() -> ConnectionKey {
        ConnectionKey::new("psa", "cw")
    }

    fn settings() -> ConnectionFacts {
        ConnectionFacts {
            authenticated: true,
            settings: Some(Arc::new(ResolvedConnection::sample(key(), psa()))),
            ..Default::default()
        }
    }

    fn customer(id: &str) -> ResolvedCustomer {
        ResolvedCustomer {
            mapping_name: format!("m{id}"),
            company_id: id.into(),
            company_name: format!("Company {id}"),
            ..Default::default()
        }
    }

    fn routable(org: &str, id: &str) -> MappingFact {
        MappingFact::Routable {
            organization: org.into(),
            customer: Arc::new(customer(id)),
        }
    }

    fn blocked(org: &str, reason: &str) -> MappingFact {
        MappingFact::Blocked {
            organization: org.into(),
            reason: reason.into(),
        }
    }

    fn inventory(maps: &[(&str, &str)]) -> MappingInventory {
        let mut inv = MappingInventory::new();
        inv.insert(
            key(),
            maps.iter()
                .map(|(n, o)| (n.to_string(), o.to_string()))
                .collect(),
        );
        inv
    }

    /// (customers by organization → company id, held organizations, complete)
    fn view(idx: &RoutingIndex) -> Option<(BTreeMap<String, String>, BTreeSet<String>, bool)> {
        let entry = idx.entry(&key())?;
        let r = entry.resolved?;
        Some((
            r.customers
                .iter()
                .map(|(o, c)| (o.to_string(), c.company_id.clone()))
                .collect(),
            r.held_organizations.keys().cloned().collect(),
            r.complete,
        ))
    }

    #[test]
    fn nothing_routes_before_the_inventory_is_synced() {
        let mut idx = RoutingIndex::default();
        idx.apply_connection_settings(&key(), settings());
        idx.apply_customer(&key(), "contoso", routable("Contoso Ltd", "10"));
        let entry = idx.entry(&key()).expect("connection known");
        assert!(
            entry.resolved.is_none(),
            "held until the initial list is seen"
        );
        assert_eq!(idx.completeness(&key()), Completeness::InventoryNotSynced);
        idx.sync_inventory(inventory(&[("contoso", "Contoso Ltd")]));
        let (customers, held, complete) = view(&idx).unwrap();
        assert_eq!(customers.get("Contoso Ltd").map(String::as_str), Some("10"));
        assert!(held.is_empty());
        assert!(complete);
    }

    #[test]
    fn existing_mappings_not_yet_evaluated_hold_their_organization() {
        let mut idx = RoutingIndex::default();
        idx.apply_connection_settings(&key(), settings());
        idx.sync_inventory(inventory(&[
            ("contoso", "Contoso Ltd"),
            ("fabrikam", "Fabrikam"),
        ]));
        let (customers, held, complete) = view(&idx).unwrap();
        assert!(customers.is_empty());
        assert_eq!(
            held,
            BTreeSet::from(["contoso ltd".into(), "fabrikam".into()])
        );
        assert!(!complete);
        assert_eq!(idx.completeness(&key()), Completeness::Evaluating(2));
        idx.apply_customer(&key(), "contoso", routable("Contoso Ltd", "10"));
        idx.apply_customer(&key(), "fabrikam", blocked("Fabrikam", "company gone"));
        let (customers, held, complete) = view(&idx).unwrap();
        assert_eq!(customers.len(), 1);
        assert_eq!(held, BTreeSet::from(["fabrikam".into()]));
        assert!(complete, "every mapping evaluated, one of them blocked");
        let entry = idx.entry(&key()).unwrap().resolved.unwrap();
        assert!(entry.held_organizations["fabrikam"].contains("company gone"));
    }

    #[test]
    fn a_fact_for_an_organization_the_spec_no_longer_names_is_not_used() {
        let mut idx = RoutingIndex::default();
        idx.apply_connection_settings(&key(), settings());
        idx.sync_inventory(inventory(&[("contoso", "Contoso Ltd")]));
        idx.apply_customer(&key(), "contoso", routable("Contoso Ltd", "10"));
        // The spec now names another organization; the old fact must not route either.
        idx.sync_inventory(inventory(&[("contoso", "Contoso Group")]));
        let (customers, held, complete) = view(&idx).unwrap();
        assert!(customers.is_empty());
        assert_eq!(held, BTreeSet::from(["contoso group".into()]));
        assert!(!complete);
    }

    #[test]
    fn deleted_mappings_and_connections_disappear() {
        let mut idx = RoutingIndex::default();
        idx.apply_connection_settings(&key(), settings());
        idx.sync_inventory(inventory(&[("contoso", "Contoso Ltd")]));
        idx.apply_customer(&key(), "contoso", routable("Contoso Ltd", "10"));
        let changed = idx.sync_inventory(inventory(&[]));
        assert!(changed.contains(&key()));
        let (customers, held, complete) = view(&idx).unwrap();
        assert!(customers.is_empty() && held.is_empty() && complete);
        idx.remove_connection(&key());
        assert!(idx.entry(&key()).is_none());
    }

    #[test]
    fn unresolved_settings_publish_the_token_but_no_routing() {
        let mut idx = RoutingIndex::default();
        idx.sync_inventory(inventory(&[]));
        idx.apply_connection_settings(
            &key(),
            ConnectionFacts {
                intake_token: Some(SecretString::new("t".repeat(32))),
                ..Default::default()
            },
        );
        let entry = idx.entry(&key()).unwrap();
        assert!(entry.intake_token.is_some());
        assert!(entry.resolved.is_none());
    }

    #[test]
    fn a_routable_organization_wins_over_a_held_duplicate_spelling() {
        let mut idx = RoutingIndex::default();
        idx.apply_connection_settings(&key(), settings());
        idx.sync_inventory(inventory(&[("new", "Contoso Ltd"), ("old", "contoso ltd")]));
        idx.apply_customer(&key(), "new", routable("Contoso Ltd", "10"));
        idx.apply_customer(
            &key(),
            "old",
            blocked("contoso ltd", "DuplicateOrganization"),
        );
        let (customers, held, _) = view(&idx).unwrap();
        assert_eq!(customers.len(), 1);
        assert!(held.is_empty());
    }

    #[test]
    fn an_outage_keeps_what_was_known() {
        let mut idx = RoutingIndex::default();
        idx.apply_connection_settings(&key(), settings());
        idx.sync_inventory(inventory(&[
            ("contoso", "Contoso Ltd"),
            ("new", "Tailspin"),
        ]));
        idx.apply_customer(&key(), "contoso", routable("Contoso Ltd", "10"));
        let down = |org: &str| MappingFact::Unreachable {
            organization: org.into(),
            reason: "PSA answered 503".into(),
        };
        idx.apply_connection_settings(
            &key(),
            ConnectionFacts {
                unreachable: true,
                ..Default::default()
            },
        );
        idx.apply_customer(&key(), "contoso", down("Contoso Ltd"));
        idx.apply_customer(&key(), "new", down("Tailspin"));
        let (customers, held, complete) = view(&idx).expect("settings kept through the outage");
        assert_eq!(customers.get("Contoso Ltd").map(String::as_str), Some("10"));
        assert_eq!(
            held,
            BTreeSet::from(["tailspin".into()]),
            "never known: held"
        );
        assert!(complete);
        assert!(idx.facts_of(&key()).unwrap().authenticated);
    }

    #[test]
    fn overrides_resolved_against_older_connection_settings_are_held() {
        let overridden = |fingerprint: u64| {
            let base = Arc::new(crate::resolved::TicketProfile::default());
            MappingFact::Routable {
                organization: "Contoso Ltd".into(),
                customer: Arc::new(ResolvedCustomer {
                    ticket: Some(Arc::new(crate::resolved::CustomerTicket {
                        connection_fingerprint: fingerprint,
                        base,
                        routes: vec![],
                        connection_routes: vec![],
                    })),
                    ..customer("10")
                }),
            }
        };
        let with_fingerprint = |fingerprint: u64| ConnectionFacts {
            authenticated: true,
            settings: Some(Arc::new(ResolvedConnection {
                ticket_fingerprint: fingerprint,
                ..ResolvedConnection::sample(key(), psa())
            })),
            ..Default::default()
        };
        let mut idx = RoutingIndex::default();
        idx.sync_inventory(inventory(&[("contoso", "Contoso Ltd")]));
        idx.apply_connection_settings(&key(), with_fingerprint(7));
        idx.apply_customer(&key(), "contoso", overridden(7));
        let (customers, held, _) = view(&idx).unwrap();
        assert_eq!(customers.len(), 1);
        assert!(held.is_empty());
        // The connection's routes changed: held (never the catch-all) until re-evaluated.
        idx.apply_connection_settings(&key(), with_fingerprint(8));
        let (customers, held, _) = view(&idx).unwrap();
        assert!(customers.is_empty());
        assert_eq!(held, BTreeSet::from(["contoso ltd".into()]));
        idx.apply_customer(&key(), "contoso", overridden(8));
        assert_eq!(view(&idx).unwrap().0.len(), 1);
        // A mapping without overrides does not depend on the connection's settings.
        idx.apply_connection_settings(&key(), with_fingerprint(9));
        idx.apply_customer(&key(), "contoso", routable("Contoso Ltd", "10"));
        assert_eq!(view(&idx).unwrap().0.len(), 1);
    }

    /// Every order of the same facts gives the same snapshot.
    #[test]
    fn apply_order_does_not_matter() {
        #[derive(Clone)]
        enum Op {
            Settings,
            Inventory,
            Fact(&'static str, MappingFact),
            Remove(&'static str),
        }
        let ops = [
            Op::Settings,
            Op::Inventory,
            Op::Fact("contoso", routable("Contoso Ltd", "10")),
            Op::Fact("fabrikam", blocked("Fabrikam", "gone")),
            Op::Fact("tailspin", routable("Tailspin", "12")),
            Op::Remove("gone-mapping"),
        ];
        let inv = inventory(&[
            ("contoso", "Contoso Ltd"),
            ("fabrikam", "Fabrikam"),
            ("tailspin", "Tailspin"),
        ]);
        let run = |order: &[usize]| {
            let mut idx = RoutingIndex::default();
            for &i in order {
                match ops[i].clone() {
                    Op::Settings => idx.apply_connection_settings(&key(), settings()),
                    Op::Inventory => {
                        idx.sync_inventory(inv.clone());
                    }
                    Op::Fact(name, f) => idx.apply_customer(&key(), name, f),
                    Op::Remove(name) => idx.remove_customer(&key(), name),
                }
            }
            view(&idx)
        };
        let expected = run(&[0, 1, 2, 3, 4, 5]);
        assert!(expected.as_ref().is_some_and(|v| v.2), "{expected:?}");
        let mut order: Vec<usize> = (0..ops.len()).collect();
        // All 720 permutations (Heap's algorithm).
        let mut c = vec![0usize; order.len()];
        let mut i = 0;
        let mut seen = 1;
        while i < order.len() {
            if c[i] < i {
                if i % 2 == 0 {
                    order.swap(0, i);
                } else {
                    order.swap(c[i], i);
                }
                assert_eq!(run(&order), expected, "order {order:?}");
                seen += 1;
                c[i] += 1;
                i = 0;
            } else {
                c[i] = 0;
                i += 1;
            }
        }
        assert_eq!(seen, 720);
    }
}
