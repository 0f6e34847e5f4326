//! A `Psa` that only reads: `plan` and `import` talk to the PSA through it, so a bug in either
//! cannot create, change or delete anything. It also counts the calls by method, which `plan`
//! reports. Every method is forwarded, those with a default in the traits too: a default
//! would hide the client's own answer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::psa::*;

pub struct ReadOnlyPsa {
    inner: Arc<dyn Psa>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl ReadOnlyPsa {
    pub fn new(inner: Arc<dyn Psa>) -> Self {
        ReadOnlyPsa {
            inner,
            calls: Mutex::new(BTreeMap::new()),
        }
    }

    /// Reads made so far, by method.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, u64>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self, method: &'static str) -> &dyn Psa {
        *self.lock().entry(method).or_default() += 1;
        self.inner.as_ref()
    }
}

fn refused<T>(what: &str) -> PsaResult<T> {
    Err(PsaError::Permanent {
        status: None,
        message: format!("{what} refused: this command only reads from the PSA"),
    })
}

#[async_trait]
impl Psa for ReadOnlyPsa {
    fn provider(&self) -> Provider {
        self.inner.provider()
    }
    async fn verify(&self) -> PsaResult<()> {
        self.read("verify").verify().await
    }
    async fn endpoint(&self) -> Option<String> {
        self.inner.endpoint().await
    }
    async fn missing_permissions(&self, features: &[Feature]) -> PsaResult<Vec<MissingPermission>> {
        self.read("missing_permissions")
            .missing_permissions(features)
            .await
    }
}

#[async_trait]
impl TicketDesk for ReadOnlyPsa {
    async fn find_company_by_identifier(&self, identifier: &str) -> PsaResult<Option<Company>> {
        self.read("find_company_by_identifier")
            .find_company_by_identifier(identifier)
            .await
    }
    async fn find_company_by_name(&self, name: &str) -> PsaResult<Option<Company>> {
        self.read("find_company_by_name")
            .find_company_by_name(name)
            .await
    }
    async fn find_contact_by_email(
        &self,
        company_id: &PsaId,
        email: &str,
    ) -> PsaResult<Option<Contact>> {
        self.read("find_contact_by_email")
            .find_contact_by_email(company_id, email)
            .await
    }
    async fn find_contacts_by_email(
        &self,
        company_id: &PsaId,
        email: &str,
    ) -> PsaResult<Vec<Contact>> {
        self.read("find_contacts_by_email")
            .find_contacts_by_email(company_id, email)
            .await
    }
    async fn create_ticket(&self, _t: &NewTicket) -> PsaResult<Ticket> {
        refused("create_ticket")
    }
    async fn find_ticket_by_marker(&self, marker: &str) -> PsaResult<Option<Ticket>> {
        self.read("find_ticket_by_marker")
            .find_ticket_by_marker(marker)
            .await
    }
    async fn get_ticket(&self, id: &PsaId) -> PsaResult<Option<Ticket>> {
        self.read("get_ticket").get_ticket(id).await
    }
    async fn add_note(&self, _ticket_id: &PsaId, _text: &str) -> PsaResult<PsaId> {
        refused("add_note")
    }
    async fn note_texts(&self, ticket_id: &PsaId) -> PsaResult<Option<Vec<String>>> {
        self.read("note_texts").note_texts(ticket_id).await
    }
    async fn close_ticket(
        &self,
        _ticket_id: &PsaId,
        _status_id: Option<&PsaId>,
        _note: Option<&str>,
    ) -> PsaResult<()> {
        refused("close_ticket")
    }
    async fn reopen_ticket(
        &self,
        _ticket_id: &PsaId,
        _status_id: &PsaId,
        _note: &str,
    ) -> PsaResult<()> {
        refused("reopen_ticket")
    }
    async fn primary_contact(&self, company: &Company) -> PsaResult<Option<Contact>> {
        self.read("primary_contact").primary_contact(company).await
    }
}

#[async_trait]
impl Directory for ReadOnlyPsa {
    async fn invalid_type_combinations(
        &self,
        board_id: Option<&PsaId>,
        wanted: &[TypeCombination],
    ) -> PsaResult<Vec<usize>> {
        self.read("invalid_type_combinations")
            .invalid_type_combinations(board_id, wanted)
            .await
    }
    async fn get_company(&self, id: &PsaId) -> PsaResult<Option<Company>> {
        self.read("get_company").get_company(id).await
    }
    async fn list_companies(&self, filter: &CompanyFilter) -> PsaResult<Vec<Company>> {
        self.read("list_companies").list_companies(filter).await
    }
    async fn find_contact_by_name(
        &self,
        company_id: &PsaId,
        name: &str,
    ) -> PsaResult<Option<Contact>> {
        self.read("find_contact_by_name")
            .find_contact_by_name(company_id, name)
            .await
    }
    async fn contacts_of_companies(
        &self,
        company_ids: &[PsaId],
    ) -> PsaResult<Option<Vec<DirectoryContact>>> {
        self.read("contacts_of_companies")
            .contacts_of_companies(company_ids)
            .await
    }
    async fn boards(&self) -> PsaResult<Vec<Named>> {
        self.read("boards").boards().await
    }
    async fn statuses(&self, board_id: Option<&PsaId>) -> PsaResult<Vec<StatusInfo>> {
        self.read("statuses").statuses(board_id).await
    }
    async fn ticket_types(&self, board_id: Option<&PsaId>) -> PsaResult<Vec<Named>> {
        self.read("ticket_types").ticket_types(board_id).await
    }
    async fn issue_types(&self, board_id: Option<&PsaId>) -> PsaResult<Vec<Named>> {
        self.read("issue_types").issue_types(board_id).await
    }
    async fn sub_issue_types(
        &self,
        board_id: Option<&PsaId>,
        issue_type_id: &PsaId,
    ) -> PsaResult<Vec<Named>> {
        self.read("sub_issue_types")
            .sub_issue_types(board_id, issue_type_id)
            .await
    }
    async fn priorities(&self) -> PsaResult<Vec<Named>> {
        self.read("priorities").priorities().await
    }
    async fn sources(&self) -> PsaResult<Vec<Named>> {
        self.read("sources").sources().await
    }
}

#[async_trait]
impl Billing for ReadOnlyPsa {
    async fn contracts_of_companies(
        &self,
        company_ids: &[PsaId],
    ) -> PsaResult<Option<Vec<Contract>>> {
        self.read("contracts_of_companies")
            .contracts_of_companies(company_ids)
            .await
    }
    fn lists_contract_lines(&self) -> bool {
        self.inner.lists_contract_lines()
    }
    async fn find_contract(&self, company_id: &PsaId, name: &str) -> PsaResult<Option<Contract>> {
        self.read("find_contract")
            .find_contract(company_id, name)
            .await
    }
    async fn find_catalog_service(&self, name: &str) -> PsaResult<Option<CatalogService>> {
        self.read("find_catalog_service")
            .find_catalog_service(name)
            .await
    }
    async fn create_catalog_service(
        &self,
        _spec: &CatalogServiceSpec,
    ) -> PsaResult<CatalogService> {
        refused("create_catalog_service")
    }
    async fn update_catalog_service(
        &self,
        _id: &PsaId,
        _spec: &CatalogServiceSpec,
    ) -> PsaResult<CatalogService> {
        refused("update_catalog_service")
    }
    async fn delete_catalog_service(&self, _id: &PsaId) -> PsaResult<()> {
        refused("delete_catalog_service")
    }
    async fn find_contract_line(
        &self,
        contract_id: &PsaId,
        service_id: &PsaId,
    ) -> PsaResult<Option<ContractLine>> {
        self.read("find_contract_line")
            .find_contract_line(contract_id, service_id)
            .await
    }
    async fn add_contract_line(
        &self,
        _contract_id: &PsaId,
        _service_id: &PsaId,
        _values: LineValues,
    ) -> PsaResult<ContractLine> {
        refused("add_contract_line")
    }
    async fn update_contract_line(
        &self,
        _line: &ContractLine,
        _values: LineValues,
    ) -> PsaResult<LineUpdate> {
        refused("update_contract_line")
    }
    fn line_update_method(&self, line: &ContractLine, to: LineValues) -> Option<String> {
        self.inner.line_update_method(line, to)
    }
}
