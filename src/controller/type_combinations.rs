//! Issue type / sub-issue type combinations of the ticket settings, checked against what the
//! board allows (ConnectWise `typeSubTypeItemAssociations`) when the connection is reconciled,
//! so an invalid pair shows as a condition instead of failing every ticket.

use crate::api::TicketSettings;
use crate::psa::{Psa, PsaResult, TypeCombination};
use crate::resolved::{IssueTypeIds, ResolvedTicket, ResolvedValue};

use super::resolve::Unresolved;

/// One combination the settings use, with the field that sets it and its names (pure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelledCombination {
    pub field: String,
    pub names: String,
    pub ids: TypeCombination,
}

/// Every combination of the ticket type (when it is one value) with the default issue type
/// and each per-alert override. A mapped ticket type is left open (any type).
pub fn combinations(
    settings: &TicketSettings,
    ticket: &ResolvedTicket,
) -> Vec<LabelledCombination> {
    let type_id = match &ticket.type_ {
        ResolvedValue::One(id) => Some(id.clone()),
        _ => None,
    };
    let type_name = settings
        .type_
        .as_ref()
        .and_then(|t| t.value.clone())
        .filter(|_| type_id.is_some());
    let label = |issue: Option<&str>, sub: Option<&str>| {
        [type_name.as_deref(), issue, sub]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let combo = |ids: &IssueTypeIds| TypeCombination {
        type_id: type_id.clone(),
        issue_type_id: ids.issue_type.clone(),
        sub_issue_type_id: ids.sub_issue_type.clone(),
    };
    let mut out = Vec::new();
    let Some(it) = &settings.issue_type else {
        return out;
    };
    if ticket.issue_type_default.issue_type.is_some() {
        out.push(LabelledCombination {
            field: "ticket.issueType".into(),
            names: label(it.default.as_deref(), it.sub_issue_type.as_deref()),
            ids: combo(&ticket.issue_type_default),
        });
    }
    for (i, o) in it.overrides.iter().enumerate() {
        if let Some(ids) = ticket.issue_type_overrides.get(&o.alert_type) {
            out.push(LabelledCombination {
                field: format!("ticket.issueType.overrides[{i}]"),
                names: label(Some(&o.issue_type), o.sub_issue_type.as_deref()),
                ids: combo(ids),
            });
        }
    }
    out
}

/// The combinations the board refuses, as misses naming them (1 PSA call on ConnectWise when
/// any issue type is set, none otherwise).
pub async fn check(
    psa: &dyn Psa,
    settings: &TicketSettings,
    ticket: &ResolvedTicket,
) -> PsaResult<Vec<Unresolved>> {
    let wanted = combinations(settings, ticket);
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<TypeCombination> = wanted.iter().map(|w| w.ids.clone()).collect();
    let invalid = psa
        .invalid_type_combinations(ticket.board_id.as_ref(), &ids)
        .await?;
    Ok(invalid
        .into_iter()
        .filter_map(|i| wanted.get(i))
        .map(|w| Unresolved {
            field: w.field.clone(),
            value: w.names.clone(),
            problem: "is not a type / subtype / item combination the board allows".into(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{IssueTypeOverride, IssueTypeSettings, ValueMapping};
    use std::collections::BTreeMap;

    #[test]
    fn combinations_pair_the_ticket_type_with_each_issue_type() {
        let settings = TicketSettings {
            type_: Some(ValueMapping {
                value: Some("Alert".into()),
                ..Default::default()
            }),
            issue_type: Some(IssueTypeSettings {
                default: Some("Identity".into()),
                sub_issue_type: Some("MFA".into()),
                overrides: vec![IssueTypeOverride {
                    alert_type: "Too Many Downloads".into(),
                    issue_type: "Data Leakage".into(),
                    sub_issue_type: None,
                }],
            }),
            ..Default::default()
        };
        let ids = |a: &str, b: Option<&str>| IssueTypeIds {
            issue_type: Some(a.into()),
            sub_issue_type: b.map(str::to_string),
        };
        let ticket = ResolvedTicket {
            type_: ResolvedValue::One("7".into()),
            issue_type_default: ids("9", Some("3")),
            issue_type_overrides: BTreeMap::from([(
                "Too Many Downloads".to_string(),
                ids("10", None),
            )]),
            ..Default::default()
        };
        let got = combinations(&settings, &ticket);
        assert_eq!(
            got.iter()
                .map(|c| (c.field.as_str(), c.names.as_str()))
                .collect::<Vec<_>>(),
            vec![
                ("ticket.issueType", "Alert / Identity / MFA"),
                ("ticket.issueType.overrides[0]", "Alert / Data Leakage"),
            ]
        );
        assert_eq!(
            got[0].ids,
            TypeCombination {
                type_id: Some("7".into()),
                issue_type_id: Some("9".into()),
                sub_issue_type_id: Some("3".into()),
            }
        );
        // No issue types configured: nothing to check.
        let plain = TicketSettings::default();
        assert!(combinations(&plain, &ResolvedTicket::default()).is_empty());
    }
}
