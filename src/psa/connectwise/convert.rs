//! Pure conversions and decisions of the ConnectWise client (table-tested in `tests.rs`):
//! ids and references, lengths as ConnectWise counts them, request bodies and patches, the
//! closed status, addition dates, type combinations.

use serde_json::json;

use super::*;

pub(super) fn internal(e: serde_json::Error) -> PsaError {
    PsaError::Permanent {
        status: None,
        message: format!("cannot encode the request: {e}"),
    }
}

/// The company field a look-up by `key` filters on.
pub(super) fn company_field(key: CompanyKey) -> &'static str {
    match key {
        CompanyKey::Identifier => "identifier",
        CompanyKey::Name => "name",
    }
}

/// That field of a company as ConnectWise answered it.
pub(super) fn company_value(r: &CompanyRecord, key: CompanyKey) -> Option<&str> {
    match key {
        CompanyKey::Identifier => r.identifier.as_deref(),
        CompanyKey::Name => r.name.as_deref(),
    }
}

/// ConnectWise ids are integers; anything else is our mistake, not a query to send.
pub(super) fn numeric_id(id: &str) -> PsaResult<i64> {
    crate::psa::parse_numeric_id(id, || format!("{id:?} is not a ConnectWise id"))
}

pub(super) fn id_cond(field: &str, id: &str) -> PsaResult<String> {
    cond::eq_id(field, id).ok_or_else(|| PsaError::Permanent {
        status: None,
        message: format!("{id:?} is not a ConnectWise id"),
    })
}

/// Ids per `in (…)` condition: 400 ids of up to 7 digits keep the query string near 3 KB, well
/// inside the 8 KB request line common web servers accept.
pub(super) const IDS_PER_CONDITION: usize = 400;

pub(super) fn in_cond(field: &str, ids: &[PsaId]) -> PsaResult<String> {
    cond::in_ids(field, ids).ok_or_else(|| PsaError::Permanent {
        status: None,
        message: format!("{ids:?} are not ConnectWise ids"),
    })
}

pub(super) fn opt_ref(id: &Option<PsaId>) -> PsaResult<Option<Ref>> {
    id.as_deref()
        .map(numeric_id)
        .transpose()
        .map(|o| o.map(Ref::id))
}

/// Length as ConnectWise counts it: UTF-16 code units.
pub(super) fn cw_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The longest prefix of `s` within `max` UTF-16 code units, never splitting a character.
pub(super) fn cut(s: &str, max: usize) -> String {
    let mut used = 0;
    s.chars()
        .take_while(|c| {
            used += c.len_utf16();
            used <= max
        })
        .collect()
}

/// The closed status a ticket is closed with when the settings name none: one called
/// "Closed" (also ">Closed", ConnectWise's convention to sort it last) before any other closed
/// status; otherwise the first closed one in board order.
pub fn pick_closed_status(statuses: &[StatusInfo]) -> Option<&StatusInfo> {
    crate::psa::preferred_closed_status(statuses)
}

/// The first day an addition to this agreement may take effect, on or after `today`: not
/// before the agreement (or its billing) starts, and, without proration, not inside a period
/// that is already invoiced (ConnectWise refuses both with 400 "addition object is invalid").
pub fn addition_effective_date(
    agreement: &AgreementRecord,
    today: chrono::NaiveDate,
) -> chrono::NaiveDate {
    let date = |d: &Option<String>| d.as_deref().and_then(parse_date);
    let mut earliest = today;
    for floor in [
        date(&agreement.start_date),
        date(&agreement.bill_start_date),
    ]
    .into_iter()
    .flatten()
    {
        earliest = earliest.max(floor);
    }
    if agreement.prorate_flag != Some(true) {
        if let Some(next) = date(&agreement.next_invoice_date) {
            earliest = earliest.max(next);
        }
    }
    earliest
}

/// The positions in `wanted` of type / subtype / item combinations the board's associations
/// do not allow. A board without associations restricts nothing we can check.
pub fn invalid_combinations(assocs: &[TypeAssociation], wanted: &[TypeCombination]) -> Vec<usize> {
    if assocs.is_empty() {
        return Vec::new();
    }
    let id = |r: &Option<Ref>| r.as_ref().and_then(|r| r.id).map(|i| i.to_string());
    let matches = |want: &Option<PsaId>, have: Option<String>| match want {
        None => true,
        Some(w) => have.as_deref() == Some(w.trim()),
    };
    wanted
        .iter()
        .enumerate()
        // Only a subtype or an item is restricted; a type alone is always allowed.
        .filter(|(_, w)| w.issue_type_id.is_some() || w.sub_issue_type_id.is_some())
        .filter(|(_, w)| {
            !assocs.iter().any(|a| {
                matches(&w.type_id, id(&a.type_))
                    && matches(&w.issue_type_id, id(&a.sub_type))
                    && matches(&w.sub_issue_type_id, id(&a.item))
            })
        })
        .map(|(i, _)| i)
        .collect()
}

/// The `POST /service/tickets` body for a neutral ticket (pure).
pub(super) fn ticket_body(t: &NewTicket, process_notifications: bool) -> PsaResult<NewTicketBody> {
    if cw_len(&t.marker) > MARKER_MAX {
        return Err(PsaError::Permanent {
            status: None,
            message: format!("ticket marker longer than {MARKER_MAX} characters"),
        });
    }
    Ok(NewTicketBody {
        summary: cut(t.summary.trim(), SUMMARY_MAX),
        record_type: "ServiceTicket",
        company: Ref::id(numeric_id(&t.company_id)?),
        external_x_ref: t.marker.clone(),
        initial_description: Some(t.description.clone()).filter(|d| !d.is_empty()),
        process_notifications,
        contact: opt_ref(&t.contact_id)?,
        site: opt_ref(&t.location_id)?,
        board: opt_ref(&t.board_id)?,
        status: opt_ref(&t.status_id)?,
        type_: opt_ref(&t.type_id)?,
        sub_type: opt_ref(&t.issue_type_id)?,
        item: opt_ref(&t.sub_issue_type_id)?,
        priority: opt_ref(&t.priority_id)?,
        source: opt_ref(&t.source_id)?,
        agreement: opt_ref(&t.contract_id)?,
    })
}

/// JSON-Patch operations bringing a catalog item to `spec` (pure).
pub(super) fn catalog_patch(spec: &CatalogServiceSpec) -> Vec<PatchOp> {
    vec![
        PatchOp::replace("identifier", json!(cut(&spec.name, CATALOG_IDENTIFIER_MAX))),
        PatchOp::replace(
            "description",
            json!(cut(&catalog_description(spec), CATALOG_DESCRIPTION_MAX)),
        ),
        PatchOp::replace(
            "customerDescription",
            json!(cut(
                &catalog_description(spec),
                CATALOG_CUSTOMER_DESCRIPTION_MAX
            )),
        ),
        PatchOp::replace("cost", json!(to_units(spec.cost))),
        PatchOp::replace("price", json!(to_units(spec.price))),
        PatchOp::replace("inactiveFlag", json!(false)),
    ]
}

/// ConnectWise requires a description; the name stands in for an empty one.
pub(super) fn catalog_description(spec: &CatalogServiceSpec) -> String {
    if spec.description.trim().is_empty() {
        spec.name.clone()
    } else {
        spec.description.clone()
    }
}

pub(super) fn line_patch(values: LineValues) -> Vec<PatchOp> {
    vec![
        PatchOp::replace("quantity", json!(values.quantity)),
        PatchOp::replace("unitCost", json!(to_units(values.cost))),
        PatchOp::replace("unitPrice", json!(to_units(values.price))),
    ]
}
