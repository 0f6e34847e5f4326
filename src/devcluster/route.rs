//! Request parsing, kept pure: resource paths, lenient query strings, Accept negotiation.

use std::collections::HashMap;

/// A resource URL: `/api/v1/namespaces/ns/secrets/name/sub` or `/apis/g/v/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Parses a resource path; `None` for anything else (discovery, unknown prefixes).
pub fn parse_resource_path(path: &str) -> Option<ResourcePath> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return None,
    };
    if rest.iter().any(|s| s.is_empty()) {
        return None;
    }
    let namespaced_form = rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize"));
    let (namespace, tail) = if namespaced_form {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    if tail.len() > 3 {
        return None;
    }
    Some(ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        namespace,
        plural: tail[0].to_string(),
        name: tail.get(1).map(|s| s.to_string()),
        subresource: tail.get(2).map(|s| s.to_string()),
    })
}

/// Query parameters, parsed leniently (`?&limit=500`, `+` as space, repeated keys: last wins).
pub fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            let spaced = s.replace('+', " ");
            urlencoding::decode(&spaced)
                .map(|c| c.into_owned())
                .unwrap_or(spaced)
        };
        out.insert(decode(k), decode(v));
    }
    out
}

/// Whether a query flag is set (`watch=true` or `watch=1`).
pub fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    matches!(q.get(key).map(String::as_str), Some("true" | "1"))
}

/// What representation the client asked for in `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    Object,
    Table,
    PartialMetadata,
}

/// The first acceptable representation we can produce (kubectl lists Table first, JSON after).
pub fn representation(accept: &str) -> Representation {
    for part in accept.split(',') {
        if part.contains("as=Table") {
            return Representation::Table;
        }
        if part.contains("as=PartialObjectMetadata") {
            return Representation::PartialMetadata;
        }
        if part.contains("as=") {
            continue;
        }
        let base = part.split(';').next().unwrap_or("").trim();
        if base == "application/json" || base == "*/*" || base.is_empty() {
            return Representation::Object;
        }
    }
    Representation::Object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths() {
        let p = parse_resource_path("/api/v1/namespaces/ns/secrets/s").unwrap();
        assert_eq!(
            (
                p.group.as_str(),
                p.namespace.as_deref(),
                p.plural.as_str(),
                p.name.as_deref()
            ),
            ("", Some("ns"), "secrets", Some("s"))
        );
        let p = parse_resource_path(
            "/apis/psa-operator.io/v1alpha1/namespaces/ns/psaconnections/m/status",
        )
        .unwrap();
        assert_eq!(p.subresource.as_deref(), Some("status"));
        let p = parse_resource_path("/api/v1/namespaces/foo").unwrap();
        assert_eq!(
            (p.plural.as_str(), p.name.as_deref()),
            ("namespaces", Some("foo"))
        );
        let p = parse_resource_path("/api/v1/namespaces/foo/status").unwrap();
        assert_eq!(
            (p.plural.as_str(), p.subresource.as_deref()),
            ("namespaces", Some("status"))
        );
        let p = parse_resource_path("/apis/g/v/widgets").unwrap();
        assert_eq!(
            (p.plural.as_str(), p.namespace, p.name),
            ("widgets", None, None)
        );
        let p = parse_resource_path("/api/v1/namespaces/ns/events").unwrap();
        assert_eq!(
            (p.namespace.as_deref(), p.plural.as_str()),
            (Some("ns"), "events")
        );
        assert!(parse_resource_path("/api/v1").is_none());
        assert!(parse_resource_path("/apis/g").is_none());
        assert!(parse_resource_path("/version").is_none());
    }

    #[test]
    fn lenient_query() {
        let q = parse_query(Some("&limit=500&watch=1&labelSelector=app+in+%28a%2Cb%29"));
        assert_eq!(q["limit"], "500");
        assert!(flag(&q, "watch"));
        assert_eq!(q["labelSelector"], "app in (a,b)");
        assert!(!flag(&q, "missing"));
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(
            representation("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"),
            Representation::Table
        );
        assert_eq!(
            representation("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
            Representation::PartialMetadata
        );
        assert_eq!(
            representation("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"),
            Representation::Object
        );
        assert_eq!(
            representation("application/vnd.kubernetes.protobuf, */*"),
            Representation::Object
        );
    }
}
