//! The Kaseya BMS sandbox's page at `/`: its state dump turned into the shared [`PsaView`].
//! Read from `/_sandbox/state`'s shape (the emulator's own records).

use serde_json::Value;

use crate::sandbox::web::{
    count_open_tickets, id_at, list, number_at, text_at, CompanyRow, ContractLineRow, NoteRow,
    PsaView, TicketRow,
};

/// The view of a state dump (`BmsSandbox::state`).
pub fn view(state: &Value) -> PsaView {
    let tickets = tickets(state);
    let mut companies: Vec<CompanyRow> = list(state, "accounts")
        .iter()
        .map(|a| CompanyRow {
            id: id_at(a, "/id"),
            identifier: text_at(a, "/accountCode"),
            name: text_at(a, "/accountName"),
            open_tickets: 0,
        })
        .collect();
    count_open_tickets(&mut companies, &tickets);
    PsaView {
        title: "Kaseya BMS sandbox".into(),
        account: format!("tenant {}", text_at(state, "/tenant")),
        board_label: "Queue".into(),
        companies,
        tickets,
        contract_lines: contract_lines(state),
    }
}

/// Whether the ticket's status is a closed one (the status list says; a completion date too).
fn is_closed(state: &Value, t: &Value) -> bool {
    let status_id = id_at(t, "/statusId");
    let closed_status = list(state, "statuses")
        .iter()
        .any(|s| id_at(s, "/id") == status_id && s["closed"] == true);
    closed_status || !text_at(t, "/completedDate").is_empty()
}

fn tickets(state: &Value) -> Vec<TicketRow> {
    let mut rows: Vec<TicketRow> = list(state, "tickets")
        .iter()
        .map(|t| {
            let mut notes: Vec<&Value> = t["notes"].as_array().into_iter().flatten().collect();
            notes.sort_by_key(|n| id_at(n, "/id"));
            TicketRow {
                id: id_at(t, "/id"),
                number: text_at(t, "/ticketNumber"),
                summary: text_at(t, "/title"),
                company: text_at(t, "/accountName"),
                board: text_at(t, "/queueName"),
                status: text_at(t, "/statusName"),
                closed: is_closed(state, t),
                priority: text_at(t, "/priorityName"),
                contact: text_at(t, "/contactName"),
                contract: text_at(t, "/contractName"),
                kind: [
                    text_at(t, "/typeName"),
                    text_at(t, "/issueTypeName"),
                    text_at(t, "/subIssueTypeName"),
                ]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" / "),
                description: text_at(t, "/details"),
                notes: notes
                    .into_iter()
                    .map(|n| NoteRow {
                        at: text_at(n, "/createdOn"),
                        text: text_at(n, "/details"),
                        internal: n["isInternal"] == true,
                    })
                    .collect(),
            }
        })
        .collect();
    rows.sort_by_key(|t| std::cmp::Reverse(t.id));
    rows
}

fn contract_lines(state: &Value) -> Vec<ContractLineRow> {
    let accounts = list(state, "accounts");
    let account_name = |id: i64| {
        accounts
            .iter()
            .find(|a| id_at(a, "/id") == id)
            .map(|a| text_at(a, "/accountName"))
            .unwrap_or_default()
    };
    list(state, "contracts")
        .iter()
        .flat_map(|k| {
            let company = account_name(id_at(k, "/accountId"));
            list(k, "lines")
                .iter()
                .map(move |l| ContractLineRow {
                    company: company.clone(),
                    contract: text_at(l, "/contractName"),
                    service: text_at(l, "/serviceName"),
                    quantity: number_at(l, "/units"),
                    unit_price: number_at(l, "/unitPrice"),
                    unit_cost: number_at(l, "/unitCost"),
                    total_price: number_at(l, "/totalPrice"),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn closed_comes_from_the_status_list_and_lines_from_contracts() {
        let state = json!({
            "tenant": "demo",
            "accounts": [{"id": 4, "accountCode": "CONTOSO", "accountName": "Contoso Ltd"}],
            "statuses": [{"id": 22, "name": "New", "closed": false},
                         {"id": 25, "name": "Completed", "closed": true}],
            "tickets": [
                {"id": 31, "ticketNumber": "T1", "title": "open one", "accountName": "Contoso Ltd",
                 "queueName": "Security Alerts", "statusId": 22, "statusName": "New",
                 "details": "what happened", "contactName": "Jane Doe",
                 "typeName": "Alert", "issueTypeName": "SaaS Alerts", "subIssueTypeName": "IAM",
                 "notes": [{"id": 9, "details": "later", "isInternal": false, "createdOn": "b"},
                           {"id": 8, "details": "earlier", "isInternal": true, "createdOn": "a"}]},
                {"id": 32, "ticketNumber": "T2", "title": "done", "accountName": "Contoso Ltd",
                 "statusId": 25, "statusName": "Completed", "notes": []},
                {"id": 33, "ticketNumber": "T3", "title": "completed date", "accountName": "Contoso Ltd",
                 "statusId": 22, "completedDate": "2026-01-01T00:00:00", "notes": []},
            ],
            "contracts": [{"id": 8, "accountId": 4, "name": "Managed Security", "lines": [
                {"contractName": "Managed Security", "serviceName": "SaaS Alerts Monitoring",
                 "units": 42.0, "unitPrice": 4.0, "unitCost": 1.5, "totalPrice": 168.0}]}],
        });
        let v = view(&state);
        assert_eq!(
            (v.account.as_str(), v.board_label.as_str()),
            ("tenant demo", "Queue")
        );
        let closed: Vec<(&str, bool)> = v
            .tickets
            .iter()
            .map(|t| (t.number.as_str(), t.closed))
            .collect();
        assert_eq!(closed, [("T3", true), ("T2", true), ("T1", false)]);
        assert_eq!(v.companies[0].open_tickets, 1);
        let open = &v.tickets[2];
        assert_eq!(open.description, "what happened");
        assert_eq!(open.kind, "Alert / SaaS Alerts / IAM");
        let notes: Vec<&str> = open.notes.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(notes, ["earlier", "later"]);
        assert_eq!(v.contract_lines[0].company, "Contoso Ltd");
        assert_eq!(v.contract_lines[0].quantity, 42.0);
    }
}
