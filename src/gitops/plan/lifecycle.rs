//! What `plan` says about the alert lifecycle and the storm breaker: the `neverReopen` names as
//! they resolve against the board's statuses, and one sentence per configured behaviour.

use crate::api::{LifecycleSettings, PsaConnectionSpec};
use crate::controller::resolve::lifecycle::resolve_lifecycle;
use crate::controller::resolve::noise::storm_limit;
use crate::psa::StatusInfo;

use super::model::NameCheck;

/// A row per `lifecycle.neverReopen` name: a closed status of the board, or a problem.
pub fn never_reopen_names(
    lifecycle: Option<&LifecycleSettings>,
    statuses: &[StatusInfo],
) -> Vec<NameCheck> {
    let Some(l) = lifecycle else {
        return vec![];
    };
    l.never_reopen
        .iter()
        .enumerate()
        .map(|(i, name)| {
            // Each name alone, so one miss does not hide the others.
            let one = LifecycleSettings {
                reopen_within: Some("1h".into()),
                never_reopen: vec![name.clone()],
                ..Default::default()
            };
            let resolved = resolve_lifecycle(Some(&one), statuses, None);
            NameCheck {
                field: format!("lifecycle.neverReopen[{i}]"),
                value: name.clone(),
                resolves: Some(resolved.is_ok()),
                id: resolved
                    .as_ref()
                    .ok()
                    .and_then(|r| r.never_reopen.iter().next().cloned()),
                problem: resolved.err().map(|u| u.problem),
            }
        })
        .collect()
}

/// One sentence per configured lifecycle or noise behaviour (none when nothing is set).
pub fn behaviour(spec: &PsaConnectionSpec) -> Vec<String> {
    let mut out = vec![];
    if let Some(within) = spec
        .lifecycle
        .as_ref()
        .and_then(|l| l.reopen_within.as_ref())
    {
        let mut s = format!(
            "A group's ticket closed less than {within} ago is reopened by its next alert (lifecycle.reopenWithin)"
        );
        let never = &spec
            .lifecycle
            .as_ref()
            .map(|l| l.never_reopen.clone())
            .unwrap_or_default();
        if !never.is_empty() {
            let names: Vec<String> = never.iter().map(|n| format!("{n:?}")).collect();
            s.push_str(&format!(", unless closed as {}", names.join(" or ")));
        }
        s.push('.');
        out.push(s);
    }
    if let Ok(Some(limit)) = storm_limit(spec) {
        let per = spec
            .noise
            .as_ref()
            .and_then(|n| n.max_new_tickets_per_customer.as_ref())
            .map(|r| r.per.clone())
            .unwrap_or_default();
        out.push(format!(
            "Storm breaker: beyond {} new tickets of one customer within {per}, new alerts go as notes to one roll-up ticket per customer (noise.maxNewTicketsPerCustomer).",
            limit.count
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_reopen_rows() {
        let l = LifecycleSettings {
            reopen_within: Some("24h".into()),
            never_reopen: vec!["closed - won't fix".into(), "Wontfix".into(), "New".into()],
            ..Default::default()
        };
        let rows = never_reopen_names(Some(&l), &StatusInfo::sample_board());
        let got: Vec<(&str, Option<bool>, Option<&str>)> = rows
            .iter()
            .map(|r| (r.field.as_str(), r.resolves, r.id.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("lifecycle.neverReopen[0]", Some(true), Some("15")),
                ("lifecycle.neverReopen[1]", Some(false), None),
                ("lifecycle.neverReopen[2]", Some(false), None),
            ]
        );
        assert!(rows[2]
            .problem
            .as_deref()
            .unwrap()
            .contains("not a closed status"));
        assert!(never_reopen_names(None, &StatusInfo::sample_board()).is_empty());
    }

    #[test]
    fn behaviour_sentences() {
        let spec: PsaConnectionSpec = serde_json::from_value(serde_json::json!({
            "provider": {},
            "lifecycle": {"reopenWithin": "24h", "neverReopen": ["Closed - Won't fix"]},
            "noise": {"maxNewTicketsPerCustomer": {"count": 20, "per": "10m"}}
        }))
        .unwrap();
        assert_eq!(
            behaviour(&spec),
            vec![
                "A group's ticket closed less than 24h ago is reopened by its next alert (lifecycle.reopenWithin), unless closed as \"Closed - Won't fix\".".to_string(),
                "Storm breaker: beyond 20 new tickets of one customer within 10m, new alerts go as notes to one roll-up ticket per customer (noise.maxNewTicketsPerCustomer).".to_string(),
            ]
        );
        let none: PsaConnectionSpec =
            serde_json::from_value(serde_json::json!({"provider": {}})).unwrap();
        assert!(behaviour(&none).is_empty());
    }
}
