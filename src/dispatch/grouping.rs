//! The grouping key: which events share one ticket and one ordered lane in the queue.
//!
//! Pure. The intake computes the key when it stores an event (the store keeps it as an opaque
//! string), and the worker uses the same function when it looks up the group's ticket.
//!
//! * alerts (SaaS-alert style and Alertmanager, firing or resolved):
//!   `User` → (organization, user); `UserAndAlert` → (organization, user, alert type);
//! * findings: one key per finding id, whatever the grouping (one ticket per finding).
//!
//! Organization, user and alert type are compared trimmed and case-folded: `Jane@Contoso.example`
//! and `jane@contoso.example` are the same person, `Contoso Ltd ` the same organization.
//! The parts are encoded as a JSON array so no value can forge another key by containing the
//! separator.

use crate::api::Grouping;
use crate::dispatch::event::Event;

/// Prefix of keys of findings; the rest is the finding id as sent.
pub const FINDING_PREFIX: &str = "finding:";

/// The grouping key of an event under a connection's grouping.
pub fn group_key(event: &Event, grouping: Grouping) -> String {
    if event.kind.is_finding() {
        // The intake rejects findings without an id; the event id keeps such an event in its
        // own lane rather than merging it with every other id-less finding.
        let id = event.finding_id.as_deref().unwrap_or(&event.id);
        return format!("{FINDING_PREFIX}{id}");
    }
    let org = fold(&event.organization);
    let user = fold(event.user.as_deref().unwrap_or(""));
    match grouping {
        Grouping::User => format!("user:{}", encode(&[&org, &user])),
        Grouping::UserAndAlert => {
            let alert_type = fold(&event.alert_type);
            format!("user+alert:{}", encode(&[&org, &user, &alert_type]))
        }
    }
}

/// Prefix of the lanes of samples sent with `send-sample --even-if-suspended`; the rest is the
/// key the event would have had. A lane of its own keeps a sample out of the lanes (and tickets)
/// of real alerts, and it is the one kind of lane a suspended connection still delivers. No
/// payload can produce it: the intake chooses the prefix, senders only fill the parts after it.
pub const SAMPLE_PREFIX: &str = "sample:";

/// The lane of a sample that may be delivered while its connection is suspended.
pub fn sample_group_key(event: &Event, grouping: Grouping) -> String {
    format!("{SAMPLE_PREFIX}{}", group_key(event, grouping))
}

/// Whether the worker may claim lane `group_key` of a connection: everything while it is
/// active; while it is suspended only samples (`send-sample --even-if-suspended`), never a
/// held alert.
pub fn claimable(suspended: bool, group_key: &str) -> bool {
    !suspended || group_key.starts_with(SAMPLE_PREFIX)
}

fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

fn encode(parts: &[&str]) -> String {
    // Serialising a slice of strings cannot fail.
    serde_json::to_string(parts).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::event::EventKind;

    fn ev(kind: EventKind, org: &str, user: Option<&str>, alert_type: &str) -> Event {
        Event {
            id: "e1".into(),
            kind,
            organization: org.into(),
            user: user.map(str::to_string),
            alert_type: alert_type.into(),
            ..Event::sample()
        }
    }

    #[test]
    fn keys_per_grouping() {
        use EventKind::*;
        use Grouping::*;
        let jane = Some("jane@contoso.example");
        type Case<'a> = (
            EventKind,
            &'a str,
            Option<&'a str>,
            &'a str,
            Grouping,
            &'a str,
        );
        let cases: &[Case] = &[
            (
                Alert,
                "Contoso Ltd",
                jane,
                "Too Many Downloads",
                User,
                r#"user:["contoso ltd","jane@contoso.example"]"#,
            ),
            (
                Alert,
                "Contoso Ltd",
                jane,
                "Too Many Downloads",
                UserAndAlert,
                r#"user+alert:["contoso ltd","jane@contoso.example","too many downloads"]"#,
            ),
            (
                AlertFiring,
                " CONTOSO LTD ",
                Some("Jane@Contoso.Example"),
                "ImpossibleTravel",
                User,
                r#"user:["contoso ltd","jane@contoso.example"]"#,
            ),
            (
                AlertResolved,
                "Contoso Ltd",
                jane,
                "ImpossibleTravel",
                UserAndAlert,
                r#"user+alert:["contoso ltd","jane@contoso.example","impossibletravel"]"#,
            ),
            (
                Alert,
                "Contoso Ltd",
                None,
                "Device Event - New Device",
                User,
                r#"user:["contoso ltd",""]"#,
            ),
            (
                Alert,
                "a\",\"b",
                Some("c"),
                "x",
                User,
                r#"user:["a\",\"b","c"]"#,
            ),
        ];
        for (kind, org, user, alert_type, grouping, want) in cases {
            let got = group_key(&ev(*kind, org, *user, alert_type), *grouping);
            assert_eq!(&got, want, "{kind:?} {org:?} {user:?} {grouping:?}");
        }
    }

    #[test]
    fn samples_have_lanes_of_their_own_and_only_they_flow_while_suspended() {
        let alert = ev(EventKind::Alert, "Contoso", Some("j@c"), "X");
        let sample = sample_group_key(&alert, Grouping::User);
        assert_eq!(
            sample,
            format!("sample:{}", group_key(&alert, Grouping::User))
        );
        assert_ne!(sample, group_key(&alert, Grouping::User));
        let mut finding = ev(EventKind::FindingCreated, "Contoso", None, "Threat");
        finding.finding_id = Some("f1".into());
        assert_eq!(
            sample_group_key(&finding, Grouping::User),
            "sample:finding:f1"
        );
        // A sender cannot make a real alert look like a sample: its key starts with the kind.
        let forged = ev(EventKind::Alert, "sample:Contoso", Some("j@c"), "X");
        let cases = [
            (false, group_key(&alert, Grouping::User), true),
            (false, sample.clone(), true),
            (true, sample, true),
            (true, group_key(&alert, Grouping::UserAndAlert), false),
            (true, group_key(&forged, Grouping::User), false),
            (true, "finding:f1".to_string(), false),
        ];
        for (suspended, key, want) in cases {
            assert_eq!(claimable(suspended, &key), want, "{suspended} {key}");
        }
    }

    #[test]
    fn same_user_different_types_share_a_user_key_only() {
        let a = ev(
            EventKind::Alert,
            "Contoso",
            Some("j@c"),
            "Too Many Downloads",
        );
        let b = ev(
            EventKind::Alert,
            "Contoso",
            Some("j@c"),
            "Multiple MFA Failures",
        );
        assert_eq!(group_key(&a, Grouping::User), group_key(&b, Grouping::User));
        assert_ne!(
            group_key(&a, Grouping::UserAndAlert),
            group_key(&b, Grouping::UserAndAlert)
        );
    }

    #[test]
    fn alertmanager_and_saas_alerts_of_one_user_share_a_key() {
        let a = ev(EventKind::Alert, "Contoso", Some("j@c"), "X");
        let b = ev(EventKind::AlertFiring, "Contoso", Some("j@c"), "X");
        let c = ev(EventKind::AlertResolved, "Contoso", Some("j@c"), "X");
        for g in [Grouping::User, Grouping::UserAndAlert] {
            assert_eq!(group_key(&a, g), group_key(&b, g));
            assert_eq!(group_key(&b, g), group_key(&c, g));
        }
    }

    #[test]
    fn findings_key_by_finding_id_whatever_the_grouping() {
        for kind in [
            EventKind::FindingCreated,
            EventKind::FindingCommented,
            EventKind::FindingResolved,
        ] {
            let mut e = ev(kind, "Contoso", Some("j@c"), "Threat");
            e.finding_id = Some("3f9a6c1e".into());
            assert_eq!(group_key(&e, Grouping::User), "finding:3f9a6c1e");
            assert_eq!(group_key(&e, Grouping::UserAndAlert), "finding:3f9a6c1e");
        }
        let e = ev(EventKind::FindingCreated, "Contoso", None, "Threat");
        assert_eq!(group_key(&e, Grouping::User), "finding:e1");
    }
}
