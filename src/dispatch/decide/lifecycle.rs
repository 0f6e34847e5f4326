//! Auto-resolve: which alerts of a group's ticket still fire, and whether a resolution closes
//! the ticket (`lifecycle.onResolve: Close`) or only adds a note.
//!
//! A ticket grouped from three alerts closes with the last one's resolution, never before; a
//! ticket whose status a technician changed since the dispatcher created it (reopened it,
//! moved it to "Waiting on customer") is theirs: the resolution is a note only.

use std::collections::BTreeSet;

use crate::dispatch::event::Event;
use crate::dispatch::store::GroupLifecycle;
use crate::psa::PsaId;

/// The identity of an alert across its firing and resolved events, within its group: the
/// Alertmanager fingerprint or the `/alerts` `alertId`, else the alert type.
pub fn alert_identity(event: &Event) -> String {
    match &event.finding_id {
        Some(id) if !id.is_empty() => id.clone(),
        _ => event.alert_type.trim().to_lowercase(),
    }
}

/// The record after firing alerts reached `ticket_id`: `created_status` is `Some(status)` for
/// a ticket just created, `None` for a note on an open one. `None` when a note reached a ticket
/// whose alerts were never recorded (created before this record existed): its set would be
/// incomplete, so it is not started and resolutions stay notes.
pub fn after_firing(
    before: Option<&GroupLifecycle>,
    ticket_id: &PsaId,
    created_status: Option<Option<PsaId>>,
    identities: impl IntoIterator<Item = String>,
) -> Option<GroupLifecycle> {
    let mut next = match (before, created_status) {
        (_, Some(status_id)) => GroupLifecycle {
            ticket_id: ticket_id.clone(),
            status_id,
            firing: BTreeSet::new(),
        },
        (Some(b), None) if &b.ticket_id == ticket_id => b.clone(),
        (_, None) => return None,
    };
    next.firing.extend(identities);
    Some(next)
}

/// The record after a resolution of `identity` on `ticket_id`; `None` when the dispatcher never
/// recorded the alerts of this ticket (it predates the record, or was replaced).
pub fn after_resolution(
    before: Option<&GroupLifecycle>,
    ticket_id: &PsaId,
    identity: &str,
) -> Option<GroupLifecycle> {
    let b = before.filter(|b| &b.ticket_id == ticket_id)?;
    let mut next = b.clone();
    next.firing.remove(identity);
    Some(next)
}

/// What a resolution does to its group's ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolveStep {
    /// A note with the resolution; the ticket stays as it is, for this reason.
    Note(&'static str),
    /// Whether the ticket's status is still the dispatcher's must be read before closing.
    ReadStatus,
    /// Close the ticket with the closed status and the resolution as its note.
    Close,
}

/// The decision. `after` = the record once this resolution is applied (`None`: not tracked);
/// `status_now` = the ticket's status as just read (`None`: not read yet).
pub fn on_resolution(
    close_on_resolve: bool,
    after: Option<&GroupLifecycle>,
    status_now: Option<Option<&PsaId>>,
) -> ResolveStep {
    if !close_on_resolve {
        return ResolveStep::Note("lifecycle.onResolve is Note");
    }
    let Some(after) = after else {
        return ResolveStep::Note("the alerts that fed the ticket are not known");
    };
    if !after.firing.is_empty() {
        return ResolveStep::Note("other alerts of the ticket still fire");
    }
    let Some(now) = status_now else {
        return ResolveStep::ReadStatus;
    };
    match (&after.status_id, now) {
        // The PSA did not say which status it gave the new ticket: nothing to compare.
        (None, _) => ResolveStep::Close,
        (Some(ours), Some(now)) if ours == now => ResolveStep::Close,
        _ => ResolveStep::Note("a technician changed the ticket's status"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ticket: &str, status: Option<&str>, firing: &[&str]) -> GroupLifecycle {
        GroupLifecycle {
            ticket_id: ticket.into(),
            status_id: status.map(String::from),
            firing: firing.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// (closeOnResolve, record after the resolution, status read, step)
    type Row<'a> = (
        bool,
        Option<&'a GroupLifecycle>,
        Option<Option<&'a PsaId>>,
        ResolveStep,
    );

    #[test]
    fn resolution_table() {
        use ResolveStep::*;
        let new = PsaId::from("16");
        let other = PsaId::from("17");
        let none_firing = record("T1", Some("16"), &[]);
        let unknown_status = record("T1", None, &[]);
        let one_firing = record("T1", Some("16"), &["fp-b"]);
        let table: Vec<Row> = vec![
            (
                false,
                Some(&none_firing),
                Some(Some(&new)),
                Note("lifecycle.onResolve is Note"),
            ),
            (
                true,
                None,
                None,
                Note("the alerts that fed the ticket are not known"),
            ),
            (
                true,
                Some(&one_firing),
                None,
                Note("other alerts of the ticket still fire"),
            ),
            (true, Some(&none_firing), None, ReadStatus),
            (true, Some(&none_firing), Some(Some(&new)), Close),
            (
                true,
                Some(&none_firing),
                Some(Some(&other)),
                Note("a technician changed the ticket's status"),
            ),
            (
                true,
                Some(&none_firing),
                Some(None),
                Note("a technician changed the ticket's status"),
            ),
            (true, Some(&unknown_status), Some(Some(&other)), Close),
        ];
        for (close, after, now, want) in table {
            assert_eq!(
                on_resolution(close, after, now),
                want,
                "{close} {after:?} {now:?}"
            );
        }
    }

    #[test]
    fn three_alerts_close_with_the_last() {
        let t = PsaId::from("T1");
        let created =
            after_firing(None, &t, Some(Some("16".into())), ["fp-a".to_string()]).unwrap();
        let fed = after_firing(
            Some(&created),
            &t,
            None,
            ["fp-b".to_string(), "fp-c".to_string()],
        )
        .unwrap();
        assert_eq!(fed.firing.len(), 3);
        let mut state = fed;
        let mut steps = vec![];
        for fp in ["fp-a", "fp-b", "fp-c"] {
            let after = after_resolution(Some(&state), &t, fp).unwrap();
            steps.push(on_resolution(true, Some(&after), Some(Some(&"16".into()))));
            state = after;
        }
        assert_eq!(
            steps,
            vec![
                ResolveStep::Note("other alerts of the ticket still fire"),
                ResolveStep::Note("other alerts of the ticket still fire"),
                ResolveStep::Close,
            ]
        );
        // The same alert firing again counts once; a resolution of an unknown alert changes nothing.
        let again = after_firing(
            Some(&state),
            &t,
            None,
            ["fp-a".to_string(), "fp-a".to_string()],
        )
        .unwrap();
        assert_eq!(again.firing.len(), 1);
        assert_eq!(
            after_resolution(Some(&again), &t, "fp-x")
                .unwrap()
                .firing
                .len(),
            1
        );
    }

    #[test]
    fn a_new_ticket_starts_a_new_record() {
        let old = record("T1", Some("16"), &["fp-a"]);
        let next = after_firing(
            Some(&old),
            &"T2".into(),
            Some(Some("16".into())),
            ["fp-b".to_string()],
        );
        assert_eq!(next, Some(record("T2", Some("16"), &["fp-b"])));
        // A note reaching a ticket the record does not know starts nothing: its set would be
        // incomplete.
        assert_eq!(
            after_firing(Some(&old), &"T3".into(), None, ["fp-c".to_string()]),
            None
        );
        assert_eq!(
            after_firing(None, &"T3".into(), None, ["fp-c".to_string()]),
            None
        );
        assert_eq!(after_resolution(Some(&old), &"T2".into(), "fp-a"), None);
        assert_eq!(after_resolution(None, &"T1".into(), "fp-a"), None);
    }

    #[test]
    fn identities() {
        let mut e = crate::dispatch::event::Event::sample();
        assert_eq!(alert_identity(&e), "too many downloads");
        e.finding_id = Some("3f9c2a".into());
        assert_eq!(alert_identity(&e), "3f9c2a");
    }
}
