//! The read-only page every sandbox serves at `/`: what a technician would see in the PSA
//! (companies, tickets with their notes in order, contract lines) and the last PSA calls, as
//! server-rendered HTML that reloads itself every few seconds. No JavaScript, no build chain.
//!
//! Each emulator turns its own state into a [`PsaView`] (its `web` module); this module only
//! renders, so the page looks the same for every PSA while the emulators keep their own types.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;

use super::admin::RecentCall;

/// Seconds between reloads of the page.
pub const REFRESH_SECS: u32 = 5;

const TEMPLATE: &str = include_str!("web/page.html");

/// Everything the page shows about one PSA.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PsaView {
    /// E.g. "ConnectWise PSA sandbox".
    pub title: String,
    /// E.g. "company demo" or "tenant demo".
    pub account: String,
    /// What the PSA calls a board ("Board" in ConnectWise, "Queue" in BMS).
    pub board_label: String,
    pub companies: Vec<CompanyRow>,
    /// Newest first.
    pub tickets: Vec<TicketRow>,
    pub contract_lines: Vec<ContractLineRow>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CompanyRow {
    pub id: i64,
    pub identifier: String,
    pub name: String,
    pub open_tickets: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct TicketRow {
    pub id: i64,
    /// The number a technician quotes (BMS ticket number; the id in ConnectWise).
    pub number: String,
    pub summary: String,
    pub company: String,
    pub board: String,
    pub status: String,
    pub closed: bool,
    pub priority: String,
    pub contact: String,
    pub contract: String,
    pub kind: String,
    /// The ticket's description when the PSA keeps it apart from the notes (BMS).
    pub description: String,
    /// Oldest first, as the PSA lists them.
    pub notes: Vec<NoteRow>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct NoteRow {
    pub at: String,
    pub text: String,
    pub internal: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ContractLineRow {
    pub company: String,
    pub contract: String,
    pub service: String,
    pub quantity: f64,
    pub unit_price: f64,
    pub unit_cost: f64,
    pub total_price: f64,
}

/// The page as HTML (auto-escaped: every value is PSA data, which alerts fill in).
pub fn render(view: &PsaView, calls: &[RecentCall]) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    env.add_template("page.html", TEMPLATE)?;
    let open = view.tickets.iter().filter(|t| !t.closed).count();
    env.get_template("page.html")?.render(minijinja::context! {
        view => view,
        calls => calls,
        open_tickets => open,
        refresh_secs => REFRESH_SECS,
    })
}

/// The `GET /` response.
pub fn page(view: &PsaView, calls: &[RecentCall]) -> Response {
    match render(view, calls) {
        Ok(html) => {
            let mut resp = html.into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            resp
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the sandbox page: {e}"),
        )
            .into_response(),
    }
}

/// Text at a JSON pointer (numbers as written; absent or null → empty), for the emulators' views
/// of their own state.
pub fn text_at(v: &serde_json::Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Number at a JSON pointer (0 when absent).
pub fn number_at(v: &serde_json::Value, pointer: &str) -> f64 {
    v.pointer(pointer)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0)
}

/// Integer at a JSON pointer (0 when absent).
pub fn id_at(v: &serde_json::Value, pointer: &str) -> i64 {
    v.pointer(pointer)
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0)
}

/// The array at `key` of a state dump (empty when absent).
pub fn list<'a>(state: &'a serde_json::Value, key: &str) -> &'a [serde_json::Value] {
    state[key].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Counts the open tickets of each company (by name) into the rows.
pub fn count_open_tickets(companies: &mut [CompanyRow], tickets: &[TicketRow]) {
    for c in companies.iter_mut() {
        c.open_tickets = tickets
            .iter()
            .filter(|t| !t.closed && t.company == c.name)
            .count();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> PsaView {
        let tickets = vec![
            TicketRow {
                id: 7,
                number: "7".into(),
                summary: "Impossible travel <script>alert(1)</script>".into(),
                company: "Contoso Ltd".into(),
                board: "Security Alerts".into(),
                status: "New".into(),
                priority: "High".into(),
                contact: "Jane Doe".into(),
                contract: "Managed Security".into(),
                kind: "Alert".into(),
                notes: vec![
                    NoteRow {
                        at: "2026-01-01T10:00:00Z".into(),
                        text: "first".into(),
                        internal: false,
                    },
                    NoteRow {
                        at: "2026-01-01T10:05:00Z".into(),
                        text: "second".into(),
                        internal: true,
                    },
                ],
                ..TicketRow::default()
            },
            TicketRow {
                id: 3,
                summary: "Old one".into(),
                company: "Contoso Ltd".into(),
                status: "Closed".into(),
                closed: true,
                ..TicketRow::default()
            },
        ];
        let mut companies = vec![CompanyRow {
            id: 2,
            identifier: "CONTOSO".into(),
            name: "Contoso Ltd".into(),
            open_tickets: 0,
        }];
        count_open_tickets(&mut companies, &tickets);
        PsaView {
            title: "ConnectWise PSA sandbox".into(),
            account: "company demo".into(),
            board_label: "Board".into(),
            companies,
            tickets,
            contract_lines: vec![ContractLineRow {
                company: "Contoso Ltd".into(),
                contract: "Managed Security".into(),
                service: "SaaS Alerts Monitoring".into(),
                quantity: 42.0,
                unit_price: 4.0,
                unit_cost: 1.5,
                total_price: 168.0,
            }],
        }
    }

    #[test]
    fn page_shows_tickets_notes_in_order_lines_and_calls_escaped() {
        let calls = vec![RecentCall {
            at: "2026-01-01T10:00:01Z".into(),
            method: "POST".into(),
            path: "/v4_6_release/apis/3.0/service/tickets".into(),
            status: 201,
        }];
        let html = render(&view(), &calls).unwrap();
        assert!(html.contains(r#"<meta http-equiv="refresh" content="5">"#));
        assert!(html.contains("Impossible travel &lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "PSA data is escaped");
        let first = html.find("first").unwrap();
        let second = html.find("second").unwrap();
        assert!(first < second, "notes keep their order");
        assert!(html.contains("Managed Security"));
        assert!(html.contains("168.00"), "{html}");
        // minijinja escapes `/` too; a browser shows it as written.
        let shown = html.replace("&#x2f;", "/");
        assert!(shown.contains("/v4_6_release/apis/3.0/service/tickets"));
        assert!(
            html.contains(r#"class="closed""#),
            "closed tickets are marked"
        );
        // One open ticket for Contoso in the companies table.
        assert!(html.contains(r#"<td class="num">1</td>"#), "{html}");
    }

    #[test]
    fn empty_sandbox_says_so() {
        let html = render(&PsaView::default(), &[]).unwrap();
        assert!(html.contains("No tickets yet"), "{html}");
        assert!(html.contains("No PSA calls yet"), "{html}");
    }
}
