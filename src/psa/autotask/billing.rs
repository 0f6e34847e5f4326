//! Contracts, the `Services` catalog, and user counts on a contract: one `ContractServices`
//! row per service (never a second one), its units changed only by `ContractServiceAdjustments`
//! (create-only) by the difference from the units in force today, as `ContractServiceUnits`
//! (read-only) reports them.

use chrono::Utc;
use reqwest::Method;
use serde_json::{json, Value};

use super::convert::{self, eq, money_to_wire, num_id, same_name};
use super::transport::decode;
use super::wire::{
    WBillingCode, WContract, WContractService, WContractServiceUnit, WOperation, WService,
};
use super::AutotaskClient;
use crate::psa::Billing;
use crate::psa::{
    CatalogService, CatalogServiceSpec, Contract, ContractLine, LineKey, LineUpdate, LineValues,
    PsaError, PsaId, PsaResult,
};
use async_trait::async_trait;

/// Contract `status` 1 = active.
const CONTRACT_ACTIVE: i64 = 1;

/// Midnight UTC today: the effective date of our adjustments.
fn today_midnight() -> String {
    Utc::now().format("%Y-%m-%dT00:00:00Z").to_string()
}

impl AutotaskClient {
    /// 1 call: `POST /V1.0/Contracts/query` on the company and `contractName`; an active
    /// contract wins over an inactive one of the same name.
    pub(super) async fn contract_named(
        &self,
        company_id: &PsaId,
        name: &str,
    ) -> PsaResult<Option<Contract>> {
        let company = num_id("company", company_id)?;
        let rows: Vec<WContract> = self
            .t
            .query(
                "Contracts",
                vec![eq("companyID", company), eq("contractName", name.trim())],
                None,
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter(|c| {
                c.contract_name
                    .as_deref()
                    .is_some_and(|n| same_name(n, name))
            })
            .max_by_key(|c| c.status == Some(CONTRACT_ACTIVE))
            .map(|c| Contract {
                id: c.id.to_string(),
                company_id: c
                    .company_id
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| company_id.clone()),
                name: c.contract_name.unwrap_or_default(),
                active: c.status == Some(CONTRACT_ACTIVE),
            }))
    }

    /// ⌈companies / 500⌉ × ⌈contracts / 500⌉ calls: `POST /V1.0/Contracts/query` with
    /// `companyID in […]`.
    pub(super) async fn contracts_of(&self, company_ids: &[PsaId]) -> PsaResult<Vec<Contract>> {
        let mut out = Vec::new();
        for batch in convert::id_batches(company_ids)? {
            let rows: Vec<WContract> = self
                .t
                .query(
                    "Contracts",
                    vec![convert::any_of("companyID", &batch)],
                    None,
                )
                .await?;
            out.extend(rows.into_iter().filter_map(|c| {
                Some(Contract {
                    id: c.id.to_string(),
                    company_id: c.company_id?.to_string(),
                    name: c.contract_name.unwrap_or_default(),
                    active: c.status == Some(CONTRACT_ACTIVE),
                })
            }));
        }
        Ok(out)
    }

    /// 1 call: `POST /V1.0/Services/query` on `name`, active services only.
    pub(super) async fn service_named(&self, name: &str) -> PsaResult<Option<CatalogService>> {
        let exact = |s: &WService| s.name.as_deref().is_some_and(|n| same_name(n, name));
        let rows: Vec<WService> = self
            .t
            .query(
                "Services",
                vec![eq("name", name.trim()), eq("isActive", true)],
                Some(&exact),
            )
            .await?;
        Ok(rows
            .into_iter()
            .find(|s| exact(s) && s.is_active != Some(false))
            .map(convert::catalog))
    }

    /// The allocation (billing) code a new service is filed under: the first active billing
    /// code whose use type is labelled "Recurring…" (2 calls: the `useType` picklist, a query).
    async fn recurring_billing_code(&self) -> PsaResult<i64> {
        let use_types = self.picklist("BillingCodes", "useType").await?;
        let recurring = convert::active_values(&use_types)
            .into_iter()
            .find(|v| {
                v.label
                    .as_deref()
                    .is_some_and(|l| l.to_ascii_lowercase().contains("recurring"))
            })
            .ok_or_else(|| PsaError::Permanent {
                status: None,
                message: "Autotask has no \"Recurring\" billing code use type to file a new service under".into(),
            })?;
        let use_type = num_id("billing code use type", &recurring.value)?;
        let rows: Vec<WBillingCode> = self
            .t
            .query(
                "BillingCodes",
                vec![eq("useType", use_type), eq("isActive", true)],
                Some(&|_: &WBillingCode| true),
            )
            .await?;
        rows.first().map(|b| b.id).ok_or_else(|| PsaError::Permanent {
            status: None,
            message: "Autotask has no active recurring-service billing code; create one (Admin > Billing > Billing Codes) first".into(),
        })
    }

    /// 4 calls: the `Services` fields (period type), the billing-code use types and a billing
    /// code query, then `POST /V1.0/Services` (monthly, active).
    pub(super) async fn new_service(&self, spec: &CatalogServiceSpec) -> PsaResult<CatalogService> {
        let periods = self.picklist("Services", "periodType").await?;
        let period = convert::preferred_value(&periods, "month");
        let billing_code = self.recurring_billing_code().await?;
        let body = json!({
            "name": spec.name,
            "description": spec.description,
            "unitCost": money_to_wire(spec.cost),
            "unitPrice": money_to_wire(spec.price),
            "periodType": period,
            "billingCodeID": billing_code,
            "isActive": true,
        });
        let v = self
            .t
            .call(Method::POST, "/V1.0/Services", Some(&body))
            .await?;
        let op: WOperation = decode("service", v)?;
        Ok(CatalogService {
            id: convert::item_id("service", op.item_id.as_ref())?,
            name: spec.name.clone(),
            description: spec.description.clone(),
            cost: spec.cost,
            price: spec.price,
        })
    }

    /// 1 call: `PATCH /V1.0/Services` with name, description, cost and price only (the rest of
    /// the service is left as the MSP set it).
    pub(super) async fn patch_service(
        &self,
        id: &PsaId,
        spec: &CatalogServiceSpec,
    ) -> PsaResult<CatalogService> {
        let body = json!({
            "id": num_id("service", id)?,
            "name": spec.name,
            "description": spec.description,
            "unitCost": money_to_wire(spec.cost),
            "unitPrice": money_to_wire(spec.price),
        });
        self.t
            .call(Method::PATCH, "/V1.0/Services", Some(&body))
            .await?;
        Ok(CatalogService {
            id: id.clone(),
            name: spec.name.clone(),
            description: spec.description.clone(),
            cost: spec.cost,
            price: spec.price,
        })
    }

    /// 1 call: `PATCH /V1.0/Services` with `isActive: false` (the document has no delete for
    /// services); already gone counts as done.
    pub(super) async fn deactivate_service(&self, id: &PsaId) -> PsaResult<()> {
        let body = json!({ "id": num_id("service", id)?, "isActive": false });
        match self
            .t
            .call(Method::PATCH, "/V1.0/Services", Some(&body))
            .await
        {
            Ok(_) | Err(PsaError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// 1 call: `POST /V1.0/ContractServiceUnits/query` on the contract service; the units in force today.
    async fn units_today(&self, contract_service_id: i64) -> PsaResult<i64> {
        let rows: Vec<WContractServiceUnit> = self
            .t
            .query(
                "ContractServiceUnits",
                vec![eq("contractServiceID", contract_service_id)],
                None,
            )
            .await?;
        Ok(convert::units_on(&rows, Utc::now().date_naive()))
    }

    /// 2 calls when found (`ContractServices/query`, then `ContractServiceUnits/query`), 1 when not.
    pub(super) async fn contract_service(
        &self,
        key: LineKey<'_>,
    ) -> PsaResult<Option<ContractLine>> {
        let (contract, service) = convert::line_ids(key)?;
        let rows: Vec<WContractService> = self
            .t
            .query(
                "ContractServices",
                vec![eq("contractID", contract), eq("serviceID", service)],
                None,
            )
            .await?;
        let Some(row) = rows
            .into_iter()
            .filter(|r| r.contract_id == Some(contract) && r.service_id == Some(service))
            .min_by_key(|r| r.id)
        else {
            return Ok(None);
        };
        let values = LineValues {
            quantity: self.units_today(row.id).await?,
            cost: convert::money_from_wire(row.unit_cost),
            price: convert::money_from_wire(row.unit_price),
        };
        Ok(Some(key.line(row.id.to_string(), values)))
    }

    /// `POST /V1.0/ContractServiceAdjustments`: `unit_change` units from today (1 call).
    async fn post_adjustment(
        &self,
        contract: i64,
        contract_service: i64,
        service: i64,
        unit_change: i64,
        values: LineValues,
    ) -> PsaResult<()> {
        let body = json!({
            "contractID": contract,
            "contractServiceID": contract_service,
            "serviceID": service,
            "effectiveDate": today_midnight(),
            "unitChange": unit_change,
            "adjustedUnitPrice": money_to_wire(values.price),
            "adjustedUnitCost": money_to_wire(values.cost),
        });
        self.t
            .call(
                Method::POST,
                "/V1.0/ContractServiceAdjustments",
                Some(&body),
            )
            .await
            .map(|_| ())
    }

    /// 2 calls: `POST /V1.0/Contracts/{id}/Services` (the service on the contract, no units
    /// yet), then one adjustment of `+quantity` effective today (none for 0 units).
    pub(super) async fn attach_service(
        &self,
        key: LineKey<'_>,
        values: LineValues,
    ) -> PsaResult<ContractLine> {
        let (contract, service) = convert::line_ids(key)?;
        let body = json!({
            "contractID": contract,
            "serviceID": service,
            "unitCost": money_to_wire(values.cost),
            "unitPrice": money_to_wire(values.price),
        });
        let path = format!("/V1.0/Contracts/{contract}/Services");
        let v = self.t.call(Method::POST, &path, Some(&body)).await?;
        let op: WOperation = decode("contract service", v)?;
        let id = convert::item_id("contract service", op.item_id.as_ref())?;
        let cs = num_id("contract service", &id)?;
        if values.quantity != 0 {
            self.post_adjustment(contract, cs, service, values.quantity, values)
                .await?;
        }
        Ok(key.line(id, values))
    }

    /// 1 call to read today's units (`ContractServiceUnits`), then 1 adjustment of the
    /// difference when the count changed, or 1 `PATCH /V1.0/Contracts/{id}/Services` when only
    /// cost or price did; nothing more when nothing changed.
    pub(super) async fn adjust_units(
        &self,
        line: &ContractLine,
        values: LineValues,
    ) -> PsaResult<LineUpdate> {
        let (contract, service) = convert::line_ids(line.key())?;
        let cs = num_id("contract service", &line.id)?;
        let current = self.units_today(cs).await?;
        let change = values.quantity - current;
        if change != 0 {
            self.post_adjustment(contract, cs, service, change, values)
                .await?;
        } else if (values.cost, values.price) != (line.cost, line.price) {
            let body: Value = json!({
                "id": cs,
                "unitCost": money_to_wire(values.cost),
                "unitPrice": money_to_wire(values.price),
            });
            let path = format!("/V1.0/Contracts/{contract}/Services");
            self.t.call(Method::PATCH, &path, Some(&body)).await?;
        }
        Ok(LineUpdate::Updated(
            line.key().line(line.id.clone(), values),
        ))
    }
}

#[async_trait]
impl Billing for AutotaskClient {
    async fn find_contract(&self, company_id: &PsaId, name: &str) -> PsaResult<Option<Contract>> {
        self.contract_named(company_id, name).await
    }
    async fn find_catalog_service(&self, name: &str) -> PsaResult<Option<CatalogService>> {
        self.service_named(name).await
    }
    async fn create_catalog_service(&self, spec: &CatalogServiceSpec) -> PsaResult<CatalogService> {
        self.new_service(spec).await
    }
    async fn update_catalog_service(
        &self,
        id: &PsaId,
        spec: &CatalogServiceSpec,
    ) -> PsaResult<CatalogService> {
        self.patch_service(id, spec).await
    }
    async fn delete_catalog_service(&self, id: &PsaId) -> PsaResult<()> {
        self.deactivate_service(id).await
    }
    async fn find_contract_line(&self, key: LineKey<'_>) -> PsaResult<Option<ContractLine>> {
        self.contract_service(key).await
    }
    async fn add_contract_line(
        &self,
        key: LineKey<'_>,
        values: LineValues,
    ) -> PsaResult<ContractLine> {
        self.attach_service(key, values).await
    }
    async fn update_contract_line(
        &self,
        line: &ContractLine,
        values: LineValues,
    ) -> PsaResult<LineUpdate> {
        self.adjust_units(line, values).await
    }
    async fn contracts_of_companies(
        &self,
        company_ids: &[PsaId],
    ) -> PsaResult<Option<Vec<Contract>>> {
        self.contracts_of(company_ids).await.map(Some)
    }
}
