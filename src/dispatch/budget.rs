//! The per-connection PSA request budget (`dispatch.requestsPerHour`) and 429 pauses.
//!
//! Every PSA call the dispatcher makes for a connection first takes a token from the
//! connection's limiter (governor, GCRA). The burst is a twentieth of the hourly budget (three
//! minutes' worth), so a storm of alerts cannot spend the hour's budget in its first second and
//! then starve everything else; over any hour at most about 105% of the budget is spent. A PSA
//! answer with `Retry-After` pauses all calls of the connection until then.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

use async_trait::async_trait;

use crate::psa::{Company, Contact, NewTicket, PsaError, PsaId, PsaResult, Ticket, TicketDesk};

pub struct Budget {
    per_hour: u32,
    limiter: DefaultDirectRateLimiter,
    paused_until: Mutex<Option<Instant>>,
}

impl Budget {
    pub fn new(per_hour: u32) -> Self {
        let rate = NonZeroU32::new(per_hour.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new((per_hour / 20).max(1)).unwrap_or(NonZeroU32::MIN);
        Budget {
            per_hour,
            limiter: RateLimiter::direct(Quota::per_hour(rate).allow_burst(burst)),
            paused_until: Mutex::new(None),
        }
    }

    pub fn per_hour(&self) -> u32 {
        self.per_hour
    }

    /// Waits for a pause to end and for a token.
    pub async fn acquire(&self) {
        while let Some(until) = self.paused_until() {
            tokio::time::sleep_until(until).await;
        }
        self.limiter.until_ready().await;
    }

    /// Pauses every call of the connection for `d` (a PSA `Retry-After`); a longer pause wins.
    pub fn pause_for(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut p = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_none_or(|cur| cur < until) {
            *p = Some(until);
        }
    }

    /// The end of the current pause, if one is running.
    pub fn paused_until(&self) -> Option<Instant> {
        let mut p = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        match *p {
            Some(until) if until > Instant::now() => Some(until),
            _ => {
                *p = None;
                None
            }
        }
    }
}

/// The PSA of one connection as the worker uses it: every call waits for the budget, is
/// counted (PSA calls per event), and a `Retry-After` in an error pauses the connection.
#[derive(Clone)]
pub struct PsaCalls {
    psa: Arc<dyn TicketDesk>,
    budget: Arc<Budget>,
    calls: Arc<AtomicU32>,
}

impl PsaCalls {
    pub fn new(psa: Arc<dyn TicketDesk>, budget: Arc<Budget>) -> Self {
        PsaCalls {
            psa,
            budget,
            calls: Arc::new(AtomicU32::new(0)),
        }
    }

    /// Calls made through this handle so far.
    pub fn count(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    async fn call<T>(&self, fut: impl std::future::Future<Output = PsaResult<T>>) -> PsaResult<T> {
        self.budget.acquire().await;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let r = fut.await;
        if let Err(e) = &r {
            if let Some(ra) = e.retry_after() {
                self.budget.pause_for(ra);
            }
        }
        r
    }
}

/// The dispatcher's PSA: the [`TicketDesk`] calls, each behind the connection's budget.
#[async_trait]
impl TicketDesk for PsaCalls {
    async fn find_company_by_identifier(&self, identifier: &str) -> PsaResult<Option<Company>> {
        self.call(self.psa.find_company_by_identifier(identifier))
            .await
    }

    async fn find_company_by_name(&self, name: &str) -> PsaResult<Option<Company>> {
        self.call(self.psa.find_company_by_name(name)).await
    }

    async fn find_contact_by_email(
        &self,
        company_id: &PsaId,
        email: &str,
    ) -> PsaResult<Option<Contact>> {
        self.call(self.psa.find_contact_by_email(company_id, email))
            .await
    }

    async fn find_contacts_by_email(
        &self,
        company_id: &PsaId,
        email: &str,
    ) -> PsaResult<Vec<Contact>> {
        self.call(self.psa.find_contacts_by_email(company_id, email))
            .await
    }

    async fn create_ticket(&self, t: &NewTicket) -> PsaResult<Ticket> {
        self.call(self.psa.create_ticket(t)).await
    }

    async fn find_ticket_by_marker(&self, marker: &str) -> PsaResult<Option<Ticket>> {
        self.call(self.psa.find_ticket_by_marker(marker)).await
    }

    async fn get_ticket(&self, id: &PsaId) -> PsaResult<Option<Ticket>> {
        self.call(self.psa.get_ticket(id)).await
    }

    async fn add_note(&self, ticket_id: &PsaId, text: &str) -> PsaResult<PsaId> {
        self.call(self.psa.add_note(ticket_id, text)).await
    }

    async fn note_texts(&self, ticket_id: &PsaId) -> PsaResult<Option<Vec<String>>> {
        self.call(self.psa.note_texts(ticket_id)).await
    }

    async fn close_ticket(
        &self,
        ticket_id: &PsaId,
        status_id: Option<&PsaId>,
        note: Option<&str>,
    ) -> PsaResult<()> {
        self.call(self.psa.close_ticket(ticket_id, status_id, note))
            .await
    }

    async fn reopen_ticket(
        &self,
        ticket_id: &PsaId,
        status_id: &PsaId,
        note: &str,
    ) -> PsaResult<()> {
        self.call(self.psa.reopen_ticket(ticket_id, status_id, note))
            .await
    }

    /// The company's primary contact (at most one call; see `Psa::primary_contact`).
    async fn primary_contact(&self, company: &Company) -> PsaResult<Option<Contact>> {
        self.call(self.psa.primary_contact(company)).await
    }
}

/// A failed PSA call that should not count against the event (the budget was the problem).
pub fn is_rate_limited(e: &PsaError) -> bool {
    matches!(
        e,
        PsaError::Transient {
            status: Some(429),
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pause_holds_calls_until_retry_after() {
        let b = Budget::new(1_000_000);
        b.acquire().await;
        b.pause_for(Duration::from_secs(7));
        b.pause_for(Duration::from_secs(2)); // a shorter pause does not shorten the running one
        let start = Instant::now();
        b.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(7));
        assert!(b.paused_until().is_none());
    }

    #[test]
    fn burst_is_a_twentieth_of_the_hour() {
        let b = Budget::new(1500);
        let mut granted = 0;
        while b.limiter.check().is_ok() && granted < 1000 {
            granted += 1;
        }
        assert_eq!(granted, 75);
        let tiny = Budget::new(1);
        assert!(tiny.limiter.check().is_ok());
        assert!(tiny.limiter.check().is_err());
    }
}
