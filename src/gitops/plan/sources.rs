//! `plan`'s view of `spec.sources`: each webhook source with its path, signature scheme,
//! CloudEvents types and any expression that does not compile. Pure (no Secret is read).

use crate::api::WebhookSource;
use crate::dispatch::intake::sources::check;

use super::model::SourcePlan;

/// One plan entry per source, in spec order.
pub fn source_plans(sources: &[WebhookSource]) -> Vec<SourcePlan> {
    let errors = check(sources);
    sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let prefix = format!("sources[{i}].");
            SourcePlan {
                name: s.name.clone(),
                path: format!("webhook/{}", s.name),
                signature: match s.signature.as_ref() {
                    Some(sig) => match (&sig.hmac_sha256, &sig.svix) {
                        (Some(h), _) => format!("hmacSha256 ({})", h.header),
                        (None, Some(v)) => {
                            format!("svix (window {})", v.tolerance.as_deref().unwrap_or("5m"))
                        }
                        (None, None) => "none".into(),
                    },
                    None => "none".into(),
                },
                cloud_event_types: s.cloud_event_types.clone(),
                problems: errors
                    .iter()
                    .filter_map(|e| {
                        let field = e.field.strip_prefix(&prefix)?;
                        Some(format!("{field}: {:?} {}", e.value, e.problem))
                    })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_show_their_path_signature_and_broken_expressions() {
        let sources: Vec<WebhookSource> = serde_json::from_value(serde_json::json!([
            {"name": "huntress", "organization": "payload.organization.name",
             "alertType": "payload.type",
             "signature": {"hmacSha256": {"header": "X-Signature", "secretRef": {"name": "h"}}}},
            {"name": "siem", "organization": "payload.org.", "alertType": "payload.kind",
             "cloudEventTypes": ["com.siem.*"]},
        ]))
        .unwrap();
        let plans = source_plans(&sources);
        assert_eq!(plans[0].path, "webhook/huntress");
        assert_eq!(plans[0].signature, "hmacSha256 (X-Signature)");
        assert!(plans[0].problems.is_empty());
        assert_eq!(plans[1].signature, "none");
        assert_eq!(plans[1].cloud_event_types, vec!["com.siem.*"]);
        assert_eq!(plans[1].problems.len(), 1, "{:?}", plans[1].problems);
        assert!(plans[1].problems[0].starts_with("organization: \"payload.org.\""));
    }
}
