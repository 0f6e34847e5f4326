//! The idempotency marker a ticket carries (ConnectWise `externalXRef`, BMS reference field).
//!
//! Derived from the connection, the grouping key and the id of the event that opens the ticket,
//! so a retry of the same create (after a timeout or a crash between "created in the PSA" and
//! "recorded locally") computes the same marker and finds the ticket instead of making a second
//! one, while the next ticket of the same key (after a technician closed the first) gets a new
//! marker. Hashed: keys hold e-mail addresses, and ConnectWise allows 100 characters.

use ring::digest::{digest, SHA256};

use crate::resolved::ConnectionKey;

pub const MARKER_PREFIX: &str = "psaop-";

pub fn ticket_marker(connection: &ConnectionKey, group_key: &str, first_event_id: &str) -> String {
    // Length-prefixed parts: no separator inside a part can make two inputs collide.
    let mut input = Vec::new();
    for part in [
        connection.namespace.as_str(),
        connection.name.as_str(),
        group_key,
        first_event_id,
    ] {
        input.extend_from_slice(&(part.len() as u64).to_be_bytes());
        input.extend_from_slice(part.as_bytes());
    }
    let hash = digest(&SHA256, &input);
    let hex: String = hash.as_ref()[..20]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{MARKER_PREFIX}{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_stable_and_distinct() {
        let c = ConnectionKey::new("psa", "acme");
        let m = ticket_marker(&c, "contoso|jane@contoso.example", "sa-1");
        assert_eq!(m, ticket_marker(&c, "contoso|jane@contoso.example", "sa-1"));
        assert_eq!(m.len(), MARKER_PREFIX.len() + 40);
        assert!(m.len() <= 100);
        assert!(!m.contains("jane"));
        let others = [
            ticket_marker(&c, "contoso|jane@contoso.example", "sa-2"),
            ticket_marker(&c, "contoso|bob@contoso.example", "sa-1"),
            ticket_marker(
                &ConnectionKey::new("psa", "other"),
                "contoso|jane@contoso.example",
                "sa-1",
            ),
            ticket_marker(
                &ConnectionKey::new("psaa", "cme"),
                "contoso|jane@contoso.example",
                "sa-1",
            ),
        ];
        for o in others {
            assert_ne!(o, m);
        }
    }
}
