//! The provider-neutral `Psa` trait and the types reconcilers and the dispatcher use.
//!
//! Each PSA lives in its own module (`connectwise`, `bms`, `autotask`) with its own wire structs; nothing
//! here knows a provider's JSON. Ids are kept as opaque strings (both PSAs use integers today,
//! but neither the controllers nor the store should care).
//!
//! Name mapping between the seeds and the providers:
//! | neutral          | ConnectWise PSA          | Kaseya BMS            | Autotask              |
//! |------------------|--------------------------|-----------------------|-----------------------|
//! | board            | service board            | queue                 | queue (`queueID`)     |
//! | ticket type      | type (per board)         | ticket type           | `ticketType`          |
//! | issue type       | subtype (per board)      | issue type            | `issueType`           |
//! | sub-issue type   | item (per board)         | sub-issue type        | `subIssueType`        |
//! | contract         | agreement                | contract              | contract              |
//! | catalog service  | catalog item (product)   | service               | service               |
//! | contract line    | agreement addition       | contract service line | contract service      |

use std::time::Duration;

use async_trait::async_trait;

pub mod autotask;
pub mod bms;
pub mod connectwise;
pub mod error;
pub mod instrumented;
pub use error::PsaError;

/// An opaque PSA id.
pub type PsaId = String;

/// Result of a PSA call.
pub type PsaResult<T> = Result<T, PsaError>;

/// Which PSA a client talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    ConnectWise,
    KaseyaBms,
    Autotask,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::ConnectWise => "ConnectWise",
            Provider::KaseyaBms => "KaseyaBMS",
            Provider::Autotask => "Autotask",
        }
    }
}

/// Anything with an id and a display name (board, type, priority, source, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub id: PsaId,
    pub name: String,
}

impl Named {
    /// A list of `(id, name)` pairs as `Named` entries (table tests of name resolution).
    pub fn list(pairs: &[(&str, &str)]) -> Vec<Named> {
        pairs
            .iter()
            .map(|(id, name)| Named {
                id: id.to_string(),
                name: name.to_string(),
            })
            .collect()
    }
}

/// A ticket status and whether the PSA treats it as closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusInfo {
    pub id: PsaId,
    pub name: String,
    pub closed: bool,
}

/// A PSA company (ConnectWise company, BMS account).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Company {
    pub id: PsaId,
    /// ConnectWise `identifier`; BMS account code.
    pub identifier: String,
    pub name: String,
    /// Company / account type name, when the PSA has one.
    pub company_type: Option<String>,
    /// Parent company id, when the company is a child.
    pub parent_id: Option<PsaId>,
    /// Deleted/inactive companies are reported as `false`.
    pub active: bool,
    /// The company's default contact, when the PSA records one.
    pub default_contact_id: Option<PsaId>,
    /// That contact's display name, when the PSA sends it with the company (ConnectWise does).
    pub default_contact_name: Option<String>,
    /// BMS: the main location (tickets need one). ConnectWise: the default site.
    pub location_id: Option<PsaId>,
}

/// A contact of a company.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Contact {
    pub id: PsaId,
    pub company_id: Option<PsaId>,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
}

impl Contact {
    /// "First Last", trimmed.
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_string()
    }
}

/// A contract (ConnectWise agreement, BMS contract).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contract {
    pub id: PsaId,
    pub company_id: PsaId,
    pub name: String,
    pub active: bool,
}

/// Money in ten-thousandths (see `api::common::parse_decimal_4`), exact.
pub type MinorUnits = i64;

/// A service in the PSA catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogService {
    pub id: PsaId,
    pub name: String,
    pub description: String,
    pub cost: MinorUnits,
    pub price: MinorUnits,
}

/// What to create or update in the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogServiceSpec {
    pub name: String,
    pub description: String,
    pub cost: MinorUnits,
    pub price: MinorUnits,
}

/// A recurring line of a catalog service on a contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContractLine {
    pub id: PsaId,
    pub contract_id: PsaId,
    pub service_id: PsaId,
    pub quantity: i64,
    pub cost: MinorUnits,
    pub price: MinorUnits,
}

/// Quantity, cost and price of a contract line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineValues {
    pub quantity: i64,
    pub cost: MinorUnits,
    pub price: MinorUnits,
}

/// How an existing contract line was brought to the wanted values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineUpdate {
    /// Updated in place.
    Updated(ContractLine),
    /// The PSA cannot update the line in place: it was replaced (e.g. ended and re-added).
    /// The message says what was done, for status.
    Replaced { line: ContractLine, note: String },
}

impl LineUpdate {
    pub fn line(&self) -> &ContractLine {
        match self {
            LineUpdate::Updated(l) | LineUpdate::Replaced { line: l, .. } => l,
        }
    }
}

/// A ticket to create. Unset ids mean "do not set" (the PSA's default applies).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NewTicket {
    /// Our idempotency marker (ConnectWise `externalXRef`, BMS reference number field).
    /// A create that may have happened is looked up by it before creating again.
    pub marker: String,
    pub summary: String,
    pub description: String,
    pub company_id: PsaId,
    pub contact_id: Option<PsaId>,
    /// BMS: the company's location (required there). ConnectWise: site.
    pub location_id: Option<PsaId>,
    pub board_id: Option<PsaId>,
    pub status_id: Option<PsaId>,
    pub type_id: Option<PsaId>,
    pub issue_type_id: Option<PsaId>,
    pub sub_issue_type_id: Option<PsaId>,
    pub priority_id: Option<PsaId>,
    pub source_id: Option<PsaId>,
    pub contract_id: Option<PsaId>,
}

/// A ticket as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub id: PsaId,
    pub summary: String,
    pub company_id: Option<PsaId>,
    pub status_id: Option<PsaId>,
    /// Whether the ticket's status counts as closed in the PSA.
    pub closed: bool,
    pub marker: Option<String>,
}

/// Filters for listing companies (import).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompanyFilter {
    pub company_type: Option<String>,
    pub parent_only: bool,
}

/// Everything the reconcilers and the dispatcher need from a PSA.
///
/// Implementations map transport and PSA failures onto [`PsaError`], keeping the PSA's message
/// and never including a secret. Each method documents the calls it costs in its provider module.
#[async_trait]
pub trait Psa: Send + Sync {
    fn provider(&self) -> Provider;

    /// Checks the credentials with one cheap authenticated call.
    async fn verify(&self) -> PsaResult<()>;

    async fn find_company_by_identifier(&self, identifier: &str) -> PsaResult<Option<Company>>;
    async fn find_company_by_name(&self, name: &str) -> PsaResult<Option<Company>>;
    async fn get_company(&self, id: &PsaId) -> PsaResult<Option<Company>>;
    /// All companies (paged through), filtered.
    async fn list_companies(&self, filter: &CompanyFilter) -> PsaResult<Vec<Company>>;

    async fn find_contact_by_email(
        &self,
        company_id: &PsaId,
        email: &str,
    ) -> PsaResult<Option<Contact>>;
    /// Every contact of the company with this e-mail. More than one means the address is
    /// ambiguous and the dispatcher uses the default contact instead of guessing. The default
    /// asks `find_contact_by_email`; providers that can list all matches should override it.
    async fn find_contacts_by_email(
        &self,
        company_id: &PsaId,
        email: &str,
    ) -> PsaResult<Vec<Contact>> {
        Ok(self
            .find_contact_by_email(company_id, email)
            .await?
            .into_iter()
            .collect())
    }
    async fn find_contact_by_name(
        &self,
        company_id: &PsaId,
        name: &str,
    ) -> PsaResult<Option<Contact>>;

    /// Service boards / queues.
    async fn boards(&self) -> PsaResult<Vec<Named>>;
    /// Statuses (of a board where the PSA scopes them so).
    async fn statuses(&self, board_id: Option<&PsaId>) -> PsaResult<Vec<StatusInfo>>;
    /// Ticket types.
    async fn ticket_types(&self, board_id: Option<&PsaId>) -> PsaResult<Vec<Named>>;
    /// Issue types (ConnectWise subtypes).
    async fn issue_types(&self, board_id: Option<&PsaId>) -> PsaResult<Vec<Named>>;
    /// Sub-issue types of an issue type (ConnectWise items).
    async fn sub_issue_types(
        &self,
        board_id: Option<&PsaId>,
        issue_type_id: &PsaId,
    ) -> PsaResult<Vec<Named>>;
    async fn priorities(&self) -> PsaResult<Vec<Named>>;
    async fn sources(&self) -> PsaResult<Vec<Named>>;

    /// Creates a ticket carrying `t.marker`.
    async fn create_ticket(&self, t: &NewTicket) -> PsaResult<Ticket>;
    /// Finds a ticket by our marker (for idempotent create after a crash or a timeout).
    async fn find_ticket_by_marker(&self, marker: &str) -> PsaResult<Option<Ticket>>;
    /// Reads a ticket; `None` when it was deleted.
    async fn get_ticket(&self, id: &PsaId) -> PsaResult<Option<Ticket>>;
    /// Adds a note to a ticket and returns the note id.
    async fn add_note(&self, ticket_id: &PsaId, text: &str) -> PsaResult<PsaId>;
    /// The texts of a ticket's notes, oldest first. The dispatcher reads them only when an
    /// earlier attempt at a note may have reached the PSA (a crash or a timeout after the PSA
    /// stored it), to add the note once. `None` = this provider cannot list notes; the note is
    /// then added again (at least once).
    async fn note_texts(&self, ticket_id: &PsaId) -> PsaResult<Option<Vec<String>>> {
        let _ = ticket_id;
        Ok(None)
    }
    /// Closes a ticket with `status_id` (or the PSA's closed status), adding `note` when given.
    async fn close_ticket(
        &self,
        ticket_id: &PsaId,
        status_id: Option<&PsaId>,
        note: Option<&str>,
    ) -> PsaResult<()>;

    /// The company's contract with this name.
    async fn find_contract(&self, company_id: &PsaId, name: &str) -> PsaResult<Option<Contract>>;

    async fn find_catalog_service(&self, name: &str) -> PsaResult<Option<CatalogService>>;
    async fn create_catalog_service(&self, spec: &CatalogServiceSpec) -> PsaResult<CatalogService>;
    async fn update_catalog_service(
        &self,
        id: &PsaId,
        spec: &CatalogServiceSpec,
    ) -> PsaResult<CatalogService>;
    /// Deletes (or deactivates, where the PSA cannot delete) a catalog service.
    async fn delete_catalog_service(&self, id: &PsaId) -> PsaResult<()>;

    /// Whether [`Psa::find_contract_line`] reads the PSA. `false` where the PSA has no call that
    /// lists a contract's lines (Kaseya BMS API v2): there it only sees lines this client instance
    /// added, so callers keep the line they got back (id and values) in durable status and pass
    /// it to [`Psa::update_contract_line`] after a restart instead of adding a second line.
    fn lists_contract_lines(&self) -> bool {
        true
    }

    async fn find_contract_line(
        &self,
        contract_id: &PsaId,
        service_id: &PsaId,
    ) -> PsaResult<Option<ContractLine>>;
    async fn add_contract_line(
        &self,
        contract_id: &PsaId,
        service_id: &PsaId,
        values: LineValues,
    ) -> PsaResult<ContractLine>;
    async fn update_contract_line(
        &self,
        line: &ContractLine,
        values: LineValues,
    ) -> PsaResult<LineUpdate>;
}

/// Default request timeout of the PSA clients.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
