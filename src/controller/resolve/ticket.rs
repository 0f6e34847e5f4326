//! Resolution of a PsaConnection's ticket settings against lists fetched from the PSA.
//!
//! `fetch_catalog` does the I/O (a handful of list calls); `resolve_ticket` is pure and reports
//! every name that did not resolve, each with its field path and the nearest existing names,
//! so one condition message tells the user everything to fix.

use std::collections::{BTreeMap, HashMap};

use crate::api::{EventField, TicketSettings, ValueMapping};
use crate::psa::{Named, Provider, Psa, PsaId, PsaResult, StatusInfo};
use crate::resolved::{IssueTypeIds, ResolvedTicket, ResolvedValue};

use super::names::{find_by_name, HasName};

/// The PSA's lists the ticket settings are resolved against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PsaCatalog {
    pub boards: Vec<Named>,
    /// Of the configured board where the PSA scopes them per board.
    pub statuses: Vec<StatusInfo>,
    pub types: Vec<Named>,
    pub issue_types: Vec<Named>,
    /// Issue type id → its sub-issue types (fetched only for issue types the settings use).
    pub sub_issue_types: HashMap<PsaId, Vec<Named>>,
    pub priorities: Vec<Named>,
    pub sources: Vec<Named>,
}

/// A configured name that does not exist in the PSA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved {
    /// Field path in the spec, e.g. `ticket.priority.map.critical`.
    pub field: String,
    pub value: String,
    /// `not found (did you mean …?)` or `ambiguous …`.
    pub problem: String,
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}: {}", self.field, self.value, self.problem)
    }
}

/// Settings the PSA requires on every ticket that the spec leaves unset (or mapped without a
/// default, so some events would have none). Pure; the reconciler reports them as
/// `RequiredByPsa`, `validate` and `plan` the same way.
pub fn required_by_psa(provider: Provider, settings: &TicketSettings) -> Vec<Unresolved> {
    provider
        .required_ticket_settings()
        .iter()
        .filter_map(|req| {
            let field = format!("ticket.{}", req.setting);
            let problem = |why: &str| Unresolved {
                field: field.clone(),
                value: String::new(),
                problem: format!(
                    "{why}: {} requires {} on every ticket{}",
                    provider.as_str(),
                    req.psa_field,
                    req.note
                ),
            };
            if req.setting == "board" {
                return settings.board.is_none().then(|| problem("not set"));
            }
            let value = match req.setting {
                "status" => &settings.status,
                "priority" => &settings.priority,
                "type" => &settings.type_,
                "source" => &settings.source,
                _ => return None,
            };
            match value {
                None => Some(problem("not set")),
                Some(v) if v.value.is_none() && v.default.is_none() => Some(problem(
                    "a map without a default leaves some events without it",
                )),
                Some(_) => None,
            }
        })
        .collect()
}

/// Field of a summary template that cannot go live (see `render::check_template`).
pub const SUMMARY_TEMPLATE_FIELD: &str = "ticket.summaryTemplate";

/// A summary template that does not compile, or is too costly to render, as a miss.
fn template_miss(template: Option<&str>) -> Option<Unresolved> {
    let err = crate::dispatch::decide::render::check_template(template?).err()?;
    Some(Unresolved {
        field: SUMMARY_TEMPLATE_FIELD.into(),
        value: crate::dispatch::decide::render::cut_chars(template?, 60),
        problem: err.0,
    })
}

/// Field of an intake token too short to use (see `intake::check_intake_token`).
pub const WEAK_TOKEN_FIELD: &str = "intake.tokenSecretRef.token";

/// The `SettingsResolved` reason for a list of misses: `InvalidTemplate` when the summary
/// template is among them, `WeakIntakeToken` for a too-short intake token, `InvalidSource` for
/// a `spec.sources` entry that does not compile (a name that exists will fix none of them),
/// else `NamesNotFound`.
pub fn misses_reason(misses: &[Unresolved]) -> &'static str {
    if misses.iter().any(|m| m.field == SUMMARY_TEMPLATE_FIELD) {
        "InvalidTemplate"
    } else if misses.iter().any(|m| m.field == WEAK_TOKEN_FIELD) {
        "WeakIntakeToken"
    } else if misses.iter().any(|m| m.field.starts_with("sources[")) {
        "InvalidSource"
    } else {
        "NamesNotFound"
    }
}

/// Joins misses into one condition message.
pub fn describe_unresolved(misses: &[Unresolved]) -> String {
    misses
        .iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Fetches what `settings` needs: boards, then the board's statuses/types/issue types, the
/// sub-issue types of the issue types in use, priorities and sources. Lists the settings do not
/// use are not fetched.
pub async fn fetch_catalog(
    psa: &dyn Psa,
    settings: &TicketSettings,
) -> PsaResult<(PsaCatalog, Option<PsaId>)> {
    let mut cat = PsaCatalog {
        boards: psa.boards().await?,
        ..Default::default()
    };
    let board_id = settings
        .board
        .as_deref()
        .and_then(|b| find_by_name(&cat.boards, b).ok())
        .map(|b| b.id.clone());
    let board = board_id.as_ref();
    if settings.board.is_some() && board.is_none() {
        // Statuses, types and issue types belong to the board: nothing to check them against
        // until it resolves; `resolve_ticket` reports the board.
        return Ok((cat, None));
    }
    // Statuses are always fetched: the closed status and the ticket-open check need them.
    cat.statuses = psa.statuses(board).await?;
    if settings.type_.is_some() {
        cat.types = psa.ticket_types(board).await?;
    }
    if let Some(it) = &settings.issue_type {
        cat.issue_types = psa.issue_types(board).await?;
        let mut wanted: Vec<(&str, bool)> = vec![];
        if let Some(d) = &it.default {
            wanted.push((d, it.sub_issue_type.is_some()));
        }
        for o in &it.overrides {
            wanted.push((&o.issue_type, o.sub_issue_type.is_some()));
        }
        for (name, needs_subs) in wanted {
            if !needs_subs {
                continue;
            }
            if let Ok(t) = find_by_name(&cat.issue_types, name) {
                if !cat.sub_issue_types.contains_key(&t.id) {
                    let subs = psa.sub_issue_types(board, &t.id).await?;
                    cat.sub_issue_types.insert(t.id.clone(), subs);
                }
            }
        }
    }
    if settings.priority.is_some() {
        cat.priorities = psa.priorities().await?;
    }
    if settings.source.is_some() {
        cat.sources = psa.sources().await?;
    }
    Ok((cat, board_id))
}

struct Resolver<'a> {
    misses: Vec<Unresolved>,
    cat: &'a PsaCatalog,
}

impl Resolver<'_> {
    fn one<T: HasName + IdOf>(&mut self, items: &[T], field: &str, value: &str) -> Option<PsaId> {
        match find_by_name(items, value) {
            Ok(hit) => Some(hit.id_of().clone()),
            Err(miss) => {
                self.misses.push(Unresolved {
                    field: field.into(),
                    value: value.into(),
                    problem: miss.describe(),
                });
                None
            }
        }
    }

    fn mapping(
        &mut self,
        items: &[Named],
        field: &str,
        m: Option<&ValueMapping>,
        key: EventField,
    ) -> ResolvedValue {
        let Some(m) = m else {
            return ResolvedValue::NotSet;
        };
        if let Some(v) = &m.value {
            return self
                .one(items, &format!("{field}.value"), v)
                .map(ResolvedValue::One)
                .unwrap_or_default();
        }
        let mut map = BTreeMap::new();
        for (event_value, psa_name) in m.map.iter().flatten() {
            if let Some(id) = self.one(items, &format!("{field}.map.{event_value}"), psa_name) {
                map.insert(event_value.clone(), id);
            }
        }
        let default = m
            .default
            .as_deref()
            .and_then(|d| self.one(items, &format!("{field}.default"), d));
        ResolvedValue::Map {
            key: m.key.unwrap_or(key),
            map,
            default,
        }
    }

    fn issue_type(&mut self, field: &str, issue: Option<&str>, sub: Option<&str>) -> IssueTypeIds {
        let cat = self.cat;
        let issue_type =
            issue.and_then(|i| self.one(&cat.issue_types, &format!("{field}.issueType"), i));
        let sub_issue_type = match (&issue_type, sub) {
            (Some(it), Some(s)) => {
                let subs = cat
                    .sub_issue_types
                    .get(it)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                self.one(subs, &format!("{field}.subIssueType"), s)
            }
            _ => None,
        };
        IssueTypeIds {
            issue_type,
            sub_issue_type,
        }
    }
}

/// Access to the id of a list entry.
pub trait IdOf {
    fn id_of(&self) -> &PsaId;
}

impl IdOf for Named {
    fn id_of(&self) -> &PsaId {
        &self.id
    }
}

impl IdOf for StatusInfo {
    fn id_of(&self) -> &PsaId {
        &self.id
    }
}

/// Resolves every name of the ticket settings. Returns the resolved settings, or every miss.
pub fn resolve_ticket(
    settings: &TicketSettings,
    cat: &PsaCatalog,
) -> Result<ResolvedTicket, Vec<Unresolved>> {
    let mut r = Resolver {
        misses: vec![],
        cat,
    };
    let board_id = settings
        .board
        .as_deref()
        .and_then(|b| r.one(&cat.boards, "ticket.board", b));
    if settings.board.is_some() && board_id.is_none() {
        // Board-scoped names cannot be checked against a board that does not exist.
        return Err(r.misses);
    }
    let statuses_as_named: Vec<Named> = cat
        .statuses
        .iter()
        .map(|s| Named {
            id: s.id.clone(),
            name: s.name.clone(),
        })
        .collect();
    // One row per single-valued setting: its names, field path, mapping and event key.
    let [source, status, type_, priority] = [
        (
            &cat.sources[..],
            "ticket.source",
            &settings.source,
            EventField::AlertType,
        ),
        (
            &statuses_as_named[..],
            "ticket.status",
            &settings.status,
            EventField::Status,
        ),
        (
            &cat.types[..],
            "ticket.type",
            &settings.type_,
            EventField::AlertType,
        ),
        (
            &cat.priorities[..],
            "ticket.priority",
            &settings.priority,
            EventField::Severity,
        ),
    ]
    .map(|(items, field, mapping, key)| r.mapping(items, field, mapping.as_ref(), key));
    let mut issue_type_default = IssueTypeIds::default();
    let mut issue_type_overrides = BTreeMap::new();
    if let Some(it) = &settings.issue_type {
        issue_type_default = r.issue_type(
            "ticket.issueType",
            it.default.as_deref(),
            it.sub_issue_type.as_deref(),
        );
        // `issueType` field paths: default at ticket.issueType.default(.subIssueType).
        for m in r.misses.iter_mut() {
            if m.field == "ticket.issueType.issueType" {
                m.field = "ticket.issueType.default".into();
            }
        }
        for (i, o) in it.overrides.iter().enumerate() {
            let ids = r.issue_type(
                &format!("ticket.issueType.overrides[{i}]"),
                Some(&o.issue_type),
                o.sub_issue_type.as_deref(),
            );
            issue_type_overrides.insert(o.alert_type.clone(), ids);
        }
    }
    let closed_status_id = match &settings.closed_status {
        Some(name) => match find_by_name(&cat.statuses, name) {
            Ok(s) if s.closed => Some(s.id.clone()),
            Ok(_) => {
                r.misses.push(Unresolved {
                    field: "ticket.closedStatus".into(),
                    value: name.clone(),
                    problem: "is not a closed status in the PSA".into(),
                });
                None
            }
            Err(miss) => {
                r.misses.push(Unresolved {
                    field: "ticket.closedStatus".into(),
                    value: name.clone(),
                    problem: miss.describe(),
                });
                None
            }
        },
        None => crate::psa::preferred_closed_status(&cat.statuses).map(|s| s.id.clone()),
    };
    if let Some(miss) = template_miss(settings.summary_template.as_deref()) {
        r.misses.push(miss);
    }
    if !r.misses.is_empty() {
        return Err(r.misses);
    }
    Ok(ResolvedTicket {
        board_id,
        source,
        status,
        type_,
        priority,
        issue_type_default,
        issue_type_overrides,
        summary_template: settings.summary_template.clone(),
        closed_status_id,
    })
}

/// Flattens resolved ids into `status.resolved.values` (`ticket.priority.map.critical` → id).
pub fn resolved_values(t: &ResolvedTicket) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut value = |field: &str, v: &ResolvedValue| match v {
        ResolvedValue::NotSet => {}
        ResolvedValue::One(id) => {
            out.insert(format!("{field}.value"), id.clone());
        }
        ResolvedValue::Map { map, default, .. } => {
            for (k, id) in map {
                out.insert(format!("{field}.map.{k}"), id.clone());
            }
            if let Some(id) = default {
                out.insert(format!("{field}.default"), id.clone());
            }
        }
    };
    value("ticket.source", &t.source);
    value("ticket.status", &t.status);
    value("ticket.type", &t.type_);
    value("ticket.priority", &t.priority);
    let mut ids = |field: &str, ids: &IssueTypeIds| {
        if let Some(id) = &ids.issue_type {
            out.insert(format!("{field}.issueType"), id.clone());
        }
        if let Some(id) = &ids.sub_issue_type {
            out.insert(format!("{field}.subIssueType"), id.clone());
        }
    };
    ids("ticket.issueType.default", &t.issue_type_default);
    for (alert, o) in &t.issue_type_overrides {
        ids(&format!("ticket.issueType.overrides.{alert}"), o);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::value;

    fn named(pairs: &[(&str, &str)]) -> Vec<Named> {
        Named::list(pairs)
    }

    fn catalog() -> PsaCatalog {
        PsaCatalog {
            boards: named(&[("1", "Security Alerts"), ("2", "Help Desk")]),
            statuses: StatusInfo::list(&[
                ("10", "New", false),
                ("11", "In Progress", false),
                ("12", ">Closed", true),
                ("13", "Completed", true),
            ]),
            types: named(&[("20", "Alert"), ("21", "Incident")]),
            issue_types: named(&[("30", "SaaS Alerts"), ("31", "Security")]),
            sub_issue_types: HashMap::from([(
                "30".to_string(),
                named(&[("40", "General"), ("41", "Data Leakage")]),
            )]),
            priorities: named(&[
                ("50", "Priority 1 - Critical"),
                ("51", "Priority 2 - High"),
                ("52", "Priority 3 - Normal"),
            ]),
            sources: named(&[("60", "SaaS Alerts"), ("61", "SIEM")]),
        }
    }

    #[test]
    fn reference_settings_resolve() {
        let t = resolve_ticket(&TicketSettings::sample(), &catalog()).expect("resolves");
        assert_eq!(t.board_id.as_deref(), Some("1"));
        assert_eq!(t.status, ResolvedValue::One("10".into()));
        assert_eq!(
            t.priority,
            ResolvedValue::Map {
                key: EventField::Severity,
                map: BTreeMap::from([
                    ("critical".into(), "50".into()),
                    ("high".into(), "51".into())
                ]),
                default: Some("52".into()),
            }
        );
        assert_eq!(
            t.issue_type_default,
            IssueTypeIds {
                issue_type: Some("30".into()),
                sub_issue_type: Some("40".into())
            }
        );
        assert_eq!(
            t.issue_type_overrides["Too Many Downloads"]
                .sub_issue_type
                .as_deref(),
            Some("41")
        );
        // First closed status of the board when none is configured.
        assert_eq!(t.closed_status_id.as_deref(), Some("12"));
        let flat = resolved_values(&t);
        assert_eq!(flat["ticket.priority.map.critical"], "50");
        assert_eq!(
            flat["ticket.issueType.overrides.Too Many Downloads.subIssueType"],
            "41"
        );
    }

    #[test]
    fn a_costly_or_broken_summary_template_is_an_invalid_template() {
        let table: &[(&str, Option<&str>)] = &[
            ("{{ alertType }} — {{ user }}", None),
            (
                "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}",
                Some("InvalidTemplate"),
            ),
            ("{{ alertType ", Some("InvalidTemplate")),
        ];
        for (template, reason) in table {
            let mut s = TicketSettings::sample();
            s.summary_template = Some(template.to_string());
            match (resolve_ticket(&s, &catalog()), reason) {
                (Ok(t), None) => assert_eq!(t.summary_template.as_deref(), Some(*template)),
                (Err(misses), Some(reason)) => {
                    assert_eq!(misses[0].field, "ticket.summaryTemplate");
                    assert_eq!(misses_reason(&misses), *reason);
                }
                (other, _) => panic!("{template}: {other:?}"),
            }
        }
        let name_miss = Unresolved {
            field: "ticket.board".into(),
            value: "x".into(),
            problem: "not found".into(),
        };
        assert_eq!(
            misses_reason(std::slice::from_ref(&name_miss)),
            "NamesNotFound"
        );
        let weak = Unresolved {
            field: WEAK_TOKEN_FIELD.into(),
            value: "intake".into(),
            problem: "short".into(),
        };
        assert_eq!(misses_reason(&[name_miss.clone(), weak]), "WeakIntakeToken");
        let source = Unresolved {
            field: "sources[0].organization".into(),
            value: "payload.org.".into(),
            problem: "invalid CEL expression".into(),
        };
        assert_eq!(misses_reason(&[name_miss, source]), "InvalidSource");
    }

    #[test]
    fn every_miss_is_reported_with_its_field() {
        let mut s = TicketSettings::sample();
        s.status = value("Nwe");
        s.priority_map_mut()
            .insert("low".into(), "Priority 9".into());
        s.issue_type.as_mut().unwrap().overrides[0].sub_issue_type = Some("Exfiltration".into());
        s.closed_status = Some("In Progress".into());
        let misses = resolve_ticket(&s, &catalog()).unwrap_err();
        let fields: Vec<_> = misses.iter().map(|m| m.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "ticket.status.value",
                "ticket.priority.map.low",
                "ticket.issueType.overrides[0].subIssueType",
                "ticket.closedStatus"
            ]
        );
        let msg = describe_unresolved(&misses);
        assert!(
            msg.contains(r#"ticket.status.value "Nwe": not found (did you mean "New"?)"#),
            "{msg}"
        );
        assert!(msg.contains("is not a closed status"), "{msg}");
    }

    #[test]
    fn a_missing_board_is_the_only_miss_reported() {
        let mut s = TicketSettings::sample();
        s.board = Some("Security Alert".into());
        let misses = resolve_ticket(&s, &catalog()).unwrap_err();
        assert_eq!(misses.len(), 1, "{misses:?}");
        assert_eq!(misses[0].field, "ticket.board");
        assert!(
            misses[0].problem.contains("\"Security Alerts\""),
            "{}",
            misses[0].problem
        );
    }

    #[test]
    fn absent_settings_are_not_set() {
        let t = resolve_ticket(&TicketSettings::default(), &catalog()).unwrap();
        assert_eq!(t.board_id, None);
        assert_eq!(t.priority, ResolvedValue::NotSet);
        assert_eq!(t.issue_type_default, IssueTypeIds::default());
    }

    #[test]
    fn settings_the_psa_requires() {
        let one = |v: &str| ValueMapping {
            value: Some(v.into()),
            ..Default::default()
        };
        let mut t = TicketSettings {
            board: Some("Security Alerts".into()),
            status: Some(one("New")),
            priority: Some(one("High")),
            type_: Some(one("Incident")),
            ..Default::default()
        };
        assert!(required_by_psa(Provider::ConnectWise, &t).is_empty());
        let misses = required_by_psa(Provider::KaseyaBms, &t);
        assert_eq!(misses.len(), 1);
        assert_eq!(misses[0].field, "ticket.source");
        assert!(
            misses[0].problem.contains("SourceId"),
            "{}",
            misses[0].problem
        );
        t.source = Some(ValueMapping {
            map: Some([("a".to_string(), "Email".to_string())].into()),
            ..Default::default()
        });
        let misses = required_by_psa(Provider::KaseyaBms, &t);
        assert!(misses[0].problem.contains("without a default"));
        t.source.as_mut().unwrap().default = Some("Email".into());
        assert!(required_by_psa(Provider::KaseyaBms, &t).is_empty());
        t.status = None;
        assert_eq!(
            required_by_psa(Provider::KaseyaBms, &t)[0].field,
            "ticket.status"
        );
    }
}
