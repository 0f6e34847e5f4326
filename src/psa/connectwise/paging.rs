//! `Link` response headers of ConnectWise list endpoints (RFC 8288 shape).
//!
//! A list that fits one page has no `Link`; otherwise it carries `rel="next"` until the last page.

/// The target of `rel="next"` in a `Link` header value, if any.
pub fn next_link(header: &str) -> Option<String> {
    split_links(header)
        .into_iter()
        .find(|(_, rels)| {
            rels.split_whitespace()
                .any(|r| r.eq_ignore_ascii_case("next"))
        })
        .map(|(url, _)| url)
}

/// `(url, rel)` pairs of a `Link` header value.
fn split_links(header: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = header;
    while let Some(start) = rest.find('<') {
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        let url = rest[start + 1..start + end].trim().to_string();
        rest = &rest[start + end + 1..];
        // Parameters run up to the next link (a `,` outside quotes followed by `<`).
        let params_end = next_link_start(rest);
        let params = &rest[..params_end];
        rest = &rest[params_end..];
        let rel = params
            .split(';')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("rel"))
            .map(|(_, v)| {
                v.trim()
                    .trim_end_matches(',')
                    .trim()
                    .trim_matches('"')
                    .to_string()
            })
            .unwrap_or_default();
        out.push((url, rel));
    }
    out
}

fn next_link_start(s: &str) -> usize {
    let mut in_quotes = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => return i,
            _ => {}
        }
    }
    s.len()
}

/// Whether `url` is on the same scheme, host and port as `base` (a `Link` pointing elsewhere is
/// not followed: the credentials would go with it).
pub fn same_origin(url: &str, base: &str) -> bool {
    match (reqwest::Url::parse(url), reqwest::Url::parse(base)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.port_or_known_default() == b.port_or_known_default()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_next_among_the_documented_relations() {
        let h = "<https://h/v4_6_release/apis/3.0/company/companies?pageSize=1000&page=2>; rel=\"next\", \
                 <https://h/v4_6_release/apis/3.0/company/companies?pageSize=1000&page=5>; rel=\"last\"";
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://h/v4_6_release/apis/3.0/company/companies?pageSize=1000&page=2")
        );
        let middle = "<https://h/a?page=1>; rel=\"first\", <https://h/a?page=2>; rel=\"prev\", \
                      <https://h/a?page=4>; rel=\"next\", <https://h/a?page=9>; rel=\"last\"";
        assert_eq!(next_link(middle).as_deref(), Some("https://h/a?page=4"));
        let last = "<https://h/a?page=1>; rel=\"first\", <https://h/a?page=8>; rel=\"prev\"";
        assert_eq!(next_link(last), None);
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("garbage <no end"), None);
        // Unquoted rel and a comma inside the URL.
        assert_eq!(
            next_link("<https://h/a?conditions=id in (1,2)&page=2>; rel=next").as_deref(),
            Some("https://h/a?conditions=id in (1,2)&page=2")
        );
    }

    #[test]
    fn origin_check() {
        assert!(same_origin("https://h/x?page=2", "https://h/v4/apis/3.0"));
        assert!(same_origin("https://h:443/x", "https://h/"));
        assert!(!same_origin("https://evil/x", "https://h/"));
        assert!(!same_origin("http://h/x", "https://h/"));
        assert!(!same_origin("not a url", "https://h/"));
    }
}
