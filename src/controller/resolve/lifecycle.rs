//! Resolution of `spec.lifecycle` (what a resolved alert does to its group's ticket). Pure: the
//! closed status is matched against the statuses `fetch_catalog` read for the ticket settings
//! (the board's, where the PSA scopes statuses per board).

use crate::api::{LifecycleSettings, OnResolve};
use crate::psa::{PsaId, StatusInfo};
use crate::resolved::ResolvedLifecycle;

use super::names::find_by_name;
use super::ticket::Unresolved;

/// `spec.lifecycle` with names replaced by ids. `ticket_closed_status` is the resolved
/// `ticket.closedStatus` (or the board's preferred closed status), used when
/// `lifecycle.closedStatus` is absent.
pub fn resolve_lifecycle(
    settings: Option<&LifecycleSettings>,
    statuses: &[StatusInfo],
    ticket_closed_status: Option<&PsaId>,
) -> Result<ResolvedLifecycle, Unresolved> {
    let Some(settings) = settings else {
        return Ok(ResolvedLifecycle {
            close_on_resolve: false,
            closed_status_id: ticket_closed_status.cloned(),
        });
    };
    let closed_status_id = match &settings.closed_status {
        None => ticket_closed_status.cloned(),
        Some(name) => {
            let miss = |problem: String| Unresolved {
                field: "lifecycle.closedStatus".into(),
                value: name.clone(),
                problem,
            };
            match find_by_name(statuses, name) {
                Ok(s) if s.closed => Some(s.id.clone()),
                Ok(_) => return Err(miss("is not a closed status in the PSA".into())),
                Err(e) => return Err(miss(e.describe())),
            }
        }
    };
    Ok(ResolvedLifecycle {
        close_on_resolve: settings.on_resolve.unwrap_or_default() == OnResolve::Close,
        closed_status_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses() -> Vec<StatusInfo> {
        let s = |id: &str, name: &str, closed| StatusInfo {
            id: id.into(),
            name: name.into(),
            closed,
        };
        vec![
            s("1", "New", false),
            s("12", ">Closed", true),
            s("14", "Auto-Resolved", true),
        ]
    }

    fn settings(on_resolve: Option<OnResolve>, closed: Option<&str>) -> LifecycleSettings {
        LifecycleSettings {
            on_resolve,
            closed_status: closed.map(String::from),
        }
    }

    #[test]
    fn lifecycle_table() {
        let ticket_closed: PsaId = "12".into();
        let ok = |close, id: Option<&str>| {
            Ok::<_, String>(ResolvedLifecycle {
                close_on_resolve: close,
                closed_status_id: id.map(PsaId::from),
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
            let got = resolve_lifecycle(spec.as_ref(), &statuses(), Some(&ticket_closed))
                .map_err(|u| u.to_string());
            assert_eq!(got, want, "{spec:?}");
        }
    }

    #[test]
    fn an_unknown_closed_status_names_the_field_and_the_nearest_names() {
        let spec = settings(Some(OnResolve::Close), Some("Auto Resolvd"));
        let miss = resolve_lifecycle(Some(&spec), &statuses(), None).unwrap_err();
        assert_eq!(miss.field, "lifecycle.closedStatus");
        assert_eq!(miss.value, "Auto Resolvd");
        assert!(miss.problem.contains("Auto-Resolved"), "{}", miss.problem);
    }
}
