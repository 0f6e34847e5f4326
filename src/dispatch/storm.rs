//! The storm breaker in a delivery and in the dispatcher's sweep (`decide::storm` decides, the
//! store keeps the state): a new group of a customer over `noise.maxNewTicketsPerCustomer`
//! becomes a note on the customer's roll-up ticket, and a roll-up quiet for a whole window is
//! closed with a summary by user and alert type.

use crate::dispatch::budget::PsaCalls;
use crate::dispatch::decide::marker::ticket_marker;
use crate::dispatch::decide::render;
use crate::dispatch::decide::storm::{
    closing_note, label, rollup_description, rollup_note, rollup_summary, Admission, AdmitRequest,
    StormLimit,
};
use crate::dispatch::decide::values::{new_ticket, TicketText};
use crate::dispatch::deliver::{Delivered, Delivery, DeliveryError};
use crate::dispatch::event::{Event, EventKind};
use crate::dispatch::store::{StoreResult, StoredEvent, StormDue, TicketRecord};
use crate::psa::{CloseTicket, NewTicket, PsaError, PsaId, TicketDesk};
use crate::resolved::{ResolvedConnection, ResolvedCustomer};

/// How long a roll-up's creation may take before another group of the customer may try (the
/// creator crashed); the ticket marker then finds what it created.
pub const ROLLUP_LEASE_MS: i64 = 30_000;

/// What the storm breaker made of a new group.
pub(crate) enum Storm {
    /// Under the limit (or no limit): a ticket of its own.
    Ticket,
    /// Over it: delivered to the customer's roll-up.
    RolledUp(Delivered),
}

impl Delivery<'_> {
    /// Asks the store whether the batch's new group gets a ticket; over the limit, delivers it
    /// to the roll-up (creating it when this group is the first over).
    pub(crate) async fn storm_breaker(
        &self,
        batch: &[StoredEvent],
        group_key: &str,
    ) -> Result<Storm, DeliveryError> {
        let head = &batch[0];
        let event = &head.envelope.event;
        let Some(limit) = self.conn.storm else {
            return Ok(Storm::Ticket);
        };
        if !matches!(event.kind, EventKind::Alert | EventKind::AlertFiring) {
            return Ok(Storm::Ticket);
        }
        // Held or unroutable organizations: the ticket path reports them.
        let Some(customer) = self.route(&event.organization).await?.customer().cloned() else {
            return Ok(Storm::Ticket);
        };
        let req = AdmitRequest {
            connection: self.conn.key.clone(),
            customer_id: customer.company_id.clone(),
            customer_name: customer.company_name.clone(),
            group_key: group_key.to_string(),
            now_ms: self.now_ms,
            limit_count: limit.count,
            per_ms: i64::try_from(limit.per.as_millis()).unwrap_or(i64::MAX),
            lease_ms: ROLLUP_LEASE_MS,
        };
        let events: Vec<&Event> = batch.iter().map(|e| &e.envelope.event).collect();
        let note = rollup_note(event, &render::combined_note(&events));
        let record = |created: Option<&PsaId>| TicketRecord::Storm {
            connection: self.conn.key.clone(),
            customer_id: customer.company_id.clone(),
            created: created.cloned(),
            label: label(event),
        };
        // A second round only after the roll-up turned out deleted.
        for _ in 0..2 {
            let rollup = match self.store.storm_admit(req.clone()).await? {
                Admission::Ticket => return Ok(Storm::Ticket),
                Admission::Wait { until_ms } => {
                    return Err(DeliveryError::RollupPending {
                        wait_ms: until_ms.saturating_sub(self.now_ms),
                    })
                }
                Admission::Note { rollup_ticket_id } => rollup_ticket_id,
                Admission::CreateRollup { seq } => {
                    let marker = ticket_marker(
                        &self.conn.key,
                        &format!("storm|{}", customer.company_id),
                        &seq.to_string(),
                    );
                    // A creator that crashed after creating it: its ticket, by the marker.
                    if let Some(t) = self.psa.find_ticket_by_marker(&marker).await? {
                        let done = self.note_rollup(head, &t.id, &note).await?;
                        return Ok(done.map_or(Storm::Ticket, |mut d| {
                            d.records.push(record(Some(&t.id)));
                            Storm::RolledUp(d)
                        }));
                    }
                    // Every alert of the roll-up is a note of its own (its description says why
                    // it exists), so the notes count the alerts.
                    let new = rollup_ticket(self.conn, &customer, event, limit, marker);
                    let t = self.psa.create_ticket(&new).await?;
                    self.psa.add_note(&t.id, &note).await?;
                    return Ok(Storm::RolledUp(Delivered {
                        ticket_id: Some(t.id.clone()),
                        ticket_created: true,
                        notes_added: 1,
                        rolled_up: true,
                        records: vec![record(Some(&t.id))],
                        route: Some("storm roll-up"),
                        ..Default::default()
                    }));
                }
            };
            match self.note_rollup(head, &rollup, &note).await? {
                Some(mut d) => {
                    d.records.push(record(None));
                    return Ok(Storm::RolledUp(d));
                }
                // Deleted in the PSA: forget it; the next admission creates a new one.
                None => {
                    self.store
                        .storm_closed(self.conn.key.clone(), customer.company_id.clone(), rollup)
                        .await?;
                }
            }
        }
        Err(DeliveryError::Unsettled)
    }

    /// The batch as a note on the roll-up (once, across attempts); `None` when it is gone.
    async fn note_rollup(
        &self,
        head: &StoredEvent,
        rollup: &PsaId,
        note: &str,
    ) -> Result<Option<Delivered>, DeliveryError> {
        let retried = head.claims > 1 || head.attempts > 0;
        let noted = if retried {
            match self.noted_before(rollup, &head.envelope.event.id).await? {
                Some(n) => n,
                None => return Ok(None),
            }
        } else {
            false
        };
        if !noted {
            match self.psa.add_note(rollup, note).await {
                Err(PsaError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
        }
        Ok(Some(Delivered {
            ticket_id: Some(rollup.clone()),
            notes_added: u32::from(!noted),
            rolled_up: true,
            ..Default::default()
        }))
    }
}

/// The roll-up ticket: the customer's company and default contact, the connection's ticket
/// settings as the first alert over the limit picks them.
fn rollup_ticket(
    conn: &ResolvedConnection,
    customer: &ResolvedCustomer,
    event: &Event,
    limit: StormLimit,
    marker: String,
) -> NewTicket {
    let text = TicketText {
        marker,
        summary: rollup_summary(&customer.company_name),
        description: rollup_description(limit, &customer.company_name),
        contact_id: customer.default_contact_id.clone(),
    };
    new_ticket(&conn.ticket, customer, event, text)
}

/// Closes one roll-up that stayed quiet for a whole window (the sweep leased it): the closing
/// note lists its alerts by user and alert type. A roll-up deleted in the PSA is forgotten.
pub async fn close_rollup(
    conn: &ResolvedConnection,
    psa: &PsaCalls,
    due: &StormDue,
) -> Result<(), PsaError> {
    let Some(ticket) = &due.window.rollup_ticket_id else {
        return Ok(());
    };
    let status = conn
        .lifecycle
        .closed_status_id
        .as_ref()
        .or(conn.ticket.closed_status_id.as_ref());
    let note = closing_note(&due.window);
    let close = CloseTicket {
        ticket_id: ticket,
        status_id: status,
        note: Some(&note),
    };
    match psa.close_ticket(close).await {
        Ok(()) | Err(PsaError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// After [`close_rollup`]: the store forgets the roll-up.
pub async fn forget_rollup(
    store: &dyn crate::dispatch::store::Store,
    due: &StormDue,
) -> StoreResult<()> {
    match &due.window.rollup_ticket_id {
        Some(t) => {
            store
                .storm_closed(due.connection.clone(), due.customer_id.clone(), t.clone())
                .await
        }
        None => Ok(()),
    }
}
