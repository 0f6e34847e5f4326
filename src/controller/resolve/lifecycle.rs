//! Resolution of `spec.lifecycle` (what a resolved alert does to its group's ticket, and
//! whether a closed one reopens). Pure: the statuses are those `fetch_catalog` read for the
//! ticket settings (the board's, where the PSA scopes statuses per board).

use std::collections::BTreeSet;

use crate::api::{parse_duration, LifecycleSettings, OnResolve};
use crate::psa::{PsaId, StatusInfo};
use crate::resolved::ResolvedLifecycle;

use super::names::find_by_name;
use super::ticket::Unresolved;

/// `spec.lifecycle` with names replaced by ids. `ticket_closed_status` is the resolved
/// `ticket.closedStatus` (or the board's preferred closed status), used when
/// `lifecycle.closedStatus` is absent. The first name that does not resolve is the miss.
pub fn resolve_lifecycle(
    settings: Option<&LifecycleSettings>,
    statuses: &[StatusInfo],
    ticket_closed_status: Option<&PsaId>,
) -> Result<ResolvedLifecycle, Unresolved> {
    let reopen_status_id = statuses.iter().find(|s| !s.closed).map(|s| s.id.clone());
    let Some(settings) = settings else {
        return Ok(ResolvedLifecycle {
            close_on_resolve: false,
            closed_status_id: ticket_closed_status.cloned(),
            reopen_status_id,
            ..Default::default()
        });
    };
    let closed_status_id = match &settings.closed_status {
        None => ticket_closed_status.cloned(),
        Some(name) => Some(closed_status("lifecycle.closedStatus", name, statuses)?),
    };
    let reopen_within = match &settings.reopen_within {
        None => None,
        Some(text) => match parse_duration(text) {
            Some(d) if !d.is_zero() => Some(d),
            _ => {
                return Err(Unresolved {
                    field: "lifecycle.reopenWithin".into(),
                    value: text.clone(),
                    problem: "is not a positive duration like 24h, 90m or 30s".into(),
                })
            }
        },
    };
    let never_reopen = settings
        .never_reopen
        .iter()
        .map(|name| closed_status("lifecycle.neverReopen", name, statuses))
        .collect::<Result<BTreeSet<_>, _>>()?;
    Ok(ResolvedLifecycle {
        close_on_resolve: settings.on_resolve.unwrap_or_default() == OnResolve::Close,
        closed_status_id,
        reopen_within,
        never_reopen,
        reopen_status_id,
    })
}

/// The checks of `spec.lifecycle` that need no PSA (`validate`): `reopenWithin` a positive
/// duration.
pub fn check_offline(settings: Option<&LifecycleSettings>) -> Result<(), Unresolved> {
    match settings.and_then(|s| s.reopen_within.as_ref()) {
        Some(text) if parse_duration(text).is_none_or(|d| d.is_zero()) => Err(Unresolved {
            field: "lifecycle.reopenWithin".into(),
            value: text.clone(),
            problem: "is not a positive duration like 24h, 90m or 30s".into(),
        }),
        _ => Ok(()),
    }
}

/// The id of the closed status `name`; an unknown name or an open status is a miss of `field`.
fn closed_status(field: &str, name: &str, statuses: &[StatusInfo]) -> Result<PsaId, Unresolved> {
    let miss = |problem: String| Unresolved {
        field: field.into(),
        value: name.to_string(),
        problem,
    };
    match find_by_name(statuses, name) {
        Ok(s) if s.closed => Ok(s.id.clone()),
        Ok(_) => Err(miss("is not a closed status in the PSA".into())),
        Err(e) => Err(miss(e.describe())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(on_resolve: Option<OnResolve>, closed: Option<&str>) -> LifecycleSettings {
        LifecycleSettings {
            on_resolve,
            closed_status: closed.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn lifecycle_table() {
        let ticket_closed: PsaId = "12".into();
        let ok = |close, id: Option<&str>| {
            Ok::<_, String>(ResolvedLifecycle {
                close_on_resolve: close,
                closed_status_id: id.map(PsaId::from),
                reopen_status_id: Some("1".into()),
                ..Default::default()
            })
        };
        let table: Vec<(Option<LifecycleSettings>, Result<ResolvedLifecycle, String>)> = vec![
            (None, ok(false, Some("12"))),
            (Some(settings(None, None)), ok(false, Some("12"))),
            (
                Some(settings(Some(OnResolve::Note), None)),
                ok(false, Some("12")),
            ),
            (
                Some(settings(Some(OnResolve::Close), None)),
                ok(true, Some("12")),
            ),
            (
                Some(settings(Some(OnResolve::Close), Some("auto-resolved"))),
                ok(true, Some("14")),
            ),
            (
                Some(settings(Some(OnResolve::Close), Some("New"))),
                Err("lifecycle.closedStatus \"New\": is not a closed status in the PSA".into()),
            ),
        ];
        for (spec, want) in table {
            let got = resolve_lifecycle(
                spec.as_ref(),
                &StatusInfo::sample_board(),
                Some(&ticket_closed),
            )
            .map_err(|u| u.to_string());
            assert_eq!(got, want, "{spec:?}");
        }
    }

    #[test]
    fn an_unknown_closed_status_names_the_field_and_the_nearest_names() {
        let spec = settings(Some(OnResolve::Close), Some("Auto Resolvd"));
        let miss = resolve_lifecycle(Some(&spec), &StatusInfo::sample_board(), None).unwrap_err();
        assert_eq!(miss.field, "lifecycle.closedStatus");
        assert_eq!(miss.value, "Auto Resolvd");
        assert!(miss.problem.contains("Auto-Resolved"), "{}", miss.problem);
    }

    #[test]
    fn reopen_table() {
        let with = |within: Option<&str>, never: &[&str]| LifecycleSettings {
            reopen_within: within.map(String::from),
            never_reopen: never.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        type Want =
            Result<(Option<std::time::Duration>, Vec<&'static str>), (&'static str, &'static str)>;
        let table: Vec<(LifecycleSettings, Want)> = vec![
            (with(None, &[]), Ok((None, vec![]))),
            (
                with(Some("24h"), &[]),
                Ok((Some(std::time::Duration::from_secs(86_400)), vec![])),
            ),
            (
                with(Some("2s"), &["auto-resolved", ">Closed"]),
                Ok((Some(std::time::Duration::from_secs(2)), vec!["12", "14"])),
            ),
            (
                with(Some("soon"), &[]),
                Err(("lifecycle.reopenWithin", "soon")),
            ),
            (with(Some("0s"), &[]), Err(("lifecycle.reopenWithin", "0s"))),
            (
                with(Some("24h"), &["Won't fix"]),
                Err(("lifecycle.neverReopen", "Won't fix")),
            ),
            (
                with(Some("24h"), &["New"]),
                Err(("lifecycle.neverReopen", "New")),
            ),
        ];
        for (spec, want) in table {
            let got = resolve_lifecycle(Some(&spec), &StatusInfo::sample_board(), None)
                .map(|l| {
                    (
                        l.reopen_within,
                        l.never_reopen
                            .iter()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(","),
                    )
                })
                .map_err(|u| (u.field, u.value));
            let want = want
                .map(|(d, ids)| (d, ids.join(",")))
                .map_err(|(f, v)| (f.to_string(), v.to_string()));
            assert_eq!(got, want, "{spec:?}");
        }
        // The open status a ticket goes back to: the board's first open one.
        let l = resolve_lifecycle(
            Some(&with(Some("1h"), &[])),
            &StatusInfo::sample_board(),
            None,
        )
        .unwrap();
        assert_eq!(l.reopen_status_id.as_deref(), Some("1"));
    }
}
