//! An in-memory PSA for dispatcher tests that need faults the sandboxes cannot inject (a crash
//! right after a create, a permanent rejection of one call, ambiguous contacts). The tests about
//! seed behaviour run against the sandboxes; this fake sits below the level those tests are about.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use psa_operator::psa::*;
use tokio::sync::Notify;

#[derive(Clone, Debug, Default)]
pub struct FakeTicket {
    pub id: PsaId,
    pub new: NewTicket,
    pub closed: bool,
    pub status_id: Option<PsaId>,
    pub notes: Vec<String>,
    /// When it was closed (Unix ms), as a PSA stamps it.
    pub closed_at_ms: Option<i64>,
}

#[derive(Default)]
pub struct FakeState {
    pub companies: Vec<Company>,
    pub contacts: Vec<Contact>,
    pub tickets: BTreeMap<u64, FakeTicket>,
    pub calls: BTreeMap<&'static str, u32>,
    /// Errors returned by the next calls of a method (front first).
    pub fail_next: BTreeMap<&'static str, Vec<PsaError>>,
    /// Create the ticket, then never answer (the process "dies" mid-call).
    pub hang_after_create: bool,
    /// Add the note, then never answer.
    pub hang_after_note: bool,
    next_id: u64,
}

#[derive(Clone, Default)]
pub struct FakePsa {
    pub state: Arc<Mutex<FakeState>>,
    /// Notified when a create hangs.
    pub hung: Arc<Notify>,
}

impl FakePsa {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    pub fn add_company(
        &self,
        id: &str,
        identifier: &str,
        name: &str,
        default_contact: Option<&str>,
    ) {
        self.with(|s| {
            s.companies.push(Company {
                id: id.into(),
                identifier: identifier.into(),
                name: name.into(),
                active: true,
                default_contact_id: default_contact.map(Into::into),
                location_id: Some(format!("loc-{id}")),
                ..Default::default()
            })
        });
    }

    pub fn add_contact(&self, id: &str, company: &str, email: &str) {
        self.with(|s| {
            s.contacts.push(Contact {
                id: id.into(),
                company_id: Some(company.into()),
                first_name: id.into(),
                last_name: String::new(),
                email: Some(email.into()),
            })
        });
    }

    pub fn tickets(&self) -> Vec<FakeTicket> {
        self.with(|s| s.tickets.values().cloned().collect())
    }

    pub fn calls(&self, method: &str) -> u32 {
        self.with(|s| s.calls.get(method).copied().unwrap_or(0))
    }

    pub fn total_calls(&self) -> u32 {
        self.with(|s| s.calls.values().sum())
    }

    pub fn reset_calls(&self) {
        self.with(|s| s.calls.clear());
    }

    /// A technician closes the ticket in the PSA.
    pub fn close(&self, id: &str) {
        self.with(|s| {
            let t = s.tickets.get_mut(&id.parse().unwrap()).unwrap();
            t.closed = true;
            t.status_id = Some("tech-closed".into());
            t.closed_at_ms = Some(chrono::Utc::now().timestamp_millis());
        });
    }

    pub fn fail_next(&self, method: &'static str, errors: Vec<PsaError>) {
        self.with(|s| s.fail_next.insert(method, errors));
    }

    fn enter(&self, method: &'static str) -> PsaResult<()> {
        self.with(|s| {
            *s.calls.entry(method).or_default() += 1;
            match s.fail_next.get_mut(method) {
                Some(errs) if !errs.is_empty() => Err(errs.remove(0)),
                _ => Ok(()),
            }
        })
    }

    /// Runs `f` on ticket `ticket_id`, or answers `NotFound` as a PSA would.
    fn on_ticket<R>(
        &self,
        ticket_id: &PsaId,
        f: impl FnOnce(&mut FakeTicket) -> R,
    ) -> PsaResult<R> {
        self.with(|s| {
            let t = ticket_id
                .parse::<u64>()
                .ok()
                .and_then(|n| s.tickets.get_mut(&n));
            t.map(f).ok_or_else(|| PsaError::NotFound {
                message: format!("ticket {ticket_id}"),
            })
        })
    }

    fn view(t: &FakeTicket) -> Ticket {
        Ticket {
            id: t.id.clone(),
            summary: t.new.summary.clone(),
            company_id: Some(t.new.company_id.clone()),
            status_id: t.status_id.clone(),
            closed: t.closed,
            marker: Some(t.new.marker.clone()),
            closed_at_ms: t.closed_at_ms,
        }
    }
}

#[async_trait]
impl TicketDesk for FakePsa {
    async fn find_company_by(&self, key: CompanyKey, value: &str) -> PsaResult<Option<Company>> {
        // Counted under the names the dispatcher calls (the trait's provided methods).
        self.enter(match key {
            CompanyKey::Identifier => "find_company_by_identifier",
            CompanyKey::Name => "find_company_by_name",
        })?;
        let matches = |c: &&Company| match key {
            CompanyKey::Identifier => c.identifier.eq_ignore_ascii_case(value),
            CompanyKey::Name => c.name.eq_ignore_ascii_case(value),
        };
        Ok(self.with(|s| s.companies.iter().find(matches).cloned()))
    }
    async fn find_contact_by_email(&self, q: ContactEmail<'_>) -> PsaResult<Option<Contact>> {
        Ok(self.find_contacts_by_email(q).await?.into_iter().next())
    }
    async fn find_contacts_by_email(&self, q: ContactEmail<'_>) -> PsaResult<Vec<Contact>> {
        let ContactEmail { company_id, email } = q;
        self.enter("find_contacts_by_email")?;
        Ok(self.with(|s| {
            s.contacts
                .iter()
                .filter(|c| c.company_id.as_ref() == Some(company_id))
                .filter(|c| {
                    c.email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(email))
                })
                .cloned()
                .collect()
        }))
    }
    async fn create_ticket(&self, t: &NewTicket) -> PsaResult<Ticket> {
        self.enter("create_ticket")?;
        let (view, hang) = self.with(|s| {
            s.next_id += 1;
            let id = s.next_id;
            let ticket = FakeTicket {
                id: id.to_string(),
                new: t.clone(),
                closed: false,
                status_id: t.status_id.clone(),
                notes: vec![],
                closed_at_ms: None,
            };
            let view = Self::view(&ticket);
            s.tickets.insert(id, ticket);
            (view, s.hang_after_create)
        });
        if hang {
            self.hung.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(view)
    }
    async fn find_ticket_by_marker(&self, marker: &str) -> PsaResult<Option<Ticket>> {
        self.enter("find_ticket_by_marker")?;
        Ok(self.with(|s| {
            s.tickets
                .values()
                .find(|t| t.new.marker == marker)
                .map(Self::view)
        }))
    }
    async fn get_ticket(&self, id: &PsaId) -> PsaResult<Option<Ticket>> {
        self.enter("get_ticket")?;
        let Ok(n) = id.parse::<u64>() else {
            return Ok(None);
        };
        Ok(self.with(|s| s.tickets.get(&n).map(Self::view)))
    }
    async fn note_texts(&self, ticket_id: &PsaId) -> PsaResult<Option<Vec<String>>> {
        self.enter("note_texts")?;
        self.on_ticket(ticket_id, |t| Some(t.notes.clone()))
    }
    async fn add_note(&self, ticket_id: &PsaId, text: &str) -> PsaResult<PsaId> {
        self.enter("add_note")?;
        let r = self.on_ticket(ticket_id, |t| {
            t.notes.push(text.to_string());
            format!("{}-{}", t.id, t.notes.len())
        });
        if self.with(|s| s.hang_after_note) {
            self.hung.notify_one();
            std::future::pending::<()>().await;
        }
        r
    }
    async fn close_ticket(&self, close: CloseTicket<'_>) -> PsaResult<()> {
        self.enter("close_ticket")?;
        self.on_ticket(close.ticket_id, |t| {
            if let Some(n) = close.note {
                t.notes.push(n.to_string());
            }
            t.closed = true;
            t.status_id = close.status_id.cloned();
            t.closed_at_ms = Some(chrono::Utc::now().timestamp_millis());
        })
    }
    async fn reopen_ticket(&self, reopen: ReopenTicket<'_>) -> PsaResult<()> {
        self.enter("reopen_ticket")?;
        self.on_ticket(reopen.ticket_id, |t| {
            t.notes.push(reopen.note.to_string());
            t.closed = false;
            t.closed_at_ms = None;
            t.status_id = Some(reopen.status_id.clone());
        })
    }
}
