//! The sandbox's state: one table of JSON records per ConnectWise collection, shaped as the API
//! returns them, so conditions evaluate against exactly what a client reads.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::seed::Seed;
use super::wire::{ApiError, FieldError};

/// The collections the sandbox keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Companies,
    Contacts,
    Boards,
    Statuses,
    Types,
    Subtypes,
    Items,
    Priorities,
    Sources,
    Tickets,
    Notes,
    Agreements,
    Additions,
    Catalog,
    ProcurementTypes,
    Subcategories,
    /// E-mails ConnectWise would have sent (ticket and note writes with processNotifications).
    Notifications,
    /// `/service/boards/{id}/typeSubTypeItemAssociations`.
    TypeAssociations,
}

impl Table {
    pub const ALL: [Table; 18] = [
        Table::Companies,
        Table::Contacts,
        Table::Boards,
        Table::Statuses,
        Table::Types,
        Table::Subtypes,
        Table::Items,
        Table::Priorities,
        Table::Sources,
        Table::Tickets,
        Table::Notes,
        Table::Agreements,
        Table::Additions,
        Table::Catalog,
        Table::ProcurementTypes,
        Table::Subcategories,
        Table::Notifications,
        Table::TypeAssociations,
    ];

    /// Name in `/_sandbox/state`.
    pub fn key(self) -> &'static str {
        match self {
            Table::Companies => "companies",
            Table::Contacts => "contacts",
            Table::Boards => "boards",
            Table::Statuses => "statuses",
            Table::Types => "types",
            Table::Subtypes => "subtypes",
            Table::Items => "items",
            Table::Priorities => "priorities",
            Table::Sources => "sources",
            Table::Tickets => "tickets",
            Table::Notes => "notes",
            Table::Agreements => "agreements",
            Table::Additions => "additions",
            Table::Catalog => "catalog",
            Table::ProcurementTypes => "procurementTypes",
            Table::Subcategories => "subcategories",
            Table::Notifications => "notifications",
            Table::TypeAssociations => "typeSubTypeItemAssociations",
        }
    }

    /// Singular resource name used in error messages ("Ticket 12 not found").
    pub fn resource(self) -> &'static str {
        match self {
            Table::Companies => "Company",
            Table::Contacts => "Contact",
            Table::Boards => "Board",
            Table::Statuses => "Status",
            Table::Types => "Type",
            Table::Subtypes => "SubType",
            Table::Items => "Item",
            Table::Priorities => "Priority",
            Table::Sources => "Source",
            Table::Tickets => "Ticket",
            Table::Notes => "Note",
            Table::Agreements => "Agreement",
            Table::Additions => "Addition",
            Table::Catalog => "CatalogItem",
            Table::ProcurementTypes => "ProductType",
            Table::Subcategories => "ProductSubcategory",
            Table::Notifications => "Notification",
            Table::TypeAssociations => "TypeSubTypeItemAssociation",
        }
    }

    /// Top-level fields a condition may name (others are refused, as the real API refuses
    /// unknown fields); `_info` is allowed everywhere.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Table::Companies => &[
                "id",
                "identifier",
                "name",
                "status",
                "types",
                "deletedFlag",
                "defaultContact",
                "site",
                "phoneNumber",
                "parentCompany",
            ],
            Table::Contacts => &[
                "id",
                "firstName",
                "lastName",
                "company",
                "inactiveFlag",
                "types",
                "communicationItems",
                "defaultFlag",
            ],
            Table::Boards => &[
                "id",
                "name",
                "inactiveFlag",
                "projectFlag",
                "location",
                "department",
            ],
            Table::Statuses => &[
                "id",
                "name",
                "board",
                "sortOrder",
                "displayOnBoard",
                "inactive",
                "closedStatus",
                "defaultFlag",
                "timeEntryNotAllowed",
                "escalationStatus",
            ],
            Table::Types => &[
                "id",
                "name",
                "category",
                "defaultFlag",
                "inactiveFlag",
                "board",
            ],
            Table::Subtypes | Table::Items => &["id", "name", "inactiveFlag", "board"],
            Table::Priorities => &["id", "name", "color", "sortOrder", "defaultFlag"],
            Table::Sources => &["id", "name", "defaultFlag"],
            Table::Tickets => &[
                "id",
                "summary",
                "recordType",
                "board",
                "status",
                "company",
                "contact",
                "contactName",
                "contactEmailAddress",
                "priority",
                "type",
                "subType",
                "item",
                "source",
                "team",
                "agreement",
                "site",
                "externalXRef",
                "severity",
                "impact",
                "closedFlag",
                "closedDate",
                "closedBy",
                "parentTicketId",
                "customFields",
            ],
            Table::Notes => &[
                "id",
                "ticketId",
                "text",
                "detailDescriptionFlag",
                "internalAnalysisFlag",
                "resolutionFlag",
                "issueFlag",
                "customerUpdatedFlag",
                "dateCreated",
                "createdBy",
                "member",
                "contact",
            ],
            Table::Agreements => &[
                "id",
                "name",
                "type",
                "company",
                "contact",
                "agreementStatus",
                "cancelledFlag",
                "startDate",
                "endDate",
                "noEndingDateFlag",
                "parentAgreement",
                "billStartDate",
                "prorateFlag",
                "nextInvoiceDate",
                "billCycleId",
            ],
            Table::Additions => &[
                "id",
                "product",
                "quantity",
                "lessIncluded",
                "unitPrice",
                "unitCost",
                "billCustomer",
                "effectiveDate",
                "cancelledDate",
                "taxableFlag",
                "invoiceDescription",
                "description",
                "agreementId",
                "agreementStatus",
                "billedQuantity",
                "extPrice",
            ],
            Table::Catalog => &[
                "id",
                "identifier",
                "description",
                "customerDescription",
                "subcategory",
                "type",
                "category",
                "productClass",
                "price",
                "cost",
                "inactiveFlag",
                "taxableFlag",
                "unitOfMeasure",
                "manufacturer",
                "vendor",
                "recurringFlag",
            ],
            Table::ProcurementTypes => &["id", "name", "typeXref", "inactiveFlag"],
            Table::Subcategories => &["id", "name", "category", "inactiveFlag"],
            Table::Notifications => &["id", "ticketId", "to", "about", "dateSent"],
            Table::TypeAssociations => &["id", "type", "subType", "item", "board"],
        }
    }
}

/// The first day of the month after `day`.
pub fn first_of_next_month(day: chrono::NaiveDate) -> chrono::NaiveDate {
    use chrono::Datelike;
    let (y, m) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    chrono::NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(day)
}

/// Who the API member is on records it touches (`enteredBy`, `closedBy`).
pub const API_MEMBER: &str = "APIMember";

pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn info() -> Value {
    let t = now();
    json!({"dateEntered": t, "lastUpdated": t, "enteredBy": API_MEMBER, "updatedBy": API_MEMBER})
}

/// All records, by table and id.
#[derive(Clone, Debug, Default)]
pub struct Store {
    tables: BTreeMap<Table, BTreeMap<i64, Value>>,
    next_id: BTreeMap<Table, i64>,
}

impl Store {
    pub fn insert(&mut self, table: Table, mut record: Value) -> i64 {
        let next = self.next_id.entry(table).or_insert(1);
        let id = *next;
        *next += 1;
        if let Value::Object(m) = &mut record {
            m.insert("id".into(), json!(id));
        }
        self.tables.entry(table).or_default().insert(id, record);
        id
    }

    pub fn get(&self, table: Table, id: i64) -> Option<&Value> {
        self.tables.get(&table)?.get(&id)
    }

    /// The record or ConnectWise's 404.
    pub fn get_or_404(&self, table: Table, id: i64) -> Result<&Value, ApiError> {
        self.get(table, id)
            .ok_or_else(|| ApiError::not_found(format!("{} {id} not found", table.resource())))
    }

    pub fn replace(&mut self, table: Table, id: i64, record: Value) {
        self.tables.entry(table).or_default().insert(id, record);
    }

    pub fn remove(&mut self, table: Table, id: i64) -> Option<Value> {
        self.tables.get_mut(&table)?.remove(&id)
    }

    /// Records in id order.
    pub fn all(&self, table: Table) -> impl Iterator<Item = &Value> {
        self.tables.get(&table).into_iter().flat_map(|t| t.values())
    }

    /// `{ "companies": [...], ... }` for `/_sandbox/state`.
    pub fn dump(&self) -> Value {
        let mut m = Map::new();
        for t in Table::ALL {
            m.insert(t.key().into(), Value::Array(self.all(t).cloned().collect()));
        }
        Value::Object(m)
    }

    /// Finds a record of `table` referenced as `{id}` or `{name}` / `{identifier}`, within
    /// `board` when the table is board-scoped. Pushes a field error when it cannot.
    pub fn resolve_ref(
        &self,
        table: Table,
        reference: &Value,
        board: Option<i64>,
        field: &str,
        errors: &mut Vec<FieldError>,
    ) -> Option<i64> {
        let in_scope = |r: &&Value| match board {
            Some(b) => r["board"]["id"].as_i64() == Some(b),
            None => true,
        };
        let found = if let Some(id) = reference.get("id").and_then(Value::as_i64) {
            self.get(table, id).filter(in_scope)
        } else if let Some(name) = reference
            .get("name")
            .or_else(|| reference.get("identifier"))
            .and_then(Value::as_str)
        {
            let key = if reference.get("name").is_some() {
                "name"
            } else {
                "identifier"
            };
            self.all(table).filter(in_scope).find(|r| {
                r[key]
                    .as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(name))
            })
        } else {
            errors.push(FieldError::new(
                "InvalidField",
                field,
                format!("{field} must be given by id or name"),
            ));
            return None;
        };
        match found {
            Some(r) => r["id"].as_i64(),
            None => {
                let scope = board.map(|b| format!(" on board {b}")).unwrap_or_default();
                errors.push(FieldError::missing_reference(
                    field,
                    format!("{} {} not found{scope}", table.resource(), reference),
                ));
                None
            }
        }
    }

    /// `{id, name}` reference to a record (plus `identifier` for companies).
    pub fn reference(&self, table: Table, id: i64) -> Value {
        let Some(r) = self.get(table, id) else {
            return json!({ "id": id });
        };
        match table {
            Table::Companies => json!({"id": id, "identifier": r["identifier"], "name": r["name"]}),
            Table::Contacts => json!({
                "id": id,
                "name": format!("{} {}", r["firstName"].as_str().unwrap_or(""), r["lastName"].as_str().unwrap_or("")).trim()
            }),
            Table::Priorities => json!({"id": id, "name": r["name"], "sort": r["sortOrder"]}),
            Table::Agreements => json!({"id": id, "name": r["name"], "type": r["type"]}),
            Table::Catalog => json!({"id": id, "identifier": r["identifier"]}),
            _ => json!({"id": id, "name": r["name"]}),
        }
    }

    /// Builds the state a seed describes.
    pub fn from_seed(seed: &Seed) -> Store {
        let mut s = Store::default();
        let agreement_type =
            |t: &Option<String>| t.clone().unwrap_or_else(|| "Managed Services".into());
        for c in &seed.companies {
            let company_id = s.insert(
                Table::Companies,
                json!({
                    "identifier": c.identifier, "name": c.name,
                    "status": {"id": 1, "name": "Active"},
                    "types": [{"id": 1, "name": c.company_type.clone().unwrap_or_else(|| "Client".into())}],
                    "deletedFlag": c.deleted,
                    "_info": info(),
                }),
            );
            let company_ref = s.reference(Table::Companies, company_id);
            let mut first_contact = None;
            for p in &c.contacts {
                let items: Vec<Value> = p
                    .email
                    .iter()
                    .map(|e| json!({"type": {"id": 1, "name": "Email"}, "value": e, "defaultFlag": true, "communicationType": "Email"}))
                    .collect();
                let id = s.insert(
                    Table::Contacts,
                    json!({
                        "firstName": p.first_name, "lastName": p.last_name, "company": company_ref,
                        "inactiveFlag": p.inactive, "communicationItems": items, "_info": info(),
                    }),
                );
                first_contact.get_or_insert(id);
            }
            if let Some(contact) = first_contact {
                let contact_ref = s.reference(Table::Contacts, contact);
                if let Some(Value::Object(m)) = s
                    .tables
                    .get_mut(&Table::Companies)
                    .and_then(|t| t.get_mut(&company_id))
                {
                    m.insert("defaultContact".into(), contact_ref);
                }
            }
            for a in &c.agreements {
                let status = a.status.clone().unwrap_or_else(|| "Active".into());
                let stamp =
                    |d: &Option<String>| d.as_ref().map(|d| format!("{}T00:00:00Z", d.trim()));
                let mut record = json!({
                    "name": a.name, "type": {"id": 1, "name": agreement_type(&a.agreement_type)},
                    "company": company_ref, "agreementStatus": status,
                    "cancelledFlag": status.eq_ignore_ascii_case("cancelled"),
                    "startDate": stamp(&a.start_date).unwrap_or_else(|| "2024-01-01T00:00:00Z".into()),
                    "noEndingDateFlag": true, "prorateFlag": a.prorate.unwrap_or(true),
                    "billCycleId": 1, "_info": info(),
                });
                // Monthly billing in advance: without proration the current month is invoiced
                // already, so the next invoice is on the first of next month.
                let next_invoice = stamp(&a.next_invoice_date).or_else(|| {
                    (a.prorate == Some(false)).then(|| {
                        format!(
                            "{}T00:00:00Z",
                            first_of_next_month(chrono::Utc::now().date_naive())
                        )
                    })
                });
                for (field, value) in [
                    ("billStartDate", stamp(&a.bill_start_date)),
                    ("nextInvoiceDate", next_invoice),
                ] {
                    if let Some(v) = value {
                        record[field] = json!(v);
                    }
                }
                s.insert(Table::Agreements, record);
            }
        }
        for b in &seed.boards {
            let board_id = s.insert(
                Table::Boards,
                json!({"name": b.name, "inactiveFlag": b.inactive, "projectFlag": false, "_info": info()}),
            );
            let board_ref = s.reference(Table::Boards, board_id);
            for (i, st) in b.statuses.iter().enumerate() {
                s.insert(
                    Table::Statuses,
                    json!({
                        "name": st.name, "board": board_ref, "sortOrder": i, "displayOnBoard": true,
                        "inactive": st.inactive, "closedStatus": st.closed, "defaultFlag": st.default,
                        "timeEntryNotAllowed": st.closed,
                        "escalationStatus": if st.closed { "Resolved" } else { "NotResponded" },
                        "_info": info(),
                    }),
                );
            }
            for t in &b.types {
                let t = t.named();
                s.insert(
                    Table::Types,
                    json!({"name": t.name, "category": "Reactive", "defaultFlag": t.default,
                           "inactiveFlag": t.inactive, "board": board_ref, "_info": info()}),
                );
            }
            for (table, list) in [(Table::Subtypes, &b.subtypes), (Table::Items, &b.items)] {
                for t in list {
                    let t = t.named();
                    s.insert(
                        table,
                        json!({"name": t.name, "inactiveFlag": t.inactive, "board": board_ref, "_info": info()}),
                    );
                }
            }
            for a in &b.associations {
                let on_board = |s: &Store, table: Table, name: &str| {
                    s.all(table)
                        .find(|r| {
                            r["board"]["id"].as_i64() == Some(board_id)
                                && r["name"]
                                    .as_str()
                                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
                        })
                        .and_then(|r| r["id"].as_i64())
                        .map(|id| s.reference(table, id))
                };
                let mut record = json!({"board": board_ref, "_info": info()});
                for (field, table, name) in [
                    ("type", Table::Types, Some(&a.type_)),
                    ("subType", Table::Subtypes, a.sub_type.as_ref()),
                    ("item", Table::Items, a.item.as_ref()),
                ] {
                    if let Some(r) = name.and_then(|n| on_board(&s, table, n)) {
                        record[field] = r;
                    }
                }
                s.insert(Table::TypeAssociations, record);
            }
        }
        for (i, p) in seed.priorities.iter().enumerate() {
            let p = p.named();
            s.insert(
                Table::Priorities,
                json!({"name": p.name, "color": "Custom", "sortOrder": i + 1, "defaultFlag": p.default, "_info": info()}),
            );
        }
        for src in &seed.sources {
            let src = src.named();
            s.insert(
                Table::Sources,
                json!({"name": src.name, "defaultFlag": src.default, "_info": info()}),
            );
        }
        for t in &seed.procurement.types {
            s.insert(
                Table::ProcurementTypes,
                json!({"name": t.name, "typeXref": t.type_xref, "inactiveFlag": false, "_info": info()}),
            );
        }
        for sub in &seed.procurement.subcategories {
            s.insert(
                Table::Subcategories,
                json!({"name": sub, "category": {"id": 1, "name": "Services"}, "inactiveFlag": false, "_info": info()}),
            );
        }
        let first = |s: &Store, t: Table| s.all(t).next().and_then(|r| r["id"].as_i64());
        let (type_id, sub_id) = (
            first(&s, Table::ProcurementTypes),
            first(&s, Table::Subcategories),
        );
        for item in &seed.catalog {
            let type_ref = type_id.map(|i| s.reference(Table::ProcurementTypes, i));
            let sub_ref = sub_id.map(|i| s.reference(Table::Subcategories, i));
            s.insert(
                Table::Catalog,
                json!({
                    "identifier": item.identifier, "description": item.description,
                    "customerDescription": item.description, "type": type_ref, "subcategory": sub_ref,
                    "productClass": "Service", "price": item.price, "cost": item.cost,
                    "inactiveFlag": item.inactive, "taxableFlag": false, "_info": info(),
                }),
            );
        }
        s
    }
}
