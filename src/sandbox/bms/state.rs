//! The state of one emulated BMS tenant and the rules its API enforces. No HTTP here: handlers
//! turn requests into the inputs below and [`Fail`]s into BMS-shaped answers.

use std::collections::HashMap;

use chrono::{NaiveDateTime, Utc};

use super::seed::{Seed, Settings};

#[derive(Clone, Debug, PartialEq)]
pub struct Pick {
    pub id: i64,
    pub name: String,
    pub active: bool,
    pub default: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub id: i64,
    pub name: String,
    pub order: i64,
    pub closed: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IssueType {
    pub id: i64,
    pub name: String,
    pub subs: Vec<Pick>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Location {
    pub id: i64,
    pub name: String,
    pub is_main: bool,
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub code: String,
    pub type_name: String,
    pub parent_id: Option<i64>,
    pub active: bool,
    pub locations: Vec<Location>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Contact {
    pub id: i64,
    pub account_id: i64,
    pub location_id: i64,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub active: bool,
    /// `IsPoc`: the account's point of contact.
    pub poc: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ticket {
    pub id: i64,
    pub number: String,
    pub title: String,
    pub details: String,
    pub account_id: i64,
    pub location_id: i64,
    pub contact_id: Option<i64>,
    pub queue_id: Option<i64>,
    pub status_id: i64,
    pub priority_id: i64,
    pub type_id: i64,
    pub issue_type_id: Option<i64>,
    pub sub_issue_type_id: Option<i64>,
    pub source_id: i64,
    pub contract_id: Option<i64>,
    pub open_date: String,
    pub completed_date: Option<String>,
    pub created_on: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    pub id: i64,
    pub ticket_id: i64,
    pub details: String,
    pub internal: bool,
    pub type_id: i64,
    pub note_date: String,
    pub created_on: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub unit_cost: f64,
    pub unit_price: f64,
    pub category_id: Option<i64>,
    pub unit_of_measure_id: Option<i64>,
    pub active: bool,
    pub taxable: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Contract {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub active: bool,
    /// *Sandbox*: every seeded contract runs from the start of 2026 to the end of 2030.
    pub start_date: String,
    pub end_date: String,
}

/// A recurring-service line of a contract. BMS v2 adds these per contract, lists and changes
/// their cost, price and effective date per catalog service (related services), and has no call
/// that reads or changes their units or removes them.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub id: i64,
    pub contract_id: i64,
    pub service_id: i64,
    pub units: i64,
    pub unit_cost: f64,
    pub unit_price: f64,
    pub effective_date: String,
    pub sort_order: i64,
}

/// Filters of `RelatedServicesListFilterDto` the sandbox applies ("contains", any case).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RelatedFilter {
    pub service_name: Option<String>,
    pub contract_name: Option<String>,
    pub account_name: Option<String>,
}

/// `RelatedServicesBulkUpdateValues`: absent = unchanged. (*Sandbox*: `ServiceName` and
/// `ServiceDescription` are accepted and not kept; a line's name is its catalog service's.)
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BulkValues {
    pub unit_cost: Option<f64>,
    pub unit_price: Option<f64>,
    pub effective_date: Option<String>,
}

/// A refusal, answered with HTTP 200 and `success:false` as BMS does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fail {
    /// Required fields missing or out of range: code 400, one sub-error per problem.
    Invalid(Vec<String>),
    /// A business rule (inactive account, service in use, …): code 409.
    Rule(String),
    /// The object named in the path does not exist: code 404.
    NotFound(String),
}

impl Fail {
    pub fn code(&self) -> i64 {
        match self {
            Fail::Invalid(_) => 400,
            Fail::Rule(_) => 409,
            Fail::NotFound(_) => 404,
        }
    }
}

/// A ticket as posted (`TicketInputDto`); `None` = absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TicketIn {
    pub title: Option<String>,
    pub details: Option<String>,
    pub account_id: Option<i64>,
    pub location_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub queue_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub status_id: Option<i64>,
    pub priority_id: Option<i64>,
    pub type_id: Option<i64>,
    pub issue_type_id: Option<i64>,
    pub sub_issue_type_id: Option<i64>,
    pub source_id: Option<i64>,
    pub contract_id: Option<i64>,
    pub open_date: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NoteIn {
    pub details: Option<String>,
    pub internal: Option<bool>,
    pub type_id: Option<i64>,
    pub status_id: Option<i64>,
    pub note_date: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceIn {
    pub name: Option<String>,
    pub description: Option<String>,
    pub unit_cost: Option<f64>,
    pub unit_price: Option<f64>,
    pub category_id: Option<i64>,
    pub unit_of_measure_id: Option<i64>,
    pub active: Option<bool>,
    pub taxable: Option<bool>,
}

/// The service a create or a replacement (`PUT`, whole record) binds: absent fields empty,
/// `Active` as `active_when_absent` says.
fn service_from(id: i64, s: ServiceIn, active_when_absent: bool) -> Service {
    Service {
        id,
        name: s.name.unwrap_or_default().trim().to_string(),
        description: s.description.unwrap_or_default(),
        unit_cost: s.unit_cost.unwrap_or(0.0),
        unit_price: s.unit_price.unwrap_or(0.0),
        category_id: s.category_id,
        unit_of_measure_id: s.unit_of_measure_id,
        active: s.active.unwrap_or(active_when_absent),
        taxable: s.taxable.unwrap_or(false),
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LineIn {
    pub service_id: Option<i64>,
    pub units: Option<i64>,
    pub unit_cost: Option<f64>,
    pub unit_price: Option<f64>,
    pub effective_date: Option<String>,
    pub sort_order: Option<i64>,
}

pub struct Store {
    pub tenant: String,
    pub tenant_id: i64,
    pub settings: Settings,
    next_id: i64,
    ticket_seq: u32,
    pub accounts: Vec<Account>,
    pub contacts: Vec<Contact>,
    pub queues: Vec<Pick>,
    pub ticket_types: Vec<Pick>,
    pub sources: Vec<Pick>,
    pub priorities: Vec<Pick>,
    pub note_types: Vec<Pick>,
    pub statuses: Vec<Status>,
    pub issue_types: Vec<IssueType>,
    pub tickets: Vec<Ticket>,
    pub notes: Vec<Note>,
    pub services: Vec<Service>,
    pub contracts: Vec<Contract>,
    pub lines: Vec<Line>,
}

/// BMS date-times are offset-less; the sandbox keeps UTC.
pub fn now_text() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Now on the tenant's wall clock (`utcOffsetHours`), as BMS stamps `CompletedDate`.
pub fn tenant_now_text(utc_offset_hours: f64) -> String {
    let offset = chrono::Duration::seconds((utc_offset_hours * 3600.0).round() as i64);
    (Utc::now() + offset)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

fn valid_date(s: &str) -> bool {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f").is_ok()
        || chrono::DateTime::parse_from_rfc3339(s.trim()).is_ok()
        || chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").is_ok()
}

fn blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|v| v.trim().is_empty())
}

impl Store {
    pub fn from_seed(seed: &Seed) -> Store {
        let mut w = Store {
            tenant: seed.tenant.clone(),
            tenant_id: 1,
            settings: seed.settings,
            next_id: 1,
            ticket_seq: 0,
            accounts: Vec::new(),
            contacts: Vec::new(),
            queues: Vec::new(),
            ticket_types: Vec::new(),
            sources: Vec::new(),
            priorities: Vec::new(),
            note_types: Vec::new(),
            statuses: Vec::new(),
            issue_types: Vec::new(),
            tickets: Vec::new(),
            notes: Vec::new(),
            services: Vec::new(),
            contracts: Vec::new(),
            lines: Vec::new(),
        };
        for a in &seed.accounts {
            let id = w.id();
            let mut names = a.locations.clone();
            if names.is_empty() {
                names.push("Main".to_string());
            }
            let locations = names
                .iter()
                .enumerate()
                .map(|(i, n)| Location {
                    id: w.id(),
                    name: n.clone(),
                    is_main: i == 0,
                    active: true,
                })
                .collect::<Vec<_>>();
            let main = locations[0].id;
            w.accounts.push(Account {
                id,
                name: a.name.clone(),
                code: a.code.clone().unwrap_or_default(),
                type_name: a.r#type.clone().unwrap_or_else(|| "Customer".into()),
                parent_id: None,
                active: a.active,
                locations,
            });
            for c in &a.contacts {
                let cid = w.id();
                w.contacts.push(Contact {
                    id: cid,
                    account_id: id,
                    location_id: main,
                    first_name: c.first_name.clone(),
                    last_name: c.last_name.clone(),
                    email: c.email.clone(),
                    active: c.active,
                    poc: c.poc,
                });
            }
            for k in &a.contracts {
                let kid = w.id();
                w.contracts.push(Contract {
                    id: kid,
                    account_id: id,
                    name: k.name.clone(),
                    active: k.active,
                    start_date: "2026-01-01T00:00:00".into(),
                    end_date: "2030-12-31T00:00:00".into(),
                });
            }
        }
        for a in &seed.accounts {
            if let Some(p) = &a.parent {
                let pid = w.account_by_name(p).map(|x| x.id);
                if let Some(acc) = w.accounts.iter_mut().find(|x| x.name == a.name) {
                    acc.parent_id = pid;
                }
            }
        }
        // Queues after the first get their ids last (below): adding a queue to a seed then
        // leaves every other id as it was.
        let lists = &seed.picklists;
        let (first_queue, more_queues) = lists.queues.split_at(lists.queues.len().min(1));
        w.queues = w.picks(first_queue, false);
        w.ticket_types = w.picks(&lists.ticket_types, false);
        w.sources = w.picks(&lists.sources, false);
        w.priorities = w.picks(&lists.priorities, false);
        w.note_types = w.picks(&lists.note_types, true);
        for (i, s) in lists.statuses.iter().enumerate() {
            let id = w.id();
            w.statuses.push(Status {
                id,
                name: s.name.clone(),
                order: i as i64 + 1,
                closed: s.closed,
            });
        }
        for it in &lists.issue_types {
            let id = w.id();
            let subs = w.picks(&it.sub_issue_types, false);
            w.issue_types.push(IssueType {
                id,
                name: it.name.clone(),
                subs,
            });
        }
        for s in &lists.services {
            let id = w.id();
            w.services.push(Service {
                id,
                name: s.name.clone(),
                description: s.description.clone(),
                unit_cost: s.unit_cost,
                unit_price: s.unit_price,
                category_id: None,
                unit_of_measure_id: None,
                active: true,
                taxable: false,
            });
        }
        let more = w.picks(more_queues, false);
        w.queues.extend(more);
        w
    }

    fn id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Picklist rows; with `first_default` the first row is the default one.
    fn picks(&mut self, names: &[String], first_default: bool) -> Vec<Pick> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| Pick {
                id: self.id(),
                name: n.clone(),
                active: true,
                default: first_default && i == 0,
            })
            .collect()
    }

    pub fn account(&self, id: i64) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == id)
    }

    pub fn account_by_name(&self, name: &str) -> Option<&Account> {
        self.accounts
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    pub fn status(&self, id: i64) -> Option<&Status> {
        self.statuses.iter().find(|s| s.id == id)
    }

    pub fn ticket(&self, id: i64) -> Option<&Ticket> {
        self.tickets.iter().find(|t| t.id == id)
    }

    pub fn contact(&self, id: i64) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.id == id)
    }

    pub fn service(&self, id: i64) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    pub fn contract(&self, id: i64) -> Option<&Contract> {
        self.contracts.iter().find(|c| c.id == id)
    }

    pub fn issue_type(&self, id: i64) -> Option<&IssueType> {
        self.issue_types.iter().find(|i| i.id == id)
    }

    pub fn location(&self, id: i64) -> Option<(&Account, &Location)> {
        self.accounts
            .iter()
            .find_map(|a| a.locations.iter().find(|l| l.id == id).map(|l| (a, l)))
    }

    /// `POST /v2/servicedesk/tickets`: the Swagger's required fields, then every reference.
    pub fn create_ticket(&mut self, t: TicketIn) -> Result<i64, Fail> {
        let mut missing = Vec::new();
        let required: [(&str, bool); 9] = [
            ("Title", blank(&t.title)),
            ("Details", blank(&t.details)),
            ("AccountId", t.account_id.is_none()),
            ("LocationId", t.location_id.is_none()),
            ("StatusId", t.status_id.is_none()),
            ("PriorityId", t.priority_id.is_none()),
            ("TypeId", t.type_id.is_none()),
            ("SourceId", t.source_id.is_none()),
            ("OpenDate", blank(&t.open_date)),
        ];
        for (name, absent) in required {
            if absent {
                missing.push(format!("'{name}' is required."));
            }
        }
        // Not in the document's `required`, but clients written against live tenants report
        // that a ticket needs a queue or an assignee; the sandbox holds clients to that.
        if t.queue_id.is_none() && t.assignee_id.is_none() {
            missing.push("'QueueId' or 'AssigneeId' is required.".to_string());
        }
        if !missing.is_empty() {
            return Err(Fail::Invalid(missing));
        }
        let mut errors = Vec::new();
        let account_id = t.account_id.unwrap_or_default();
        match self.account(account_id) {
            None => errors.push(format!("Account {account_id} does not exist.")),
            Some(a) if !a.active => errors.push(format!("Account '{}' is inactive.", a.name)),
            Some(_) => {}
        }
        let location_id = t.location_id.unwrap_or_default();
        match self.location(location_id) {
            Some((a, _)) if a.id == account_id => {}
            _ => errors.push(format!(
                "Location {location_id} does not belong to account {account_id}."
            )),
        }
        if let Some(c) = t.contact_id {
            if self.contact(c).is_none_or(|c| c.account_id != account_id) {
                errors.push(format!(
                    "Contact {c} does not belong to account {account_id}."
                ));
            }
        }
        let check = |errors: &mut Vec<String>, what: &str, id: Option<i64>, list: &[Pick]| {
            if let Some(id) = id {
                if !list.iter().any(|p| p.id == id && p.active) {
                    errors.push(format!("{what} {id} does not exist."));
                }
            }
        };
        check(&mut errors, "Queue", t.queue_id, &self.queues);
        check(&mut errors, "Priority", t.priority_id, &self.priorities);
        check(&mut errors, "Ticket type", t.type_id, &self.ticket_types);
        check(&mut errors, "Source", t.source_id, &self.sources);
        let status_id = t.status_id.unwrap_or_default();
        if self.status(status_id).is_none() {
            errors.push(format!("Status {status_id} does not exist."));
        }
        match (t.issue_type_id, t.sub_issue_type_id) {
            (None, Some(_)) => errors.push("'SubIssueTypeId' needs an 'IssueTypeId'.".into()),
            (Some(i), sub) => match self.issue_type(i) {
                None => errors.push(format!("Issue type {i} does not exist.")),
                Some(it) => {
                    if let Some(s) = sub {
                        if !it.subs.iter().any(|x| x.id == s) {
                            errors.push(format!(
                                "Sub-issue type {s} does not belong to issue type {i}."
                            ));
                        }
                    }
                }
            },
            (None, None) => {}
        }
        if let Some(k) = t.contract_id {
            if self.contract(k).is_none_or(|k| k.account_id != account_id) {
                errors.push(format!(
                    "Contract {k} does not belong to account {account_id}."
                ));
            }
        }
        let open_date = t.open_date.unwrap_or_default();
        if !valid_date(&open_date) {
            errors.push(format!("'OpenDate' {open_date:?} is not a date."));
        }
        if !errors.is_empty() {
            return Err(Fail::Invalid(errors));
        }
        let id = self.id();
        self.ticket_seq += 1;
        let now = now_text();
        let closed = self.status(status_id).is_some_and(|s| s.closed);
        self.tickets.push(Ticket {
            id,
            number: format!("T{}.{:04}", Utc::now().format("%Y%m%d"), self.ticket_seq),
            title: t.title.unwrap_or_default(),
            details: t.details.unwrap_or_default(),
            account_id,
            location_id,
            contact_id: t.contact_id,
            queue_id: t.queue_id,
            status_id,
            priority_id: t.priority_id.unwrap_or_default(),
            type_id: t.type_id.unwrap_or_default(),
            issue_type_id: t.issue_type_id,
            sub_issue_type_id: t.sub_issue_type_id,
            source_id: t.source_id.unwrap_or_default(),
            contract_id: t.contract_id,
            open_date,
            completed_date: closed.then(|| tenant_now_text(self.settings.utc_offset_hours)),
            created_on: now,
        });
        Ok(id)
    }

    /// Sets a ticket's status; a closed status stamps `completedDate`, an open one clears it.
    pub fn set_status(&mut self, ticket_id: i64, status_id: i64) -> Result<(), Fail> {
        let closed = self
            .status(status_id)
            .map(|s| s.closed)
            .ok_or_else(|| Fail::Invalid(vec![format!("Status {status_id} does not exist.")]))?;
        let completed = tenant_now_text(self.settings.utc_offset_hours);
        let t = self
            .tickets
            .iter_mut()
            .find(|t| t.id == ticket_id)
            .ok_or_else(|| Fail::NotFound("Ticket not found.".into()))?;
        t.status_id = status_id;
        if closed {
            if t.completed_date.is_none() {
                t.completed_date = Some(completed);
            }
        } else {
            t.completed_date = None;
        }
        Ok(())
    }

    /// `POST …/tickets/{id}/notes`: `Details`, `IsInternal`, `TypeId`, `NoteDate` are required.
    pub fn add_note(&mut self, ticket_id: i64, n: NoteIn) -> Result<i64, Fail> {
        if self.ticket(ticket_id).is_none() {
            return Err(Fail::NotFound("Ticket not found.".into()));
        }
        let mut errors = Vec::new();
        if blank(&n.details) {
            errors.push("'Details' is required.".to_string());
        }
        if n.internal.is_none() {
            errors.push("'IsInternal' is required.".to_string());
        }
        match n.type_id {
            None => errors.push("'TypeId' is required.".to_string()),
            Some(t) if !self.note_types.iter().any(|p| p.id == t && p.active) => {
                errors.push(format!("Note type {t} does not exist."))
            }
            Some(_) => {}
        }
        match &n.note_date {
            None => errors.push("'NoteDate' is required.".to_string()),
            Some(d) if !valid_date(d) => errors.push(format!("'NoteDate' {d:?} is not a date.")),
            Some(_) => {}
        }
        if let Some(s) = n.status_id {
            if self.status(s).is_none() {
                errors.push(format!("Status {s} does not exist."));
            }
        }
        if !errors.is_empty() {
            return Err(Fail::Invalid(errors));
        }
        if let Some(s) = n.status_id {
            self.set_status(ticket_id, s)?;
        }
        let id = self.id();
        self.notes.push(Note {
            id,
            ticket_id,
            details: n.details.unwrap_or_default(),
            internal: n.internal.unwrap_or(false),
            type_id: n.type_id.unwrap_or_default(),
            note_date: n.note_date.unwrap_or_default(),
            created_on: now_text(),
        });
        Ok(id)
    }

    /// `POST …/tickets/{id}/resolve`: a comment is required; without `StatusId` the first closed
    /// status is used. The comment is kept as a note of the default note type.
    pub fn resolve(
        &mut self,
        ticket_id: i64,
        comment: Option<String>,
        status_id: Option<i64>,
        internal: bool,
    ) -> Result<(), Fail> {
        if self.ticket(ticket_id).is_none() {
            return Err(Fail::NotFound("Ticket not found.".into()));
        }
        if blank(&comment) {
            return Err(Fail::Invalid(vec!["'Comment' is required.".into()]));
        }
        let status = match status_id.filter(|s| *s != 0) {
            Some(s) => s,
            None => self
                .statuses
                .iter()
                .find(|s| s.closed)
                .map(|s| s.id)
                .ok_or_else(|| Fail::Rule("The tenant has no closed status.".into()))?,
        };
        self.set_status(ticket_id, status)?;
        let id = self.id();
        let type_id = self
            .note_types
            .iter()
            .find(|p| p.default)
            .or(self.note_types.first())
            .map(|p| p.id)
            .unwrap_or_default();
        self.notes.push(Note {
            id,
            ticket_id,
            details: comment.unwrap_or_default(),
            internal,
            type_id,
            note_date: now_text(),
            created_on: now_text(),
        });
        Ok(())
    }

    fn check_service(&self, s: &ServiceIn, except: Option<i64>) -> Result<(), Fail> {
        let mut errors = Vec::new();
        if blank(&s.name) {
            errors.push("'Name' is required.".to_string());
        }
        for (what, v) in [("UnitCost", s.unit_cost), ("UnitPrice", s.unit_price)] {
            if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                errors.push(format!("'{what}' must be zero or more."));
            }
        }
        if !errors.is_empty() {
            return Err(Fail::Invalid(errors));
        }
        let name = s.name.as_deref().unwrap_or_default().trim();
        if self
            .services
            .iter()
            .any(|x| Some(x.id) != except && x.name.eq_ignore_ascii_case(name))
        {
            return Err(Fail::Rule(format!(
                "A service named '{name}' already exists."
            )));
        }
        Ok(())
    }

    pub fn create_service(&mut self, s: ServiceIn) -> Result<i64, Fail> {
        self.check_service(&s, None)?;
        let id = self.id();
        // A new service is active unless the body says otherwise.
        self.services.push(service_from(id, s, true));
        Ok(id)
    }

    /// `PUT …/services/{id}` replaces the whole service: absent fields become empty.
    pub fn replace_service(&mut self, id: i64, s: ServiceIn) -> Result<(), Fail> {
        if self.service(id).is_none() {
            return Err(Fail::NotFound("Service not found.".into()));
        }
        self.check_service(&s, Some(id))?;
        if let Some(x) = self.services.iter_mut().find(|x| x.id == id) {
            // A replacement without `Active` is inactive (the field becomes empty).
            *x = service_from(id, s, false);
        }
        Ok(())
    }

    pub fn delete_service(&mut self, id: i64) -> Result<(), Fail> {
        if self.service(id).is_none() {
            return Err(Fail::NotFound("Service not found.".into()));
        }
        if self.lines.iter().any(|l| l.service_id == id) {
            return Err(Fail::Rule(
                "The service is used by a contract and cannot be deleted.".into(),
            ));
        }
        self.services.retain(|s| s.id != id);
        Ok(())
    }

    /// `POST …/recurringservices/{contractId}/services`: adds every line; returns their ids.
    pub fn add_lines(&mut self, contract_id: i64, lines: Vec<LineIn>) -> Result<Vec<i64>, Fail> {
        let Some(contract) = self.contract(contract_id) else {
            return Err(Fail::NotFound("Contract not found.".into()));
        };
        if !contract.active {
            return Err(Fail::Rule(format!(
                "Contract '{}' is not active.",
                contract.name
            )));
        }
        if lines.is_empty() {
            return Err(Fail::Invalid(vec![
                "At least one service is required.".into()
            ]));
        }
        let mut errors = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            match l.service_id {
                None => errors.push(format!("[{i}] 'ServiceId' is required.")),
                Some(s) if self.service(s).is_none() => {
                    errors.push(format!("[{i}] Service {s} does not exist."))
                }
                Some(_) => {}
            }
            if l.units.is_none_or(|u| u < 0) {
                errors.push(format!("[{i}] 'Units' must be zero or more."));
            }
            if let Some(d) = &l.effective_date {
                if !valid_date(d) {
                    errors.push(format!("[{i}] 'EffectiveDate' {d:?} is not a date."));
                }
            }
        }
        if !errors.is_empty() {
            return Err(Fail::Invalid(errors));
        }
        let mut ids = Vec::new();
        for l in lines {
            let id = self.id();
            let service_id = l.service_id.unwrap_or_default();
            let (cost, price) = self
                .service(service_id)
                .map(|s| (s.unit_cost, s.unit_price))
                .unwrap_or_default();
            self.lines.push(Line {
                id,
                contract_id,
                service_id,
                units: l.units.unwrap_or_default(),
                unit_cost: l.unit_cost.unwrap_or(cost),
                unit_price: l.unit_price.unwrap_or(price),
                effective_date: l.effective_date.unwrap_or_else(now_text),
                sort_order: l.sort_order.unwrap_or_default(),
            });
            ids.push(id);
        }
        Ok(ids)
    }

    /// Lines of one catalog service across contracts (`…/services/{id}/relatedservices/search`),
    /// "contains" filters on contract, account and service names, newest first. Ended lines
    /// (zero cost and price) are lines too: BMS keeps them.
    pub fn related_lines(&self, service_id: i64, f: &RelatedFilter) -> Result<Vec<&Line>, Fail> {
        let Some(service) = self.service(service_id) else {
            return Err(Fail::NotFound("Service not found.".into()));
        };
        let has = |hay: &str, needle: &Option<String>| {
            needle
                .as_deref()
                .is_none_or(|n| hay.to_lowercase().contains(&n.trim().to_lowercase()))
        };
        if !has(&service.name, &f.service_name) {
            return Ok(Vec::new());
        }
        let mut rows: Vec<&Line> = self
            .lines
            .iter()
            .filter(|l| l.service_id == service_id)
            .filter(|l| {
                let contract = self.contract(l.contract_id);
                let account = contract.and_then(|k| self.account(k.account_id));
                has(contract.map_or("", |k| k.name.as_str()), &f.contract_name)
                    && has(account.map_or("", |a| a.name.as_str()), &f.account_name)
            })
            .collect();
        rows.sort_by_key(|l| std::cmp::Reverse(l.id));
        Ok(rows)
    }

    /// `…/relatedservices/bulkupdate`: sets cost, price and effective date on the chosen lines of
    /// one service. Every chosen line must be a line of that service on that contract; nothing
    /// changes unless all are. Units cannot be changed (the document's values have none).
    pub fn bulk_update_lines(
        &mut self,
        service_id: i64,
        chosen: &[(i64, i64)],
        values: &BulkValues,
    ) -> Result<usize, Fail> {
        if self.service(service_id).is_none() {
            return Err(Fail::NotFound("Service not found.".into()));
        }
        let mut errors = Vec::new();
        if chosen.is_empty() {
            errors.push("At least one contract service must be selected.".to_string());
        }
        for (contract, line) in chosen {
            let ok = self
                .lines
                .iter()
                .any(|l| l.id == *line && l.contract_id == *contract && l.service_id == service_id);
            if !ok {
                errors.push(format!(
                    "Contract service {line} of contract {contract} is not a line of service {service_id}."
                ));
            }
        }
        for (what, v) in [
            ("UnitCost", values.unit_cost),
            ("UnitPrice", values.unit_price),
        ] {
            if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                errors.push(format!("'{what}' must be zero or more."));
            }
        }
        if let Some(d) = &values.effective_date {
            if !valid_date(d) {
                errors.push(format!("'EffectiveDate' {d:?} is not a date."));
            }
        }
        if !errors.is_empty() {
            return Err(Fail::Invalid(errors));
        }
        let mut n = 0;
        for l in self.lines.iter_mut() {
            if chosen.iter().any(|(_, id)| *id == l.id) {
                if let Some(c) = values.unit_cost {
                    l.unit_cost = c;
                }
                if let Some(p) = values.unit_price {
                    l.unit_price = p;
                }
                if let Some(d) = &values.effective_date {
                    l.effective_date = d.clone();
                }
                n += 1;
            }
        }
        Ok(n)
    }

    /// Ticket counts per account name, for a glance at `/_sandbox/state`.
    pub fn ticket_counts(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for t in &self.tickets {
            let name = self
                .account(t.account_id)
                .map(|a| a.name.clone())
                .unwrap_or_default();
            *m.entry(name).or_insert(0) += 1;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Store {
        Store::from_seed(&Seed::demo())
    }

    fn pick(list: &[Pick], name: &str) -> i64 {
        list.iter().find(|p| p.name == name).unwrap().id
    }

    fn good_ticket(w: &Store) -> TicketIn {
        let contoso = w.account_by_name("Contoso Ltd").unwrap();
        TicketIn {
            title: Some("Too Many Downloads".into()),
            details: Some("bob downloaded 900 files".into()),
            account_id: Some(contoso.id),
            location_id: Some(contoso.locations[0].id),
            status_id: Some(w.statuses[0].id),
            priority_id: Some(pick(&w.priorities, "High")),
            type_id: Some(pick(&w.ticket_types, "Alert")),
            source_id: Some(pick(&w.sources, "SaaS Alerts")),
            open_date: Some("2026-11-24T10:00:00".into()),
            queue_id: Some(w.queues[0].id),
            ..TicketIn::default()
        }
    }

    #[test]
    fn seed_ids_are_stable_and_distinct() {
        let a = demo();
        let b = demo();
        assert_eq!(a.accounts, b.accounts);
        let mut ids: Vec<i64> = a.accounts.iter().map(|x| x.id).collect();
        ids.extend(a.contacts.iter().map(|c| c.id));
        ids.extend(a.statuses.iter().map(|s| s.id));
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    #[test]
    fn ticket_validation_reports_every_problem() {
        let mut w = demo();
        let fabrikam = w.account_by_name("Fabrikam Inc").unwrap().clone();
        let good = good_ticket(&w);
        let it = &w.issue_types[0];
        let other_sub = w.issue_types[1].id;
        let table: Vec<(TicketIn, Vec<&str>)> = vec![
            (
                TicketIn::default(),
                vec!["'Title' is required.", "'OpenDate' is required."],
            ),
            (
                TicketIn {
                    location_id: Some(fabrikam.locations[0].id),
                    ..good.clone()
                },
                vec!["does not belong to account"],
            ),
            (
                TicketIn {
                    issue_type_id: Some(it.id),
                    sub_issue_type_id: Some(other_sub),
                    ..good.clone()
                },
                vec!["Sub-issue type"],
            ),
            (
                TicketIn {
                    status_id: Some(999_999),
                    ..good.clone()
                },
                vec!["Status 999999 does not exist."],
            ),
        ];
        for (input, wants) in table {
            match w.create_ticket(input) {
                Err(Fail::Invalid(errs)) => {
                    for want in wants {
                        assert!(errs.iter().any(|e| e.contains(want)), "{want}: {errs:?}");
                    }
                }
                other => panic!("expected a validation failure, got {other:?}"),
            }
        }
        assert!(w.tickets.is_empty());
        let id = w.create_ticket(good).unwrap();
        assert_eq!(w.ticket(id).unwrap().completed_date, None);
    }

    #[test]
    fn closing_and_reopening_moves_completed_date() {
        let mut w = demo();
        let id = w.create_ticket(good_ticket(&w)).unwrap();
        assert_eq!(
            w.resolve(id, None, None, true),
            Err(Fail::Invalid(vec!["'Comment' is required.".into()]))
        );
        w.resolve(id, Some("false positive".into()), None, true)
            .unwrap();
        let t = w.ticket(id).unwrap();
        assert!(t.completed_date.is_some());
        assert_eq!(w.status(t.status_id).unwrap().name, "Closed");
        assert_eq!(w.notes.len(), 1);
        let new = w.statuses[0].id;
        w.set_status(id, new).unwrap();
        assert_eq!(w.ticket(id).unwrap().completed_date, None);
        assert!(matches!(
            w.resolve(424_242, Some("x".into()), None, true),
            Err(Fail::NotFound(_))
        ));
    }

    #[test]
    fn notes_need_their_required_fields() {
        let mut w = demo();
        let id = w.create_ticket(good_ticket(&w)).unwrap();
        let Err(Fail::Invalid(errs)) = w.add_note(id, NoteIn::default()) else {
            panic!("expected a validation failure");
        };
        assert_eq!(errs.len(), 4, "{errs:?}");
        let n = NoteIn {
            details: Some("second alert".into()),
            internal: Some(true),
            type_id: Some(w.note_types[0].id),
            note_date: Some(now_text()),
            status_id: None,
        };
        let note = w.add_note(id, n).unwrap();
        assert_eq!(w.notes.iter().find(|x| x.id == note).unwrap().ticket_id, id);
    }

    #[test]
    fn services_are_unique_by_name_and_protected_while_used() {
        let mut w = demo();
        let s = ServiceIn {
            name: Some("SaaS Alerts Monitoring".into()),
            unit_cost: Some(1.0),
            unit_price: Some(3.0),
            ..ServiceIn::default()
        };
        let id = w.create_service(s.clone()).unwrap();
        assert!(matches!(w.create_service(s.clone()), Err(Fail::Rule(_))));
        assert!(matches!(
            w.create_service(ServiceIn::default()),
            Err(Fail::Invalid(_))
        ));
        let contract = w.contracts[0].id;
        let lines = w
            .add_lines(
                contract,
                vec![LineIn {
                    service_id: Some(id),
                    units: Some(42),
                    ..LineIn::default()
                }],
            )
            .unwrap();
        let line = w.lines.iter().find(|l| l.id == lines[0]).unwrap();
        assert_eq!(
            (line.units, line.unit_cost, line.unit_price),
            (42, 1.0, 3.0)
        );
        assert!(matches!(w.delete_service(id), Err(Fail::Rule(_))));
        assert!(matches!(
            w.add_lines(
                contract,
                vec![LineIn {
                    service_id: Some(id),
                    units: Some(-1),
                    ..LineIn::default()
                }]
            ),
            Err(Fail::Invalid(_))
        ));
        assert!(matches!(
            w.add_lines(999_999, vec![]),
            Err(Fail::NotFound(_))
        ));
    }
}
