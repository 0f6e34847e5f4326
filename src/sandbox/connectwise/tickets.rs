//! Service tickets and their notes: validation as the real PSA does it, defaults, closing.

use serde_json::{json, Map, Value};

use super::patch;
use super::state::{info, now, Store, Table, API_MEMBER};
use super::wire::{ApiError, FieldError};

pub const SUMMARY_MAX: usize = 100;
const X_REF_MAX: usize = 100;
const CONTACT_EMAIL_MAX: usize = 250;
const CONTACT_NAME_MAX: usize = 62;
const RECORD_TYPES: &[&str] = &["ServiceTicket", "ProjectTicket", "ProjectIssue"];
const LEVELS: &[&str] = &["Low", "Medium", "High"];

/// ConnectWise's length: .NET string length, UTF-16 code units (an emoji counts two).
pub fn cw_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `processNotifications` of a write: absent means true (ConnectWise notifies by default); a
/// value that is not a boolean fails .NET's conversion with a 500.
fn process_notifications(body: &Value) -> Result<bool, ApiError> {
    match body.get("processNotifications") {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::conversion(
            "String was not recognized as a valid Boolean.",
        )),
    }
}

/// Records the e-mail ConnectWise would send the ticket's contact (the sandbox sends none).
fn notify_contact(store: &mut Store, ticket: i64, what: &str) {
    let email = store
        .get(Table::Tickets, ticket)
        .and_then(|t| t["contact"]["id"].as_i64())
        .and_then(|c| store.get(Table::Contacts, c))
        .and_then(|c| {
            c["communicationItems"]
                .as_array()?
                .iter()
                .find(|i| i["communicationType"] == json!("Email"))
                .and_then(|i| i["value"].as_str().map(str::to_string))
        });
    if let Some(to) = email {
        store.insert(
            Table::Notifications,
            json!({"ticketId": ticket, "to": to, "about": what, "dateSent": now()}),
        );
    }
}

/// `POST /service/tickets`.
pub fn create(store: &mut Store, body: &Value) -> Result<Value, ApiError> {
    let notify = process_notifications(body)?;
    let ticket = build(store, body, None)?;
    let id = store.insert(Table::Tickets, ticket);
    if notify {
        notify_contact(store, id, "ticket created");
    }
    if let Some(text) = body
        .get("initialDescription")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
    {
        // The initial description becomes the first (discussion) note and is not echoed.
        insert_note(store, id, text, true, false, false);
    }
    Ok(store
        .get(Table::Tickets, id)
        .cloned()
        .unwrap_or(Value::Null))
}

/// `PATCH /service/tickets/{id}`: the patched ticket is validated like a new one. Closing it
/// (a closed status) needs Close Service Tickets edit besides Service Tickets edit.
pub fn update(store: &mut Store, id: i64, ops: &Value, may_close: bool) -> Result<Value, ApiError> {
    let old = store.get_or_404(Table::Tickets, id)?.clone();
    let mut doc = old.clone();
    patch::apply(&mut doc, ops)?;
    let ticket = build(store, &doc, Some(&old))?;
    if !may_close && ticket["closedFlag"] == json!(true) && old["closedFlag"] != json!(true) {
        return Err(ApiError::security());
    }
    store.replace(Table::Tickets, id, ticket.clone());
    Ok(ticket)
}

fn text_field<'a>(
    body: &'a Value,
    field: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    match body.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            if cw_len(s) > max {
                errors.push(FieldError::too_long(field, max));
            }
            Some(s.as_str())
        }
        Some(_) => {
            errors.push(FieldError::new(
                "InvalidField",
                field,
                format!("{field} must be text"),
            ));
            None
        }
    }
}

fn enum_field(
    body: &Value,
    field: &str,
    allowed: &[&str],
    default: &str,
    errors: &mut Vec<FieldError>,
) -> String {
    match body.get(field).and_then(Value::as_str) {
        None => default.to_string(),
        Some(v) => match allowed.iter().find(|a| a.eq_ignore_ascii_case(v)) {
            Some(a) => a.to_string(),
            None => {
                errors.push(FieldError::new(
                    "InvalidField",
                    field,
                    format!("{field} must be one of {}", allowed.join(", ")),
                ));
                default.to_string()
            }
        },
    }
}

/// A subtype or item must form a combination the board's `typeSubTypeItemAssociations` list
/// (boards without associations allow any).
fn check_association(
    store: &Store,
    board: Option<i64>,
    type_id: Option<i64>,
    sub_type: Option<i64>,
    item: Option<i64>,
    errors: &mut Vec<FieldError>,
) {
    let Some(board) = board else { return };
    if sub_type.is_none() && item.is_none() {
        return;
    }
    let mut assocs = store
        .all(Table::TypeAssociations)
        .filter(|a| a["board"]["id"].as_i64() == Some(board))
        .peekable();
    if assocs.peek().is_none() {
        return;
    }
    let fits =
        |want: Option<i64>, have: &Value| want.is_none_or(|w| have["id"].as_i64() == Some(w));
    let allowed = assocs.any(|a| {
        fits(type_id, &a["type"]) && fits(sub_type, &a["subType"]) && fits(item, &a["item"])
    });
    if !allowed {
        errors.push(FieldError::new(
            "InvalidField",
            if item.is_some() { "item" } else { "subType" },
            "This type / subtype / item combination is not allowed on the board.",
        ));
    }
}

/// The stored ticket for `body` (a create body, or the patched ticket when `old` is given).
fn build(store: &Store, body: &Value, old: Option<&Value>) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    if !body.is_object() {
        return Err(ApiError::bad_request("the ticket must be a JSON object"));
    }
    let summary = match text_field(body, "summary", SUMMARY_MAX, &mut errors) {
        Some(s) if !s.trim().is_empty() => s.to_string(),
        _ => {
            errors.push(FieldError::required("summary"));
            String::new()
        }
    };
    let company = match body.get("company").filter(|v| !v.is_null()) {
        None => {
            errors.push(FieldError::required("company"));
            None
        }
        Some(r) => store
            .resolve_ref(Table::Companies, r, None, "company", &mut errors)
            .filter(|id| {
                let deleted = store
                    .get(Table::Companies, *id)
                    .is_some_and(|c| c["deletedFlag"] == json!(true));
                if deleted {
                    errors.push(FieldError::new(
                        "InvalidField",
                        "company",
                        "Company has been deleted",
                    ));
                }
                !deleted
            }),
    };
    let board = match body.get("board").filter(|v| !v.is_null()) {
        Some(r) => store.resolve_ref(Table::Boards, r, None, "board", &mut errors),
        None => store
            .all(Table::Boards)
            .find(|b| b["inactiveFlag"] != json!(true))
            .and_then(|b| b["id"].as_i64()),
    };
    let optional = |field: &str, table: Table, scoped: bool, errors: &mut Vec<FieldError>| {
        body.get(field).filter(|v| !v.is_null()).and_then(|r| {
            if scoped && board.is_none() {
                return None;
            }
            store.resolve_ref(table, r, if scoped { board } else { None }, field, errors)
        })
    };
    let status = optional("status", Table::Statuses, true, &mut errors).or_else(|| {
        let b = board?;
        let on_board = || {
            store
                .all(Table::Statuses)
                .filter(move |s| s["board"]["id"].as_i64() == Some(b))
        };
        on_board()
            .find(|s| s["defaultFlag"] == json!(true))
            .or_else(|| on_board().next())
            .and_then(|s| s["id"].as_i64())
    });
    let type_id = optional("type", Table::Types, true, &mut errors);
    let sub_type = optional("subType", Table::Subtypes, true, &mut errors);
    let item = optional("item", Table::Items, true, &mut errors);
    let priority = optional("priority", Table::Priorities, false, &mut errors).or_else(|| {
        store
            .all(Table::Priorities)
            .find(|p| p["defaultFlag"] == json!(true))
            .and_then(|p| p["id"].as_i64())
    });
    check_association(store, board, type_id, sub_type, item, &mut errors);
    let source = optional("source", Table::Sources, false, &mut errors);
    let contact = optional("contact", Table::Contacts, false, &mut errors);
    let agreement = optional("agreement", Table::Agreements, false, &mut errors);
    if let (Some(a), Some(c)) = (agreement, company) {
        if store
            .get(Table::Agreements, a)
            .and_then(|r| r["company"]["id"].as_i64())
            != Some(c)
        {
            errors.push(FieldError::new(
                "InvalidField",
                "agreement",
                "Agreement does not belong to the ticket's company",
            ));
        }
    }
    let x_ref = text_field(body, "externalXRef", X_REF_MAX, &mut errors).map(str::to_string);
    let contact_email =
        text_field(body, "contactEmailAddress", CONTACT_EMAIL_MAX, &mut errors).map(str::to_string);
    let contact_name =
        text_field(body, "contactName", CONTACT_NAME_MAX, &mut errors).map(str::to_string);
    let record_type = enum_field(
        body,
        "recordType",
        RECORD_TYPES,
        "ServiceTicket",
        &mut errors,
    );
    let severity = enum_field(body, "severity", LEVELS, "Medium", &mut errors);
    let impact = enum_field(body, "impact", LEVELS, "Medium", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::invalid("ticket", errors));
    }

    let mut t = Map::new();
    if let Some(id) = old.and_then(|o| o.get("id")) {
        t.insert("id".into(), id.clone());
    }
    t.insert("summary".into(), json!(summary));
    t.insert("recordType".into(), json!(record_type));
    let refs = [
        ("board", Table::Boards, board),
        ("status", Table::Statuses, status),
        ("company", Table::Companies, company),
        ("contact", Table::Contacts, contact),
        ("type", Table::Types, type_id),
        ("subType", Table::Subtypes, sub_type),
        ("item", Table::Items, item),
        ("priority", Table::Priorities, priority),
        ("source", Table::Sources, source),
        ("agreement", Table::Agreements, agreement),
    ];
    for (field, table, id) in refs {
        if let Some(id) = id {
            t.insert(field.into(), store.reference(table, id));
        }
    }
    if let Some(site) = body.get("site").filter(|v| v.is_object()) {
        t.insert("site".into(), site.clone());
    }
    for (field, value) in [
        ("externalXRef", x_ref),
        ("contactEmailAddress", contact_email),
        ("contactName", contact_name),
    ] {
        if let Some(v) = value {
            t.insert(field.into(), json!(v));
        }
    }
    t.insert("severity".into(), json!(severity));
    t.insert("impact".into(), json!(impact));

    // closedFlag follows the status; closing stamps date and member, reopening clears them.
    let closed = status
        .and_then(|s| store.get(Table::Statuses, s))
        .is_some_and(|s| s["closedStatus"] == json!(true));
    let was_closed = old.is_some_and(|o| o["closedFlag"] == json!(true));
    t.insert("closedFlag".into(), json!(closed));
    if closed {
        let (date, by) = match old.filter(|_| was_closed) {
            Some(o) => (o["closedDate"].clone(), o["closedBy"].clone()),
            None => (json!(now()), json!(API_MEMBER)),
        };
        t.insert("closedDate".into(), date);
        t.insert("closedBy".into(), by);
    }
    let mut meta = info();
    if let Some(entered) = old.and_then(|o| o["_info"].get("dateEntered")) {
        meta["dateEntered"] = entered.clone();
    }
    t.insert("_info".into(), meta);
    Ok(Value::Object(t))
}

fn insert_note(
    store: &mut Store,
    ticket: i64,
    text: &str,
    discussion: bool,
    internal: bool,
    resolution: bool,
) -> i64 {
    store.insert(
        Table::Notes,
        json!({
            "ticketId": ticket, "text": text,
            "detailDescriptionFlag": discussion, "internalAnalysisFlag": internal,
            "resolutionFlag": resolution, "issueFlag": false, "customerUpdatedFlag": false,
            "dateCreated": now(), "createdBy": API_MEMBER, "_info": info(),
        }),
    )
}

/// `POST /service/tickets/{id}/notes`.
pub fn add_note(store: &mut Store, ticket: i64, body: &Value) -> Result<Value, ApiError> {
    store.get_or_404(Table::Tickets, ticket)?;
    let text = body.get("text").and_then(Value::as_str).unwrap_or("");
    if text.trim().is_empty() {
        return Err(ApiError::invalid(
            "serviceNote",
            vec![FieldError::required("text")],
        ));
    }
    let notify = process_notifications(body)?;
    let flag = |f: &str| body.get(f).and_then(Value::as_bool).unwrap_or(false);
    let (discussion, internal, resolution) = (
        flag("detailDescriptionFlag"),
        flag("internalAnalysisFlag"),
        flag("resolutionFlag"),
    );
    if !(discussion || internal || resolution) {
        return Err(ApiError::bad_request(
            "Please choose where to display the notes in order to save this record.",
        ));
    }
    let id = insert_note(store, ticket, text, discussion, internal, resolution);
    // Internal notes reach resources only; the contact hears of discussion and resolution notes.
    if notify && (discussion || resolution) {
        notify_contact(store, ticket, "note added");
    }
    Ok(store.get(Table::Notes, id).cloned().unwrap_or(Value::Null))
}
