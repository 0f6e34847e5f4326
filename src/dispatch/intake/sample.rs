//! The sample mark: `psa-operator send-sample --even-if-suspended` sends its one event with the
//! header `Psa-Operator-Sample: even-if-suspended`, and the intake stores it in a sample lane
//! (`grouping::SAMPLE_PREFIX`) that the workers deliver even while the connection is suspended
//! — the second seed's order: send a sample, see the ticket, then enable. Every other event of
//! a suspended connection stays held.
//!
//! The mark is the intake token holder's to set, like every alert it sends; to keep it a test
//! tool and not a way around a suspension, a marked request carries exactly one event, on the
//! two endpoints the sample command uses (`/alerts`, `/findings`).

use axum::http::HeaderMap;

use super::fields::FieldError;
use super::{Endpoint, Rejection, Route};

/// The request header of the sample mark.
pub const SAMPLE_HEADER: &str = "Psa-Operator-Sample";
/// Its one value.
pub const EVEN_IF_SUSPENDED: &str = "even-if-suspended";

/// Whether the request is marked as a sample to deliver even while suspended. Pure.
pub fn sample_mark(headers: &HeaderMap, route: &Route) -> Result<bool, Rejection> {
    let Some(value) = headers.get(SAMPLE_HEADER) else {
        return Ok(false);
    };
    let bad = |detail: String| Rejection::BadHeader {
        header: SAMPLE_HEADER,
        detail,
    };
    let known = value
        .to_str()
        .map(|v| v.trim().eq_ignore_ascii_case(EVEN_IF_SUSPENDED))
        .unwrap_or(false);
    if !known {
        return Err(bad(format!(
            "the only value is {EVEN_IF_SUSPENDED:?} (sent by `psa-operator send-sample --even-if-suspended`)"
        )));
    }
    match route {
        Route::Fixed(Endpoint::Alerts | Endpoint::Findings) => Ok(true),
        _ => Err(bad(
            "samples are sent to the /alerts or /findings endpoint".to_string()
        )),
    }
}

/// A marked request must carry one event: a sample, not a batch let through a suspension.
pub fn check_sample_batch(events: usize) -> Result<(), Rejection> {
    if events == 1 {
        return Ok(());
    }
    Err(Rejection::Invalid(vec![FieldError {
        pointer: String::new(),
        detail: format!(
            "a request with the {SAMPLE_HEADER} header carries exactly one event, not {events}"
        ),
    }]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, StatusCode};

    fn headers(value: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert(SAMPLE_HEADER, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn only_the_known_value_on_the_sample_endpoints_marks_a_sample() {
        let alerts = Route::Fixed(Endpoint::Alerts);
        let findings = Route::Fixed(Endpoint::Findings);
        let alertmanager = Route::Fixed(Endpoint::Alertmanager);
        let cases: [(Option<&str>, &Route, Option<bool>); 7] = [
            (None, &alerts, Some(false)),
            (None, &alertmanager, Some(false)),
            (Some("even-if-suspended"), &alerts, Some(true)),
            (Some(" Even-If-Suspended "), &findings, Some(true)),
            (Some("even-if-suspended"), &alertmanager, None),
            (Some("yes"), &alerts, None),
            (Some(""), &alerts, None),
        ];
        for (value, route, want) in cases {
            let got = sample_mark(&headers(value), route);
            match want {
                Some(w) => assert_eq!(got, Ok(w), "{value:?} {route:?}"),
                None => {
                    let rej = got.expect_err("refused");
                    assert_eq!(rej.status(), StatusCode::BAD_REQUEST);
                    let problem = rej.problem();
                    assert_eq!(
                        problem.errors[0].header.as_deref(),
                        Some(SAMPLE_HEADER),
                        "the problem names the header"
                    );
                }
            }
        }
    }

    #[test]
    fn a_sample_request_carries_one_event() {
        assert_eq!(check_sample_batch(1), Ok(()));
        for n in [0, 2, 100] {
            let rej = check_sample_batch(n).expect_err("refused");
            assert_eq!(rej.status(), StatusCode::UNPROCESSABLE_ENTITY);
            assert!(
                rej.problem().errors[0].detail.contains("exactly one event"),
                "{n}"
            );
        }
    }
}
