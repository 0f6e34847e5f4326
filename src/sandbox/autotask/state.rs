//! The emulated Autotask database: entities stored as the JSON objects Autotask answers with,
//! the picklists, the adjustments of contract services and the units they produce, and the
//! database's hourly request count. Every rule a create or update checks is here.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Utc};
use serde_json::{json, Value};

use super::query::field;
use super::seed::Seed;
use super::wire::{AdjustmentIn, ContractServiceIn, NoteIn, PatchIn, ServiceIn, TicketIn};

/// Autotask's system status "Complete".
pub const STATUS_COMPLETE: i64 = 5;

/// A queryable entity: its fields (for filters) and where its ids start (ranges apart, so an id
/// of the wrong kind is not found by accident).
pub struct Entity {
    pub name: &'static str,
    pub fields: &'static [&'static str],
    first_id: i64,
}

pub const ENTITIES: &[Entity] = &[
    Entity {
        name: "Companies",
        fields: &[
            "id",
            "companyName",
            "companyNumber",
            "companyType",
            "parentCompanyID",
            "isActive",
        ],
        first_id: 100,
    },
    Entity {
        name: "Contacts",
        fields: &[
            "id",
            "companyID",
            "firstName",
            "lastName",
            "emailAddress",
            "emailAddress2",
            "emailAddress3",
            "isActive",
            "primaryContact",
        ],
        first_id: 1_000,
    },
    Entity {
        name: "Tickets",
        fields: &[
            "id",
            "companyID",
            "title",
            "description",
            "status",
            "priority",
            "queueID",
            "contactID",
            "contractID",
            "ticketType",
            "issueType",
            "subIssueType",
            "source",
            "externalID",
            "ticketNumber",
            "createDate",
            "completedDate",
            "companyLocationID",
            "lastActivityDate",
        ],
        first_id: 7_000,
    },
    Entity {
        name: "TicketNotes",
        fields: &[
            "id",
            "ticketID",
            "title",
            "description",
            "noteType",
            "publish",
            "createDateTime",
        ],
        first_id: 9_000,
    },
    Entity {
        name: "Contracts",
        fields: &[
            "id",
            "companyID",
            "contractName",
            "contractType",
            "status",
            "startDate",
            "endDate",
        ],
        first_id: 300,
    },
    Entity {
        name: "Services",
        fields: &[
            "id",
            "name",
            "description",
            "unitCost",
            "unitPrice",
            "periodType",
            "billingCodeID",
            "isActive",
        ],
        first_id: 500,
    },
    Entity {
        name: "ContractServices",
        fields: &["id", "contractID", "serviceID", "unitCost", "unitPrice"],
        first_id: 600,
    },
    Entity {
        name: "ContractServiceUnits",
        fields: &[
            "id",
            "contractID",
            "contractServiceID",
            "serviceID",
            "startDate",
            "endDate",
            "units",
            "price",
            "cost",
        ],
        first_id: 0,
    },
    Entity {
        name: "BillingCodes",
        fields: &["id", "name", "useType", "isActive"],
        first_id: 40,
    },
];

pub fn entity(name: &str) -> Option<&'static Entity> {
    ENTITIES.iter().find(|e| e.name.eq_ignore_ascii_case(name))
}

/// One picklist value.
#[derive(Clone, Debug)]
pub struct Pick {
    pub value: i64,
    pub label: String,
    pub active: bool,
    pub parent: Option<i64>,
}

impl Pick {
    fn new(value: i64, label: &str) -> Pick {
        Pick {
            value,
            label: label.to_string(),
            active: true,
            parent: None,
        }
    }
}

fn picks(labels: &[String]) -> Vec<Pick> {
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| Pick::new(i as i64 + 1, l))
        .collect()
}

/// A refused request: HTTP status and Autotask's message.
#[derive(Debug, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

fn bad(message: impl Into<String>) -> Refusal {
    Refusal {
        status: 400,
        message: message.into(),
    }
}

/// Reference errors come back as 500 with a message, as Autotask sends them ("read the body").
fn missing_reference(field: &str, value: i64) -> Refusal {
    Refusal {
        status: 500,
        message: format!("Value {value} does not exist for the field {field}."),
    }
}

pub struct Store {
    pub rows: BTreeMap<&'static str, BTreeMap<i64, Value>>,
    next: BTreeMap<&'static str, i64>,
    /// (entity, field) → values.
    pub picklists: BTreeMap<(&'static str, &'static str), Vec<Pick>>,
    /// `ContractServiceAdjustments` as posted (create-only in Autotask: never listed there).
    pub adjustments: Vec<Value>,
    /// Requests counted against the database's hourly threshold this hour (ours and, through
    /// the admin API, "other integrations").
    pub requests_this_hour: u64,
    pub hour_started: std::time::Instant,
}

fn now_wire() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl Store {
    pub fn from_seed(seed: &Seed) -> Store {
        let mut s = Store {
            rows: ENTITIES.iter().map(|e| (e.name, BTreeMap::new())).collect(),
            next: ENTITIES.iter().map(|e| (e.name, e.first_id)).collect(),
            picklists: BTreeMap::new(),
            adjustments: Vec::new(),
            requests_this_hour: 0,
            hour_started: std::time::Instant::now(),
        };
        s.seed_picklists(seed);
        let type_value = |s: &Store, label: &str| s.pick_value("Companies", "companyType", label);
        let mut ids: BTreeMap<String, i64> = BTreeMap::new();
        for c in &seed.companies {
            let company_type = type_value(&s, c.type_.as_deref().unwrap_or("Customer"));
            let id = s.insert(
                "Companies",
                json!({
                    "companyName": c.name,
                    "companyNumber": c.number,
                    "companyType": company_type,
                    "parentCompanyID": null,
                    "isActive": c.active,
                }),
            );
            ids.insert(c.name.clone(), id);
            for k in &c.contacts {
                s.insert(
                    "Contacts",
                    json!({
                        "companyID": id,
                        "firstName": k.first_name,
                        "lastName": k.last_name,
                        "emailAddress": k.email,
                        "emailAddress2": k.email2,
                        "emailAddress3": k.email3,
                        "isActive": i64::from(k.active),
                        "primaryContact": k.primary,
                    }),
                );
            }
            for k in &c.contracts {
                s.insert(
                    "Contracts",
                    json!({
                        "companyID": id,
                        "contractName": k.name,
                        "contractType": k.type_,
                        "status": i64::from(k.active),
                        "startDate": "2026-01-01T00:00:00Z",
                        "endDate": "2027-12-31T00:00:00Z",
                    }),
                );
            }
        }
        for c in &seed.companies {
            if let (Some(p), Some(id)) = (&c.parent, ids.get(&c.name)) {
                let parent = ids.get(p).copied();
                if let Some(row) = s.rows.get_mut("Companies").and_then(|r| r.get_mut(id)) {
                    row["parentCompanyID"] = json!(parent);
                }
            }
        }
        for b in &seed.billing_codes {
            let use_type = s.pick_value("BillingCodes", "useType", &b.use_type);
            s.insert(
                "BillingCodes",
                json!({"name": b.name, "useType": use_type, "isActive": true}),
            );
        }
        for v in &seed.picklists.services {
            s.insert(
                "Services",
                json!({
                    "name": v.name, "description": v.description,
                    "unitCost": v.unit_cost, "unitPrice": v.unit_price,
                    "periodType": 1, "billingCodeID": null, "isActive": true,
                }),
            );
        }
        s
    }

    fn seed_picklists(&mut self, seed: &Seed) {
        let p = &mut self.picklists;
        let lists = &seed.picklists;
        p.insert(("Companies", "companyType"), picks(&seed.company_types));
        p.insert(("Tickets", "queueID"), picks(&lists.queues));
        p.insert(("Tickets", "ticketType"), picks(&lists.ticket_types));
        p.insert(("Tickets", "source"), picks(&lists.sources));
        p.insert(("Tickets", "priority"), picks(&lists.priorities));
        let mut statuses: Vec<Pick> = lists
            .statuses
            .iter()
            .map(|s| Pick {
                active: s.active,
                ..Pick::new(s.value, &s.label)
            })
            .collect();
        if !statuses.iter().any(|s| s.value == STATUS_COMPLETE) {
            statuses.push(Pick::new(STATUS_COMPLETE, "Complete"));
        }
        p.insert(("Tickets", "status"), statuses);
        let mut issues = Vec::new();
        let mut subs = Vec::new();
        for (i, it) in lists.issue_types.iter().enumerate() {
            let value = i as i64 + 1;
            issues.push(Pick::new(value, &it.name));
            for name in &it.sub_issue_types {
                // Sub-issue values are unique across issue types, as in Autotask.
                let mut pick = Pick::new(subs.len() as i64 + 1, name);
                pick.parent = Some(value);
                subs.push(pick);
            }
        }
        p.insert(("Tickets", "issueType"), issues);
        p.insert(("Tickets", "subIssueType"), subs);
        p.insert(("TicketNotes", "noteType"), picks(&lists.note_types));
        p.insert(
            ("TicketNotes", "publish"),
            vec![
                Pick::new(1, "All Autotask Users"),
                Pick::new(2, "Internal Only"),
            ],
        );
        p.insert(
            ("Services", "periodType"),
            vec![
                Pick::new(1, "Monthly"),
                Pick::new(2, "Quarterly"),
                Pick::new(3, "Semi-Annual"),
                Pick::new(4, "Yearly"),
            ],
        );
        let mut use_types = vec!["General".to_string(), "Material Cost Code".to_string()];
        for b in &seed.billing_codes {
            if !use_types.contains(&b.use_type) {
                use_types.push(b.use_type.clone());
            }
        }
        p.insert(("BillingCodes", "useType"), picks(&use_types));
    }

    fn pick_value(&self, entity: &'static str, field: &'static str, label: &str) -> Option<i64> {
        self.picklists
            .get(&(entity, field))?
            .iter()
            .find(|p| p.label.eq_ignore_ascii_case(label))
            .map(|p| p.value)
    }

    fn picklist_has(&self, entity: &'static str, field: &'static str, value: i64) -> bool {
        self.picklists
            .get(&(entity, field))
            .is_some_and(|l| l.iter().any(|p| p.value == value && p.active))
    }

    pub fn insert(&mut self, entity: &'static str, mut obj: Value) -> i64 {
        let next = self.next.entry(entity).or_insert(1);
        let id = *next;
        *next += 1;
        obj["id"] = json!(id);
        self.rows.entry(entity).or_default().insert(id, obj);
        id
    }

    pub fn get(&self, entity: &str, id: i64) -> Option<&Value> {
        let e = entity_name(entity)?;
        self.rows.get(e)?.get(&id)
    }

    fn exists(&self, entity: &'static str, id: i64) -> bool {
        self.rows.get(entity).is_some_and(|r| r.contains_key(&id))
    }

    fn int(obj: &Value, name: &str) -> Option<i64> {
        field(obj, name).and_then(Value::as_i64)
    }

    /// Checks a picklist field of a ticket.
    fn check_pick(&self, field: &'static str, value: Option<i64>) -> Result<(), Refusal> {
        match value {
            Some(v) if !self.picklist_has("Tickets", field, v) => Err(missing_reference(field, v)),
            _ => Ok(()),
        }
    }

    /// `POST /Tickets`: companyID, title, status and priority are required, and queueID unless
    /// a resource is assigned; every reference and picklist value must exist; a sub-issue type
    /// must belong to the issue type; contact and contract must be the company's.
    pub fn create_ticket(&mut self, t: TicketIn) -> Result<i64, Refusal> {
        let company = t.company_id.ok_or_else(|| bad("companyID is required."))?;
        let title = t
            .title
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("title is required."))?;
        if title.chars().count() > 255 {
            return Err(bad("title exceeds the maximum length of 255."));
        }
        if t.description
            .as_deref()
            .is_some_and(|d| d.chars().count() > 8_000)
        {
            return Err(bad("description exceeds the maximum length of 8000."));
        }
        let status = t.status.ok_or_else(|| bad("status is required."))?;
        let priority = t.priority.ok_or_else(|| bad("priority is required."))?;
        if t.queue_id.is_none() && t.assigned_resource_id.is_none() {
            return Err(bad("queueID is required when no resource is assigned."));
        }
        if !self.exists("Companies", company) {
            return Err(missing_reference("companyID", company));
        }
        self.check_pick("status", Some(status))?;
        self.check_pick("priority", Some(priority))?;
        self.check_pick("queueID", t.queue_id)?;
        self.check_pick("ticketType", t.ticket_type)?;
        self.check_pick("issueType", t.issue_type)?;
        self.check_pick("subIssueType", t.sub_issue_type)?;
        self.check_pick("source", t.source)?;
        if let Some(sub) = t.sub_issue_type {
            let parent = self.picklists[&("Tickets", "subIssueType")]
                .iter()
                .find(|p| p.value == sub)
                .and_then(|p| p.parent);
            if t.issue_type.is_none() || parent != t.issue_type {
                return Err(bad(format!(
                    "subIssueType {sub} does not belong to issueType {:?}.",
                    t.issue_type
                )));
            }
        }
        if let Some(c) = t.contact_id {
            let of = self
                .get("Contacts", c)
                .and_then(|k| Self::int(k, "companyID"));
            if of != Some(company) {
                return Err(missing_reference("contactID", c));
            }
        }
        if let Some(c) = t.contract_id {
            let of = self
                .get("Contracts", c)
                .and_then(|k| Self::int(k, "companyID"));
            if of != Some(company) {
                return Err(missing_reference("contractID", c));
            }
        }
        let now = now_wire();
        let seq = self.rows["Tickets"].len() + 1;
        let number = format!("T{}.{seq:04}", Utc::now().format("%Y%m%d"));
        let completed = (status == STATUS_COMPLETE).then(|| now.clone());
        Ok(self.insert(
            "Tickets",
            json!({
                "companyID": company,
                "title": title,
                "description": t.description.unwrap_or_default(),
                "status": status,
                "priority": priority,
                "queueID": t.queue_id,
                "contactID": t.contact_id,
                "contractID": t.contract_id,
                "ticketType": t.ticket_type,
                "issueType": t.issue_type,
                "subIssueType": t.sub_issue_type,
                "source": t.source,
                "externalID": t.external_id,
                "companyLocationID": t.company_location_id,
                "ticketNumber": number,
                "createDate": now,
                "lastActivityDate": now,
                "completedDate": completed,
            }),
        ))
    }

    /// `PATCH /Tickets`: the given fields change; status Complete sets `completedDate`, any
    /// other status clears it.
    pub fn patch_ticket(&mut self, mut p: PatchIn) -> Result<i64, Refusal> {
        let id = p
            .remove("id")
            .and_then(|v| v.as_i64())
            .ok_or_else(|| bad("id is required to update a ticket."))?;
        if !self.exists("Tickets", id) {
            return Err(Refusal {
                status: 404,
                message: format!("Ticket {id} not found."),
            });
        }
        for (k, v) in &p {
            if !ENTITIES[2].fields.iter().any(|f| f.eq_ignore_ascii_case(k))
                || k.eq_ignore_ascii_case("ticketNumber")
            {
                return Err(bad(format!("{k} cannot be updated on a ticket.")));
            }
            if k == "status" {
                let s = v.as_i64().ok_or_else(|| bad("status must be a number."))?;
                self.check_pick("status", Some(s))?;
            }
        }
        let now = now_wire();
        let row = self
            .rows
            .get_mut("Tickets")
            .and_then(|r| r.get_mut(&id))
            .expect("checked above");
        for (k, v) in p {
            row[k.as_str()] = v;
        }
        let complete = row["status"].as_i64() == Some(STATUS_COMPLETE);
        row["completedDate"] = if complete { json!(now) } else { Value::Null };
        row["lastActivityDate"] = json!(now);
        Ok(id)
    }

    /// `POST /Tickets/{id}/Notes`: description, noteType and publish are required.
    pub fn create_note(&mut self, ticket: i64, n: NoteIn) -> Result<i64, Refusal> {
        if !self.exists("Tickets", ticket) {
            return Err(Refusal {
                status: 404,
                message: format!("Ticket {ticket} not found."),
            });
        }
        let description = n
            .description
            .filter(|d| !d.trim().is_empty())
            .ok_or_else(|| bad("description is required."))?;
        if description.chars().count() > 32_000 {
            return Err(bad("description exceeds the maximum length of 32000."));
        }
        let note_type = n.note_type.ok_or_else(|| bad("noteType is required."))?;
        let publish = n.publish.ok_or_else(|| bad("publish is required."))?;
        if !self.picklist_has("TicketNotes", "noteType", note_type) {
            return Err(missing_reference("noteType", note_type));
        }
        if !self.picklist_has("TicketNotes", "publish", publish) {
            return Err(missing_reference("publish", publish));
        }
        if n.title.as_deref().is_some_and(|t| t.chars().count() > 250) {
            return Err(bad("title exceeds the maximum length of 250."));
        }
        let now = now_wire();
        if let Some(t) = self
            .rows
            .get_mut("Tickets")
            .and_then(|r| r.get_mut(&ticket))
        {
            t["lastActivityDate"] = json!(now);
        }
        Ok(self.insert(
            "TicketNotes",
            json!({
                "ticketID": ticket,
                "title": n.title,
                "description": description,
                "noteType": note_type,
                "publish": publish,
                "createDateTime": now,
            }),
        ))
    }

    /// `POST /Services`: name, periodType and billingCodeID are required.
    pub fn create_service(&mut self, s: ServiceIn) -> Result<i64, Refusal> {
        let name = s
            .name
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| bad("name is required."))?;
        let period = s
            .period_type
            .ok_or_else(|| bad("periodType is required."))?;
        let code = s
            .billing_code_id
            .ok_or_else(|| bad("billingCodeID is required."))?;
        if !self.exists("BillingCodes", code) {
            return Err(missing_reference("billingCodeID", code));
        }
        if !self.picklist_has("Services", "periodType", period) {
            return Err(missing_reference("periodType", period));
        }
        let taken = self.rows["Services"].values().any(|v| {
            v["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(&name))
                && v["isActive"] == true
        });
        if taken {
            return Err(bad(format!("A service named {name} already exists.")));
        }
        Ok(self.insert("Services", json!({
            "name": name, "description": s.description.unwrap_or_default(),
            "unitCost": s.unit_cost.unwrap_or(0.0), "unitPrice": s.unit_price.unwrap_or(0.0),
            "periodType": period, "billingCodeID": code, "isActive": s.is_active.unwrap_or(true),
        })))
    }

    /// `PATCH` of a service or a contract service: only the listed fields may change.
    pub fn patch_row(
        &mut self,
        entity: &'static str,
        allowed: &[&str],
        mut p: PatchIn,
    ) -> Result<i64, Refusal> {
        let id = p
            .remove("id")
            .and_then(|v| v.as_i64())
            .ok_or_else(|| bad("id is required to update."))?;
        if !self.exists(entity, id) {
            return Err(Refusal {
                status: 404,
                message: format!("{entity} {id} not found."),
            });
        }
        if let Some(k) = p.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(bad(format!("{k} cannot be updated on {entity}.")));
        }
        let row = self
            .rows
            .get_mut(entity)
            .and_then(|r| r.get_mut(&id))
            .expect("checked above");
        for (k, v) in p {
            row[k.as_str()] = v;
        }
        Ok(id)
    }

    /// `POST /Contracts/{id}/Services`: a service may be on a contract once.
    pub fn create_contract_service(
        &mut self,
        contract: i64,
        c: ContractServiceIn,
    ) -> Result<i64, Refusal> {
        if !self.exists("Contracts", contract) {
            return Err(Refusal {
                status: 404,
                message: format!("Contract {contract} not found."),
            });
        }
        if c.contract_id.is_some_and(|k| k != contract) {
            return Err(bad("contractID does not match the parent contract."));
        }
        let service = c.service_id.ok_or_else(|| bad("serviceID is required."))?;
        if !self.exists("Services", service) {
            return Err(missing_reference("serviceID", service));
        }
        let dup = self.rows["ContractServices"]
            .values()
            .any(|v| v["contractID"] == contract && v["serviceID"] == service);
        if dup {
            return Err(bad(format!(
                "Service {service} is already on contract {contract}; adjust its units instead."
            )));
        }
        Ok(self.insert(
            "ContractServices",
            json!({
                "contractID": contract, "serviceID": service,
                "unitCost": c.unit_cost.unwrap_or(0.0), "unitPrice": c.unit_price.unwrap_or(0.0),
            }),
        ))
    }

    /// `POST /ContractServiceAdjustments`: units of an existing contract service change from the
    /// effective date; the units per month are recomputed.
    pub fn create_adjustment(&mut self, a: AdjustmentIn) -> Result<i64, Refusal> {
        let cs = a
            .contract_service_id
            .ok_or_else(|| bad("contractServiceID is required."))?;
        let row = self
            .get("ContractServices", cs)
            .cloned()
            .ok_or_else(|| missing_reference("contractServiceID", cs))?;
        if a.contract_id
            .is_some_and(|c| Some(c) != row["contractID"].as_i64())
        {
            return Err(bad("contractID does not match the contract service."));
        }
        if a.service_id
            .is_some_and(|s| Some(s) != row["serviceID"].as_i64())
        {
            return Err(bad("serviceID does not match the contract service."));
        }
        let change = a
            .unit_change
            .ok_or_else(|| bad("unitChange is required."))?;
        if change == 0 {
            return Err(bad("unitChange must not be 0."));
        }
        let effective = a
            .effective_date
            .as_deref()
            .and_then(date_of)
            .ok_or_else(|| bad("effectiveDate is required (a date-time)."))?;
        let id = self.adjustments.len() as i64 + 800;
        self.adjustments.push(json!({
            "id": id,
            "contractID": row["contractID"],
            "contractServiceID": cs,
            "serviceID": row["serviceID"],
            "effectiveDate": format!("{effective}T00:00:00Z"),
            "unitChange": change,
            "adjustedUnitPrice": a.adjusted_unit_price,
            "adjustedUnitCost": a.adjusted_unit_cost,
        }));
        if let Some(r) = self
            .rows
            .get_mut("ContractServices")
            .and_then(|r| r.get_mut(&cs))
        {
            if let Some(p) = a.adjusted_unit_price {
                r["unitPrice"] = json!(p);
            }
            if let Some(c) = a.adjusted_unit_cost {
                r["unitCost"] = json!(c);
            }
        }
        self.recompute_units(cs);
        Ok(id)
    }

    /// *Sandbox*: units per calendar month from the month of the first adjustment to next month;
    /// a month carries the sum of the changes effective on or before its last day.
    fn recompute_units(&mut self, cs: i64) {
        let Some(row) = self.get("ContractServices", cs).cloned() else {
            return;
        };
        let changes: Vec<(NaiveDate, i64)> = self
            .adjustments
            .iter()
            .filter(|a| a["contractServiceID"] == cs)
            .filter_map(|a| {
                Some((
                    date_of(a["effectiveDate"].as_str()?)?,
                    a["unitChange"].as_i64()?,
                ))
            })
            .collect();
        let units = self.rows.entry("ContractServiceUnits").or_default();
        units.retain(|_, v| v["contractServiceID"] != cs);
        let Some(first) = changes.iter().map(|c| c.0).min() else {
            return;
        };
        let today = Utc::now().date_naive();
        let last = next_month(month_start(
            today.max(changes.iter().map(|c| c.0).max().unwrap_or(today)),
        ));
        let mut m = month_start(first);
        let mut i = 0;
        while m <= last {
            let end = next_month(m).pred_opt().unwrap_or(m);
            let n: i64 = changes.iter().filter(|c| c.0 <= end).map(|c| c.1).sum();
            let id = cs * 100 + i;
            units.insert(id, json!({
                "id": id,
                "contractID": row["contractID"], "contractServiceID": cs, "serviceID": row["serviceID"],
                "startDate": format!("{m}T00:00:00Z"), "endDate": format!("{end}T23:59:59Z"),
                "units": n, "price": row["unitPrice"], "cost": row["unitCost"],
            }));
            m = next_month(m);
            i += 1;
        }
    }

    /// The picklist values of an entity's field, as `FieldInformationModel` rows.
    pub fn fields_of(&self, entity: &'static Entity) -> Value {
        let fields: Vec<Value> = entity
            .fields
            .iter()
            .map(|name| {
                let list = self.picklists.get(&(entity.name, *name));
                let values: Vec<Value> = list
                    .map(|l| {
                        l.iter()
                            .enumerate()
                            .map(|(i, p)| json!({
                                "value": p.value.to_string(),
                                "label": p.label,
                                "isDefaultValue": i == 0,
                                "sortOrder": i as i64 + 1,
                                "parentValue": p.parent.map(|v| v.to_string()).unwrap_or_default(),
                                "isActive": p.active,
                                "isSystem": entity.name == "Tickets" && *name == "status" && p.value == STATUS_COMPLETE,
                            }))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut f = json!({
                    "name": name,
                    "dataType": if list.is_some() || name.ends_with("ID") || *name == "id" { "integer" } else { "string" },
                    "length": 0,
                    "isRequired": false,
                    "isReadOnly": *name == "id",
                    "isQueryable": true,
                    "isReference": name.ends_with("ID"),
                    "referenceEntityType": "",
                    "isPickList": list.is_some(),
                    "picklistValues": values,
                });
                if entity.name == "Tickets" && *name == "subIssueType" {
                    f["picklistParentValueField"] = json!("issueType");
                }
                f
            })
            .collect();
        json!({ "fields": fields })
    }
}

fn entity_name(name: &str) -> Option<&'static str> {
    entity(name).map(|e| e.name)
}

pub fn date_of(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

fn next_month(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Store {
        Store::from_seed(&Seed::demo())
    }

    fn ticket(company: i64) -> TicketIn {
        TicketIn {
            company_id: Some(company),
            title: Some("t".into()),
            status: Some(1),
            priority: Some(1),
            queue_id: Some(1),
            ..TicketIn::default()
        }
    }

    #[test]
    fn ticket_creates_check_required_fields_and_references() {
        let mut s = demo();
        assert!(s.create_ticket(ticket(101)).is_ok());
        let table: Vec<(TicketIn, u16, &str)> = vec![
            (
                TicketIn {
                    title: None,
                    ..ticket(101)
                },
                400,
                "title is required",
            ),
            (
                TicketIn {
                    status: None,
                    ..ticket(101)
                },
                400,
                "status is required",
            ),
            (
                TicketIn {
                    queue_id: None,
                    ..ticket(101)
                },
                400,
                "queueID is required",
            ),
            (
                ticket(99_999),
                500,
                "does not exist for the field companyID",
            ),
            (
                TicketIn {
                    priority: Some(77),
                    ..ticket(101)
                },
                500,
                "priority",
            ),
            (
                TicketIn {
                    contact_id: Some(1_000),
                    ..ticket(101)
                },
                500,
                "contactID",
            ),
            (
                TicketIn {
                    issue_type: Some(2),
                    sub_issue_type: Some(1),
                    ..ticket(101)
                },
                400,
                "does not belong",
            ),
            (
                TicketIn {
                    sub_issue_type: Some(1),
                    ..ticket(101)
                },
                400,
                "does not belong",
            ),
        ];
        for (t, status, text) in table {
            let r = s.create_ticket(t).unwrap_err();
            assert_eq!(r.status, status, "{r:?}");
            assert!(r.message.contains(text), "{r:?}");
        }
    }

    #[test]
    fn adjustments_add_units_from_their_month_on() {
        let mut s = demo();
        let svc = s.insert("Services", json!({"name": "S", "isActive": true}));
        let cs = s
            .create_contract_service(
                300,
                ContractServiceIn {
                    service_id: Some(svc),
                    ..Default::default()
                },
            )
            .unwrap();
        let today = Utc::now().format("%Y-%m-%dT00:00:00Z").to_string();
        let adj = |n| AdjustmentIn {
            contract_service_id: Some(cs),
            unit_change: Some(n),
            effective_date: Some(today.clone()),
            ..Default::default()
        };
        s.create_adjustment(adj(5)).unwrap();
        s.create_adjustment(adj(2)).unwrap();
        let units: Vec<i64> = s.rows["ContractServiceUnits"]
            .values()
            .map(|u| u["units"].as_i64().unwrap())
            .collect();
        assert_eq!(units, [7, 7], "this month and next");
        assert!(s.create_adjustment(adj(0)).is_err());
        assert!(
            s.create_contract_service(
                300,
                ContractServiceIn {
                    service_id: Some(svc),
                    ..Default::default()
                }
            )
            .is_err(),
            "a second line"
        );
    }
}
