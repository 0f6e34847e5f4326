//! `lifecycle.reopenWithin` in a delivery: before a firing alert opens a new ticket, the group's
//! closed ticket is read and, within the window, reopened instead (`decide::reopen` decides).

use crate::dispatch::decide::lifecycle::{after_firing, alert_identity};
use crate::dispatch::decide::render;
use crate::dispatch::decide::reopen::{on_recurrence, reopen_note, Recurrence};
use crate::dispatch::decide::values::resolve_value;
use crate::dispatch::deliver::{Delivered, Delivery, DeliveryError};
use crate::dispatch::event::{Event, EventKind};
use crate::dispatch::store::StoredEvent;
use crate::psa::{PsaId, ReopenTicket, Ticket, TicketDesk};

/// What became of a new ticket the plan asked for.
pub(crate) enum Recur {
    /// The group's closed ticket was reopened with the batch as its note.
    Reopened(Delivered),
    /// The group's ticket is open after all (a technician, or an earlier attempt of this
    /// event, reopened it): the batch is a note on it.
    Open(PsaId),
    /// A new ticket, as without the window.
    New,
}

impl Delivery<'_> {
    /// `read` = the group's ticket as the plan's check just read it (`Some(None)`: deleted);
    /// `None` = not read: the group's record may still name a ticket known to be closed.
    pub(crate) async fn recurrence(
        &self,
        group_key: &str,
        batch: &[StoredEvent],
        read: Option<Option<Ticket>>,
    ) -> Result<Recur, DeliveryError> {
        let life = &self.conn.lifecycle;
        let head = &batch[0].envelope.event;
        if life.reopen_within.is_none()
            || !matches!(head.kind, EventKind::Alert | EventKind::AlertFiring)
        {
            return Ok(Recur::New);
        }
        let ticket = match read {
            Some(t) => t,
            None => {
                let recorded = self
                    .store
                    .group_ticket(self.conn.key.clone(), group_key.to_string())
                    .await?;
                let Some(recorded) = recorded else {
                    return Ok(Recur::New);
                };
                match self.psa.get_ticket(&recorded.ticket_id).await? {
                    Some(t) if !t.closed => return Ok(Recur::Open(t.id)),
                    other => other,
                }
            }
        };
        let decision = on_recurrence(
            life.reopen_within,
            &life.never_reopen,
            ticket.as_ref(),
            self.now_ms,
        );
        let (Recurrence::Reopen, Some(ticket)) = (decision, ticket) else {
            if let Recurrence::NewTicket(why) = decision {
                tracing::debug!(connection = %self.conn.key, why, "a new ticket, not a reopen");
            }
            return Ok(Recur::New);
        };
        // The open status of the board the ticket was routed to (ConnectWise scopes statuses
        // by board); the connection's first open status only fits its own board.
        let (routed_status, same_board) = self
            .with_routed_ticket(head, |c| {
                (
                    resolve_value(&c.ticket.status, head),
                    c.ticket.board_id == self.conn.ticket.board_id,
                )
            })
            .await;
        let fallback = same_board.then(|| life.reopen_status_id.clone()).flatten();
        let Some(status) = routed_status.or(fallback) else {
            tracing::warn!(connection = %self.conn.key, ticket = %ticket.id,
                "no open status to reopen the ticket with; a new ticket");
            return Ok(Recur::New);
        };
        let events: Vec<&Event> = batch.iter().map(|e| &e.envelope.event).collect();
        let note = reopen_note(
            &render::combined_note(&events),
            ticket.closed_at_ms,
            self.now_ms,
        );
        let reopen = ReopenTicket {
            ticket_id: &ticket.id,
            status_id: &status,
            note: &note,
        };
        self.psa.reopen_ticket(reopen).await?;
        let fed = batch.iter().map(|e| alert_identity(&e.envelope.event));
        let life_record = after_firing(None, &ticket.id, Some(Some(status)), fed);
        let mut done = Delivered {
            ticket_id: Some(ticket.id.clone()),
            notes_added: 1,
            reopened: true,
            ..Default::default()
        };
        done.records
            .push(self.group_record(group_key, &ticket.id, true));
        done.records
            .extend(self.lifecycle_record(group_key, life_record));
        Ok(Recur::Reopened(done))
    }
}
