//! Pure conversions and the small decisions the Autotask client makes on its own: the zone's
//! base URL, how an error answer is classified, which picklist value is which, the filters we
//! send, the current units of a contract service. Table-tested below.

use chrono::NaiveDate;
use serde_json::{json, Value};

use crate::psa::{
    CatalogService, Company, CompanyKey, Contact, DirectoryContact, LineKey, MinorUnits, Named,
    PsaError, PsaResult, StatusInfo, Ticket,
};

use super::wire::{
    WCompany, WContact, WContractServiceUnit, WErrors, WPicklistValue, WService, WTicket,
};

/// The ticket status Autotask reserves for "Complete" (a system value, the closed status).
pub const STATUS_COMPLETE: i64 = 5;
/// Longest ticket title Autotask accepts.
pub const TITLE_MAX: usize = 255;
/// Longest ticket description.
pub const DESCRIPTION_MAX: usize = 8_000;
/// Longest note description.
pub const NOTE_MAX: usize = 32_000;
/// Longest note title (ours is the note's first line).
pub const NOTE_TITLE_MAX: usize = 250;

/// The company field a look-up by `key` filters on.
pub fn company_field(key: CompanyKey) -> &'static str {
    match key {
        CompanyKey::Identifier => "companyNumber",
        CompanyKey::Name => "companyName",
    }
}

/// That field of a company as Autotask answered it.
pub fn company_value(c: &WCompany, key: CompanyKey) -> Option<&str> {
    match key {
        CompanyKey::Identifier => c.company_number.as_deref(),
        CompanyKey::Name => c.company_name.as_deref(),
    }
}

/// The REST root of a zone: `https://webservices15.autotask.net/atservicesrest` (no trailing
/// slash). Accepts the zone's `url` as `ZoneInformation` returns it (with `/atservicesrest/`) or
/// just the host, in which case `/atservicesrest` is added.
pub fn zone_base(url: &str) -> PsaResult<String> {
    let trimmed = url.trim().trim_end_matches('/');
    if !(trimmed.starts_with("https://") || trimmed.starts_with("http://")) {
        return Err(PsaError::Permanent {
            status: None,
            message: format!("Autotask zone URL must start with https:// (or http:// for a sandbox), got {trimmed:?}"),
        });
    }
    let lower = trimmed.to_ascii_lowercase();
    if let Some(pos) = lower.find("/atservicesrest") {
        // Drop anything after the REST root (e.g. a pasted `/V1.0/...`).
        return Ok(trimmed[..pos + "/atservicesrest".len()].to_string());
    }
    Ok(format!("{trimmed}/atservicesrest"))
}

/// Autotask sends some validation failures as HTTP 500 ("read the body"): a 500 whose message
/// reads like a refusal of the request is permanent; other 5xx are transient.
fn reads_like_validation(message: &str) -> bool {
    const WORDS: [&str; 7] = [
        "required",
        "invalid",
        "does not exist",
        "not valid",
        "cannot be",
        "exceeds",
        "is not allowed",
    ];
    let m = message.to_ascii_lowercase();
    WORDS.iter().any(|w| m.contains(w))
}

/// Classifies an error answer from its status and `{"errors": [...]}` body. The message is the
/// PSA's own text (never a header value).
pub fn classify(status: u16, body: &[u8], retry_after: Option<std::time::Duration>) -> PsaError {
    let errors: WErrors = serde_json::from_slice(body).unwrap_or_default();
    let message = if errors.errors.is_empty() {
        let text = String::from_utf8_lossy(body).trim().to_string();
        if text.is_empty() {
            format!("HTTP {status} without a message")
        } else {
            truncate_chars(&text, 300)
        }
    } else {
        errors.errors.join("; ")
    };
    if status == 500 && !errors.errors.is_empty() && reads_like_validation(&message) {
        return PsaError::Permanent {
            status: Some(status),
            message,
        };
    }
    PsaError::from_status(status, message, retry_after)
}

pub use crate::psa::same_name;

/// Autotask ids are integers; a neutral id that is not one cannot name an Autotask object.
pub fn num_id(what: &str, id: &str) -> PsaResult<i64> {
    crate::psa::parse_numeric_id(id, || {
        format!("{what} {id:?} is not an Autotask id (Autotask ids are numbers)")
    })
}

/// A contract line's contract and service, as the numbers Autotask's queries and bodies take.
pub fn line_ids(key: LineKey<'_>) -> PsaResult<(i64, i64)> {
    Ok((
        num_id("contract", key.contract_id)?,
        num_id("service", key.service_id)?,
    ))
}

/// An optional neutral id as an Autotask integer.
pub fn opt_id(what: &str, id: Option<&String>) -> PsaResult<Option<i64>> {
    id.map(|i| num_id(what, i)).transpose()
}

/// The `itemId` of a create answer, as a neutral id.
pub fn item_id(what: &str, v: Option<&Value>) -> PsaResult<String> {
    match v {
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        _ => Err(PsaError::Permanent {
            status: None,
            message: format!("the Autotask answer to the {what} create carries no itemId"),
        }),
    }
}

pub fn money_to_wire(v: MinorUnits) -> f64 {
    v as f64 / 10_000.0
}

pub fn money_from_wire(v: Option<f64>) -> MinorUnits {
    (v.unwrap_or(0.0) * 10_000.0).round() as MinorUnits
}

/// At most `n` characters (not bytes), so a cut never splits a character.
pub fn truncate_chars(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// A note's title: its first non-empty line, cut to the limit (some ticket categories require one).
pub fn note_title(text: &str) -> String {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("psa-operator");
    truncate_chars(first, NOTE_TITLE_MAX)
}

/// `{"op":"eq","field":…,"value":…}`.
pub fn eq(field: &str, value: impl Into<Value>) -> Value {
    json!({"op": "eq", "field": field, "value": value.into()})
}

pub fn or(items: Vec<Value>) -> Value {
    json!({"op": "or", "items": items})
}

/// The filter for a company's contacts with an e-mail in any of the three address fields.
pub fn contact_email_filter(company_id: i64, email: &str) -> Vec<Value> {
    vec![
        eq("companyID", company_id),
        or(vec![
            eq("emailAddress", email),
            eq("emailAddress2", email),
            eq("emailAddress3", email),
        ]),
    ]
}

/// The active values of a picklist, in Autotask's sort order.
pub fn active_values(values: &[WPicklistValue]) -> Vec<WPicklistValue> {
    let mut out: Vec<WPicklistValue> = values
        .iter()
        .filter(|v| v.is_active != Some(false))
        .cloned()
        .collect();
    out.sort_by_key(|v| v.sort_order.unwrap_or(i64::MAX));
    out
}

pub fn named(v: &WPicklistValue) -> Named {
    Named {
        id: v.value.clone(),
        name: v.label.clone().unwrap_or_else(|| v.value.clone()),
    }
}

/// A status and whether it closes the ticket: only Autotask's system "Complete" (5) does.
pub fn status_info(v: &WPicklistValue) -> StatusInfo {
    StatusInfo {
        closed: v.value.trim() == STATUS_COMPLETE.to_string(),
        id: v.value.clone(),
        name: v.label.clone().unwrap_or_else(|| v.value.clone()),
    }
}

/// The picklist value whose label contains `word` (any case), else the default, else the first.
pub fn preferred_value(values: &[WPicklistValue], word: &str) -> Option<i64> {
    let active = active_values(values);
    let word = word.to_ascii_lowercase();
    active
        .iter()
        .find(|v| {
            v.label
                .as_deref()
                .is_some_and(|l| l.to_ascii_lowercase().contains(&word))
        })
        .or_else(|| active.iter().find(|v| v.is_default_value == Some(true)))
        .or_else(|| active.first())
        .and_then(|v| v.value.trim().parse().ok())
}

pub fn company(c: WCompany, type_name: Option<String>) -> Company {
    Company {
        id: c.id.to_string(),
        identifier: c.company_number.unwrap_or_default(),
        name: c.company_name.unwrap_or_default(),
        company_type: type_name,
        parent_id: c.parent_company_id.map(|p| p.to_string()),
        active: c.is_active != Some(false),
        default_contact_id: None,
        default_contact_name: None,
        location_id: None,
    }
}

/// The contact's address that matched (first of the three fields equal to `email`), else the first one set.
pub fn contact(c: WContact, email: Option<&str>) -> Contact {
    let addresses = [
        c.email_address.clone(),
        c.email_address2.clone(),
        c.email_address3.clone(),
    ];
    let matched = email.and_then(|want| {
        addresses
            .iter()
            .flatten()
            .find(|a| a.trim().eq_ignore_ascii_case(want.trim()))
            .cloned()
    });
    Contact {
        id: c.id.to_string(),
        company_id: c.company_id.map(|i| i.to_string()),
        first_name: c.first_name.unwrap_or_default(),
        last_name: c.last_name.unwrap_or_default(),
        email: matched.or_else(|| addresses.into_iter().flatten().next()),
    }
}

/// A contact of a batched listing: its three addresses and the `primaryContact` flag.
pub fn directory_contact(c: WContact) -> DirectoryContact {
    let emails = [&c.email_address, &c.email_address2, &c.email_address3]
        .into_iter()
        .flatten()
        .filter(|a| !a.trim().is_empty())
        .cloned()
        .collect();
    let primary = c.primary_contact.unwrap_or(false);
    DirectoryContact {
        contact: contact(c, None),
        emails,
        primary,
    }
}

/// `{"op":"in","field":…,"value":[…]}`: one query for many ids.
pub fn any_of(field: &str, ids: &[i64]) -> Value {
    json!({"op": "in", "field": field, "value": ids})
}

/// Ids per `in` condition: the REST API takes at most 500 values in one condition.
pub const IDS_PER_QUERY: usize = 500;

/// Company ids as numbers, in batches one query accepts.
pub fn id_batches(ids: &[String]) -> PsaResult<Vec<Vec<i64>>> {
    let nums: Vec<i64> = ids
        .iter()
        .map(|i| num_id("company", i))
        .collect::<PsaResult<_>>()?;
    Ok(nums.chunks(IDS_PER_QUERY).map(<[i64]>::to_vec).collect())
}

/// Whether one of the contact's three addresses is `email` (any case).
pub fn contact_has_email(c: &WContact, email: &str) -> bool {
    [&c.email_address, &c.email_address2, &c.email_address3]
        .into_iter()
        .flatten()
        .any(|a| a.trim().eq_ignore_ascii_case(email.trim()))
}

pub fn ticket(t: WTicket) -> Ticket {
    let closed = t.status == Some(STATUS_COMPLETE) || t.completed_date.is_some();
    Ticket {
        id: t.id.to_string(),
        summary: t.title.unwrap_or_default(),
        company_id: t.company_id.map(|c| c.to_string()),
        status_id: t.status.map(|s| s.to_string()),
        closed,
        marker: t.external_id.filter(|m| !m.is_empty()),
        // Autotask writes UTC date-times (`2024-01-02T00:00:00.000Z`).
        closed_at_ms: t
            .completed_date
            .as_deref()
            .and_then(|d| chrono::DateTime::parse_from_rfc3339(d.trim()).ok())
            .map(|d| d.timestamp_millis()),
    }
}

pub fn catalog(s: WService) -> CatalogService {
    CatalogService {
        id: s.id.to_string(),
        name: s.name.unwrap_or_default(),
        description: s.description.unwrap_or_default(),
        cost: money_from_wire(s.unit_cost),
        price: money_from_wire(s.unit_price),
    }
}

fn date_of(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

/// The units in force on `today`: the period containing it; else the latest period that started
/// before it; else the earliest future one (an adjustment effective today shows from today). No
/// period at all = 0 units.
pub fn units_on(rows: &[WContractServiceUnit], today: NaiveDate) -> i64 {
    let span = |r: &WContractServiceUnit| {
        (
            r.start_date.as_deref().and_then(date_of),
            r.end_date.as_deref().and_then(date_of),
        )
    };
    let current = rows.iter().find(|r| match span(r) {
        (Some(s), Some(e)) => s <= today && today <= e,
        (Some(s), None) => s <= today,
        _ => false,
    });
    let started = || {
        rows.iter()
            .filter(|r| span(r).0.is_some_and(|s| s <= today))
            .max_by_key(|r| span(r).0)
    };
    let upcoming = || {
        rows.iter()
            .filter(|r| span(r).0.is_some())
            .min_by_key(|r| span(r).0)
    };
    current
        .or_else(started)
        .or_else(upcoming)
        .and_then(|r| r.units)
        .unwrap_or(0)
}

/// The entity a path calls (`/V1.0/Tickets/7/Notes` → `Tickets`): Autotask counts its thread
/// limit per endpoint, which we read as per entity.
pub fn endpoint_of(path: &str) -> String {
    path.trim_start_matches('/')
        .split('/')
        .find(|s| !s.is_empty() && !s.eq_ignore_ascii_case("V1.0"))
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_company_look_up_filters_on_the_field_it_compares() {
        let c: WCompany = serde_json::from_value(json!({
            "id": 7,
            "companyNumber": "CONTOSO",
            "companyName": "Contoso Ltd",
        }))
        .unwrap();
        let table = [
            (CompanyKey::Identifier, "companyNumber", "CONTOSO"),
            (CompanyKey::Name, "companyName", "Contoso Ltd"),
        ];
        for (key, field, value) in table {
            assert_eq!(company_field(key), field, "{key:?}");
            assert_eq!(company_value(&c, key), Some(value), "{key:?}");
        }
    }

    #[test]
    fn zone_urls_become_the_rest_root() {
        let table = [
            (
                "https://webservices15.autotask.net/atservicesrest/",
                "https://webservices15.autotask.net/atservicesrest",
            ),
            (
                "https://webservices15.autotask.net",
                "https://webservices15.autotask.net/atservicesrest",
            ),
            (
                "https://webservices2.autotask.net/ATServicesRest/V1.0/Tickets",
                "https://webservices2.autotask.net/ATServicesRest",
            ),
            (
                "http://127.0.0.1:8083/atservicesrest",
                "http://127.0.0.1:8083/atservicesrest",
            ),
        ];
        for (input, want) in table {
            assert_eq!(zone_base(input).unwrap(), want, "{input}");
        }
        assert!(zone_base("webservices15.autotask.net").is_err());
    }

    #[test]
    fn error_answers_are_classified_from_status_and_body() {
        let table: [(u16, &str, &str, bool); 7] = [
            (401, "", "AuthenticationFailed", false),
            (
                404,
                r#"{"errors":["Ticket 9 not found"]}"#,
                "NotFound",
                false,
            ),
            (
                400,
                r#"{"errors":["title is required"]}"#,
                "PsaRejected",
                false,
            ),
            (
                500,
                r#"{"errors":["Value does not exist for the required field queueID."]}"#,
                "PsaRejected",
                false,
            ),
            (
                500,
                r#"{"errors":["An unexpected error occurred."]}"#,
                "PsaUnavailable",
                true,
            ),
            (503, "<html>down</html>", "PsaUnavailable", true),
            (
                429,
                r#"{"errors":["thread limit"]}"#,
                "PsaUnavailable",
                true,
            ),
        ];
        for (status, body, reason, transient) in table {
            let e = classify(status, body.as_bytes(), None);
            assert_eq!(e.reason(), reason, "{status} {body}");
            assert_eq!(e.is_transient(), transient, "{status} {body}");
        }
        let e = classify(400, br#"{"errors":["a","b"]}"#, None);
        assert!(e.to_string().ends_with("a; b"), "{e}");
    }

    fn pv(value: &str, label: &str, active: bool, sort: i64) -> WPicklistValue {
        WPicklistValue {
            value: value.into(),
            label: Some(label.into()),
            is_active: Some(active),
            is_default_value: None,
            parent_value: None,
            sort_order: Some(sort),
        }
    }

    #[test]
    fn picklists_keep_active_values_in_sort_order_and_only_complete_closes() {
        let values = [
            pv("5", "Complete", true, 3),
            pv("1", "New", true, 1),
            pv("7", "Old", false, 2),
            pv("8", "Waiting Customer", true, 2),
        ];
        let statuses: Vec<StatusInfo> = active_values(&values).iter().map(status_info).collect();
        let names: Vec<(&str, bool)> = statuses
            .iter()
            .map(|s| (s.name.as_str(), s.closed))
            .collect();
        assert_eq!(
            names,
            [
                ("New", false),
                ("Waiting Customer", false),
                ("Complete", true)
            ]
        );
        assert_eq!(preferred_value(&values, "waiting"), Some(8));
        assert_eq!(preferred_value(&values, "nothing"), Some(1));
    }

    #[test]
    fn units_in_force_today() {
        let row = |s: &str, e: Option<&str>, u: i64| WContractServiceUnit {
            start_date: Some(s.into()),
            end_date: e.map(Into::into),
            units: Some(u),
        };
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let rows = [
            row("2026-11-01T00:00:00Z", Some("2026-11-30T23:59:59Z"), 5),
            row("2026-12-01T00:00:00Z", Some("2026-12-31T23:59:59Z"), 7),
        ];
        assert_eq!(units_on(&rows, d("2026-11-15")), 5);
        assert_eq!(units_on(&rows, d("2026-12-02")), 7);
        assert_eq!(units_on(&rows, d("2027-02-01")), 7, "latest started");
        assert_eq!(units_on(&rows, d("2026-10-01")), 5, "earliest upcoming");
        assert_eq!(units_on(&[], d("2026-10-01")), 0);
    }

    #[test]
    fn contacts_match_any_of_the_three_addresses() {
        let c = WContact {
            id: 4,
            company_id: Some(2),
            first_name: Some("Jane".into()),
            last_name: Some("Doe".into()),
            email_address: Some("jane@old.example".into()),
            email_address2: None,
            email_address3: Some("Jane@Contoso.example".into()),
            is_active: Some(1),
            primary_contact: Some(true),
        };
        assert!(contact_has_email(&c, "jane@contoso.example"));
        assert!(!contact_has_email(&c, "doe@contoso.example"));
        let n = contact(c, Some("jane@contoso.example"));
        assert_eq!(n.email.as_deref(), Some("Jane@Contoso.example"));
        assert_eq!(n.full_name(), "Jane Doe");
    }

    #[test]
    fn small_helpers() {
        assert_eq!(endpoint_of("/V1.0/Tickets/7/Notes"), "Tickets");
        assert_eq!(endpoint_of("/V1.0/Companies/query"), "Companies");
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(note_title("\n  first line \nsecond"), "first line");
        assert_eq!(money_from_wire(Some(12.5)), 125_000);
        assert_eq!(money_to_wire(125_000), 12.5);
        assert!(num_id("ticket", "x1").is_err());
        assert_eq!(item_id("ticket", Some(&json!(42))).unwrap(), "42");
        assert!(item_id("ticket", Some(&Value::Null)).is_err());
    }
}
