//! Ticket settings a PSA cannot create a ticket without. Pure; part of settings resolution (the
//! connection reconciler adds these misses to the names it could not resolve).
//!
//! Kaseya BMS: the OpenAPI document requires `StatusId`, `PriorityId`, `TypeId` and `SourceId`
//! on `POST /v2/servicedesk/tickets` (besides what psa-operator always sends), and clients
//! written against live tenants report that a queue or an assignee is needed too; psa-operator
//! assigns no one, so the queue (`ticket.board`) is required. ConnectWise: none beyond the board
//! the API defaults (the company's default board applies).

use crate::api::connection::TicketSettings;
use crate::psa::Provider;

use super::resolve::Unresolved;

/// The required ticket settings `settings` leaves unset, as misses naming each field.
pub fn missing_required(provider: Provider, settings: &TicketSettings) -> Vec<Unresolved> {
    let required: &[(&str, bool, &str)] = match provider {
        Provider::KaseyaBms => &[
            (
                "ticket.board",
                settings.board.is_some(),
                "is required for Kaseya BMS: every ticket needs a queue (BMS refuses a ticket \
                 without a queue or an assignee); name the queue alert tickets go to",
            ),
            (
                "ticket.status",
                settings.status.is_some(),
                "is required for Kaseya BMS (StatusId is required on every ticket)",
            ),
            (
                "ticket.priority",
                settings.priority.is_some(),
                "is required for Kaseya BMS (PriorityId is required on every ticket)",
            ),
            (
                "ticket.type",
                settings.type_.is_some(),
                "is required for Kaseya BMS (TypeId is required on every ticket)",
            ),
            (
                "ticket.source",
                settings.source.is_some(),
                "is required for Kaseya BMS (SourceId is required on every ticket)",
            ),
        ],
        Provider::ConnectWise => &[],
    };
    required
        .iter()
        .filter(|(_, set, _)| !set)
        .map(|(field, _, problem)| Unresolved {
            field: (*field).to_string(),
            value: String::new(),
            problem: (*problem).to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::connection::ValueMapping;

    fn one(v: &str) -> Option<ValueMapping> {
        Some(ValueMapping {
            value: Some(v.into()),
            ..Default::default()
        })
    }

    fn complete() -> TicketSettings {
        TicketSettings {
            board: Some("Security Alerts".into()),
            status: one("New"),
            priority: one("High"),
            type_: one("Alert"),
            source: one("SaaS Alerts"),
            ..Default::default()
        }
    }

    #[test]
    fn bms_needs_a_queue_and_the_documented_ids() {
        assert!(missing_required(Provider::KaseyaBms, &complete()).is_empty());
        let no_queue = TicketSettings {
            board: None,
            ..complete()
        };
        let misses = missing_required(Provider::KaseyaBms, &no_queue);
        assert_eq!(misses.len(), 1);
        assert_eq!(misses[0].field, "ticket.board");
        assert!(
            misses[0].to_string().contains("needs a queue"),
            "{}",
            misses[0]
        );
        let fields: Vec<String> = missing_required(Provider::KaseyaBms, &TicketSettings::default())
            .into_iter()
            .map(|m| m.field)
            .collect();
        assert_eq!(
            fields,
            [
                "ticket.board",
                "ticket.status",
                "ticket.priority",
                "ticket.type",
                "ticket.source"
            ]
        );
    }

    #[test]
    fn connectwise_requires_nothing_more() {
        assert!(missing_required(Provider::ConnectWise, &TicketSettings::default()).is_empty());
    }
}
