//! The BMS sandbox's own JSON: reading request bodies the way BMS binds them (any key casing,
//! strict value types) and writing answers the way BMS sends them (camelCase, `success` envelope).
//! Deliberately independent of the client's wire code.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::state::{
    Account, BulkValues, Contact, Contract, Fail, LineIn, NoteIn, RelatedFilter, ServiceIn, Store,
    Ticket, TicketIn,
};

/// `{success:true, result}`.
pub fn ok(result: Value) -> Response {
    Json(json!({ "success": true, "result": result })).into_response()
}

/// `{success:true, result, totalRecords}` for the `*PagedResponse` endpoints.
pub fn ok_paged(rows: Vec<Value>, total: usize) -> Response {
    Json(json!({ "success": true, "result": rows, "totalRecords": total })).into_response()
}

/// A refusal the BMS way: HTTP 200 with `success:false`.
pub fn fail(f: Fail) -> Response {
    let (message, subs) = match &f {
        Fail::Invalid(errs) => (
            "One or more validation errors occurred.".to_string(),
            errs.clone(),
        ),
        Fail::Rule(m) | Fail::NotFound(m) => (m.clone(), Vec::new()),
    };
    Json(json!({
        "success": false,
        "error": { "code": f.code(), "message": message, "details": null, "subErrors": subs },
        "result": null,
    }))
    .into_response()
}

/// What the ASP.NET model binder answers for a body it cannot bind: HTTP 400 problem details.
pub fn bad_request(errors: Vec<(String, String)>) -> Response {
    let mut map = Map::new();
    for (path, msg) in errors {
        let entry = map.entry(path).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = entry {
            a.push(Value::String(msg));
        }
    }
    (
        StatusCode::BAD_REQUEST,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        )],
        Json(json!({
            "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
            "title": "One or more validation errors occurred.",
            "status": 400,
            "errors": map,
        })),
    )
        .into_response()
}

/// 401 for a missing, unknown or expired bearer token: empty body, `WWW-Authenticate`.
pub fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        )],
    )
        .into_response()
}

/// 429 with `Retry-After` and the envelope.
pub fn too_many(limit: u32, retry_after_secs: u64) -> Response {
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({
            "success": false,
            "error": { "code": 429, "message": format!("API calls quota exceeded! maximum admitted {limit} per 1h.") },
        })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

/// A request the handler refuses before touching the state (unbindable path id or body).
/// Boxed: a `Response` is large and this travels in every handler's `Result`.
#[derive(Debug)]
pub struct Refusal(Box<Response>);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// Binder errors as a refusal (HTTP 400 problem details).
pub fn refuse(errors: Vec<(String, String)>) -> Refusal {
    Refusal(Box::new(bad_request(errors)))
}

/// A JSON body with every key lowercased (BMS binds names in any casing).
pub fn body_json(bytes: &[u8]) -> Result<Value, Refusal> {
    serde_json::from_slice::<Value>(bytes)
        .map(fold)
        .map_err(|e| {
            refuse(vec![(
                "$".into(),
                format!("The request body is not valid JSON: {e}"),
            )])
        })
}

fn fold(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k.to_lowercase(), fold(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(fold).collect()),
        other => other,
    }
}

/// Reads typed members of one folded JSON object, collecting binder errors.
pub struct Reader<'a> {
    obj: Option<&'a Map<String, Value>>,
    prefix: String,
    pub errors: Vec<(String, String)>,
}

impl<'a> Reader<'a> {
    pub fn new(v: &'a Value, prefix: &str) -> Self {
        let mut r = Reader {
            obj: v.as_object(),
            prefix: prefix.to_string(),
            errors: Vec::new(),
        };
        if r.obj.is_none() {
            r.errors
                .push((format!("$.{prefix}"), "An object is expected.".into()));
        }
        r
    }

    fn raw(&self, name: &str) -> Option<&'a Value> {
        self.obj
            .and_then(|o| o.get(&name.to_lowercase()))
            .filter(|v| !v.is_null())
    }

    fn type_error(&mut self, name: &str, ty: &str) {
        let path = format!("$.{}{name}", self.prefix);
        self.errors.push((
            path.clone(),
            format!("The JSON value could not be converted to {ty}. Path: {path}"),
        ));
    }

    pub fn int(&mut self, name: &str) -> Option<i64> {
        let v = self.raw(name)?;
        match v.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => Some(i),
            _ => {
                self.type_error(name, "System.Int32");
                None
            }
        }
    }

    pub fn num(&mut self, name: &str) -> Option<f64> {
        let v = self.raw(name)?;
        match v.as_f64() {
            Some(f) => Some(f),
            None => {
                self.type_error(name, "System.Double");
                None
            }
        }
    }

    pub fn text(&mut self, name: &str) -> Option<String> {
        let v = self.raw(name)?;
        match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.type_error(name, "System.String");
                None
            }
        }
    }

    pub fn boolean(&mut self, name: &str) -> Option<bool> {
        let v = self.raw(name)?;
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                self.type_error(name, "System.Boolean");
                None
            }
        }
    }
}

pub type Bound<T> = Result<T, Vec<(String, String)>>;

fn done<T>(r: Reader<'_>, value: T) -> Bound<T> {
    if r.errors.is_empty() {
        Ok(value)
    } else {
        Err(r.errors)
    }
}

pub fn ticket_in(v: &Value) -> Bound<TicketIn> {
    let mut r = Reader::new(v, "");
    let t = TicketIn {
        title: r.text("Title"),
        details: r.text("Details"),
        account_id: r.int("AccountId"),
        location_id: r.int("LocationId"),
        contact_id: r.int("ContactId"),
        queue_id: r.int("QueueId"),
        assignee_id: r.int("AssigneeId"),
        status_id: r.int("StatusId"),
        priority_id: r.int("PriorityId"),
        type_id: r.int("TypeId"),
        issue_type_id: r.int("IssueTypeId"),
        sub_issue_type_id: r.int("SubIssueTypeId"),
        source_id: r.int("SourceId"),
        contract_id: r.int("ContractId"),
        open_date: r.text("OpenDate"),
    };
    done(r, t)
}

pub fn note_in(v: &Value) -> Bound<NoteIn> {
    let mut r = Reader::new(v, "");
    let n = NoteIn {
        details: r.text("Details"),
        internal: r.boolean("IsInternal"),
        type_id: r.int("TypeId"),
        status_id: r.int("StatusId"),
        note_date: r.text("NoteDate"),
    };
    done(r, n)
}

/// `ResolveTicketDto`: comment, status, internal flag.
pub fn resolve_in(v: &Value) -> Bound<(Option<String>, Option<i64>, bool)> {
    let mut r = Reader::new(v, "");
    let out = (
        r.text("Comment"),
        r.int("StatusId"),
        r.boolean("IsInternal").unwrap_or(false),
    );
    done(r, out)
}

pub fn service_in(v: &Value) -> Bound<ServiceIn> {
    let mut r = Reader::new(v, "");
    let s = ServiceIn {
        name: r.text("Name"),
        description: r.text("Description"),
        unit_cost: r.num("UnitCost"),
        unit_price: r.num("UnitPrice"),
        category_id: r.int("CategoryId"),
        unit_of_measure_id: r.int("UnitOfMeasureId"),
        active: r.boolean("IsActive"),
        taxable: r.boolean("IsTaxable"),
    };
    done(r, s)
}

/// The add-lines body is an array of `RecurringServicePostInputDto`.
pub fn lines_in(v: &Value) -> Bound<Vec<LineIn>> {
    let Some(items) = v.as_array() else {
        return Err(vec![(
            "$".into(),
            "An array of services is expected.".into(),
        )]);
    };
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut r = Reader::new(item, &format!("[{i}]."));
        let l = LineIn {
            service_id: r.int("ServiceId"),
            units: r.int("Units"),
            unit_cost: r.num("UnitCost"),
            unit_price: r.num("UnitPrice"),
            effective_date: r.text("EffectiveDate"),
            sort_order: r.int("SortOrder"),
        };
        errors.extend(r.errors);
        out.push(l);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Paging of a search body (`PageSize`, `PageNumber`) and its `Filter` object (folded keys).
pub struct SearchIn {
    pub page_size: Option<i64>,
    pub page_number: Option<i64>,
    pub filter: Map<String, Value>,
}

/// A `…/search` body: `{PageSize, PageNumber, Sort, Filter: {…}}`; an empty body is a search
/// without filters.
pub fn search_in(v: &Value) -> Bound<SearchIn> {
    if v.is_null() {
        return Ok(SearchIn {
            page_size: None,
            page_number: None,
            filter: Map::new(),
        });
    }
    let mut r = Reader::new(v, "");
    let page_size = r.int("PageSize");
    let page_number = r.int("PageNumber");
    let filter = match v.get("filter") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            r.errors
                .push(("$.Filter".into(), "An object is expected.".into()));
            Map::new()
        }
    };
    done(
        r,
        SearchIn {
            page_size,
            page_number,
            filter,
        },
    )
}

/// `RelatedServicesListFilterDto`'s name filters.
pub fn related_filter(f: &Map<String, Value>) -> RelatedFilter {
    let text = |k: &str| f.get(k).and_then(Value::as_str).map(str::to_string);
    RelatedFilter {
        service_name: text("servicename"),
        contract_name: text("contractname"),
        account_name: text("accountname"),
    }
}

/// `RelatedServicesListBulkUpdateInputDto`: the chosen (contract, line) pairs and the values.
pub fn bulk_update_in(v: &Value) -> Bound<(Vec<(i64, i64)>, BulkValues)> {
    let mut errors = Vec::new();
    let mut chosen = Vec::new();
    let selected = v
        .get("selectedclientcontractservices")
        .and_then(Value::as_array);
    for (i, item) in selected.into_iter().flatten().enumerate() {
        let mut r = Reader::new(item, &format!("SelectedClientContractServices[{i}]."));
        let contract = r.int("ClientContractId");
        let line = r.int("ClientContractServiceId");
        errors.extend(r.errors);
        if let (Some(c), Some(l)) = (contract, line) {
            chosen.push((c, l));
        }
    }
    let values = v.get("values").cloned().unwrap_or(Value::Null);
    let mut r = Reader::new(&values, "Values.");
    let out = BulkValues {
        unit_cost: r.num("UnitCost"),
        unit_price: r.num("UnitPrice"),
        effective_date: r.text("EffectiveDate"),
    };
    r.text("ServiceName");
    r.text("ServiceDescription");
    errors.extend(r.errors);
    if errors.is_empty() {
        Ok((chosen, out))
    } else {
        Err(errors)
    }
}

/// `RelatedServicesListOutputDto`: one line of a catalog service on a contract. It carries no
/// units; the document has no call that reads a line's units back.
pub fn related_row(w: &Store, l: &super::state::Line) -> Value {
    let service = w.service(l.service_id);
    let contract = w.contract(l.contract_id);
    let account = contract.and_then(|k| w.account(k.account_id));
    json!({
        "id": l.id,
        "serviceId": l.service_id,
        "contractId": l.contract_id,
        "accountId": contract.map(|k| k.account_id).unwrap_or_default(),
        "serviceName": service.map(|s| s.name.as_str()),
        "serviceDescription": service.map(|s| s.description.as_str()),
        "contractName": contract.map(|k| k.name.as_str()),
        "accountName": account.map(|a| a.name.as_str()),
        "effectiveDate": l.effective_date,
        "contractStartDate": contract.map(|k| k.start_date.as_str()),
        "contractEndDate": contract.map(|k| k.end_date.as_str()),
        "unitCost": l.unit_cost,
        "unitPrice": l.unit_price,
        "marginType": 0,
        "margin": l.unit_price - l.unit_cost,
        "excludeFromContractBulkUpdates": false,
    })
}

/// Parses `application/x-www-form-urlencoded` into lowercased keys (BMS binds any casing).
pub fn form(body: &[u8]) -> std::collections::HashMap<String, String> {
    pairs(body).into_iter().collect()
}

/// Name/value pairs of a form body or query string, names lowercased, in order.
pub fn pairs(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                let s = s.replace('+', " ");
                urlencoding::decode(&s).map(|c| c.into_owned()).unwrap_or(s)
            };
            (dec(k).to_lowercase(), dec(v))
        })
        .collect()
}

pub fn account_summary(a: &Account) -> Value {
    json!({
        "id": a.id,
        "accountName": a.name,
        "accountCode": a.code,
        "accountTypeId": 1,
        "accountType": a.type_name,
        "parentId": a.parent_id,
        "isActive": a.active,
        "isBilling": true,
        "website": null,
        "tenantName": null,
        "locations": a.locations.iter().map(|l| json!({
            "id": l.id, "locationName": l.name, "isMain": l.is_main, "isActive": l.active,
            "addresses": [],
        })).collect::<Vec<_>>(),
    })
}

/// `ClientContractSummaryOutputDto`: the contract with its account's *name* (the document gives
/// the row no account id). *Sandbox*: every contract is a monthly recurring-service contract
/// with no number and no billing price; `status` is `Active` or `Inactive`.
pub fn contract_summary(w: &Store, k: &Contract) -> Value {
    json!({
        "id": k.id,
        "contractName": k.name,
        "accountName": w.account(k.account_id).map(|a| a.name.as_str()),
        "contractType": CONTRACT_TYPE,
        "contractBillingPrice": 0.0,
        "status": contract_status(k),
        "contractNumber": null,
        "billingCycle": BILLING_CYCLE,
        "startDate": k.start_date,
        "endDate": k.end_date,
    })
}

/// *Sandbox*: the one contract type and billing cycle its contracts have.
pub const CONTRACT_TYPE: &str = "Recurring Service";
pub const BILLING_CYCLE: &str = "Monthly";

/// The summary's `Status` text of a contract.
pub fn contract_status(k: &Contract) -> &'static str {
    if k.active {
        "Active"
    } else {
        "Inactive"
    }
}

pub fn contact_row(w: &Store, c: &Contact) -> Value {
    let account = w.account(c.account_id);
    let location = account.and_then(|a| a.locations.iter().find(|l| l.id == c.location_id));
    json!({
        "id": c.id,
        "accountId": c.account_id,
        "accountName": account.map(|a| a.name.as_str()),
        "locationId": c.location_id,
        "locationName": location.map(|l| l.name.as_str()),
        "firstName": c.first_name,
        "lastName": c.last_name,
        "jobTitle": null,
        "emailAddress": c.email,
        "isPoc": c.poc,
        "isActive": c.active,
        "hasClientPortalAccess": false,
    })
}

fn pick_name(list: &[super::state::Pick], id: Option<i64>) -> Option<String> {
    id.and_then(|id| list.iter().find(|p| p.id == id).map(|p| p.name.clone()))
}

/// `TicketOutputDto` (the fields the sandbox keeps).
pub fn ticket_out(w: &Store, t: &Ticket) -> Value {
    let account = w.account(t.account_id);
    let location = w.location(t.location_id).map(|(_, l)| l);
    let contact = t.contact_id.and_then(|c| w.contact(c));
    let status = w.status(t.status_id);
    let issue = t.issue_type_id.and_then(|i| w.issue_type(i));
    let sub = issue.and_then(|i| pick_name(&i.subs, t.sub_issue_type_id));
    let contract = t.contract_id.and_then(|k| w.contract(k));
    json!({
        "id": t.id,
        "ticketNumber": t.number,
        "title": t.title,
        "details": t.details,
        "accountId": t.account_id,
        "accountCode": account.map(|a| a.code.as_str()),
        "accountName": account.map(|a| a.name.as_str()),
        "locationId": t.location_id,
        "locationName": location.map(|l| l.name.as_str()),
        "contactId": t.contact_id,
        "contactName": contact.map(|c| format!("{} {}", c.first_name, c.last_name).trim().to_string()),
        "contactEmail": contact.and_then(|c| c.email.as_deref()),
        "statusId": t.status_id,
        "statusName": status.map(|s| s.name.as_str()),
        "statusOrder": status.map(|s| s.order).unwrap_or_default(),
        "priorityId": t.priority_id,
        "priorityName": pick_name(&w.priorities, Some(t.priority_id)),
        "typeId": t.type_id,
        "typeName": pick_name(&w.ticket_types, Some(t.type_id)),
        "issueTypeId": t.issue_type_id,
        "issueTypeName": issue.map(|i| i.name.as_str()),
        "subIssueTypeId": t.sub_issue_type_id,
        "subIssueTypeName": sub,
        "contractId": t.contract_id,
        "contractName": contract.map(|k| k.name.as_str()),
        "queueId": t.queue_id,
        "queueName": pick_name(&w.queues, t.queue_id),
        "sourceId": t.source_id,
        "sourceName": pick_name(&w.sources, Some(t.source_id)),
        "openDate": t.open_date,
        "dueDate": null,
        "completedDate": t.completed_date,
        "createdOn": t.created_on,
        "tenantId": w.tenant_id,
    })
}

/// `TicketListDto`, the row of the ticket list and search: the output DTO less the fields only a
/// single ticket carries, plus the tenant's name.
pub fn ticket_row(w: &Store, t: &Ticket) -> Value {
    let mut v = ticket_out(w, t);
    if let Some(m) = v.as_object_mut() {
        for key in ["contactEmail", "sourceName", "tenantId"] {
            m.remove(key);
        }
        m.insert("tenantName".into(), Value::String(w.tenant.clone()));
    }
    v
}

/// `TicketNoteOutputDto` (it has no note date; `createdOn` is when the note was written).
pub fn note_out(w: &Store, n: &super::state::Note) -> Value {
    json!({
        "id": n.id,
        "details": n.details,
        "isInternal": n.internal,
        "typeId": n.type_id,
        "typeName": pick_name(&w.note_types, Some(n.type_id)),
        "createdOn": n.created_on,
    })
}

pub fn service_out(s: &super::state::Service) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "unitCost": s.unit_cost,
        "unitPrice": s.unit_price,
        "categoryId": s.category_id,
        "unitOfMeasureId": s.unit_of_measure_id,
        "isActive": s.active,
        "isTaxable": s.taxable,
    })
}

pub fn line_out(w: &Store, l: &super::state::Line) -> Value {
    let service = w.service(l.service_id);
    let contract = w.contract(l.contract_id);
    json!({
        "id": l.id,
        "serviceId": l.service_id,
        "serviceName": service.map(|s| s.name.as_str()),
        "description": service.map(|s| s.description.as_str()),
        "contractId": l.contract_id,
        "contractName": contract.map(|k| k.name.as_str()),
        "units": l.units as f64,
        "unitCost": l.unit_cost,
        "unitPrice": l.unit_price,
        "totalCost": l.unit_cost * l.units as f64,
        "totalPrice": l.unit_price * l.units as f64,
        "effectiveDate": l.effective_date,
        "sortOrder": l.sort_order,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_bind_in_any_casing_with_strict_types() {
        let v = body_json(br#"{"title":"T","ACCOUNTID":5,"LocationId":"6","isinternal":true}"#)
            .unwrap();
        let mut r = Reader::new(&v, "");
        assert_eq!(r.text("Title").as_deref(), Some("T"));
        assert_eq!(r.int("AccountId"), Some(5));
        assert_eq!(r.int("LocationId"), None);
        assert_eq!(r.boolean("IsInternal"), Some(true));
        assert_eq!(r.int("ContactId"), None);
        assert_eq!(r.errors.len(), 1);
        assert!(r.errors[0].1.contains("System.Int32"), "{:?}", r.errors);
        assert!(body_json(b"{not json").is_err());
    }

    #[test]
    fn forms_decode_and_fold_keys() {
        let f = form(b"GrantType=password&UserName=demo-api&Tenant=Acme+MSP%20Ltd&Password=a%26b");
        assert_eq!(f["granttype"], "password");
        assert_eq!(f["tenant"], "Acme MSP Ltd");
        assert_eq!(f["password"], "a&b");
    }

    #[test]
    fn line_arrays_report_the_index_of_a_bad_item() {
        let v = body_json(br#"[{"ServiceId":1,"Units":2},{"ServiceId":"x"}]"#).unwrap();
        let errs = lines_in(&v).unwrap_err();
        assert_eq!(errs[0].0, "$.[1].ServiceId");
        assert!(lines_in(&body_json(br#"{"ServiceId":1}"#).unwrap()).is_err());
    }
}
