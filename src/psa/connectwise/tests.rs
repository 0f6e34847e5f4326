//! Unit tests of the pure parts of the ConnectWise client: request bodies, auth, parsing of
//! payloads written from the documented shapes.

use super::*;

fn cfg() -> ConnectWiseConfig {
    ConnectWiseConfig::new(
        "https://api-na.myconnectwise.net",
        "demo",
        "00000000-0000-0000-0000-000000000001",
        SecretString::new("pub-key-123"),
        SecretString::new("priv-key-456"),
    )
}

#[test]
fn basic_auth_joins_company_and_keys_with_a_literal_plus() {
    let header = basic_auth(&cfg());
    let b64 = header.strip_prefix("Basic ").unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        "demo+pub-key-123:priv-key-456"
    );
}

#[test]
fn debug_output_never_shows_a_key() {
    let c = cfg();
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains("pub-key-123") && !dbg.contains("priv-key-456"),
        "{dbg}"
    );
    let client = ConnectWiseClient::new(c).unwrap();
    let dbg = format!("{client:?}");
    assert!(
        !dbg.contains("priv-key-456") && !dbg.contains(&basic_auth(&cfg())),
        "{dbg}"
    );
}

#[test]
fn ticket_body_cuts_the_summary_and_sets_only_given_ids() {
    let t = NewTicket {
        marker: "alert-8f3a".into(),
        summary: "é".repeat(150),
        description: "details".into(),
        company_id: "19297".into(),
        board_id: Some("1".into()),
        status_id: Some("17".into()),
        priority_id: Some("4".into()),
        ..NewTicket::default()
    };
    let body = serde_json::to_value(ticket_body(&t, false).unwrap()).unwrap();
    assert_eq!(
        body["summary"].as_str().unwrap().chars().count(),
        SUMMARY_MAX
    );
    assert_eq!(body["company"], json!({"id": 19297}));
    assert_eq!(body["board"], json!({"id": 1}));
    assert_eq!(body["status"], json!({"id": 17}));
    assert_eq!(body["priority"], json!({"id": 4}));
    assert_eq!(body["externalXRef"], "alert-8f3a");
    assert_eq!(body["initialDescription"], "details");
    assert_eq!(body["recordType"], "ServiceTicket");
    // Alert tickets do not e-mail the customer's contact unless the spec asks for it.
    assert_eq!(body["processNotifications"], json!(false));
    let loud = serde_json::to_value(ticket_body(&t, true).unwrap()).unwrap();
    assert_eq!(loud["processNotifications"], json!(true));
    for absent in [
        "contact",
        "type",
        "subType",
        "item",
        "source",
        "agreement",
        "site",
    ] {
        assert!(body.get(absent).is_none(), "{absent} should not be sent");
    }
}

#[test]
fn ticket_body_refuses_what_connectwise_would() {
    let bad_id = NewTicket {
        marker: "m".into(),
        summary: "s".into(),
        company_id: "CONTOSO".into(),
        ..NewTicket::default()
    };
    assert!(matches!(
        ticket_body(&bad_id, false),
        Err(PsaError::Permanent { .. })
    ));
    let long_marker = NewTicket {
        marker: "x".repeat(101),
        summary: "s".into(),
        company_id: "1".into(),
        ..NewTicket::default()
    };
    assert!(matches!(
        ticket_body(&long_marker, false),
        Err(PsaError::Permanent { .. })
    ));
}

#[test]
fn catalog_and_line_patches_are_json_patch_without_leading_slash() {
    let spec = CatalogServiceSpec {
        name: "SaaS Alerts Monitoring".into(),
        description: String::new(),
        cost: 12_500,
        price: 50_000,
    };
    let ops = serde_json::to_value(catalog_patch(&spec)).unwrap();
    assert_eq!(
        ops,
        json!([
            {"op":"replace","path":"identifier","value":"SaaS Alerts Monitoring"},
            {"op":"replace","path":"description","value":"SaaS Alerts Monitoring"},
            {"op":"replace","path":"customerDescription","value":"SaaS Alerts Monitoring"},
            {"op":"replace","path":"cost","value":1.25},
            {"op":"replace","path":"price","value":5.0},
            {"op":"replace","path":"inactiveFlag","value":false}
        ])
    );
    let ops = serde_json::to_value(line_patch(LineValues {
        quantity: 7,
        cost: 10_000,
        price: 35_000,
    }))
    .unwrap();
    assert_eq!(
        ops,
        json!([
            {"op":"replace","path":"quantity","value":7},
            {"op":"replace","path":"unitCost","value":1.0},
            {"op":"replace","path":"unitPrice","value":3.5}
        ])
    );
}

#[test]
fn money_round_trips_in_ten_thousandths() {
    for minor in [0, 1, 12_345, 99_999_999, -5_000] {
        assert_eq!(from_units(Some(to_units(minor))), minor);
    }
    assert_eq!(from_units(None), 0);
}

/// A company ConnectWise marks deleted is inactive. The documented company's full conversion
/// (null fields omitted, `_info` links, site and default contact) is asserted on the documented
/// payload itself, through the client: e2e `connectwise::client_parses_the_documented_payloads`.
#[test]
fn a_deleted_company_is_inactive() {
    let deleted: CompanyRecord = serde_json::from_value(
        json!({"id": 1, "identifier": "X", "name": "X", "deletedFlag": true}),
    )
    .unwrap();
    assert!(!deleted.into_company().active);
}

#[test]
fn parses_a_documented_contact_and_prefers_the_matching_email() {
    let rec: ContactRecord = serde_json::from_value(json!({
        "id": 2, "firstName": "Jane", "lastName": "Doe",
        "company": {"id": 250, "identifier": "CONTOSO", "name": "Contoso Ltd"},
        "communicationItems": [
            {"type": {"id": 2, "name": "Direct"}, "value": "555-1234", "defaultFlag": true, "communicationType": "Phone"},
            {"type": {"id": 1, "name": "Email"}, "value": "jane@contoso.example", "defaultFlag": true, "communicationType": "Email"},
            {"type": {"id": 1, "name": "Email"}, "value": "j.doe@contoso.example", "defaultFlag": false, "communicationType": "Email"}
        ]
    }))
    .unwrap();
    assert_eq!(
        rec.emails(),
        vec!["jane@contoso.example", "j.doe@contoso.example"]
    );
    let c = rec.into_contact(Some("J.DOE@contoso.example"));
    assert_eq!(c.email.as_deref(), Some("j.doe@contoso.example"));
    assert_eq!(c.company_id.as_deref(), Some("250"));
    assert_eq!(c.full_name(), "Jane Doe");
}

#[test]
fn parses_a_documented_ticket() {
    let rec: TicketRecord = serde_json::from_value(json!({
        "id": 1255787, "summary": "Disk full on SRV01", "recordType": "ServiceTicket",
        "board": {"id": 1, "name": "Security Alerts"},
        "status": {"id": 19, "name": ">Closed"},
        "company": {"id": 19297, "identifier": "ABC", "name": "ABC Co"},
        "closedFlag": true, "closedDate": "2024-01-02T00:00:00Z", "closedBy": "jdoe",
        "externalXRef": "alert-8f3a",
        "customFields": [{"id": 1, "caption": "X", "type": "Text", "value": null}],
        "_info": {"lastUpdated": "2024-01-02T00:00:00Z"}
    }))
    .unwrap();
    assert_eq!(
        rec.into_ticket(),
        Ticket {
            id: "1255787".into(),
            summary: "Disk full on SRV01".into(),
            company_id: Some("19297".into()),
            status_id: Some("19".into()),
            closed: true,
            marker: Some("alert-8f3a".into()),
            // 2024-01-02T00:00:00Z
            closed_at_ms: Some(1_704_153_600_000),
        }
    );
}

#[test]
fn parses_statuses_agreements_catalog_and_additions() {
    let s: BoardStatus = serde_json::from_value(json!({
        "id": 19, "name": ">Closed", "board": {"id": 1, "name": "Security Alerts"}, "sortOrder": 3,
        "displayOnBoard": false, "inactive": false, "closedStatus": true, "defaultFlag": false,
        "timeEntryNotAllowed": true, "escalationStatus": "Resolved"
    }))
    .unwrap();
    assert_eq!(
        s.into_status(),
        StatusInfo {
            id: "19".into(),
            name: ">Closed".into(),
            closed: true
        }
    );

    let a: AgreementRecord = serde_json::from_value(json!({
        "id": 12, "name": "Managed Security", "type": {"id": 3, "name": "Managed Services"},
        "company": {"id": 250, "identifier": "CONTOSO", "name": "Contoso Ltd"},
        "agreementStatus": "Cancelled", "cancelledFlag": true, "startDate": "2024-01-01T00:00:00Z"
    }))
    .unwrap();
    let contract = a.into_contract();
    assert_eq!(contract.company_id, "250");
    assert!(!contract.active);

    let c: CatalogRecord = serde_json::from_value(json!({
        "id": 55, "identifier": "SaaS Alerts Monitoring", "description": "SaaS Alerts Monitoring",
        "customerDescription": "Monitoring of SaaS alerts, per user",
        "subcategory": {"id": 1, "name": "Managed"}, "type": {"id": 2, "name": "Service"},
        "productClass": "Service", "price": 5.5, "cost": 1.2345, "inactiveFlag": false
    }))
    .unwrap();
    let svc = c.into_service();
    assert_eq!((svc.cost, svc.price), (12_345, 55_000));
    assert_eq!(svc.description, "Monitoring of SaaS alerts, per user");

    let add: AdditionRecord = serde_json::from_value(json!({
        "id": 9, "product": {"id": 55, "identifier": "SaaS Alerts Monitoring"}, "quantity": 3,
        "billCustomer": "Billable", "effectiveDate": "2024-01-01T00:00:00Z", "taxableFlag": true,
        "agreementId": 12, "agreementStatus": "Active", "billedQuantity": 3, "extPrice": 16.5,
        "unitPrice": 5.5, "unitCost": 1.0
    }))
    .unwrap();
    assert!(!add.is_cancelled(chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()));
    assert_eq!(
        add.into_line("12"),
        ContractLine {
            id: "9".into(),
            contract_id: "12".into(),
            service_id: "55".into(),
            quantity: 3,
            cost: 10_000,
            price: 55_000,
        }
    );
}

fn day(s: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Lengths are UTF-16 code units, as ConnectWise (.NET) counts them.
#[test]
fn summaries_are_cut_in_utf16_code_units_without_splitting_a_character() {
    // 99 letters and an emoji: 100 characters, 101 UTF-16 units; ConnectWise refuses it.
    let summary = format!("{}🔥", "a".repeat(99));
    let t = NewTicket {
        marker: "m".into(),
        summary,
        company_id: "1".into(),
        ..NewTicket::default()
    };
    let body = serde_json::to_value(ticket_body(&t, false).unwrap()).unwrap();
    let sent = body["summary"].as_str().unwrap();
    assert_eq!(
        sent,
        "a".repeat(99),
        "the emoji does not fit and is not split"
    );
    assert!(sent.encode_utf16().count() <= SUMMARY_MAX);
    // 50 emoji are exactly 100 units and fit whole.
    assert_eq!(cut(&"🔥".repeat(60), 100), "🔥".repeat(50));
    assert_eq!(cut("é".repeat(150).as_str(), 100).chars().count(), 100);
}

#[test]
fn catalog_customer_description_is_cut_to_6000() {
    let spec = CatalogServiceSpec {
        name: "Backup".into(),
        description: "x".repeat(7000),
        cost: 0,
        price: 0,
    };
    let ops = serde_json::to_value(catalog_patch(&spec)).unwrap();
    let customer = ops
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == "customerDescription")
        .unwrap();
    assert_eq!(customer["value"].as_str().unwrap().len(), 6000);
}

#[test]
fn a_closed_status_named_closed_wins() {
    let st = |id: &str, name: &str, closed: bool| StatusInfo {
        id: id.into(),
        name: name.into(),
        closed,
    };
    let table: Vec<(Vec<StatusInfo>, Option<&str>)> = vec![
        // Board order puts "Completed" first; ">Closed" is still preferred.
        (
            vec![
                st("1", "New", false),
                st("2", "Completed", true),
                st("3", ">Closed", true),
            ],
            Some("3"),
        ),
        (
            vec![st("2", "Resolved", true), st("4", " closed ", true)],
            Some("4"),
        ),
        // A status named Closed that is not a closed status does not count.
        (
            vec![st("5", "Closed", false), st("6", "Done", true)],
            Some("6"),
        ),
        (vec![st("1", "New", false)], None),
    ];
    for (statuses, want) in table {
        assert_eq!(
            pick_closed_status(&statuses).map(|s| s.id.as_str()),
            want,
            "{statuses:?}"
        );
    }
}

/// Agreements as `GET /finance/agreements/{id}` returns them (null fields omitted).
#[test]
fn addition_dates_follow_the_agreement_billing() {
    let agreement =
        |v: serde_json::Value| -> AgreementRecord { serde_json::from_value(v).unwrap() };
    let today = day("2026-12-02");
    let table = [
        // Prorated, started long ago: today.
        (
            json!({"id": 12, "name": "Managed Security", "startDate": "2024-01-01T00:00:00Z",
                   "billStartDate": "2024-01-01T00:00:00Z", "prorateFlag": true,
                   "nextInvoiceDate": "2027-01-01T00:00:00Z", "agreementStatus": "Active"}),
            "2026-12-02",
        ),
        // Not prorated, December already invoiced: the next invoice date.
        (
            json!({"id": 12, "startDate": "2024-01-01T00:00:00Z", "prorateFlag": false,
                   "nextInvoiceDate": "2027-01-01T00:00:00Z", "billCycleId": 1}),
            "2027-01-01",
        ),
        // Billing starts later than the agreement: not before billing starts.
        (
            json!({"id": 12, "startDate": "2026-11-01T00:00:00Z", "billStartDate": "2026-12-15T00:00:00Z",
                   "prorateFlag": true}),
            "2026-12-15",
        ),
        // A future agreement.
        (
            json!({"id": 12, "startDate": "2027-02-01T00:00:00Z"}),
            "2027-02-01",
        ),
        // Nothing known: today.
        (json!({"id": 12}), "2026-12-02"),
        // A next invoice date in the past does not pull the date back.
        (
            json!({"id": 12, "prorateFlag": false, "nextInvoiceDate": "2026-11-01T00:00:00Z"}),
            "2026-12-02",
        ),
    ];
    for (record, want) in table {
        assert_eq!(
            addition_effective_date(&agreement(record.clone()), today),
            day(want),
            "{record}"
        );
    }
}

#[test]
fn an_addition_cancelled_for_a_later_date_still_bills() {
    let add = |cancelled: Option<&str>| -> AdditionRecord {
        let mut v = json!({"id": 9, "product": {"id": 55}, "quantity": 3, "billCustomer": "Billable",
                           "effectiveDate": "2024-01-01T00:00:00Z"});
        if let Some(c) = cancelled {
            v["cancelledDate"] = json!(c);
        }
        serde_json::from_value(v).unwrap()
    };
    let today = day("2026-12-02");
    assert!(!add(None).is_cancelled(today));
    assert!(!add(Some("2027-01-31T00:00:00Z")).is_cancelled(today));
    assert!(add(Some("2026-12-02T00:00:00Z")).is_cancelled(today));
    assert!(add(Some("2025-06-30T00:00:00Z")).is_cancelled(today));
    // An unreadable date is taken as cancelled (as before), not as billing forever.
    assert!(add(Some("soon")).is_cancelled(today));
}

#[test]
fn type_combinations_are_checked_against_the_board_associations() {
    let assocs: Vec<TypeAssociation> = serde_json::from_value(json!([
        {"id": 1, "type": {"id": 7, "name": "Alert"}, "subType": {"id": 9, "name": "Identity"},
         "board": {"id": 1, "name": "Security Alerts"}},
        {"id": 2, "type": {"id": 7, "name": "Alert"}, "subType": {"id": 10, "name": "Data Leakage"},
         "item": {"id": 3, "name": "Download"}, "board": {"id": 1, "name": "Security Alerts"}}
    ]))
    .unwrap();
    let c = |t: Option<&str>, s: Option<&str>, i: Option<&str>| TypeCombination {
        type_id: t.map(str::to_string),
        issue_type_id: s.map(str::to_string),
        sub_issue_type_id: i.map(str::to_string),
    };
    let wanted = vec![
        c(Some("7"), Some("9"), None),       // allowed
        c(Some("8"), Some("9"), None),       // Incident + Identity: no
        c(Some("7"), Some("10"), Some("3")), // allowed with its item
        c(Some("7"), Some("9"), Some("3")),  // item of another subtype: no
        c(None, Some("10"), None),           // any type: allowed
        c(Some("8"), None, None),            // a type alone is never restricted
    ];
    assert_eq!(invalid_combinations(&assocs, &wanted), vec![1, 3]);
    assert!(invalid_combinations(&[], &wanted).is_empty());
}

#[test]
fn a_company_look_up_filters_on_the_field_it_compares() {
    let r: CompanyRecord = serde_json::from_value(json!({
        "id": 7,
        "identifier": "CONTOSO",
        "name": "Contoso Ltd",
    }))
    .unwrap();
    let table = [
        (CompanyKey::Identifier, "identifier", "CONTOSO"),
        (CompanyKey::Name, "name", "Contoso Ltd"),
    ];
    for (key, field, value) in table {
        assert_eq!(company_field(key), field, "{key:?}");
        assert_eq!(company_value(&r, key), Some(value), "{key:?}");
    }
}
