//! Contracts, the catalog and contract lines.

use super::*;
use crate::psa::{Billing, LineKey};
use async_trait::async_trait;

#[async_trait]
impl Billing for ConnectWiseClient {
    /// 1 call: `GET /finance/agreements?conditions=company/id=… and name="…"`; an active
    /// agreement wins over a cancelled one of the same name.
    async fn find_contract(&self, company_id: &PsaId, name: &str) -> PsaResult<Option<Contract>> {
        let q = [(
            "conditions",
            cond::and([
                id_cond("company/id", company_id)?,
                cond::eq_str("name", name),
            ]),
        )];
        let rows: Vec<AgreementRecord> =
            self.http.first_page("/finance/agreements", &q, 25).await?;
        let mut found: Vec<Contract> = rows
            .into_iter()
            .filter(|a| {
                a.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .map(AgreementRecord::into_contract)
            .collect();
        found.sort_by_key(|c| !c.active);
        Ok(found.into_iter().next())
    }
    /// 1 call: `GET /procurement/catalog?conditions=identifier="…"`.
    async fn find_catalog_service(&self, name: &str) -> PsaResult<Option<CatalogService>> {
        let q = [("conditions", cond::eq_str("identifier", name))];
        let rows: Vec<CatalogRecord> = self.http.first_page("/procurement/catalog", &q, 25).await?;
        Ok(rows
            .into_iter()
            .find(|r| {
                r.identifier
                    .as_deref()
                    .is_some_and(|i| i.eq_ignore_ascii_case(name))
            })
            .map(CatalogRecord::into_service))
    }
    /// 1 call: `POST /procurement/catalog` (+2 once: procurement type and subcategory lookups).
    async fn create_catalog_service(&self, spec: &CatalogServiceSpec) -> PsaResult<CatalogService> {
        if cw_len(&spec.name) > CATALOG_IDENTIFIER_MAX {
            return Err(PsaError::Permanent {
                status: None,
                message: format!(
                    "ConnectWise catalog identifiers are at most {CATALOG_IDENTIFIER_MAX} characters: {:?}",
                    spec.name
                ),
            });
        }
        let (type_id, sub_id) = self.catalog_defaults().await?;
        let description = catalog_description(spec);
        let body = NewCatalogBody {
            identifier: spec.name.clone(),
            description: cut(&description, CATALOG_DESCRIPTION_MAX),
            customer_description: cut(&description, CATALOG_CUSTOMER_DESCRIPTION_MAX),
            subcategory: Ref::id(sub_id),
            type_: Ref::id(type_id),
            product_class: "Service",
            price: to_units(spec.price),
            cost: to_units(spec.cost),
            inactive_flag: false,
        };
        let body = serde_json::to_value(body).map_err(internal)?;
        let rec: CatalogRecord = self.post("/procurement/catalog", body).await?;
        Ok(rec.into_service())
    }
    /// 1 call: `PATCH /procurement/catalog/{id}` (identifier, descriptions, cost, price, active).
    async fn update_catalog_service(
        &self,
        id: &PsaId,
        spec: &CatalogServiceSpec,
    ) -> PsaResult<CatalogService> {
        let id = numeric_id(id)?;
        let rec: CatalogRecord = self
            .patch(&format!("/procurement/catalog/{id}"), &catalog_patch(spec))
            .await?;
        Ok(rec.into_service())
    }
    /// 1 call: `DELETE /procurement/catalog/{id}`; when ConnectWise answers 409 (in use on an
    /// agreement) a second call deactivates it (`inactiveFlag=true`). Already gone counts as done.
    async fn delete_catalog_service(&self, id: &PsaId) -> PsaResult<()> {
        let id = numeric_id(id)?;
        let path = format!("/procurement/catalog/{id}");
        match self
            .http
            .send(
                Method::DELETE,
                Target::Api {
                    path: &path,
                    query: &[],
                },
                None,
            )
            .await
        {
            Ok(_) | Err(PsaError::NotFound { .. }) => Ok(()),
            Err(PsaError::Permanent {
                status: Some(409), ..
            }) => {
                let ops = [PatchOp::replace("inactiveFlag", json!(true))];
                let _: CatalogRecord = self.patch(&path, &ops).await?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
    /// 1 call: `GET /finance/agreements/{id}/additions?conditions=product/id=…`; additions
    /// cancelled as of today are ignored (one cancelled for a later date still bills).
    async fn find_contract_line(&self, key: LineKey<'_>) -> PsaResult<Option<ContractLine>> {
        let LineKey {
            contract_id,
            service_id,
        } = key;
        let agreement = numeric_id(contract_id)?;
        let q = [
            ("conditions", id_cond("product/id", service_id)?),
            ("orderBy", "id asc".to_string()),
        ];
        let rows: Vec<AdditionRecord> = self
            .http
            .first_page(
                &format!("/finance/agreements/{agreement}/additions"),
                &q,
                25,
            )
            .await?;
        let today = chrono::Utc::now().date_naive();
        Ok(rows
            .into_iter()
            .filter(|a| !a.is_cancelled(today))
            .find(|a| {
                a.product
                    .as_ref()
                    .and_then(|p| p.id)
                    .map(|i| i.to_string())
                    .as_deref()
                    == Some(service_id.trim())
            })
            .map(|a| a.into_line(contract_id)))
    }
    /// 2 calls: `GET /finance/agreements/{id}` (start, billing start, proration, next invoice
    /// date), then `POST /finance/agreements/{id}/additions` (billable, effective on the first
    /// date the agreement accepts: [`addition_effective_date`]).
    async fn add_contract_line(
        &self,
        key: LineKey<'_>,
        values: LineValues,
    ) -> PsaResult<ContractLine> {
        let agreement = numeric_id(key.contract_id)?;
        let record: AgreementRecord = self
            .get(&format!("/finance/agreements/{agreement}"), &[])
            .await?;
        let effective = addition_effective_date(&record, chrono::Utc::now().date_naive());
        let body = NewAdditionBody {
            product: Ref::id(numeric_id(key.service_id)?),
            quantity: values.quantity as f64,
            unit_price: to_units(values.price),
            unit_cost: to_units(values.cost),
            bill_customer: "Billable",
            effective_date: effective.format("%Y-%m-%dT00:00:00Z").to_string(),
        };
        let body = serde_json::to_value(body).map_err(internal)?;
        let rec: AdditionRecord = self
            .post(&format!("/finance/agreements/{agreement}/additions"), body)
            .await?;
        Ok(rec.into_line(key.contract_id))
    }
    /// 1 call: `PATCH /finance/agreements/{id}/additions/{additionId}` (quantity, unit cost and price).
    async fn update_contract_line(
        &self,
        line: &ContractLine,
        values: LineValues,
    ) -> PsaResult<LineUpdate> {
        let agreement = numeric_id(&line.contract_id)?;
        let addition = numeric_id(&line.id)?;
        let rec: AdditionRecord = self
            .patch(
                &format!("/finance/agreements/{agreement}/additions/{addition}"),
                &line_patch(values),
            )
            .await?;
        Ok(LineUpdate::Updated(rec.into_line(&line.contract_id)))
    }
    /// ⌈companies / 400⌉ × pages of 1,000: `GET /finance/agreements?conditions=company/id in (…)`.
    async fn contracts_of_companies(
        &self,
        company_ids: &[PsaId],
    ) -> PsaResult<Option<Vec<Contract>>> {
        let mut out = Vec::new();
        for batch in company_ids.chunks(IDS_PER_CONDITION) {
            let q = [
                ("conditions", in_cond("company/id", batch)?),
                ("orderBy", "id asc".to_string()),
            ];
            let rows: Vec<AgreementRecord> = self.http.list("/finance/agreements", &q).await?;
            out.extend(rows.into_iter().map(AgreementRecord::into_contract));
        }
        Ok(Some(out))
    }
}
