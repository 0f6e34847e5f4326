//! The ConnectWise sandbox's page at `/`: its state dump turned into the shared [`PsaView`].
//! Read from `/_sandbox/state`'s shape (the emulator's own records), so the page shows exactly
//! what the REST API would return.

use serde_json::Value;

use crate::sandbox::web::{
    count_open_tickets, id_at, list, number_at, text_at, CompanyRow, ContractLineRow, NoteRow,
    PsaView, TicketRow,
};

/// The view of a state dump (`CwSandbox::state`).
pub fn view(state: &Value, company_id: &str) -> PsaView {
    let tickets = tickets(state);
    let mut companies: Vec<CompanyRow> = list(state, "companies")
        .iter()
        .filter(|c| c["deletedFlag"] != true)
        .map(|c| CompanyRow {
            id: id_at(c, "/id"),
            identifier: text_at(c, "/identifier"),
            name: text_at(c, "/name"),
            open_tickets: 0,
        })
        .collect();
    count_open_tickets(&mut companies, &tickets);
    PsaView {
        title: "ConnectWise PSA sandbox".into(),
        account: format!("company {company_id}"),
        board_label: "Board".into(),
        companies,
        tickets,
        contract_lines: contract_lines(state),
    }
}

fn tickets(state: &Value) -> Vec<TicketRow> {
    let notes = list(state, "notes");
    let mut rows: Vec<TicketRow> = list(state, "tickets")
        .iter()
        .map(|t| {
            let id = id_at(t, "/id");
            let mut own: Vec<&Value> = notes
                .iter()
                .filter(|n| id_at(n, "/ticketId") == id)
                .collect();
            own.sort_by_key(|n| id_at(n, "/id"));
            TicketRow {
                id,
                number: id.to_string(),
                summary: text_at(t, "/summary"),
                company: text_at(t, "/company/name"),
                board: text_at(t, "/board/name"),
                status: text_at(t, "/status/name"),
                closed: t["closedFlag"] == true,
                priority: text_at(t, "/priority/name"),
                contact: text_at(t, "/contact/name"),
                contract: text_at(t, "/agreement/name"),
                kind: [text_at(t, "/type/name"), text_at(t, "/subType/name")]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" / "),
                description: String::new(),
                notes: own
                    .into_iter()
                    .map(|n| NoteRow {
                        at: text_at(n, "/dateCreated"),
                        text: text_at(n, "/text"),
                        internal: n["internalAnalysisFlag"] == true,
                    })
                    .collect(),
            }
        })
        .collect();
    rows.sort_by_key(|t| std::cmp::Reverse(t.id));
    rows
}

fn contract_lines(state: &Value) -> Vec<ContractLineRow> {
    let agreements = list(state, "agreements");
    list(state, "additions")
        .iter()
        .map(|a| {
            let agreement = agreements
                .iter()
                .find(|g| id_at(g, "/id") == id_at(a, "/agreementId"));
            ContractLineRow {
                company: agreement
                    .map(|g| text_at(g, "/company/name"))
                    .unwrap_or_default(),
                contract: agreement.map(|g| text_at(g, "/name")).unwrap_or_default(),
                service: text_at(a, "/product/identifier"),
                quantity: number_at(a, "/quantity"),
                unit_price: number_at(a, "/unitPrice"),
                unit_cost: number_at(a, "/unitCost"),
                total_price: number_at(a, "/extPrice"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tickets_newest_first_with_their_notes_in_order_and_lines_joined() {
        let state = json!({
            "companies": [
                {"id": 2, "identifier": "CONTOSO", "name": "Contoso Ltd"},
                {"id": 9, "identifier": "GONE", "name": "Gone Inc", "deletedFlag": true},
            ],
            "tickets": [
                {"id": 1, "summary": "old", "company": {"name": "Contoso Ltd"}, "closedFlag": true,
                 "status": {"name": ">Closed"}},
                {"id": 2, "summary": "new", "company": {"name": "Contoso Ltd"}, "closedFlag": false,
                 "board": {"name": "Security Alerts"}, "status": {"name": "New"},
                 "contact": {"name": "Jane Doe"}, "agreement": {"name": "Managed Security"},
                 "type": {"name": "Alert"}, "subType": {"name": "Identity"}},
            ],
            "notes": [
                {"id": 5, "ticketId": 2, "text": "second", "internalAnalysisFlag": true},
                {"id": 3, "ticketId": 2, "text": "first"},
                {"id": 4, "ticketId": 1, "text": "other ticket"},
            ],
            "agreements": [{"id": 7, "name": "Managed Security", "company": {"name": "Contoso Ltd"}}],
            "additions": [{"agreementId": 7, "product": {"identifier": "SaaS Alerts Monitoring"},
                           "quantity": 42.0, "unitPrice": 4.0, "unitCost": 1.5, "extPrice": 168.0}],
        });
        let v = view(&state, "demo");
        assert_eq!(v.account, "company demo");
        assert_eq!(v.companies.len(), 1, "deleted companies are not shown");
        assert_eq!(v.companies[0].open_tickets, 1);
        let summaries: Vec<&str> = v.tickets.iter().map(|t| t.summary.as_str()).collect();
        assert_eq!(summaries, ["new", "old"]);
        let t = &v.tickets[0];
        assert_eq!(
            (
                t.board.as_str(),
                t.contact.as_str(),
                t.contract.as_str(),
                t.kind.as_str()
            ),
            (
                "Security Alerts",
                "Jane Doe",
                "Managed Security",
                "Alert / Identity"
            )
        );
        let notes: Vec<(&str, bool)> = t
            .notes
            .iter()
            .map(|n| (n.text.as_str(), n.internal))
            .collect();
        assert_eq!(notes, [("first", false), ("second", true)]);
        assert!(v.tickets[1].closed);
        let line = &v.contract_lines[0];
        assert_eq!(
            (
                line.company.as_str(),
                line.contract.as_str(),
                line.service.as_str()
            ),
            ("Contoso Ltd", "Managed Security", "SaaS Alerts Monitoring")
        );
        assert_eq!((line.quantity, line.total_price), (42.0, 168.0));
    }
}
