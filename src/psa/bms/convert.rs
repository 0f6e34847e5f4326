//! Pure conversions between BMS wire rows and the neutral types, and the small decisions the
//! client makes on its own: which location, which status counts as closed, where our marker sits.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::psa::{
    Company, CompanyKey, Contact, ContractLine, DirectoryContact, MinorUnits, PsaResult, Ticket,
};

use super::billing::Related;
use super::wire::{WAccount, WContact, WLine, WRelated, WTicket};

/// BMS tickets have no writable reference field (the document's `RmmTicketReference` is output
/// only), but the ticket list filters on `Details`. Our marker therefore travels as the last line
/// of the details. The list filter is a "contains" match, possibly SQL `LIKE`, so the token holds
/// no `LIKE` metacharacter (`%`, `_`, `[`, `]`, `^`): anything outside `[A-Za-z0-9.:-]` in a
/// marker is written as `~XX` (hex of the byte). Our markers (`psaop-` + hex) need no escaping.
const MARKER_OPEN: &str = "psa-operator-ref:";
/// The bracketed form earlier versions wrote; still recognised when reading a ticket.
const LEGACY_OPEN: &str = "[psa-operator:";

/// The account summary filter a company look-up by `key` sends.
pub fn company_filter(key: CompanyKey) -> &'static str {
    match key {
        CompanyKey::Identifier => "Filter.AccountCode",
        CompanyKey::Name => "Filter.AccountName",
    }
}

/// That field of an account as BMS answered it.
pub fn company_value(a: &WAccount, key: CompanyKey) -> Option<&str> {
    match key {
        CompanyKey::Identifier => a.account_code.as_deref(),
        CompanyKey::Name => a.account_name.as_deref(),
    }
}

pub fn marker_token(marker: &str) -> String {
    let mut out = String::from(MARKER_OPEN);
    for b in marker.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    out
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

/// The marker in a ticket's details, if we put one there (current or legacy form).
pub fn marker_in(details: &str) -> Option<String> {
    let current = details.rfind(MARKER_OPEN).map(|i| i + MARKER_OPEN.len());
    let legacy = details.rfind(LEGACY_OPEN).map(|i| i + LEGACY_OPEN.len());
    let m = match (current, legacy) {
        (Some(c), l) if l.is_none_or(|l| c > l) => {
            let rest = &details[c..];
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            unescape_marker(&rest[..end])?
        }
        (_, Some(l)) => {
            let rest = &details[l..];
            rest[..rest.find(']')?].trim().to_string()
        }
        _ => return None,
    };
    (!m.is_empty()).then_some(m)
}

fn unescape_marker(token: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(token.len());
    let mut it = token.bytes();
    while let Some(b) = it.next() {
        if b == b'~' {
            let hex = [it.next()?, it.next()?];
            bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

/// Whether a name can go into a "contains" filter as it is: no SQL `LIKE` metacharacter that
/// could make BMS miss the literal name. (Results are checked exactly afterwards either way.)
pub fn like_safe(name: &str) -> bool {
    !name.contains(['%', '_', '[', ']', '^'])
}

/// The tenant's wall clock: BMS date-times carry no offset and are read in the tenant's time
/// zone (`userinfo.timeZoneValue`, hours from UTC). An offset outside ±14 h is not trusted.
pub fn tenant_time(now: DateTime<Utc>, offset_hours: Option<f64>) -> NaiveDateTime {
    let secs = offset_hours
        .filter(|h| h.is_finite() && h.abs() <= 14.0)
        .map(|h| (h * 3600.0).round() as i64)
        .unwrap_or(0);
    now.naive_utc() + chrono::Duration::seconds(secs)
}

/// A date-time BMS wrote in the tenant's time zone (`2026-12-02T23:10:00`, fractions allowed)
/// as Unix ms, the inverse of [`tenant_time`]; an RFC 3339 text with its own offset is taken
/// as it says. `None` when it does not parse.
pub fn tenant_instant_ms(text: &str, offset_hours: Option<f64>) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let offset = tenant_time(DateTime::<Utc>::UNIX_EPOCH, offset_hours)
        .and_utc()
        .timestamp_millis();
    Some(local.and_utc().timestamp_millis() - offset)
}

/// A wall-clock time as BMS writes it (`2026-12-02T23:10:00`).
pub fn wire_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The start of that day, for effective dates.
pub fn wire_day(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT00:00:00").to_string()
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

pub use crate::psa::same_name;

/// BMS ids are integers; a neutral id that is not one cannot name a BMS object.
pub fn num_id(what: &str, id: &str) -> PsaResult<i64> {
    crate::psa::parse_numeric_id(id, || {
        format!("{what} {id:?} is not a Kaseya BMS id (BMS ids are numbers)")
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

/// A contact of a batched listing (BMS keeps one address per contact).
pub fn directory_contact(c: WContact) -> DirectoryContact {
    let primary = c.is_poc == Some(true);
    let contact = contact(c);
    DirectoryContact {
        emails: contact.email.iter().cloned().collect(),
        contact,
        primary,
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
        // Needs the tenant's time zone: `BmsClient::get_ticket` fills it in.
        closed_at_ms: None,
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

/// A related-services row, when it names its contract.
pub fn related(r: WRelated) -> Option<Related> {
    Some(Related {
        id: r.id,
        contract_id: r.contract_id?,
        effective_date: r.effective_date.unwrap_or_default(),
        cost: money_from_wire(r.unit_cost),
        price: money_from_wire(r.unit_price),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psa::bms::wire::{decode, WAccount};
    use serde_json::json;

    #[test]
    fn a_company_look_up_filters_on_the_field_it_compares() {
        let a: WAccount = decode(
            "account",
            json!({"id": 7, "accountcode": "CONTOSO", "accountname": "Contoso Ltd"}),
        )
        .unwrap();
        let table = [
            (CompanyKey::Identifier, "Filter.AccountCode", "CONTOSO"),
            (CompanyKey::Name, "Filter.AccountName", "Contoso Ltd"),
        ];
        for (key, filter, value) in table {
            assert_eq!(company_filter(key), filter, "{key:?}");
            assert_eq!(company_value(&a, key), Some(value), "{key:?}");
        }
    }

    #[test]
    fn marker_round_trips_through_details() {
        let table = [
            (
                "Too many downloads by bob",
                "psaop-0a1b2c",
                Some("psaop-0a1b2c"),
            ),
            ("", "evt-2", Some("evt-2")),
            ("text [psa-operator:old]\n\nmore", "evt-3", Some("evt-3")),
            ("odd marker", "a_b%c[d] e~", Some("a_b%c[d] e~")),
        ];
        for (desc, marker, want) in table {
            let d = details_with_marker(desc, marker);
            assert_eq!(marker_in(&d).as_deref(), want, "{d}");
            let token = marker_token(marker);
            assert!(d.ends_with(&token));
            assert!(like_safe(&token), "{token}");
            assert!(!token.contains(char::is_whitespace), "{token}");
        }
        assert_eq!(marker_token("psaop-0a1b"), "psa-operator-ref:psaop-0a1b");
        // Tickets written by earlier versions still carry their marker.
        assert_eq!(
            marker_in("x\n\n[psa-operator:psaop-77]").as_deref(),
            Some("psaop-77")
        );
        assert_eq!(marker_in("no marker here"), None);
        assert_eq!(marker_in("psa-operator-ref:"), None);
        assert_eq!(marker_in("[psa-operator:unterminated"), None);
        assert_eq!(marker_in("psa-operator-ref:bad~G1"), None);
    }

    #[test]
    fn tenant_time_follows_the_tenant_offset() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T23:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let table = [
            (None, "2026-12-02T23:30:00", "2026-12-02T00:00:00"),
            (Some(0.0), "2026-12-02T23:30:00", "2026-12-02T00:00:00"),
            (Some(1.0), "2026-12-03T00:30:00", "2026-12-03T00:00:00"),
            (Some(5.5), "2026-12-03T05:00:00", "2026-12-03T00:00:00"),
            (Some(-5.0), "2026-12-02T18:30:00", "2026-12-02T00:00:00"),
            (Some(99.0), "2026-12-02T23:30:00", "2026-12-02T00:00:00"),
        ];
        for (offset, time, day) in table {
            let t = tenant_time(now, offset);
            assert_eq!(wire_time(t), time, "{offset:?}");
            assert_eq!(wire_day(t), day, "{offset:?}");
        }
    }

    #[test]
    fn completed_dates_in_tenant_time_read_back_as_instants() {
        let utc = DateTime::parse_from_rfc3339("2026-12-02T23:30:00Z")
            .unwrap()
            .timestamp_millis();
        let table = [
            ("2026-12-02T23:30:00", None, Some(utc)),
            ("2026-12-03T05:00:00", Some(5.5), Some(utc)),
            ("2026-12-02T18:30:00.000", Some(-5.0), Some(utc)),
            // A date with its own offset says when it was.
            ("2026-12-03T01:30:00+02:00", Some(-5.0), Some(utc)),
            ("yesterday", Some(0.0), None),
        ];
        for (text, offset, want) in table {
            assert_eq!(tenant_instant_ms(text, offset), want, "{text} {offset:?}");
            if let Some(ms) = want.filter(|_| !text.contains('+')) {
                // The inverse of the tenant's wall clock.
                let back = tenant_time(DateTime::from_timestamp_millis(ms).unwrap(), offset);
                assert_eq!(wire_time(back), text.trim_end_matches(".000"), "{text}");
            }
        }
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
