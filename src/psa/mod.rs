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
pub(crate) mod forward;
pub mod http;
pub mod instrumented;
pub use error::PsaError;

/// An opaque PSA id.
pub type PsaId = String;

/// Result of a PSA call.
pub type PsaResult<T> = Result<T, PsaError>;

/// Which PSA a client talks to: declared with everything each one implies in
/// `crate::providers`, the one place a new PSA is added besides its own folders and the CRD.
pub use crate::providers::Provider;

/// Case- and space-insensitive equality, for names typed by people (every provider matches
/// companies, contacts and picklist values this way).
pub fn same_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    norm(a) == norm(b)
}

/// A neutral id as the integer a PSA with numeric ids needs; otherwise a permanent error with
/// the provider's `message` (which says whose ids are numbers).
pub fn parse_numeric_id(id: &str, message: impl FnOnce() -> String) -> PsaResult<i64> {
    id.trim().parse::<i64>().map_err(|_| PsaError::Permanent {
        status: None,
        message: message(),
    })
}

/// A request budget meaning "none": the PSA documents no hourly limit and paces callers with
/// `429` + `Retry-After`, which pauses the connection (see `dispatch::budget`).
pub const UNMETERED: u32 = u32::MAX;

/// A ticket setting a PSA requires, and the PSA field it fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequiredTicketSetting {
    /// `board`, `status`, `priority`, `type` or `source` (under `spec.ticket`).
    pub setting: &'static str,
    /// The field of the PSA's ticket, as its document names it.
    pub psa_field: &'static str,
    /// Why, when the document alone does not say it (empty otherwise).
    pub note: &'static str,
}

impl RequiredTicketSetting {
    /// `setting` fills the PSA field `psa_field`; the document alone says why.
    pub const fn new(setting: &'static str, psa_field: &'static str) -> Self {
        RequiredTicketSetting {
            setting,
            psa_field,
            note: "",
        }
    }

    /// The same, with the reason the document does not give (starts with a blank).
    pub const fn because(self, note: &'static str) -> Self {
        RequiredTicketSetting { note, ..self }
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

/// The closed status to close tickets with when the settings name none: one named "Closed"
/// (or ">Closed", ConnectWise's way of sorting it last; case ignored) before any other closed
/// status, else the first closed status in the PSA's order.
pub fn preferred_closed_status(statuses: &[StatusInfo]) -> Option<&StatusInfo> {
    let named_closed = |s: &&StatusInfo| {
        s.name
            .trim()
            .trim_start_matches('>')
            .trim()
            .eq_ignore_ascii_case("closed")
    };
    let closed = || statuses.iter().filter(|s| s.closed);
    closed().find(named_closed).or_else(|| closed().next())
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

/// Which of a company's two names a look-up matches, exactly and in any case: the short
/// code ([`Company::identifier`]: ConnectWise `identifier`, BMS account code, Autotask
/// `companyNumber`) or the display name ([`Company::name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompanyKey {
    Identifier,
    Name,
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

/// A contact look-up by e-mail address among one company's contacts (the address matched
/// exactly, in any case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContactEmail<'a> {
    pub company_id: &'a PsaId,
    pub email: &'a str,
}

impl<'a> ContactEmail<'a> {
    pub fn new(company_id: &'a PsaId, email: &'a str) -> Self {
        ContactEmail { company_id, email }
    }
}

/// A contact as a batched directory listing gives it: every e-mail address it has (ConnectWise
/// contacts carry several) and whether the PSA marks it as its company's primary contact.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DirectoryContact {
    pub contact: Contact,
    /// All e-mail addresses, as the PSA spells them.
    pub emails: Vec<String>,
    /// Kaseya BMS `IsPoc`, Autotask `primaryContact`; ConnectWise says it on the company instead.
    pub primary: bool,
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

impl ContractLine {
    /// Which line this is: its contract and service.
    pub fn key(&self) -> LineKey<'_> {
        LineKey {
            contract_id: &self.contract_id,
            service_id: &self.service_id,
        }
    }
}

/// Quantity, cost and price of a contract line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineValues {
    pub quantity: i64,
    pub cost: MinorUnits,
    pub price: MinorUnits,
}

/// Which contract line: the contract and the catalog service the line bills (a contract has
/// one current line of a service, so the pair names it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineKey<'a> {
    pub contract_id: &'a PsaId,
    pub service_id: &'a PsaId,
}

impl<'a> LineKey<'a> {
    pub fn new(contract_id: &'a PsaId, service_id: &'a PsaId) -> Self {
        LineKey {
            contract_id,
            service_id,
        }
    }

    /// The line the PSA keeps under `id` with these values.
    pub fn line(self, id: PsaId, values: LineValues) -> ContractLine {
        ContractLine {
            id,
            contract_id: self.contract_id.clone(),
            service_id: self.service_id.clone(),
            quantity: values.quantity,
            cost: values.cost,
            price: values.price,
        }
    }
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

/// A ticket to close (a finding resolved, a storm window over).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseTicket<'a> {
    pub ticket_id: &'a PsaId,
    /// The closed status to set; `None`: the PSA's closed status (each provider says which).
    pub status_id: Option<&'a PsaId>,
    /// A note added with the close; none, or a blank one, adds none.
    pub note: Option<&'a str>,
}

impl<'a> CloseTicket<'a> {
    /// Closes `ticket_id` with the PSA's closed status and no note.
    pub fn new(ticket_id: &'a PsaId) -> Self {
        CloseTicket {
            ticket_id,
            status_id: None,
            note: None,
        }
    }

    /// With this closed status.
    pub fn status(self, status_id: &'a PsaId) -> Self {
        CloseTicket {
            status_id: Some(status_id),
            ..self
        }
    }

    /// With this note.
    pub fn note(self, note: &'a str) -> Self {
        CloseTicket {
            note: Some(note),
            ..self
        }
    }
}

/// A closed ticket to reopen (`lifecycle.reopenWithin`: the alert that re-occurred).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReopenTicket<'a> {
    pub ticket_id: &'a PsaId,
    /// The open status the ticket goes back to.
    pub status_id: &'a PsaId,
    /// Added as a note: why the ticket is open again.
    pub note: &'a str,
}

/// A ticket as read back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ticket {
    pub id: PsaId,
    pub summary: String,
    pub company_id: Option<PsaId>,
    pub status_id: Option<PsaId>,
    /// Whether the ticket's status counts as closed in the PSA.
    pub closed: bool,
    pub marker: Option<String>,
    /// When the PSA says the ticket was closed (Unix ms; ConnectWise `closedDate`, Kaseya BMS
    /// `CompletedDate` in the tenant's time zone, Autotask `completedDate`), whoever closed it.
    /// `None` while open, or when the PSA's answer carries no (readable) date.
    pub closed_at_ms: Option<i64>,
}

/// What the operator does in a PSA, for checking the PSA user's rights up front.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// Look up companies, contacts and ticket settings; create tickets; add notes.
    Tickets,
    /// Close tickets when a finding is resolved.
    CloseTickets,
    /// Read contracts and add or update their lines.
    Contracts,
    /// Create, update and delete catalog services.
    Catalog,
}

/// The features every connection uses (tickets, and closing them on resolve).
pub const TICKET_FEATURES: &[Feature] = &[Feature::Tickets, Feature::CloseTickets];

/// A right the PSA user lacks, named as the PSA's administration screens name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingPermission {
    pub feature: Feature,
    /// e.g. "Service Desk › Close Service Tickets › Edit level".
    pub right: String,
}

/// The `PermissionDenied` error for a set of missing rights; `None` when nothing is missing.
pub fn permission_problem(missing: &[MissingPermission]) -> Option<PsaError> {
    if missing.is_empty() {
        return None;
    }
    let mut parts: Vec<String> = Vec::new();
    let mut features: Vec<Feature> = missing.iter().map(|m| m.feature).collect();
    features.sort();
    features.dedup();
    for f in features {
        let rights: Vec<&str> = missing
            .iter()
            .filter(|m| m.feature == f)
            .map(|m| m.right.as_str())
            .collect();
        parts.push(format!("{} needs {}", feature_label(f), rights.join(", ")));
    }
    Some(PsaError::PermissionDenied {
        message: format!(
            "the credentials work, but the PSA user's role lacks rights: {}",
            parts.join("; ")
        ),
    })
}

/// What a feature is called in messages.
pub fn feature_label(feature: Feature) -> &'static str {
    match feature {
        Feature::Tickets => "creating tickets and notes",
        Feature::CloseTickets => "closing tickets",
        Feature::Contracts => "contract lines",
        Feature::Catalog => "catalog services",
    }
}

/// A ticket type / issue type / sub-issue type combination the settings use, by PSA id.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TypeCombination {
    pub type_id: Option<PsaId>,
    pub issue_type_id: Option<PsaId>,
    pub sub_issue_type_id: Option<PsaId>,
}

/// Filters for listing companies (import).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompanyFilter {
    pub company_type: Option<String>,
    pub parent_only: bool,
}

/// A PSA as each of its callers sees it. The abstraction is split by caller, so a wrapper or a
/// fake implements only what its caller uses:
///
/// * [`TicketDesk`] — the dispatcher: find an alert's company and contact, create, find and read
///   tickets, add notes, close tickets;
/// * [`Directory`] — the reconcilers, `plan` and `import`: companies, contacts by name and the
///   ticket settings (boards, statuses, types, priorities, sources);
/// * [`Billing`] — contract services and mapped contracts: contracts, the catalog, contract
///   lines;
/// * [`Psa`] — all three, plus the account: which provider, credentials, rights.
///
/// Implementations map transport and PSA failures onto [`PsaError`], keeping the PSA's message
/// and never including a secret. Each method documents the calls it costs in its provider module.
#[async_trait]
pub trait Psa: TicketDesk + Directory + Billing {
    fn provider(&self) -> Provider;

    /// Checks the credentials with one cheap authenticated call.
    async fn verify(&self) -> PsaResult<()>;

    /// The API address calls go to (for status), once known. `None` when the provider does
    /// not say.
    async fn endpoint(&self) -> Option<String> {
        None
    }

    /// The rights `features` need that the PSA user lacks, checked read-only. Providers that
    /// cannot tell answer an empty list (a missing right then shows on first use).
    async fn missing_permissions(&self, features: &[Feature]) -> PsaResult<Vec<MissingPermission>> {
        let _ = features;
        Ok(Vec::new())
    }

    /// How much of a request budget the PSA shares with the MSP's other integrations was used at
    /// the last reading (Autotask: the database's hourly threshold). `None` when the PSA has no
    /// such budget or it has not been read yet.
    fn shared_budget(&self) -> Option<SharedBudget> {
        None
    }
}

/// A reading of a request budget shared with other integrations (status and metrics).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SharedBudget {
    /// Share used (0–1, may exceed 1 when the PSA counts past its threshold).
    pub used: f64,
    /// Share from which the PSA itself slows answers down (Autotask: 50 %).
    pub slows_at: f64,
    /// Share from which this client holds its calls (Autotask: 90 % by default).
    pub held_at: f64,
    /// Requests the budget allows per hour, when the PSA says.
    pub per_hour: Option<u64>,
}

/// What the dispatcher asks of a PSA (`dispatch::budget::PsaCalls` puts the connection's
/// request budget in front of it). The reconcilers use these look-ups too, through [`Psa`].
#[async_trait]
pub trait TicketDesk: Send + Sync {
    /// The company whose `key` field is `value` (exact match, any case). Each PSA makes the
    /// same look-up on either field; only the field it filters on differs.
    async fn find_company_by(&self, key: CompanyKey, value: &str) -> PsaResult<Option<Company>>;
    async fn find_company_by_identifier(&self, identifier: &str) -> PsaResult<Option<Company>> {
        self.find_company_by(CompanyKey::Identifier, identifier)
            .await
    }
    async fn find_company_by_name(&self, name: &str) -> PsaResult<Option<Company>> {
        self.find_company_by(CompanyKey::Name, name).await
    }

    async fn find_contact_by_email(&self, q: ContactEmail<'_>) -> PsaResult<Option<Contact>>;
    /// Every contact of the company with this e-mail. More than one means the address is
    /// ambiguous and the dispatcher uses the default contact instead of guessing. The default
    /// asks `find_contact_by_email`; providers that can list all matches should override it.
    async fn find_contacts_by_email(&self, q: ContactEmail<'_>) -> PsaResult<Vec<Contact>> {
        Ok(self.find_contact_by_email(q).await?.into_iter().collect())
    }

    /// The company's primary contact, for a company that is routed to without a mapping
    /// (automatic mapping): the end of the contact chain before "no contact". The default is
    /// what the company record says (ConnectWise `defaultContact`); providers that keep the
    /// flag on the contact (BMS `IsPoc`, Autotask `primaryContact`) ask for it (1 call).
    async fn primary_contact(&self, company: &Company) -> PsaResult<Option<Contact>> {
        Ok(company.default_contact_id.as_ref().map(|id| Contact {
            id: id.clone(),
            company_id: Some(company.id.clone()),
            first_name: company.default_contact_name.clone().unwrap_or_default(),
            ..Default::default()
        }))
    }

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
    /// Closes a ticket with its status (or the PSA's closed status), adding its note when given.
    async fn close_ticket(&self, close: CloseTicket<'_>) -> PsaResult<()>;
    /// Reopens a closed ticket: its status back to the open one given, and the note added.
    async fn reopen_ticket(&self, reopen: ReopenTicket<'_>) -> PsaResult<()>;
}

/// The look-ups the reconcilers, `plan` and `import` make: companies, contacts by name, and the
/// ticket settings names resolve against.
#[async_trait]
pub trait Directory: Send + Sync {
    async fn get_company(&self, id: &PsaId) -> PsaResult<Option<Company>>;
    /// All companies (paged through), filtered.
    async fn list_companies(&self, filter: &CompanyFilter) -> PsaResult<Vec<Company>>;
    async fn find_contact_by_name(
        &self,
        company_id: &PsaId,
        name: &str,
    ) -> PsaResult<Option<Contact>>;

    /// The active contacts of these companies, every page, for the controllers' batched directory
    /// (`controller::resolve::directory`): a wave of mappings costs a few listings instead of one
    /// look-up per mapping. Providers split `company_ids` into batches their API accepts.
    /// `None`: this provider cannot list by several companies; callers look up per mapping.
    async fn contacts_of_companies(
        &self,
        company_ids: &[PsaId],
    ) -> PsaResult<Option<Vec<DirectoryContact>>> {
        let _ = company_ids;
        Ok(None)
    }

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

    /// The positions in `wanted` of combinations the board does not allow, for PSAs that
    /// restrict which sub-issue types go with which types per board (ConnectWise
    /// `typeSubTypeItemAssociations`). Other providers allow every combination.
    async fn invalid_type_combinations(
        &self,
        board_id: Option<&PsaId>,
        wanted: &[TypeCombination],
    ) -> PsaResult<Vec<usize>> {
        let _ = (board_id, wanted);
        Ok(Vec::new())
    }
}

/// What contract services and mapped contracts need: contracts, the catalog, contract lines.
#[async_trait]
pub trait Billing: Send + Sync {
    /// The company's contract with this name.
    async fn find_contract(&self, company_id: &PsaId, name: &str) -> PsaResult<Option<Contract>>;

    /// The contracts of these companies (active or not), every page, for the batched directory.
    /// `None`: not listable by several companies; callers use [`Psa::find_contract`] per mapping.
    async fn contracts_of_companies(
        &self,
        company_ids: &[PsaId],
    ) -> PsaResult<Option<Vec<Contract>>> {
        let _ = company_ids;
        Ok(None)
    }

    async fn find_catalog_service(&self, name: &str) -> PsaResult<Option<CatalogService>>;
    async fn create_catalog_service(&self, spec: &CatalogServiceSpec) -> PsaResult<CatalogService>;
    async fn update_catalog_service(
        &self,
        id: &PsaId,
        spec: &CatalogServiceSpec,
    ) -> PsaResult<CatalogService>;
    /// Deletes (or deactivates, where the PSA cannot delete) a catalog service.
    async fn delete_catalog_service(&self, id: &PsaId) -> PsaResult<()>;

    /// Whether the line [`Billing::find_contract_line`] returns carries the line's real quantity.
    /// Every provider finds the line itself in the PSA (ConnectWise and Autotask read it whole;
    /// Kaseya BMS through `relatedservices/search`, which shows id, cost and price). `false`
    /// where the PSA has no call that reads a line's units (Kaseya BMS API v2): the quantity
    /// returned is only what this client instance wrote (0 otherwise), so callers keep the
    /// quantity they wrote in durable status and plan against it after a restart
    /// (`controller::resolve::line_memory`), and a line nobody remembers is adopted.
    fn lists_contract_lines(&self) -> bool {
        true
    }

    /// How this PSA carries out [`Psa::update_contract_line`] from `line` to `to`, in words, for
    /// `plan`; `None` when it is a plain update in place. Kaseya BMS cannot change a line's
    /// units: it adds a line and ends the old one.
    fn line_update_method(&self, line: &ContractLine, to: LineValues) -> Option<String> {
        let _ = (line, to);
        None
    }

    async fn find_contract_line(&self, key: LineKey<'_>) -> PsaResult<Option<ContractLine>>;
    async fn add_contract_line(
        &self,
        key: LineKey<'_>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolved::DispatchConfig;

    #[test]
    fn autotask_keeps_to_half_its_database_on_both_guards() {
        let db = autotask::limits::DATABASE_REQUESTS_PER_HOUR;
        assert_eq!(
            autotask::AutotaskLimits::default().requests_per_hour,
            db / 2
        );
        assert_eq!(Provider::Autotask.default_requests_per_hour(), db / 2);
    }

    #[test]
    fn the_default_budget_follows_each_psa() {
        let table = [
            (Some(Provider::ConnectWise), UNMETERED, None),
            (Some(Provider::KaseyaBms), 1500, Some(1500)),
            // Half the Autotask database's 10,000 an hour: the rest is the other integrations'.
            (Some(Provider::Autotask), 5000, Some(5000)),
            (None, 1500, Some(1500)),
        ];
        for (provider, per_hour, shown) in table {
            let cfg = DispatchConfig::for_provider(provider);
            assert_eq!(cfg.requests_per_hour, per_hour, "{provider:?}");
            assert_eq!(cfg.shown_requests_per_hour(), shown, "{provider:?}");
            assert_eq!(cfg.max_attempts, DispatchConfig::default().max_attempts);
        }
    }

    #[test]
    fn a_line_is_named_by_its_contract_and_service() {
        let (contract, service) = ("3".to_string(), "5".to_string());
        let line = ContractLine {
            id: "9".into(),
            contract_id: contract.clone(),
            service_id: service.clone(),
            quantity: 4,
            cost: 10_000,
            price: 25_000,
        };
        assert_eq!(line.key(), LineKey::new(&contract, &service));
        let values = LineValues {
            quantity: 4,
            cost: 10_000,
            price: 25_000,
        };
        assert_eq!(line.key().line("9".into(), values), line);
    }

    #[test]
    fn a_close_says_only_the_status_and_note_it_is_given() {
        let (ticket, status) = ("7".to_string(), "42".to_string());
        let bare = CloseTicket::new(&ticket);
        assert_eq!((bare.status_id, bare.note), (None, None));
        let full = bare.status(&status).note("resolved");
        assert_eq!(full.ticket_id, &ticket);
        assert_eq!(
            (full.status_id, full.note),
            (Some(&status), Some("resolved"))
        );
    }

    #[test]
    fn missing_rights_become_one_permission_error_grouped_by_feature() {
        assert_eq!(permission_problem(&[]), None);
        let m = |feature, right: &str| MissingPermission {
            feature,
            right: right.into(),
        };
        let e = permission_problem(&[
            m(
                Feature::CloseTickets,
                "Service Desk › Close Service Tickets › Edit level",
            ),
            m(
                Feature::Tickets,
                "Service Desk › Service Tickets › Add level",
            ),
            m(Feature::Tickets, "System › Table Setup › Inquire level"),
        ])
        .unwrap();
        assert_eq!(e.reason(), "PermissionDenied");
        assert_eq!(
            e.to_string(),
            "the PSA denied permission: the credentials work, but the PSA user's role lacks \
             rights: creating tickets and notes needs Service Desk › Service Tickets › Add level, \
             System › Table Setup › Inquire level; closing tickets needs Service Desk › Close \
             Service Tickets › Edit level"
        );
    }
}
