//! Product catalog items and agreement additions.

use serde_json::{json, Map, Value};

use super::patch;
use super::state::{info, Store, Table};
use super::wire::{ApiError, FieldError};

const IDENTIFIER_MAX: usize = 60;
const DESCRIPTION_MAX: usize = 60;
const CUSTOMER_DESCRIPTION_MAX: usize = 6000;
const PRODUCT_CLASSES: &[&str] = &[
    "Agreement",
    "Bundle",
    "Inventory",
    "NonInventory",
    "Service",
];
const BILL_CUSTOMER: &[&str] = &["Billable", "DoNotBill", "NoCharge"];

fn required_text(body: &Value, field: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    match body.get(field).and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() => {
            if super::tickets::cw_len(s) > max {
                errors.push(FieldError::too_long(field, max));
            }
            s.to_string()
        }
        _ => {
            errors.push(FieldError::required(field));
            String::new()
        }
    }
}

fn number(body: &Value, field: &str, default: f64, errors: &mut Vec<FieldError>) -> f64 {
    match body.get(field) {
        None | Some(Value::Null) => default,
        Some(v) => v.as_f64().unwrap_or_else(|| {
            errors.push(FieldError::new(
                "InvalidField",
                field,
                format!("{field} must be a number"),
            ));
            default
        }),
    }
}

fn one_of(
    body: &Value,
    field: &str,
    allowed: &[&str],
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let v = body.get(field).and_then(Value::as_str)?;
    match allowed.iter().find(|a| a.eq_ignore_ascii_case(v)) {
        Some(a) => Some(a.to_string()),
        None => {
            errors.push(FieldError::new(
                "InvalidField",
                field,
                format!("{field} must be one of {}", allowed.join(", ")),
            ));
            None
        }
    }
}

/// `POST /procurement/catalog`.
pub fn create_catalog(store: &mut Store, body: &Value) -> Result<Value, ApiError> {
    let item = build_catalog(store, body, None)?;
    let id = store.insert(Table::Catalog, item);
    Ok(store
        .get(Table::Catalog, id)
        .cloned()
        .unwrap_or(Value::Null))
}

/// `PATCH /procurement/catalog/{id}`.
pub fn update_catalog(store: &mut Store, id: i64, ops: &Value) -> Result<Value, ApiError> {
    let mut doc = store.get_or_404(Table::Catalog, id)?.clone();
    patch::apply(&mut doc, ops)?;
    let item = build_catalog(store, &doc, Some(id))?;
    store.replace(Table::Catalog, id, item.clone());
    Ok(item)
}

/// `DELETE /procurement/catalog/{id}`: refused (409) while an agreement addition uses it.
pub fn delete_catalog(store: &mut Store, id: i64) -> Result<(), ApiError> {
    store.get_or_404(Table::Catalog, id)?;
    let today = chrono::Utc::now().date_naive();
    let in_use = store
        .all(Table::Additions)
        .any(|a| a["product"]["id"].as_i64() == Some(id) && !cancelled_by(a, today));
    if in_use {
        return Err(ApiError::in_use(format!(
            "CatalogItem {id} is in use on an agreement and cannot be deleted"
        )));
    }
    store.remove(Table::Catalog, id);
    Ok(())
}

fn build_catalog(store: &Store, body: &Value, self_id: Option<i64>) -> Result<Value, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the catalog item must be a JSON object",
        ));
    }
    let mut errors = Vec::new();
    let identifier = required_text(body, "identifier", IDENTIFIER_MAX, &mut errors);
    let duplicate = store.all(Table::Catalog).any(|c| {
        c["id"].as_i64() != self_id
            && c["identifier"]
                .as_str()
                .is_some_and(|i| i.eq_ignore_ascii_case(&identifier))
    });
    if duplicate {
        errors.push(FieldError::new(
            "ObjectExists",
            "identifier",
            "The Identifier is already in use.",
        ));
    }
    let description = required_text(body, "description", DESCRIPTION_MAX, &mut errors);
    let customer_description = required_text(
        body,
        "customerDescription",
        CUSTOMER_DESCRIPTION_MAX,
        &mut errors,
    );
    let reference = |field: &str, table: Table, errors: &mut Vec<FieldError>| match body
        .get(field)
        .filter(|v| !v.is_null())
    {
        Some(r) => store.resolve_ref(table, r, None, field, errors),
        None => {
            errors.push(FieldError::required(field));
            None
        }
    };
    let subcategory = reference("subcategory", Table::Subcategories, &mut errors);
    let type_id = reference("type", Table::ProcurementTypes, &mut errors);
    let product_class = one_of(body, "productClass", PRODUCT_CLASSES, &mut errors)
        .unwrap_or_else(|| "NonInventory".into());
    let price = number(body, "price", 0.0, &mut errors);
    let cost = number(body, "cost", 0.0, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::invalid("catalogItem", errors));
    }
    let flag = |f: &str| body.get(f).and_then(Value::as_bool).unwrap_or(false);
    let mut m = Map::new();
    if let Some(id) = self_id {
        m.insert("id".into(), json!(id));
    }
    m.insert("identifier".into(), json!(identifier));
    m.insert("description".into(), json!(description));
    m.insert("customerDescription".into(), json!(customer_description));
    if let Some(s) = subcategory {
        m.insert(
            "subcategory".into(),
            store.reference(Table::Subcategories, s),
        );
    }
    if let Some(t) = type_id {
        m.insert("type".into(), store.reference(Table::ProcurementTypes, t));
    }
    m.insert("productClass".into(), json!(product_class));
    m.insert("price".into(), json!(price));
    m.insert("cost".into(), json!(cost));
    m.insert("inactiveFlag".into(), json!(flag("inactiveFlag")));
    m.insert("taxableFlag".into(), json!(flag("taxableFlag")));
    m.insert("_info".into(), info());
    Ok(Value::Object(m))
}

/// The date part of a ConnectWise timestamp.
fn day(v: &Value) -> Option<chrono::NaiveDate> {
    let s = v.as_str()?.trim();
    chrono::NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

/// Whether an addition no longer bills on `today` (cancelled on or before it).
fn cancelled_by(addition: &Value, today: chrono::NaiveDate) -> bool {
    match addition.get("cancelledDate").filter(|v| !v.is_null()) {
        None => false,
        Some(v) => day(v).is_none_or(|d| d <= today),
    }
}

/// ConnectWise's rule for an addition's `effectiveDate`: not before the agreement (or its
/// billing) starts; without proration, not inside a period already invoiced, i.e. on or after
/// the next invoice date.
fn check_effective_date(agreement: &Value, body: &Value, errors: &mut Vec<FieldError>) {
    let effective = match body.get("effectiveDate").filter(|v| !v.is_null()) {
        None => chrono::Utc::now().date_naive(),
        Some(v) => match day(v) {
            Some(d) => d,
            None => {
                errors.push(FieldError::new(
                    "InvalidField",
                    "effectiveDate",
                    "effectiveDate must be a date like 2024-01-01T00:00:00Z",
                ));
                return;
            }
        },
    };
    for field in ["startDate", "billStartDate"] {
        if let Some(start) = day(&agreement[field]).filter(|s| effective < *s) {
            errors.push(FieldError::new(
                "InvalidField",
                "effectiveDate",
                format!("The effective date cannot be before the agreement's {field} ({start})."),
            ));
            return;
        }
    }
    let prorated = agreement["prorateFlag"].as_bool().unwrap_or(false);
    if let Some(next) = day(&agreement["nextInvoiceDate"]).filter(|n| !prorated && effective < *n) {
        errors.push(FieldError::new(
            "InvalidField",
            "effectiveDate",
            format!(
                "The agreement is not prorated and is invoiced until {next}: the effective date must be on or after the next invoice date."
            ),
        ));
    }
}

/// `POST /finance/agreements/{id}/additions`.
pub fn create_addition(store: &mut Store, agreement: i64, body: &Value) -> Result<Value, ApiError> {
    let record = store.get_or_404(Table::Agreements, agreement)?.clone();
    let mut errors = Vec::new();
    check_effective_date(&record, body, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::invalid("addition", errors));
    }
    let addition = build_addition(store, agreement, body, None)?;
    let id = store.insert(Table::Additions, addition);
    Ok(store
        .get(Table::Additions, id)
        .cloned()
        .unwrap_or(Value::Null))
}

/// The addition `id` of `agreement`, or 404.
pub fn addition_of(store: &Store, agreement: i64, id: i64) -> Result<Value, ApiError> {
    store.get_or_404(Table::Agreements, agreement)?;
    store
        .get(Table::Additions, id)
        .filter(|a| a["agreementId"].as_i64() == Some(agreement))
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("Addition {id} not found")))
}

/// `PATCH /finance/agreements/{id}/additions/{additionId}`.
pub fn update_addition(
    store: &mut Store,
    agreement: i64,
    id: i64,
    ops: &Value,
) -> Result<Value, ApiError> {
    let mut doc = addition_of(store, agreement, id)?;
    let before = doc["effectiveDate"].clone();
    patch::apply(&mut doc, ops)?;
    if doc["effectiveDate"] != before {
        let mut errors = Vec::new();
        let record = store.get_or_404(Table::Agreements, agreement)?;
        check_effective_date(record, &doc, &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::invalid("addition", errors));
        }
    }
    let addition = build_addition(store, agreement, &doc, Some(id))?;
    store.replace(Table::Additions, id, addition.clone());
    Ok(addition)
}

/// `DELETE /finance/agreements/{id}/additions/{additionId}`.
pub fn delete_addition(store: &mut Store, agreement: i64, id: i64) -> Result<(), ApiError> {
    addition_of(store, agreement, id)?;
    store.remove(Table::Additions, id);
    Ok(())
}

fn build_addition(
    store: &Store,
    agreement: i64,
    body: &Value,
    self_id: Option<i64>,
) -> Result<Value, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the addition must be a JSON object"));
    }
    let mut errors = Vec::new();
    let product = match body.get("product").filter(|v| !v.is_null()) {
        Some(r) => store.resolve_ref(Table::Catalog, r, None, "product", &mut errors),
        None => {
            errors.push(FieldError::required("product"));
            None
        }
    };
    let bill = one_of(body, "billCustomer", BILL_CUSTOMER, &mut errors);
    if bill.is_none() && !errors.iter().any(|e| e.field == "billCustomer") {
        errors.push(FieldError::required("billCustomer"));
    }
    let catalog = product.and_then(|p| store.get(Table::Catalog, p));
    let catalog_number = |f: &str| catalog.and_then(|c| c[f].as_f64()).unwrap_or(0.0);
    let quantity = number(body, "quantity", 0.0, &mut errors);
    let unit_price = number(body, "unitPrice", catalog_number("price"), &mut errors);
    let unit_cost = number(body, "unitCost", catalog_number("cost"), &mut errors);
    let less_included = number(body, "lessIncluded", 0.0, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::invalid("addition", errors));
    }
    let agreement_status = store
        .get(Table::Agreements, agreement)
        .map(|a| a["agreementStatus"].clone())
        .unwrap_or(Value::Null);
    let mut m = Map::new();
    if let Some(id) = self_id {
        m.insert("id".into(), json!(id));
    }
    if let Some(p) = product {
        m.insert("product".into(), store.reference(Table::Catalog, p));
    }
    m.insert("quantity".into(), json!(quantity));
    m.insert("lessIncluded".into(), json!(less_included));
    m.insert("unitPrice".into(), json!(unit_price));
    m.insert("unitCost".into(), json!(unit_cost));
    m.insert("billCustomer".into(), json!(bill));
    for f in [
        "effectiveDate",
        "cancelledDate",
        "invoiceDescription",
        "description",
    ] {
        if let Some(v) = body.get(f).filter(|v| !v.is_null()) {
            m.insert(f.into(), v.clone());
        }
    }
    m.insert(
        "taxableFlag".into(),
        json!(body
            .get("taxableFlag")
            .and_then(Value::as_bool)
            .unwrap_or(false)),
    );
    m.insert("agreementId".into(), json!(agreement));
    m.insert("agreementStatus".into(), agreement_status);
    m.insert("billedQuantity".into(), json!(quantity - less_included));
    m.insert(
        "extPrice".into(),
        json!((quantity - less_included) * unit_price),
    );
    m.insert("_info".into(), info());
    Ok(Value::Object(m))
}
