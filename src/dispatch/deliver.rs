//! Delivering one event (or one `groupWait` batch) of a lane to the PSA.
//!
//! The pure decisions in `decide` say what to do; this file gathers their inputs (the index in
//! the store, the ticket's state from the PSA, routing and contact lookups through the caches)
//! and makes the PSA calls. It never records the outcome: the worker does that in one store
//! transaction (`complete`) with the index records returned here, so "done" and "which ticket"
//! cannot be separated by a crash. A crash before that is covered by the ticket marker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::controller::context::DIRECTORY_TTL;
use crate::controller::resolve::directory::{listed_contacts, ListedContacts};
use crate::dispatch::budget::PsaCalls;
use crate::dispatch::cache::{Ttl, TtlCache};
use crate::dispatch::decide::action::{plan, Indexed, Plan, TicketState};
use crate::dispatch::decide::contact::{choose_contact, user_email, ContactSource, EmailLookup};
use crate::dispatch::decide::lifecycle::{
    after_firing, after_resolution, alert_identity, on_resolution, ResolveStep,
};
use crate::dispatch::decide::marker::ticket_marker;
use crate::dispatch::decide::render;
use crate::dispatch::decide::routing::{
    auto_customer, route, AutoAnswer, AutoLookup, Route, RoutingTable,
};
use crate::dispatch::decide::ticket_route::{ticket_for, ChosenTicket};
use crate::dispatch::decide::values::{new_ticket, TicketText};
use crate::dispatch::event::Event;
use crate::dispatch::recurrence::Recur;
use crate::dispatch::stats::StatsBoard;
use crate::dispatch::store::{
    GroupLifecycle, GroupTicket, Store, StoreError, StoredEvent, TicketRecord,
};
use crate::dispatch::storm::Storm;
use crate::psa::{CloseTicket, Company, ContactEmail, PsaError, PsaId, TicketDesk};
use crate::resolved::{ConnectionKey, ResolvedConnection, ResolvedCustomer};

/// Why an event could not be delivered this time.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Psa(#[from] PsaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "no PSA company for organization {0:?}: no CustomerMapping, no automatic match and no catch-all company"
    )]
    Unroutable(String),
    /// The organization has a CustomerMapping that does not route (yet): the event waits, and
    /// is never sent to the catch-all company.
    #[error("organization {organization:?} is held: {reason}")]
    Held {
        organization: String,
        reason: String,
    },
    #[error("the ticket of this group changed state too often while delivering; retrying")]
    Unsettled,
    /// Another group of the customer is creating the storm breaker's roll-up ticket: wait for
    /// it (no attempt spent).
    #[error("the customer's roll-up ticket is being created; waiting {wait_ms} ms")]
    RollupPending { wait_ms: i64 },
}

/// What a delivery did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The ticket the event(s) went to (`None` when there was nothing to do).
    pub ticket_id: Option<PsaId>,
    /// A ticket was created (or found by its marker after an earlier attempt created it).
    pub ticket_created: bool,
    /// Found by marker: an earlier attempt created it and crashed or timed out before recording.
    pub recovered_by_marker: bool,
    pub notes_added: u32,
    pub closed: bool,
    /// A closed ticket of the group was reopened (`lifecycle.reopenWithin`).
    pub reopened: bool,
    /// The storm breaker sent the event to the customer's roll-up ticket.
    pub rolled_up: bool,
    /// Why nothing was sent, when nothing was.
    pub nothing: Option<&'static str>,
    /// Index updates to write together with `complete`.
    pub records: Vec<TicketRecord>,
    /// Which link of the routing and contact chains applied (for logs), when a ticket was made.
    pub route: Option<&'static str>,
    pub contact: Option<ContactSource>,
}

/// What the alert lifecycle makes of a note.
enum LifecycleStep {
    /// The record to write (if any) and whether the note closes the ticket.
    Record(Option<GroupLifecycle>, bool),
    /// The ticket turned out closed or deleted: plan again with this state.
    Replan(TicketState),
}

/// Lookups cached across events: contacts by e-mail, companies of automatic account mapping.
pub struct Caches {
    contacts: TtlCache<(ConnectionKey, PsaId, String), EmailLookup>,
    companies: TtlCache<(ConnectionKey, AutoLookup), AutoAnswer>,
}

impl Caches {
    pub fn new(contacts: Ttl, companies: Ttl) -> Self {
        Caches {
            contacts: TtlCache::new(contacts),
            companies: TtlCache::new(companies),
        }
    }
}

/// Everything one delivery needs.
pub struct Delivery<'a> {
    pub conn: &'a ResolvedConnection,
    pub store: &'a Arc<dyn Store>,
    pub psa: &'a PsaCalls,
    pub caches: &'a Caches,
    pub stats: &'a StatsBoard,
    /// How long a ticket's "open" answer is trusted before the next note re-reads it.
    pub ticket_state_ttl: Duration,
    pub now_ms: i64,
}

/// Bound on plan → act rounds for one event (check, then act, then one re-plan after a ticket
/// turned out deleted): more means the ticket keeps changing under us.
const MAX_ROUNDS: usize = 4;

impl Delivery<'_> {
    /// Delivers `batch` (head first; more than one only for `groupWait`) of lane `group_key`.
    pub async fn run(
        &self,
        group_key: &str,
        batch: &[StoredEvent],
    ) -> Result<Delivered, DeliveryError> {
        let Some(head) = batch.first() else {
            return Ok(Delivered {
                nothing: Some("empty batch"),
                ..Default::default()
            });
        };
        let event = &head.envelope.event;
        let finding_id = event
            .kind
            .is_finding()
            .then(|| event.finding_id.clone().unwrap_or_else(|| event.id.clone()));
        let mut indexed = self.indexed(group_key, finding_id.as_deref()).await?;
        let mut out = Delivered::default();
        // The group's ticket as the last check read it (for the reopen window).
        let mut last_read = None;
        for _ in 0..MAX_ROUNDS {
            match plan(event.kind, indexed.as_ref()) {
                Plan::CheckTicket(id) => {
                    let read = self.psa.get_ticket(&id).await?;
                    let state = match &read {
                        None => TicketState::Gone,
                        Some(t) if t.closed => TicketState::Closed,
                        Some(_) => TicketState::Open,
                    };
                    last_read = Some(read);
                    if finding_id.is_none() {
                        out.records.push(self.group_record(
                            group_key,
                            &id,
                            state == TicketState::Open,
                        ));
                    }
                    indexed = Some(Indexed {
                        ticket_id: id,
                        state,
                    });
                }
                Plan::NewTicket { close } => {
                    if finding_id.is_none() {
                        match self.recurrence(group_key, batch, last_read.take()).await? {
                            Recur::Reopened(done) => {
                                out.records.extend(done.records);
                                return Ok(Delivered {
                                    records: out.records,
                                    ..done
                                });
                            }
                            Recur::Open(ticket_id) => {
                                out.records
                                    .push(self.group_record(group_key, &ticket_id, true));
                                indexed = Some(Indexed {
                                    ticket_id,
                                    state: TicketState::Open,
                                });
                                continue;
                            }
                            Recur::New => {}
                        }
                        if let Storm::RolledUp(done) = self.storm_breaker(batch, group_key).await? {
                            out.records.extend(done.records);
                            return Ok(Delivered {
                                records: out.records,
                                ..done
                            });
                        }
                    }
                    let (id, created_status) = self.new_ticket(group_key, head, &mut out).await?;
                    if finding_id.is_none() {
                        let fed = batch.iter().map(|e| alert_identity(&e.envelope.event));
                        let life = after_firing(None, &id, Some(created_status), fed);
                        out.records.extend(self.lifecycle_record(group_key, life));
                    }
                    out.records.push(match &finding_id {
                        Some(f) => TicketRecord::Finding {
                            connection: self.conn.key.clone(),
                            finding_id: f.clone(),
                            ticket_id: id.clone(),
                            updated_at_ms: self.now_ms,
                        },
                        None => self.group_record(group_key, &id, !close),
                    });
                    if close {
                        let status = self.closing_status(event, false).await;
                        let close = CloseTicket {
                            ticket_id: &id,
                            status_id: status.as_ref(),
                            note: None,
                        };
                        self.psa.close_ticket(close).await?;
                        out.closed = true;
                    }
                    // groupWait: the alerts after the head become one note on the new ticket.
                    let rest: Vec<&Event> = batch[1..].iter().map(|e| &e.envelope.event).collect();
                    let rest_noted = match rest.first() {
                        Some(first) if out.recovered_by_marker => {
                            self.noted_before(&id, &first.id).await?.unwrap_or(false)
                        }
                        _ => false,
                    };
                    if !rest.is_empty() && !rest_noted {
                        self.psa
                            .add_note(&id, &render::combined_note(&rest))
                            .await?;
                        out.notes_added += 1;
                    }
                    out.ticket_id = Some(id);
                    return Ok(out);
                }
                Plan::Note {
                    ticket_id,
                    mut close,
                } => {
                    let mut by_lifecycle = false;
                    if finding_id.is_none() {
                        match self.alert_lifecycle(group_key, batch, &ticket_id).await? {
                            LifecycleStep::Record(life, closes) => {
                                out.records.extend(self.lifecycle_record(group_key, life));
                                if closes {
                                    close = true;
                                    by_lifecycle = true;
                                }
                            }
                            LifecycleStep::Replan(state) => {
                                out.records.push(self.group_record(
                                    group_key,
                                    &ticket_id,
                                    state == TicketState::Open,
                                ));
                                indexed = Some(Indexed { ticket_id, state });
                                continue;
                            }
                        }
                    }
                    let events: Vec<&Event> = batch.iter().map(|e| &e.envelope.event).collect();
                    let text = render::combined_note(&events);
                    // An earlier attempt may have added the note and died before recording
                    // it: add it once. Skipped on a first attempt (it costs a call).
                    let noted = if head.claims > 1 || head.attempts > 0 {
                        match self.noted_before(&ticket_id, &event.id).await? {
                            Some(n) => n,
                            None => {
                                indexed = Some(Indexed {
                                    ticket_id,
                                    state: TicketState::Gone,
                                });
                                continue;
                            }
                        }
                    } else {
                        false
                    };
                    let text = (!noted).then_some(text);
                    let sent = if close {
                        let close_status = self.closing_status(event, by_lifecycle).await;
                        self.psa
                            .close_ticket(CloseTicket {
                                ticket_id: &ticket_id,
                                status_id: close_status.as_ref(),
                                note: text.as_deref(),
                            })
                            .await
                    } else if let Some(text) = &text {
                        self.psa.add_note(&ticket_id, text).await.map(|_| ())
                    } else {
                        Ok(())
                    };
                    match sent {
                        // Deleted in the PSA since we last saw it: plan again as "gone".
                        Err(PsaError::NotFound { .. }) => {
                            indexed = Some(Indexed {
                                ticket_id,
                                state: TicketState::Gone,
                            });
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                        Ok(()) => {}
                    }
                    out.notes_added += u32::from(text.is_some());
                    out.closed = close;
                    if close && finding_id.is_none() {
                        out.records
                            .push(self.group_record(group_key, &ticket_id, false));
                    }
                    out.ticket_id = Some(ticket_id);
                    return Ok(out);
                }
                Plan::Nothing(why) => {
                    out.nothing = Some(why);
                    return Ok(out);
                }
            }
        }
        Err(DeliveryError::Unsettled)
    }

    /// Whether the ticket has a note of this event (`Some(false)` also when the provider
    /// cannot list notes); `None` = the ticket is gone.
    pub(crate) async fn noted_before(
        &self,
        ticket_id: &PsaId,
        event_id: &str,
    ) -> Result<Option<bool>, DeliveryError> {
        let line = format!("Event id: {event_id}");
        match self.psa.note_texts(ticket_id).await {
            Ok(Some(texts)) => Ok(Some(
                texts.iter().any(|t| t.lines().any(|l| l.trim() == line)),
            )),
            Ok(None) => Ok(Some(false)),
            Err(PsaError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn group_record(
        &self,
        group_key: &str,
        ticket_id: &PsaId,
        open: bool,
    ) -> TicketRecord {
        TicketRecord::Group {
            connection: self.conn.key.clone(),
            group_key: group_key.to_string(),
            ticket: GroupTicket {
                ticket_id: ticket_id.clone(),
                open,
                updated_at_ms: self.now_ms,
            },
        }
    }

    pub(crate) fn lifecycle_record(
        &self,
        group_key: &str,
        lifecycle: Option<GroupLifecycle>,
    ) -> Option<TicketRecord> {
        lifecycle.map(|lifecycle| TicketRecord::Lifecycle {
            connection: self.conn.key.clone(),
            group_key: group_key.to_string(),
            lifecycle,
        })
    }

    /// What the batch (firing alerts noted on `ticket_id`, or one resolution) does to the
    /// record of the ticket's firing alerts, and whether the resolution closes the ticket.
    /// Reads the ticket (one call) only when it would close, to leave a ticket a technician
    /// moved alone.
    async fn alert_lifecycle(
        &self,
        group_key: &str,
        batch: &[StoredEvent],
        ticket_id: &PsaId,
    ) -> Result<LifecycleStep, DeliveryError> {
        let before = self
            .store
            .group_lifecycle(self.conn.key.clone(), group_key.to_string())
            .await?;
        let head = &batch[0].envelope.event;
        if !head.kind.is_resolution() {
            let fed = batch.iter().map(|e| alert_identity(&e.envelope.event));
            let after = after_firing(before.as_ref(), ticket_id, None, fed);
            return Ok(LifecycleStep::Record(after, false));
        }
        let after = after_resolution(before.as_ref(), ticket_id, &alert_identity(head));
        let close = self.conn.lifecycle.close_on_resolve;
        let mut step = on_resolution(close, after.as_ref(), None);
        if step == ResolveStep::ReadStatus {
            let ticket = match self.psa.get_ticket(ticket_id).await? {
                None => return Ok(LifecycleStep::Replan(TicketState::Gone)),
                Some(t) if t.closed => return Ok(LifecycleStep::Replan(TicketState::Closed)),
                Some(t) => t,
            };
            step = on_resolution(close, after.as_ref(), Some(ticket.status_id.as_ref()));
        }
        if let ResolveStep::Note(why) = step {
            tracing::debug!(connection = %self.conn.key, ticket = %ticket_id, why,
                "resolution added as a note");
        }
        Ok(LifecycleStep::Record(after, step == ResolveStep::Close))
    }

    /// The ticket the index points to, with what we may assume about its state.
    async fn indexed(
        &self,
        group_key: &str,
        finding_id: Option<&str>,
    ) -> Result<Option<Indexed>, StoreError> {
        if let Some(f) = finding_id {
            let id = self
                .store
                .finding_ticket(self.conn.key.clone(), f.to_string())
                .await?;
            return Ok(id.map(|ticket_id| Indexed {
                ticket_id,
                state: TicketState::Unknown,
            }));
        }
        let g = self
            .store
            .group_ticket(self.conn.key.clone(), group_key.to_string())
            .await?;
        Ok(g.and_then(|g| {
            // A ticket known to be closed is as good as none: the next alert opens a new one.
            if !g.open {
                return None;
            }
            let age = self.now_ms.saturating_sub(g.updated_at_ms);
            let fresh = u128::try_from(age).is_ok_and(|a| a < self.ticket_state_ttl.as_millis());
            Some(Indexed {
                ticket_id: g.ticket_id,
                state: if fresh {
                    TicketState::Open
                } else {
                    TicketState::Unknown
                },
            })
        }))
    }

    /// Creates the ticket for `head`, or finds the one an earlier attempt created.
    async fn new_ticket(
        &self,
        group_key: &str,
        head: &StoredEvent,
        out: &mut Delivered,
    ) -> Result<(PsaId, Option<PsaId>), DeliveryError> {
        let event = &head.envelope.event;
        let marker = ticket_marker(&self.conn.key, group_key, &event.id);
        // An earlier claim or a failed attempt may have reached the PSA (crash, timeout after
        // the PSA committed): look for our marker before creating again.
        if head.claims > 1 || head.attempts > 0 {
            if let Some(t) = self.psa.find_ticket_by_marker(&marker).await? {
                out.ticket_created = true;
                out.recovered_by_marker = true;
                return Ok((t.id, t.status_id));
            }
        }
        let route = self.route(&event.organization).await?;
        if let Route::Held(reason) = &route {
            return Err(DeliveryError::Held {
                organization: event.organization.clone(),
                reason: reason.clone(),
            });
        }
        let Some(customer) = route.customer().cloned() else {
            return Err(DeliveryError::Unroutable(event.organization.clone()));
        };
        let (contact_id, contact_source) = self.contact(&customer, event).await?;
        let chosen = ticket_for(self.conn, customer.ticket.as_deref(), event);
        let ticket = chosen.ticket;
        let summary = render::summary_bounded(ticket.summary_template.clone(), event).await;
        if let Some(e) = &summary.template_error {
            tracing::warn!(connection = %self.conn.key, error = %e, "using the default summary");
        }
        let text = TicketText {
            marker,
            summary: summary.text,
            description: render::description(event),
            contact_id,
        };
        let new = new_ticket(ticket, &customer, event, text);
        let created = self.psa.create_ticket(&new).await?;
        tracing::debug!(connection = %self.conn.key, ticket = %created.id, values = ?chosen.source,
            "ticket created");
        out.ticket_created = true;
        out.route = Some(route.label());
        out.contact = Some(contact_source);
        Ok((created.id, created.status_id))
    }

    /// The status that closes the ticket of `event`: of the board its customer's overrides or
    /// routes put it on (`lifecycle` = `lifecycle.closedStatus`, else `ticket.closedStatus`).
    /// The event is routed again for it (in memory, or the cached automatic look-up); when it no
    /// longer routes, the connection's status (`None` = the PSA's closed status on a failure).
    async fn closing_status(&self, event: &Event, lifecycle: bool) -> Option<PsaId> {
        self.with_routed_ticket(event, |c| {
            if lifecycle {
                c.lifecycle_closed_status_id.cloned()
            } else {
                c.ticket.closed_status_id.clone()
            }
        })
        .await
    }

    /// `read` applied to the ticket settings `event` gets (its customer's overrides and the
    /// routes), routing it again (in memory, or the cached automatic look-up); when it no longer
    /// routes, the connection's own settings.
    pub(crate) async fn with_routed_ticket<T>(
        &self,
        event: &Event,
        read: impl Fn(&ChosenTicket<'_>) -> T,
    ) -> T {
        let has_overrides = !self.conn.customers.is_empty() || !self.conn.routes.is_empty();
        if has_overrides {
            if let Ok(route) = self.route(&event.organization).await {
                let customer = route.customer().and_then(|c| c.ticket.as_deref());
                return read(&ticket_for(self.conn, customer, event));
            }
        }
        read(&ticket_for(self.conn, None, event))
    }

    /// Routing with the automatic account mapping lookup cached (hits and misses).
    pub(crate) async fn route(&self, organization: &str) -> Result<Route, DeliveryError> {
        let table = RoutingTable {
            customers: &self.conn.customers,
            held: &self.conn.held_organizations,
            account_mapping: self.conn.account_mapping,
            catch_all: self.conn.catch_all.as_ref(),
        };
        let first = route(&table, organization, None);
        let Route::NeedLookup(lookup) = first else {
            return Ok(first);
        };
        let cache_key = (self.conn.key.clone(), lookup.clone());
        let answer = match self.caches.companies.get(&cache_key, Instant::now()) {
            Some(a) => a,
            None => {
                let company = match &lookup {
                    AutoLookup::ByIdentifier(i) => self.psa.find_company_by_identifier(i).await?,
                    AutoLookup::ByName(n) => self.psa.find_company_by_name(n).await?,
                };
                let answer = match company.filter(|c| c.active) {
                    Some(c) => AutoAnswer::Found(self.auto_customer_with_contact(&c).await?),
                    None => AutoAnswer::NotFound,
                };
                let hit = matches!(answer, AutoAnswer::Found(_));
                self.stats.update(&self.conn.key, |s| {
                    if hit {
                        s.auto_matched += 1;
                    } else {
                        s.auto_unmatched += 1;
                        let org = organization.trim().to_string();
                        if !s.unmatched_organizations.contains(&org)
                            && s.unmatched_organizations.len() < 100
                        {
                            s.unmatched_organizations.push(org);
                        }
                    }
                });
                self.caches
                    .companies
                    .put(cache_key, answer.clone(), hit, Instant::now());
                answer
            }
        };
        Ok(route(&table, organization, Some(&answer)))
    }

    /// An automatically matched company as a customer, its default contact completed with the
    /// company's primary contact where the company record names none (BMS, Autotask: one call,
    /// cached with the company). A PSA refusing that look-up costs the contact, not the ticket.
    async fn auto_customer_with_contact(
        &self,
        company: &Company,
    ) -> Result<ResolvedCustomer, DeliveryError> {
        let mut customer = auto_customer(company);
        if customer.default_contact_id.is_none() {
            customer.default_contact_id = match self.psa.primary_contact(company).await {
                Ok(found) => found.map(|c| c.id),
                Err(e) if e.is_transient() => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(connection = %self.conn.key, error = %e,
                        "primary contact lookup failed; the ticket gets no company contact");
                    None
                }
            };
        }
        Ok(customer)
    }

    /// The contact chain with the e-mail lookup cached (hits, misses and ambiguous answers).
    async fn contact(
        &self,
        customer: &ResolvedCustomer,
        event: &Event,
    ) -> Result<(Option<PsaId>, ContactSource), DeliveryError> {
        let lookup = match user_email(event.user.as_deref()) {
            None => EmailLookup::NotAnEmail,
            Some(email) => {
                if let Some(l) = self.listed_contact(&customer.company_id, &email) {
                    return Ok(self.walk_contact_chain(customer, &l));
                }
                let key = (self.conn.key.clone(), customer.company_id.clone(), email);
                match self.caches.contacts.get(&key, Instant::now()) {
                    Some(l) => l,
                    None => match self
                        .psa
                        .find_contacts_by_email(ContactEmail::new(&customer.company_id, &key.2))
                        .await
                    {
                        Ok(found) => {
                            let l = match found.as_slice() {
                                [] => EmailLookup::NotFound,
                                [one] => EmailLookup::Found(one.id.clone()),
                                _ => EmailLookup::Ambiguous,
                            };
                            let hit = matches!(l, EmailLookup::Found(_));
                            self.caches
                                .contacts
                                .put(key, l.clone(), hit, Instant::now());
                            l
                        }
                        Err(e) if e.is_transient() => return Err(e.into()),
                        // The lookup is a refinement: a PSA refusing it must not cost the
                        // ticket. Not cached, so a fixed permission is picked up at once.
                        Err(e) => {
                            tracing::warn!(connection = %self.conn.key, error = %e,
                                "contact lookup by e-mail failed; using the default contact");
                            EmailLookup::NotFound
                        }
                    },
                }
            }
        };
        Ok(self.walk_contact_chain(customer, &lookup))
    }

    /// The e-mail look-up answered from the controllers' directory of the connection when it
    /// holds a fresh, complete contact list of the company (see `listed_contacts` for the
    /// staleness bound); `None`: ask the cache and the PSA as before.
    fn listed_contact(&self, company_id: &PsaId, email: &str) -> Option<EmailLookup> {
        let current = self.conn.directory.current();
        let answer = listed_contacts(
            current.as_ref().map(|(at, dir)| (*at, dir.as_ref())),
            Instant::now(),
            DIRECTORY_TTL,
            company_id,
            email,
        );
        match answer {
            ListedContacts::AskPsa => None,
            ListedContacts::Listed(ids) => Some(match ids.as_slice() {
                [] => EmailLookup::NotFound,
                [one] => EmailLookup::Found(one.clone()),
                _ => EmailLookup::Ambiguous,
            }),
        }
    }

    /// The rest of the chain after the e-mail look-up: customer default, then catch-all.
    fn walk_contact_chain(
        &self,
        customer: &ResolvedCustomer,
        lookup: &EmailLookup,
    ) -> (Option<PsaId>, ContactSource) {
        // The catch-all contact belongs to the catch-all company: both PSAs refuse a ticket whose
        // contact is another company's, so it only completes the chain for that company.
        let catch_all_contact = self
            .conn
            .catch_all
            .as_ref()
            .filter(|c| c.company_id == customer.company_id)
            .and_then(|c| c.default_contact_id.as_ref());
        choose_contact(
            lookup,
            customer.default_contact_id.as_ref(),
            catch_all_contact,
        )
    }
}
