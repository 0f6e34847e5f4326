//! Ticket or note: what one event does, given the index and what we know of the ticket.
//!
//! Alerts (seed 000): the first alert of a group opens a ticket; later alerts become notes while
//! that ticket is open; once a technician closed it, the next alert opens a new ticket. So before
//! a note the ticket's state must be known: never a note on a closed ticket.
//!
//! Findings (seed 003): one ticket per finding; comments and the resolution always reach that
//! ticket as notes, even when a technician closed it (the sync is one-way); resolving closes the
//! ticket unless a technician already did.

use crate::dispatch::event::EventKind;
use crate::psa::PsaId;

/// What we know of the ticket the index points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TicketState {
    /// Not asked yet (and no fresh cached answer).
    Unknown,
    Open,
    Closed,
    /// Deleted in the PSA.
    Gone,
}

/// The ticket the grouping index (alerts) or finding index (findings) points to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indexed {
    pub ticket_id: PsaId,
    pub state: TicketState,
}

/// The next thing to do for the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Read the ticket to learn whether it is open, then decide again.
    CheckTicket(PsaId),
    /// Open a new ticket carrying the event; `close` = close it right away (a resolved finding
    /// we never saw open).
    NewTicket { close: bool },
    /// Add the event as a note; `close` = close the ticket with the note.
    Note { ticket_id: PsaId, close: bool },
    /// Nothing to send; the reason is recorded as the event's outcome.
    Nothing(&'static str),
}

/// Decides the next step. The worker calls it again after each `CheckTicket`.
pub fn plan(kind: EventKind, indexed: Option<&Indexed>) -> Plan {
    use EventKind::*;
    use TicketState::*;
    let Some(ix) = indexed else {
        return match kind {
            Alert | AlertFiring | FindingCreated | FindingCommented => {
                Plan::NewTicket { close: false }
            }
            FindingResolved => Plan::NewTicket { close: true },
            AlertResolved | AlertCleared => {
                Plan::Nothing("resolved alert without a ticket in its group")
            }
        };
    };
    let id = || ix.ticket_id.clone();
    match (kind, ix.state) {
        (Alert | AlertFiring, Unknown) => Plan::CheckTicket(id()),
        (Alert | AlertFiring, Open) => Plan::Note {
            ticket_id: id(),
            close: false,
        },
        (Alert | AlertFiring, Closed | Gone) => Plan::NewTicket { close: false },

        (AlertResolved | AlertCleared, Unknown) => Plan::CheckTicket(id()),
        (AlertResolved | AlertCleared, Open) => Plan::Note {
            ticket_id: id(),
            close: false,
        },
        (AlertResolved | AlertCleared, Closed | Gone) => {
            Plan::Nothing("resolved alert whose ticket is already closed")
        }

        (FindingCreated, Gone) => Plan::NewTicket { close: false },
        (FindingCreated, _) => Plan::Nothing("the finding already has its ticket"),

        // One-way sync: the note goes to the finding's ticket whatever its state; a deleted
        // ticket is noticed by the failing note and replaced.
        (FindingCommented, Unknown | Open | Closed) => Plan::Note {
            ticket_id: id(),
            close: false,
        },
        (FindingCommented, Gone) => Plan::NewTicket { close: false },

        (FindingResolved, Unknown) => Plan::CheckTicket(id()),
        (FindingResolved, Open) => Plan::Note {
            ticket_id: id(),
            close: true,
        },
        // A technician closed it already: keep their status, add the resolution.
        (FindingResolved, Closed) => Plan::Note {
            ticket_id: id(),
            close: false,
        },
        (FindingResolved, Gone) => Plan::NewTicket { close: true },
    }
}

/// Whether events of this kind take part in `groupWait` batching (alerts only; findings are
/// one ticket each and resolutions must stay separate notes).
pub fn batchable(kind: EventKind) -> bool {
    matches!(kind, EventKind::Alert | EventKind::AlertFiring)
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventKind::*;
    use TicketState::*;

    fn ix(state: TicketState) -> Indexed {
        Indexed {
            ticket_id: "T1".into(),
            state,
        }
    }

    fn note(close: bool) -> Plan {
        Plan::Note {
            ticket_id: "T1".into(),
            close,
        }
    }

    #[test]
    fn plan_table() {
        let new = Plan::NewTicket { close: false };
        let new_closed = Plan::NewTicket { close: true };
        let check = Plan::CheckTicket("T1".into());
        let table: Vec<(EventKind, Option<TicketState>, Plan)> = vec![
            (Alert, None, new.clone()),
            (Alert, Some(Unknown), check.clone()),
            (Alert, Some(Open), note(false)),
            (Alert, Some(Closed), new.clone()),
            (Alert, Some(Gone), new.clone()),
            (AlertFiring, None, new.clone()),
            (AlertFiring, Some(Unknown), check.clone()),
            (AlertFiring, Some(Open), note(false)),
            (AlertFiring, Some(Closed), new.clone()),
            (AlertResolved, Some(Unknown), check.clone()),
            (AlertResolved, Some(Open), note(false)),
            (AlertCleared, Some(Unknown), check.clone()),
            (AlertCleared, Some(Open), note(false)),
            (FindingCreated, None, new.clone()),
            (FindingCreated, Some(Gone), new.clone()),
            (FindingCommented, None, new.clone()),
            (FindingCommented, Some(Unknown), note(false)),
            (FindingCommented, Some(Closed), note(false)),
            (FindingCommented, Some(Gone), new.clone()),
            (FindingResolved, None, new_closed.clone()),
            (FindingResolved, Some(Unknown), check.clone()),
            (FindingResolved, Some(Open), note(true)),
            (FindingResolved, Some(Closed), note(false)),
            (FindingResolved, Some(Gone), new_closed.clone()),
        ];
        for (kind, state, want) in table {
            let indexed = state.map(ix);
            assert_eq!(plan(kind, indexed.as_ref()), want, "{kind:?} {state:?}");
        }
        for (kind, state) in [
            (AlertResolved, None),
            (AlertResolved, Some(Closed)),
            (AlertResolved, Some(Gone)),
            (AlertCleared, None),
            (AlertCleared, Some(Closed)),
            (FindingCreated, Some(Unknown)),
            (FindingCreated, Some(Open)),
            (FindingCreated, Some(Closed)),
        ] {
            let indexed = state.map(ix);
            assert!(
                matches!(plan(kind, indexed.as_ref()), Plan::Nothing(_)),
                "{kind:?} {state:?}"
            );
        }
    }

    /// What the worker does for one group over a sequence of alerts, with the technician's
    /// actions in between; mirrors the worker's loop over `plan`.
    struct Group {
        ticket: Option<(PsaId, TicketState)>,
        tickets_created: usize,
    }

    impl Group {
        fn alert(&mut self) -> String {
            loop {
                let indexed = self.ticket.as_ref().map(|(id, state)| Indexed {
                    ticket_id: id.clone(),
                    state: *state,
                });
                match plan(Alert, indexed.as_ref()) {
                    Plan::CheckTicket(_) => {
                        // The PSA answers with the state the technician left; the fake keeps it.
                        let (_, state) = self.ticket.as_mut().expect("indexed");
                        if *state == Unknown {
                            *state = Open;
                        }
                    }
                    Plan::NewTicket { .. } => {
                        self.tickets_created += 1;
                        let id = format!("T{}", self.tickets_created);
                        self.ticket = Some((id.clone(), Unknown));
                        return format!("new {id}");
                    }
                    Plan::Note { ticket_id, .. } => return format!("note {ticket_id}"),
                    Plan::Nothing(why) => return why.to_string(),
                }
            }
        }
        fn technician_closes(&mut self) {
            if let Some((_, state)) = self.ticket.as_mut() {
                *state = Closed;
            }
        }
    }

    fn group() -> Group {
        Group {
            ticket: None,
            tickets_created: 0,
        }
    }

    /// Seed 000, grouping "User": key (organization, user).
    #[test]
    fn seed_example_user() {
        let mut user = group();
        // Too Many Downloads: the user's first alert ever → a ticket.
        assert_eq!(user.alert(), "new T1");
        // 15 minutes later Too Many Uploads: the ticket is open → a note on it.
        assert_eq!(user.alert(), "note T1");
        // A technician closes the ticket.
        user.technician_closes();
        // Multiple MFA Failures: the ticket is closed → a new ticket.
        assert_eq!(user.alert(), "new T2");
        assert_eq!(user.tickets_created, 2);
    }

    /// Seed 000, grouping "User+Alert": key (organization, user, alert type).
    #[test]
    fn seed_example_user_and_alert() {
        let mut downloads = group();
        let mut uploads = group();
        // Too Many Downloads: first alert → ticket.
        assert_eq!(downloads.alert(), "new T1");
        // Too Many Uploads: another alert type, another key → its own ticket even though the
        // downloads ticket is open.
        assert_eq!(uploads.alert(), "new T1");
        // A technician closes the downloads ticket.
        downloads.technician_closes();
        // Another Too Many Uploads: its ticket is still open → a note on it.
        assert_eq!(uploads.alert(), "note T1");
        assert_eq!(downloads.tickets_created + uploads.tickets_created, 2);
    }

    #[test]
    fn only_alerts_batch() {
        assert!(batchable(Alert) && batchable(AlertFiring));
        for k in [
            AlertResolved,
            AlertCleared,
            FindingCreated,
            FindingCommented,
            FindingResolved,
        ] {
            assert!(!batchable(k));
        }
    }
}
