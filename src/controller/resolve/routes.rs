//! Resolution of per-customer ticket overrides and routes (`PsaConnection.spec.routes`,
//! `CustomerMapping.spec.ticket` / `spec.routes`).
//!
//! Every routing outcome an alert can have is a *combination*: the connection's `ticket`
//! settings with a mapping's `ticket` and/or one route laid over them, by name. A combination is
//! resolved with the same rules as the connection's own settings (`resolve_ticket`) on the board
//! it ends up on, so a board override re-resolves the connection's statuses, types and issue
//! types there (ConnectWise scopes them per board). A connection has one combination per route;
//! a mapping with overrides one for itself, one per own route and one per connection route —
//! linear, never a product.
//!
//! Misses are attributed to the field that caused them: a name the resource sets itself is
//! reported at its own path (`routes[1].priority`, `ticket.board`); a name of the connection
//! that does not exist on a board this resource chose is reported at that `board` field; a name
//! another resource owns is left to that resource's condition.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::api::{
    CustomerMappingSpec, CustomerTicketSettings, IssueTypeSettings, LifecycleSettings,
    PsaConnectionSpec, TicketRoute, TicketSettings, ValueMapping,
};
use crate::dispatch::decide::ticket_route::RouteMatcher;
use crate::psa::{Psa, PsaResult};
use crate::resolved::{CustomerTicket, ResolvedRoute, TicketProfile};

use super::lifecycle::resolve_lifecycle;
use super::ticket::{fetch_catalog, resolve_ticket, PsaCatalog, Unresolved};

/// What one layer sets, by name (absent = keeps the value below).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    pub board: Option<String>,
    pub priority: Option<String>,
    pub type_: Option<String>,
    pub issue_type: Option<String>,
    pub sub_issue_type: Option<String>,
    pub summary_template: Option<String>,
}

impl From<&CustomerTicketSettings> for Overrides {
    fn from(t: &CustomerTicketSettings) -> Self {
        Overrides {
            board: t.board.clone().map(String::from),
            priority: t.priority.clone().map(String::from),
            type_: t.type_.clone().map(String::from),
            issue_type: t.issue_type.clone().map(String::from),
            sub_issue_type: t.sub_issue_type.clone().map(String::from),
            summary_template: t.summary_template.clone(),
        }
    }
}

impl From<&TicketRoute> for Overrides {
    fn from(r: &TicketRoute) -> Self {
        Overrides {
            board: r.board.clone().map(String::from),
            priority: r.priority.clone().map(String::from),
            type_: r.type_.clone().map(String::from),
            ..Default::default()
        }
    }
}

/// A layer laid over the connection's ticket settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// Where its fields are, as the checked resource's condition names them (`routes[1]`,
    /// `ticket`, `PsaConnection routes[0]`).
    pub path: String,
    /// The checked resource owns it (its misses are reported there).
    pub owned: bool,
    pub set: Overrides,
}

/// The setting a layer may override.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setting {
    Board,
    Priority,
    Type,
    IssueType,
    SummaryTemplate,
}

/// Which layer last set a setting, and its value for the board.
#[derive(Clone, Debug, Default, PartialEq)]
struct Origins {
    by_setting: Vec<(Setting, usize)>,
}

/// What a combination stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComboKind {
    /// A mapping's `ticket` on the connection's settings.
    MappingBase,
    /// The checked resource's own route at this position.
    Route(usize),
    /// The connection's route at this position, on a mapping's base.
    ConnectionRoute(usize),
}

/// One routing outcome to resolve: merged settings by name, and where each override came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Combo {
    pub kind: ComboKind,
    pub settings: TicketSettings,
    layers: Vec<Layer>,
    origins: Origins,
}

impl Combo {
    /// The connection's settings with `layers` laid over them, bottom first.
    pub fn new(kind: ComboKind, base: &TicketSettings, layers: Vec<Layer>) -> Self {
        let mut settings = base.clone();
        let mut origins = Origins::default();
        let one = |v: &String| {
            Some(ValueMapping {
                value: Some(v.clone()),
                ..Default::default()
            })
        };
        for (i, layer) in layers.iter().enumerate() {
            let o = &layer.set;
            let mut mark = |setting: Setting| {
                origins.by_setting.retain(|(k, _)| *k != setting);
                origins.by_setting.push((setting, i));
            };
            if let Some(b) = &o.board {
                mark(Setting::Board);
                settings.board = Some(b.clone());
            }
            if let Some(p) = &o.priority {
                mark(Setting::Priority);
                settings.priority = one(p);
            }
            if let Some(t) = &o.type_ {
                mark(Setting::Type);
                settings.type_ = one(t);
            }
            if let Some(it) = &o.issue_type {
                mark(Setting::IssueType);
                settings.issue_type = Some(IssueTypeSettings {
                    default: Some(it.clone()),
                    sub_issue_type: o.sub_issue_type.clone(),
                    overrides: Vec::new(),
                });
            }
            if let Some(t) = &o.summary_template {
                mark(Setting::SummaryTemplate);
                settings.summary_template = Some(t.clone());
            }
        }
        Combo {
            kind,
            settings,
            layers,
            origins,
        }
    }

    fn origin(&self, s: Setting) -> Option<&Layer> {
        self.origins
            .by_setting
            .iter()
            .find(|(k, _)| *k == s)
            .map(|(_, i)| &self.layers[*i])
    }

    /// A miss of the merged settings as the checked resource reports it, or `None` when
    /// another resource reports it (or it is the connection's own miss, reported as such).
    fn attribute(&self, miss: Unresolved, connection_label: &str) -> Option<Unresolved> {
        let (setting, suffix) = classify(&miss.field);
        let board_layer = self.origin(Setting::Board);
        if let Some(layer) = setting.and_then(|s| self.origin(s)) {
            if !layer.owned {
                return None;
            }
            let mut problem = miss.problem;
            if let Some(b) = board_layer.filter(|b| b.path != layer.path) {
                problem = format!(
                    "{problem} (on board {:?} of {}.board)",
                    self.settings.board.as_deref().unwrap_or_default(),
                    b.path
                );
            }
            return Some(Unresolved {
                field: format!("{}.{suffix}", layer.path),
                value: miss.value,
                problem,
            });
        }
        // A name of the connection (or of a layer this resource does not own) that is missing
        // on the board this resource chose.
        let board = board_layer.filter(|b| b.owned)?;
        let name_owner = match setting.and_then(|s| self.origin(s)) {
            Some(l) => format!("{}.{suffix}", l.path),
            None => format!("{connection_label}{}", miss.field),
        };
        Some(Unresolved {
            field: format!("{}.board", board.path),
            value: self.settings.board.clone().unwrap_or_default(),
            problem: format!(
                "{name_owner} {:?} is not usable on this board: {}",
                miss.value, miss.problem
            ),
        })
    }
}

/// The overridable setting a miss of `resolve_ticket` is about, and the field under a layer's
/// path it corresponds to.
fn classify(field: &str) -> (Option<Setting>, &'static str) {
    let rest = field.strip_prefix("ticket.").unwrap_or(field);
    if rest == "board" {
        (Some(Setting::Board), "board")
    } else if rest.starts_with("priority") {
        (Some(Setting::Priority), "priority")
    } else if rest.starts_with("type") {
        (Some(Setting::Type), "type")
    } else if rest.starts_with("issueType") && rest.ends_with("subIssueType") {
        (Some(Setting::IssueType), "subIssueType")
    } else if rest.starts_with("issueType") {
        (Some(Setting::IssueType), "issueType")
    } else if rest == "summaryTemplate" {
        (Some(Setting::SummaryTemplate), "summaryTemplate")
    } else {
        (None, "")
    }
}

/// The connection's combinations: one per route (`routes[j]`).
pub fn connection_combos(spec: &PsaConnectionSpec) -> Vec<Combo> {
    let base = spec.ticket.clone().unwrap_or_default();
    spec.routes
        .iter()
        .enumerate()
        .map(|(j, r)| {
            let layer = Layer {
                path: format!("routes[{j}]"),
                owned: true,
                set: r.into(),
            };
            Combo::new(ComboKind::Route(j), &base, vec![layer])
        })
        .collect()
}

/// Whether a mapping sets anything of its tickets (otherwise it carries no combinations and
/// routes exactly as the connection says).
pub fn has_overrides(mapping: &CustomerMappingSpec) -> bool {
    mapping.ticket.is_some() || !mapping.routes.is_empty()
}

/// A mapping's combinations: its base (`ticket`), then each own route, then each connection
/// route, all on its base. Empty when the mapping sets nothing.
pub fn mapping_combos(conn: &PsaConnectionSpec, mapping: &CustomerMappingSpec) -> Vec<Combo> {
    if !has_overrides(mapping) {
        return Vec::new();
    }
    let base = conn.ticket.clone().unwrap_or_default();
    let own = Layer {
        path: "ticket".into(),
        owned: true,
        set: mapping
            .ticket
            .as_ref()
            .map(Overrides::from)
            .unwrap_or_default(),
    };
    let mut out = vec![Combo::new(ComboKind::MappingBase, &base, vec![own.clone()])];
    for (i, r) in mapping.routes.iter().enumerate() {
        let layer = Layer {
            path: format!("routes[{i}]"),
            owned: true,
            set: r.into(),
        };
        out.push(Combo::new(
            ComboKind::Route(i),
            &base,
            vec![own.clone(), layer],
        ));
    }
    for (j, r) in conn.routes.iter().enumerate() {
        let layer = Layer {
            path: format!("PsaConnection routes[{j}]"),
            owned: false,
            set: r.into(),
        };
        out.push(Combo::new(
            ComboKind::ConnectionRoute(j),
            &base,
            vec![own.clone(), layer],
        ));
    }
    out
}

/// Resolves one combination against the catalog of its board (pure). `connection_label`
/// prefixes the connection's own field names in messages (`""` on the connection,
/// `"PsaConnection "` on a mapping). `Err` with no misses: the combination fails on names
/// another resource reports.
pub fn resolve_combo(
    combo: &Combo,
    lifecycle: Option<&LifecycleSettings>,
    catalog: &PsaCatalog,
    connection_label: &str,
) -> Result<TicketProfile, Vec<Unresolved>> {
    let attribute = |misses: Vec<Unresolved>| -> Vec<Unresolved> {
        let mut out: Vec<Unresolved> = Vec::new();
        for m in misses {
            if let Some(m) = combo.attribute(m, connection_label) {
                if !out.contains(&m) {
                    out.push(m);
                }
            }
        }
        out
    };
    let ticket = resolve_ticket(&combo.settings, catalog).map_err(attribute)?;
    let life = resolve_lifecycle(
        lifecycle,
        &catalog.statuses,
        ticket.closed_status_id.as_ref(),
    )
    .map_err(|m| attribute(vec![m]))?;
    Ok(TicketProfile {
        ticket,
        lifecycle_closed_status_id: life.closed_status_id,
    })
}

/// Where the PSA lists a combination resolves against come from.
#[async_trait::async_trait]
pub trait Catalogs: Send + Sync {
    async fn catalog(&self, psa: &dyn Psa, settings: &TicketSettings)
        -> PsaResult<Arc<PsaCatalog>>;
}

/// Lists read once per distinct settings within one evaluation (the connection's reconcile,
/// `validate`, `plan`).
#[derive(Default)]
pub struct FreshCatalogs {
    memo: tokio::sync::Mutex<HashMap<String, Arc<PsaCatalog>>>,
}

/// What decides which lists `fetch_catalog` reads for settings (same key = same lists).
pub fn catalog_key(settings: &TicketSettings) -> String {
    serde_json::to_string(settings).unwrap_or_default()
}

#[async_trait::async_trait]
impl Catalogs for FreshCatalogs {
    async fn catalog(
        &self,
        psa: &dyn Psa,
        settings: &TicketSettings,
    ) -> PsaResult<Arc<PsaCatalog>> {
        let key = catalog_key(settings);
        let mut memo = self.memo.lock().await;
        if let Some(c) = memo.get(&key) {
            return Ok(c.clone());
        }
        let (cat, _) = fetch_catalog(psa, settings).await?;
        let cat = Arc::new(cat);
        memo.insert(key, cat.clone());
        Ok(cat)
    }
}

/// Every combination resolved (with the ConnectWise type/subtype check of the board), in
/// order; the profiles of the ones that resolved and every miss.
pub async fn resolve_combos(
    psa: &dyn Psa,
    combos: &[Combo],
    lifecycle: Option<&LifecycleSettings>,
    catalogs: &dyn Catalogs,
    connection_label: &str,
) -> PsaResult<(Vec<Option<Arc<TicketProfile>>>, Vec<Unresolved>)> {
    let mut profiles = Vec::with_capacity(combos.len());
    let mut misses: Vec<Unresolved> = Vec::new();
    let add = |found: Vec<Unresolved>, misses: &mut Vec<Unresolved>| {
        for m in found {
            if !misses.contains(&m) {
                misses.push(m);
            }
        }
    };
    for combo in combos {
        let catalog = catalogs.catalog(psa, &combo.settings).await?;
        match resolve_combo(combo, lifecycle, &catalog, connection_label) {
            Ok(p) => {
                let bad =
                    crate::controller::type_combinations::check(psa, &combo.settings, &p.ticket)
                        .await?;
                let bad: Vec<Unresolved> = bad
                    .into_iter()
                    .filter_map(|m| combo.attribute(m, connection_label))
                    .collect();
                if bad.is_empty() {
                    profiles.push(Some(Arc::new(p)));
                } else {
                    add(bad, &mut misses);
                    profiles.push(None);
                }
            }
            Err(m) => {
                add(m, &mut misses);
                profiles.push(None);
            }
        }
    }
    Ok((profiles, misses))
}

/// The connection's routes, resolved: `None` when any fails (the misses say why).
pub fn connection_routes(
    spec: &PsaConnectionSpec,
    profiles: Vec<Option<Arc<TicketProfile>>>,
) -> Option<Vec<ResolvedRoute>> {
    spec.routes
        .iter()
        .zip(profiles)
        .map(|(r, p)| {
            Some(ResolvedRoute {
                matcher: RouteMatcher::new(&r.matcher.severity, &r.matcher.alert_type),
                profile: p?,
            })
        })
        .collect()
}

/// The ids each route's names resolved to (`routes[0].board` → id), for
/// `status.resolved.values`.
pub fn route_ids(spec: &PsaConnectionSpec, routes: &[ResolvedRoute]) -> Vec<(String, String)> {
    let one = |v: &crate::resolved::ResolvedValue| match v {
        crate::resolved::ResolvedValue::One(id) => Some(id.clone()),
        _ => None,
    };
    let mut out = vec![];
    for (j, (r, resolved)) in spec.routes.iter().zip(routes).enumerate() {
        let t = &resolved.profile.ticket;
        let pairs = [
            ("board", r.board.is_some(), t.board_id.clone()),
            ("priority", r.priority.is_some(), one(&t.priority)),
            ("type", r.type_.is_some(), one(&t.type_)),
        ];
        for (field, set, id) in pairs {
            if let (true, Some(id)) = (set, id) {
                out.push((format!("routes[{j}].{field}"), id));
            }
        }
    }
    out
}

/// A mapping's resolved overrides from the profiles of [`mapping_combos`] (same order); `None`
/// when any failed.
pub fn customer_ticket(
    mapping: &CustomerMappingSpec,
    profiles: Vec<Option<Arc<TicketProfile>>>,
    connection_fingerprint: u64,
) -> Option<CustomerTicket> {
    let mut profiles = profiles.into_iter();
    let base = profiles.next()??;
    let mut routes = Vec::with_capacity(mapping.routes.len());
    for r in &mapping.routes {
        routes.push(ResolvedRoute {
            matcher: RouteMatcher::new(&r.matcher.severity, &r.matcher.alert_type),
            profile: profiles.next()??,
        });
    }
    let connection_routes: Option<Vec<_>> = profiles.collect();
    Some(CustomerTicket {
        connection_fingerprint,
        base,
        routes,
        connection_routes: connection_routes?,
    })
}

/// Identifies the connection settings a mapping's overrides are resolved against: its
/// `ticket`, `routes` and `lifecycle`. Equal specs give equal values within a process.
pub fn ticket_fingerprint(spec: &PsaConnectionSpec) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_string(&(&spec.ticket, &spec.routes, &spec.lifecycle))
        .unwrap_or_default()
        .hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::RouteMatch;
    use crate::fixtures::value;
    use crate::psa::{Named, StatusInfo};

    /// Two ConnectWise-like boards: statuses and types are per board, priorities are global.
    fn catalog(board: &str) -> PsaCatalog {
        let (statuses, types) = match board {
            "Security Alerts" => (
                StatusInfo::list(&[("10", "New", false), ("12", ">Closed", true)]),
                Named::list(&[("20", "Alert"), ("21", "Incident")]),
            ),
            // Escalations has no "Alert" type, and its own status ids.
            _ => (
                StatusInfo::list(&[("110", "New", false), ("112", ">Closed", true)]),
                Named::list(&[("121", "Incident")]),
            ),
        };
        PsaCatalog {
            boards: Named::list(&[("1", "Security Alerts"), ("2", "Escalations")]),
            statuses,
            types,
            priorities: Named::list(&[("50", "Critical"), ("51", "High"), ("52", "Medium")]),
            ..Default::default()
        }
    }

    fn conn(routes: Vec<TicketRoute>) -> PsaConnectionSpec {
        PsaConnectionSpec {
            ticket: Some(TicketSettings {
                board: Some("Security Alerts".into()),
                status: value("New"),
                type_: value("Alert"),
                priority: Some(ValueMapping {
                    map: Some(BTreeMap::from([("high".into(), "High".into())])),
                    default: Some("Medium".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            routes,
            ..Default::default()
        }
    }

    fn route(
        severity: &[&str],
        board: Option<&str>,
        priority: Option<&str>,
        type_: Option<&str>,
    ) -> TicketRoute {
        TicketRoute {
            matcher: RouteMatch {
                severity: severity.iter().map(|s| s.to_string()).collect(),
                alert_type: Vec::new(),
            },
            board: board.map(Into::into),
            priority: priority.map(Into::into),
            type_: type_.map(Into::into),
        }
    }

    fn mapping(
        ticket: Option<CustomerTicketSettings>,
        routes: Vec<TicketRoute>,
    ) -> CustomerMappingSpec {
        CustomerMappingSpec {
            connection_ref: crate::api::LocalRef { name: "cw".into() },
            organization: "Contoso Ltd".into(),
            company: crate::api::CompanyRef {
                identifier: Some("CONTOSO".into()),
                name: None,
            },
            default_contact: None,
            contract: None,
            contract_service: None,
            ticket,
            routes,
        }
    }

    /// Resolves every combination against the two-board catalog (board by name).
    fn resolve_all(combos: &[Combo], label: &str) -> (Vec<Option<TicketProfile>>, Vec<String>) {
        let mut profiles = vec![];
        let mut misses = vec![];
        for c in combos {
            let cat = catalog(c.settings.board.as_deref().unwrap_or_default());
            match resolve_combo(c, None, &cat, label) {
                Ok(p) => profiles.push(Some(p)),
                Err(m) => {
                    profiles.push(None);
                    for m in m {
                        let m = format!("{}={}", m.field, m.value);
                        if !misses.contains(&m) {
                            misses.push(m);
                        }
                    }
                }
            }
        }
        (profiles, misses)
    }

    #[test]
    fn a_route_board_re_resolves_the_connection_names_there() {
        let spec = conn(vec![
            route(
                &["critical"],
                Some("Escalations"),
                Some("Critical"),
                Some("Incident"),
            ),
            route(&["high"], None, Some("Critical"), None),
        ]);
        let (profiles, misses) = resolve_all(&connection_combos(&spec), "");
        assert!(misses.is_empty(), "{misses:?}");
        let escalations = &profiles[0].as_ref().unwrap().ticket;
        assert_eq!(escalations.board_id.as_deref(), Some("2"));
        // The connection's "New" on the Escalations board, not the Security Alerts one.
        assert_eq!(
            escalations.status,
            crate::resolved::ResolvedValue::One("110".into())
        );
        assert_eq!(
            escalations.type_,
            crate::resolved::ResolvedValue::One("121".into())
        );
        assert_eq!(escalations.closed_status_id.as_deref(), Some("112"));
        let routes: Vec<ResolvedRoute> = profiles
            .iter()
            .map(|p| ResolvedRoute {
                matcher: RouteMatcher::default(),
                profile: Arc::new(p.clone().unwrap()),
            })
            .collect();
        let ids: Vec<(String, String)> = route_ids(&spec, &routes);
        let ids: Vec<(&str, &str)> = ids.iter().map(|(f, i)| (f.as_str(), i.as_str())).collect();
        assert_eq!(
            ids,
            [
                ("routes[0].board", "2"),
                ("routes[0].priority", "50"),
                ("routes[0].type", "121"),
                ("routes[1].priority", "50"),
            ]
        );
        let high = &profiles[1].as_ref().unwrap().ticket;
        assert_eq!(high.board_id.as_deref(), Some("1"));
        assert_eq!(
            high.priority,
            crate::resolved::ResolvedValue::One("50".into())
        );
    }

    /// Each miss is reported on the resource that owns the name, at its own field.
    #[test]
    fn misses_name_the_field_that_caused_them() {
        // (connection routes, mapping ticket, mapping routes, connection misses, mapping misses)
        type Case = (
            Vec<TicketRoute>,
            Option<CustomerTicketSettings>,
            Vec<TicketRoute>,
            Vec<&'static str>,
            Vec<&'static str>,
        );
        let board = |b: &str| CustomerTicketSettings {
            board: Some(b.into()),
            ..Default::default()
        };
        let table: Vec<Case> = vec![
            // An unknown priority in the second route.
            (
                vec![
                    route(&["high"], None, Some("High"), None),
                    route(&["critical"], None, Some("P1"), None),
                ],
                None,
                vec![],
                vec!["routes[1].priority=P1"],
                vec![],
            ),
            // A route's board without the connection's type "Alert".
            (
                vec![route(&["critical"], Some("Escalations"), None, None)],
                None,
                vec![],
                vec!["routes[0].board=Escalations"],
                vec![],
            ),
            (
                vec![route(&["critical"], Some("Help Desk"), None, None)],
                None,
                vec![],
                vec!["routes[0].board=Help Desk"],
                vec![],
            ),
            // The mapping's board lacks "Alert": reported at the mapping's ticket.board; the
            // connection's route that sets the type works there.
            (
                vec![route(&["critical"], None, None, Some("Incident"))],
                Some(board("Escalations")),
                vec![],
                vec![],
                vec!["ticket.board=Escalations"],
            ),
            // The mapping's own names, at their own fields; a connection route's priority
            // that does not exist is the connection's problem, not the mapping's.
            (
                vec![route(&["critical"], None, Some("P0"), None)],
                Some(CustomerTicketSettings {
                    priority: Some("Urgent".into()),
                    summary_template: Some("{{ alertType ".into()),
                    ..Default::default()
                }),
                vec![route(&["high"], None, None, Some("Problem"))],
                vec!["routes[0].priority=P0"],
                vec![
                    "ticket.priority=Urgent",
                    "ticket.summaryTemplate={{ alertType ",
                    "routes[0].type=Problem",
                ],
            ),
            (
                vec![],
                None,
                vec![route(&["high"], None, None, Some("Problem"))],
                vec![],
                vec!["routes[0].type=Problem"],
            ),
        ];
        for (conn_routes, ticket, mapping_routes, conn_want, mapping_want) in table {
            let spec = conn(conn_routes);
            let (_, got) = resolve_all(&connection_combos(&spec), "");
            assert_eq!(got, conn_want, "connection {:?}", spec.routes);
            let m = mapping(ticket, mapping_routes);
            let (_, got) = resolve_all(&mapping_combos(&spec, &m), "PsaConnection ");
            assert_eq!(got, mapping_want, "mapping {:?} {:?}", m.ticket, m.routes);
        }
    }

    #[test]
    fn a_board_miss_says_which_connection_name_is_missing() {
        let spec = conn(vec![]);
        let m = mapping(
            Some(CustomerTicketSettings {
                board: Some("Escalations".into()),
                ..Default::default()
            }),
            vec![],
        );
        let combos = mapping_combos(&spec, &m);
        let err =
            resolve_combo(&combos[0], None, &catalog("Escalations"), "PsaConnection ").unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].field, "ticket.board");
        assert!(
            err[0].problem.starts_with(
                r#"PsaConnection ticket.type.value "Alert" is not usable on this board"#
            ),
            "{}",
            err[0].problem
        );
    }

    #[test]
    fn mapping_profiles_line_up_with_the_routes() {
        let spec = conn(vec![route(
            &["critical"],
            Some("Escalations"),
            None,
            Some("Incident"),
        )]);
        assert!(mapping_combos(&spec, &mapping(None, vec![])).is_empty());
        let m = mapping(
            Some(CustomerTicketSettings {
                priority: Some("High".into()),
                ..Default::default()
            }),
            vec![route(&["low"], None, Some("Medium"), None)],
        );
        let combos = mapping_combos(&spec, &m);
        let kinds: Vec<ComboKind> = combos.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                ComboKind::MappingBase,
                ComboKind::Route(0),
                ComboKind::ConnectionRoute(0)
            ]
        );
        let (profiles, misses) = resolve_all(&combos, "PsaConnection ");
        assert!(misses.is_empty(), "{misses:?}");
        let arcs = profiles.into_iter().map(|p| p.map(Arc::new)).collect();
        let t = customer_ticket(&m, arcs, ticket_fingerprint(&spec)).expect("resolves");
        assert_eq!(
            t.base.ticket.priority,
            crate::resolved::ResolvedValue::One("51".into())
        );
        assert_eq!(
            t.routes[0].profile.ticket.priority,
            crate::resolved::ResolvedValue::One("52".into())
        );
        // The connection's critical route on the mapping's base: its board, the mapping's priority.
        let critical = &t.connection_routes[0].ticket;
        assert_eq!(critical.board_id.as_deref(), Some("2"));
        assert_eq!(
            critical.priority,
            crate::resolved::ResolvedValue::One("51".into())
        );
        let mut changed = spec.clone();
        changed.routes.clear();
        assert_ne!(ticket_fingerprint(&spec), ticket_fingerprint(&changed));
    }
}
