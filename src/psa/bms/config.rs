//! What a Kaseya BMS client is built from: site, tenant, API user, and its call budget.

use std::time::Duration;

use crate::secret::SecretString;

/// The API user's login. `Debug` never prints the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BmsCredentials {
    pub username: String,
    pub password: SecretString,
}

/// Calls allowed per endpoint. Kaseya documents 1,500 calls per hour per endpoint for API v2.
///
/// The budget is a token bucket per endpoint: `burst` calls may go at once, the rest trickle in
/// so that no rolling hour ever holds more than `calls_per_hour` calls to one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateBudget {
    pub calls_per_hour: u32,
    pub burst: u32,
    /// How long a call may wait for budget before it fails as transient (with `retry_after`).
    pub max_wait: Duration,
}

impl Default for RateBudget {
    fn default() -> Self {
        RateBudget {
            calls_per_hour: 1_500,
            burst: 100,
            max_wait: Duration::from_secs(10),
        }
    }
}

/// Names of the tenant lookup tables (`GET /v2/system/tenantlookup/{tableName}`) for the
/// picklists Kaseya's document has no dedicated path for. The document names no table; these
/// defaults are guesses kept overridable (`spec.provider.kaseyaBms.lookupTables`). A table the
/// tenant does not know is reported as `LookupUnavailable` naming it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupTables {
    pub ticket_type: String,
    pub ticket_source: String,
    pub note_type: String,
}

impl Default for LookupTables {
    fn default() -> Self {
        LookupTables {
            ticket_type: "TicketType".into(),
            ticket_source: "TicketSource".into(),
            note_type: "TicketNoteType".into(),
        }
    }
}

/// Everything [`super::BmsClient::new`] needs; reconcilers fill it from a `PsaConnection` and its
/// Secret (`username`, `password`).
#[derive(Clone, Debug)]
pub struct BmsConfig {
    /// API host, e.g. `https://api.bms.kaseya.com` (paths start with `/v2/`).
    pub url: String,
    /// The BMS tenant (company name as typed at login).
    pub tenant: String,
    pub credentials: BmsCredentials,
    pub budget: RateBudget,
    /// Per-request timeout.
    pub timeout: Duration,
    /// A token this close to its expiry is renewed before use.
    pub refresh_margin: Duration,
    pub lookup_tables: LookupTables,
}

impl BmsConfig {
    /// A configuration with the documented defaults.
    pub fn new(
        url: impl Into<String>,
        tenant: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<SecretString>,
    ) -> Self {
        BmsConfig {
            url: url.into(),
            tenant: tenant.into(),
            credentials: BmsCredentials {
                username: username.into(),
                password: password.into(),
            },
            budget: RateBudget::default(),
            timeout: crate::psa::DEFAULT_TIMEOUT,
            refresh_margin: Duration::from_secs(60),
            lookup_tables: LookupTables::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_password() {
        let c = BmsConfig::new("https://x", "Acme MSP", "api-user", "s3cr3t-pw");
        let shown = format!("{c:?}");
        assert!(shown.contains("api-user"), "{shown}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
