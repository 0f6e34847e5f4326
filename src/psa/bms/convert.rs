//! Pure conversions between BMS wire rows and the neutral types, and the small decisions the
//! client makes on its own: which location, which status counts as closed, where our marker sits.

use crate::psa::{Company, Contact, ContractLine, MinorUnits, PsaError, PsaResult, Ticket};

use super::wire::{WAccount, WContact, WLine, WTicket};

/// BMS tickets have no external-reference field, but the ticket list filters on `Details`. Our
/// marker therefore travels as the last line of the details, in brackets, so a "contains" search
/// for the bracketed token finds exactly our ticket.
pub fn marker_token(marker: &str) -> String {
    format!("[psa-operator:{marker}]")
}

/// The details we send: the description, a blank line, the marker token.
pub fn details_with_marker(description: &str, marker: &str) -> String {
    let description = description.trim_end();
    if description.is_empty() {
        marker_token(marker)
    } else {
        format!("{description}\n\n{}", marker_token(marker))
    }
}

/// The marker in a ticket's details, if we put one there.
pub fn marker_in(details: &str) -> Option<String> {
    const OPEN: &str = "[psa-operator:";
    let start = details.rfind(OPEN)? + OPEN.len();
    let rest = &details[start..];
    let end = rest.find(']')?;
    let m = rest[..end].trim();
    (!m.is_empty()).then(|| m.to_string())
}

/// Which statuses count as closed. BMS closes a ticket by setting `completedDate`, and its status
/// lookup carries no documented "closed" flag, so the status list is judged by name: the usual
/// closing words, alone or as the first word (`Closed - Duplicate`). A ticket read back is closed
/// when its `completedDate` is set, whatever its status is called.
pub fn is_closed_status_name(name: &str) -> bool {
    const CLOSING: [&str; 6] = [
        "closed",
        "completed",
        "complete",
        "resolved",
        "cancelled",
        "canceled",
    ];
    let first = name
        .trim()
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .to_ascii_lowercase();
    CLOSING.contains(&first.as_str())
}

/// Case- and space-insensitive equality, for names typed by people.
pub fn same_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    norm(a) == norm(b)
}

/// BMS ids are integers; a neutral id that is not one cannot name a BMS object.
pub fn num_id(what: &str, id: &str) -> PsaResult<i64> {
    id.trim().parse::<i64>().map_err(|_| PsaError::Permanent {
        status: None,
        message: format!("{what} {id:?} is not a Kaseya BMS id (BMS ids are numbers)"),
    })
}

/// BMS money is a JSON double; ours is exact ten-thousandths.
pub fn money_to_wire(v: MinorUnits) -> f64 {
    v as f64 / 10_000.0
}

pub fn money_from_wire(v: Option<f64>) -> MinorUnits {
    match v {
        Some(f) if f.is_finite() => (f * 10_000.0).round() as MinorUnits,
        _ => 0,
    }
}

/// An account summary row as a neutral company; the main active location is the ticket location.
pub fn company(a: WAccount) -> Company {
    let locations = a.locations.unwrap_or_default();
    let location_id = locations
        .iter()
        .filter(|l| l.is_active != Some(false))
        .max_by_key(|l| l.is_main == Some(true))
        .map(|l| l.id.clone());
    Company {
        id: a.id,
        identifier: a.account_code.unwrap_or_default(),
        name: a.account_name.unwrap_or_default(),
        company_type: a.account_type.filter(|t| !t.trim().is_empty()),
        parent_id: a.parent_id,
        active: a.is_active != Some(false),
        default_contact_id: None,
        default_contact_name: None,
        location_id,
    }
}

pub fn contact(c: WContact) -> Contact {
    Contact {
        id: c.id,
        company_id: c.account_id,
        first_name: c.first_name.unwrap_or_default().trim().to_string(),
        last_name: c.last_name.unwrap_or_default().trim().to_string(),
        email: c
            .email
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty()),
    }
}

pub fn ticket(t: WTicket) -> Ticket {
    let completed = t
        .completed_date
        .as_deref()
        .is_some_and(|d| !d.trim().is_empty());
    let closed = completed || t.status_name.as_deref().is_some_and(is_closed_status_name);
    Ticket {
        marker: t.details.as_deref().and_then(marker_in),
        id: t.id,
        summary: t.title.unwrap_or_default(),
        company_id: t.account_id,
        status_id: t.status_id,
        closed,
    }
}

/// A line as returned by the add call; ids the answer leaves out are filled from the request.
pub fn line(l: WLine, contract_id: &str, service_id: &str) -> ContractLine {
    ContractLine {
        id: l.id,
        contract_id: l.contract_id.unwrap_or_else(|| contract_id.to_string()),
        service_id: l.service_id.unwrap_or_else(|| service_id.to_string()),
        quantity: l
            .units
            .filter(|u| u.is_finite())
            .map(|u| u.round() as i64)
            .unwrap_or(0),
        cost: money_from_wire(l.unit_cost),
        price: money_from_wire(l.unit_price),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psa::bms::wire::{decode, WAccount};
    use serde_json::json;

    #[test]
    fn marker_round_trips_through_details() {
        let table = [
            ("Too many downloads by bob", "evt-1", Some("evt-1")),
            ("", "evt-2", Some("evt-2")),
            ("text [psa-operator:old]\n\nmore", "evt-3", Some("evt-3")),
        ];
        for (desc, marker, want) in table {
            let d = details_with_marker(desc, marker);
            assert_eq!(marker_in(&d).as_deref(), want, "{d}");
            assert!(d.ends_with(&marker_token(marker)));
        }
        assert_eq!(marker_in("no marker here"), None);
        assert_eq!(marker_in("[psa-operator:]"), None);
        assert_eq!(marker_in("[psa-operator:unterminated"), None);
    }

    #[test]
    fn closed_statuses_are_recognised_by_name() {
        let table = [
            ("Completed", true),
            ("Closed", true),
            ("closed - duplicate", true),
            ("Resolved", true),
            ("Cancelled", true),
            ("New", false),
            ("In Progress", false),
            ("Waiting on customer", false),
            ("Not closed yet", false),
            ("", false),
        ];
        for (name, want) in table {
            assert_eq!(is_closed_status_name(name), want, "{name}");
        }
    }

    #[test]
    fn money_converts_exactly_at_four_decimals() {
        let table = [
            (15_000, 1.5),
            (40_000, 4.0),
            (1, 0.0001),
            (-25_000, -2.5),
            (0, 0.0),
        ];
        for (minor, wire) in table {
            assert_eq!(money_to_wire(minor), wire);
            assert_eq!(money_from_wire(Some(wire)), minor);
        }
        assert_eq!(money_from_wire(Some(0.1 + 0.2)), 3_000);
        assert_eq!(money_from_wire(None), 0);
        assert_eq!(money_from_wire(Some(f64::NAN)), 0);
    }

    #[test]
    fn main_active_location_is_chosen() {
        let a: WAccount = decode(
            "account",
            json!({"id": 5, "accountname": "Contoso Ltd", "accountcode": "CONTOSO",
                   "locations": [
                     {"id": 1, "ismain": true, "isactive": false},
                     {"id": 2, "ismain": false, "isactive": true},
                     {"id": 3, "ismain": true, "isactive": true}]}),
        )
        .unwrap();
        let c = company(a);
        assert_eq!(c.location_id.as_deref(), Some("3"));
        assert_eq!(c.identifier, "CONTOSO");
        assert!(c.active);
        let none: WAccount = decode("account", json!({"id": 6, "isactive": false})).unwrap();
        let c = company(none);
        assert_eq!(c.location_id, None);
        assert!(!c.active);
    }

    #[test]
    fn names_compare_loosely_and_ids_strictly() {
        assert!(same_name(" Jane  Doe", "jane doe"));
        assert!(!same_name("Jane Doe", "Jane Do"));
        assert_eq!(num_id("account", " 42 ").unwrap(), 42);
        let e = num_id("account", "CONTOSO").unwrap_err();
        assert!(!e.is_transient());
    }
}
