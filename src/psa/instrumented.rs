//! A `Psa` wrapper that counts every call by provider, method and outcome (Prometheus), so
//! `/metrics` shows PSA calls per route whichever client sits underneath.

use std::sync::Arc;

use async_trait::async_trait;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::*;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub provider: String,
    pub method: String,
    /// ok | transient | auth | not_found | permanent
    pub outcome: String,
}

/// Counter family shared by every instrumented client.
#[derive(Clone, Default)]
pub struct PsaCallMetrics {
    pub calls: Family<CallLabels, Counter>,
}

impl PsaCallMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = PsaCallMetrics::default();
        registry.register(
            "psa_operator_psa_calls",
            "PSA client calls by provider, method and outcome",
            m.calls.clone(),
        );
        m
    }
}

pub struct InstrumentedPsa {
    inner: Arc<dyn Psa>,
    metrics: PsaCallMetrics,
}

impl InstrumentedPsa {
    pub fn wrap(inner: Arc<dyn Psa>, metrics: PsaCallMetrics) -> Arc<dyn Psa> {
        Arc::new(InstrumentedPsa { inner, metrics })
    }

    fn count<T>(&self, method: &str, r: PsaResult<T>) -> PsaResult<T> {
        let outcome = match &r {
            Ok(_) => "ok",
            Err(PsaError::Transient { .. }) => "transient",
            Err(PsaError::Auth { .. }) => "auth",
            Err(PsaError::PermissionDenied { .. }) => "permission_denied",
            Err(PsaError::NotFound { .. }) => "not_found",
            Err(PsaError::Permanent { .. }) | Err(PsaError::LookupUnavailable { .. }) => {
                "permanent"
            }
        };
        self.metrics
            .calls
            .get_or_create(&CallLabels {
                provider: self.inner.provider().as_str().to_string(),
                method: method.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        r
    }
}

#[async_trait]
impl Psa for InstrumentedPsa {
    fn provider(&self) -> Provider {
        self.inner.provider()
    }
    async fn verify(&self) -> PsaResult<()> {
        self.count("verify", self.inner.verify().await)
    }
    async fn endpoint(&self) -> Option<String> {
        self.inner.endpoint().await
    }
    async fn missing_permissions(&self, features: &[Feature]) -> PsaResult<Vec<MissingPermission>> {
        self.count(
            "missing_permissions",
            self.inner.missing_permissions(features).await,
        )
    }
    fn shared_budget(&self) -> Option<SharedBudget> {
        self.inner.shared_budget()
    }
}

#[async_trait]
impl TicketDesk for InstrumentedPsa {
    async fn find_company_by_identifier(&self, identifier: &str) -> PsaResult<Option<Company>> {
        self.count(
            "find_company_by_identifier",
            self.inner.find_company_by_identifier(identifier).await,
        )
    }
    async fn find_company_by_name(&self, name: &str) -> PsaResult<Option<Company>> {
        self.count(
            "find_company_by_name",
            self.inner.find_company_by_name(name).await,
        )
    }
    async fn find_contact_by_email(
        &self,
        company_id: &PsaId,
        email: &str,
    ) -> PsaResult<Option<Contact>> {
        self.count(
            "find_contact_by_email",
            self.inner.find_contact_by_email(company_id, email).await,
        )
    }
    async fn find_contacts_by_email(
        &self,
        company_id: &PsaId,
        email: &str,
    ) -> PsaResult<Vec<Contact>> {
        self.count(
            "find_contacts_by_email",
            self.inner.find_contacts_by_email(company_id, email).await,
        )
    }
    async fn create_ticket(&self, t: &NewTicket) -> PsaResult<Ticket> {
        self.count("create_ticket", self.inner.create_ticket(t).await)
    }
    async fn find_ticket_by_marker(&self, marker: &str) -> PsaResult<Option<Ticket>> {
        self.count(
            "find_ticket_by_marker",
            self.inner.find_ticket_by_marker(marker).await,
        )
    }
    async fn get_ticket(&self, id: &PsaId) -> PsaResult<Option<Ticket>> {
        self.count("get_ticket", self.inner.get_ticket(id).await)
    }
    async fn add_note(&self, ticket_id: &PsaId, text: &str) -> PsaResult<PsaId> {
        self.count("add_note", self.inner.add_note(ticket_id, text).await)
    }
    // Capabilities with a default in the trait must be forwarded too: the default would hide
    // the client's own answer (a re-claimed note added twice, a BMS contract line doubled).
    async fn note_texts(&self, ticket_id: &PsaId) -> PsaResult<Option<Vec<String>>> {
        self.count("note_texts", self.inner.note_texts(ticket_id).await)
    }
    async fn close_ticket(
        &self,
        ticket_id: &PsaId,
        status_id: Option<&PsaId>,
        note: Option<&str>,
    ) -> PsaResult<()> {
        self.count(
            "close_ticket",
            self.inner.close_ticket(ticket_id, status_id, note).await,
        )
    }
    async fn reopen_ticket(
        &self,
        ticket_id: &PsaId,
        status_id: &PsaId,
        note: &str,
    ) -> PsaResult<()> {
        self.count(
            "reopen_ticket",
            self.inner.reopen_ticket(ticket_id, status_id, note).await,
        )
    }
    async fn primary_contact(&self, company: &Company) -> PsaResult<Option<Contact>> {
        self.count("primary_contact", self.inner.primary_contact(company).await)
    }
}

#[async_trait]
impl Directory for InstrumentedPsa {
    async fn invalid_type_combinations(
        &self,
        board_id: Option<&PsaId>,
        wanted: &[TypeCombination],
    ) -> PsaResult<Vec<usize>> {
        self.count(
            "invalid_type_combinations",
            self.inner.invalid_type_combinations(board_id, wanted).await,
        )
    }
    async fn get_company(&self, id: &PsaId) -> PsaResult<Option<Company>> {
        self.count("get_company", self.inner.get_company(id).await)
    }
    async fn list_companies(&self, filter: &CompanyFilter) -> PsaResult<Vec<Company>> {
        self.count("list_companies", self.inner.list_companies(filter).await)
    }
    async fn find_contact_by_name(
        &self,
        company_id: &PsaId,
        name: &str,
    ) -> PsaResult<Option<Contact>> {
        self.count(
            "find_contact_by_name",
            self.inner.find_contact_by_name(company_id, name).await,
        )
    }
    async fn boards(&self) -> PsaResult<Vec<Named>> {
        self.count("boards", self.inner.boards().await)
    }
    async fn statuses(&self, board_id: Option<&PsaId>) -> PsaResult<Vec<StatusInfo>> {
        self.count("statuses", self.inner.statuses(board_id).await)
    }
    async fn ticket_types(&self, board_id: Option<&PsaId>) -> PsaResult<Vec<Named>> {
        self.count("ticket_types", self.inner.ticket_types(board_id).await)
    }
    async fn issue_types(&self, board_id: Option<&PsaId>) -> PsaResult<Vec<Named>> {
        self.count("issue_types", self.inner.issue_types(board_id).await)
    }
    async fn sub_issue_types(
        &self,
        board_id: Option<&PsaId>,
        issue_type_id: &PsaId,
    ) -> PsaResult<Vec<Named>> {
        self.count(
            "sub_issue_types",
            self.inner.sub_issue_types(board_id, issue_type_id).await,
        )
    }
    async fn priorities(&self) -> PsaResult<Vec<Named>> {
        self.count("priorities", self.inner.priorities().await)
    }
    async fn sources(&self) -> PsaResult<Vec<Named>> {
        self.count("sources", self.inner.sources().await)
    }
    async fn contacts_of_companies(
        &self,
        company_ids: &[PsaId],
    ) -> PsaResult<Option<Vec<DirectoryContact>>> {
        self.count(
            "contacts_of_companies",
            self.inner.contacts_of_companies(company_ids).await,
        )
    }
}

#[async_trait]
impl Billing for InstrumentedPsa {
    fn lists_contract_lines(&self) -> bool {
        self.inner.lists_contract_lines()
    }
    async fn find_contract(&self, company_id: &PsaId, name: &str) -> PsaResult<Option<Contract>> {
        self.count(
            "find_contract",
            self.inner.find_contract(company_id, name).await,
        )
    }
    async fn find_catalog_service(&self, name: &str) -> PsaResult<Option<CatalogService>> {
        self.count(
            "find_catalog_service",
            self.inner.find_catalog_service(name).await,
        )
    }
    async fn create_catalog_service(&self, spec: &CatalogServiceSpec) -> PsaResult<CatalogService> {
        self.count(
            "create_catalog_service",
            self.inner.create_catalog_service(spec).await,
        )
    }
    async fn update_catalog_service(
        &self,
        id: &PsaId,
        spec: &CatalogServiceSpec,
    ) -> PsaResult<CatalogService> {
        self.count(
            "update_catalog_service",
            self.inner.update_catalog_service(id, spec).await,
        )
    }
    async fn delete_catalog_service(&self, id: &PsaId) -> PsaResult<()> {
        self.count(
            "delete_catalog_service",
            self.inner.delete_catalog_service(id).await,
        )
    }
    async fn find_contract_line(
        &self,
        contract_id: &PsaId,
        service_id: &PsaId,
    ) -> PsaResult<Option<ContractLine>> {
        self.count(
            "find_contract_line",
            self.inner.find_contract_line(contract_id, service_id).await,
        )
    }
    async fn add_contract_line(
        &self,
        contract_id: &PsaId,
        service_id: &PsaId,
        values: LineValues,
    ) -> PsaResult<ContractLine> {
        self.count(
            "add_contract_line",
            self.inner
                .add_contract_line(contract_id, service_id, values)
                .await,
        )
    }
    async fn update_contract_line(
        &self,
        line: &ContractLine,
        values: LineValues,
    ) -> PsaResult<LineUpdate> {
        self.count(
            "update_contract_line",
            self.inner.update_contract_line(line, values).await,
        )
    }
    async fn contracts_of_companies(
        &self,
        company_ids: &[PsaId],
    ) -> PsaResult<Option<Vec<Contract>>> {
        self.count(
            "contracts_of_companies",
            self.inner.contracts_of_companies(company_ids).await,
        )
    }
    fn line_update_method(&self, line: &ContractLine, to: LineValues) -> Option<String> {
        self.inner.line_update_method(line, to)
    }
}
