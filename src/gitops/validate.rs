//! `psa-operator validate`: offline checks of resource YAML (files, directories, stdin) — each
//! object of our kinds against its CRD schema and CEL rules, then references across objects.
//! Other kinds are ignored (Secrets are read for the reference checks).

use std::io::Write;

use serde::Serialize;

use super::args::{OutputFormat, ValidateArgs};

use super::diagnostic::{sort, Diagnostic};
use super::resource_set::ResourceSet;
use super::yaml_docs::{parse_all, read_inputs, Document, Source};
use super::{crossref, schema};

/// Outcome of validating a set of inputs.
#[derive(Debug, Default)]
pub struct Validation {
    /// Objects of our kinds that read into their types (valid only when `diagnostics` is
    /// empty), and the Secrets.
    pub set: ResourceSet,
    /// Every document read (for lines and names).
    pub documents: Vec<Document>,
    pub diagnostics: Vec<Diagnostic>,
    /// Objects of our kinds checked.
    pub checked: usize,
    /// Objects of other kinds (ignored; Secrets included).
    pub ignored: usize,
}

impl Validation {
    pub fn is_valid(&self) -> bool {
        self.diagnostics.is_empty()
    }
}

/// Validates already-read sources (pure: no I/O).
pub fn validate_sources(sources: &[Source]) -> Validation {
    let (docs, load_errors) = parse_all(sources);
    let mut v = Validation {
        diagnostics: load_errors
            .iter()
            .map(Diagnostic::from_load_error)
            .collect(),
        ..Default::default()
    };
    for doc in &docs {
        if schema::is_ours(doc) {
            v.checked += 1;
            let found = schema::check_object(doc);
            // An object with schema findings still takes part in the reference checks when it
            // reads into its type, so one run reports everything to fix.
            if let Err(e) = v.set.add(doc.clone()) {
                if found.is_empty() {
                    v.diagnostics
                        .push(Diagnostic::at(doc, "", "FieldValueInvalid", e));
                }
            }
            v.diagnostics.extend(found);
        } else {
            v.ignored += 1;
            if doc.kind() == "Secret" {
                if let Err(e) = v.set.add(doc.clone()) {
                    v.diagnostics
                        .push(Diagnostic::at(doc, "data", "SecretInvalid", e));
                }
            }
        }
    }
    v.diagnostics.extend(crossref::check(&v.set, &docs));
    sort(&mut v.diagnostics);
    v.documents = docs;
    v
}

/// Reads and validates the paths; unreadable paths are findings too.
pub fn validate_paths(paths: &[std::path::PathBuf]) -> Validation {
    match read_inputs(paths) {
        Ok(sources) => validate_sources(&sources),
        Err(e) => Validation {
            diagnostics: vec![Diagnostic::from_load_error(&e)],
            ..Default::default()
        },
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    valid: bool,
    checked: usize,
    ignored: usize,
    diagnostics: &'a [Diagnostic],
}

/// Writes the findings as text (one `file:line: kind/name: field: message` per line and a
/// summary) or as one JSON object.
pub fn render(v: &Validation, format: OutputFormat, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        OutputFormat::Json => {
            let report = Report {
                valid: v.is_valid(),
                checked: v.checked,
                ignored: v.ignored,
                diagnostics: &v.diagnostics,
            };
            serde_json::to_writer_pretty(&mut *out, &report).map_err(std::io::Error::other)?;
            writeln!(out)
        }
        OutputFormat::Text => {
            for d in &v.diagnostics {
                writeln!(out, "{d}")?;
            }
            let n = v.diagnostics.len();
            writeln!(
                out,
                "{} object(s) checked, {} other object(s) ignored: {}",
                v.checked,
                v.ignored,
                match n {
                    0 => "valid".to_string(),
                    1 => "1 problem".to_string(),
                    n => format!("{n} problems"),
                }
            )
        }
    }
}

/// The subcommand: exit 0 when valid, 1 when anything was found.
pub fn run(args: &ValidateArgs) -> i32 {
    let v = validate_paths(&args.paths);
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    if let Err(e) = render(&v, args.output, &mut lock) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            // `validate … | head`: the reader stopped; the exit code still tells validity.
        } else {
            eprintln!("error: cannot write the report: {e}");
            return 1;
        }
    }
    if v.is_valid() {
        0
    } else {
        1
    }
}

/// The ConnectWise connection the tests below extend: `connection_with(rest)` appends `rest`
/// (lines of `spec` after `provider`, indented two spaces) so a finding's line is 11 + its line
/// in `rest`.
#[cfg(test)]
mod fixtures {
    use super::*;

    const CONNECTION_HEAD: &str = "\
apiVersion: psa-operator.io/v1alpha1
kind: PsaConnection
metadata: {name: c, namespace: psa}
spec:
  provider:
    connectWise:
      url: https://api-na.myconnectwise.net
      companyId: acme
      clientId: c
      credentialsSecretRef: {name: keys}
";

    pub fn connection_with(rest: &str) -> String {
        format!("{CONNECTION_HEAD}{rest}")
    }

    /// `validate` over one file holding that connection.
    pub fn validate_connection(rest: &str) -> Validation {
        validate_sources(&[Source {
            name: "c.yaml".into(),
            text: connection_with(rest),
        }])
    }
}

#[cfg(test)]
mod source_tests {
    use super::fixtures::*;
    use super::*;

    /// A CEL expression that does not compile is a `validate` finding at its field path and
    /// line, before anything is synced.
    #[test]
    fn an_invalid_source_expression_is_reported_with_its_field_path() {
        let v = validate_connection(
            "  sources:
    - name: edr
      organization: payload.organization.
      alertType: payload.type
",
        );
        let d: Vec<_> = v
            .diagnostics
            .iter()
            .filter(|d| d.reason == "InvalidSource")
            .collect();
        assert_eq!(d.len(), 1, "{:?}", v.diagnostics);
        assert_eq!(d[0].field, "spec.sources[0].organization");
        assert_eq!(d[0].line, 13);
        assert!(
            d[0].message.contains("invalid CEL expression"),
            "{}",
            d[0].message
        );
    }

    /// A summary template that does not compile (or cannot go live) fails `validate` at its
    /// field and line, with where in the template it broke.
    #[test]
    fn a_broken_summary_template_is_reported_with_its_position() {
        let connection = |template: &str| {
            connection_with(&format!(
                "  ticket:\n    board: Security Alerts\n    summaryTemplate: \"{template}\"\n"
            ))
        };
        let cases: [(&str, Option<&str>); 4] = [
            ("{{ alertType }} — {{ user }}", None),
            ("{{ alertType }", Some("in <string>:1")),
            (
                "{{ alertType }}\\n{% if user %}{{ user }",
                Some("in <string>:2"),
            ),
            ("{{ alertType ~ user }}", Some("operator")),
        ];
        for (template, want) in cases {
            let v = validate_sources(&[Source {
                name: "c.yaml".into(),
                text: connection(template),
            }]);
            let d: Vec<_> = v
                .diagnostics
                .iter()
                .filter(|d| d.reason == "InvalidTemplate")
                .collect();
            match want {
                None => assert!(d.is_empty(), "{template}: {:?}", v.diagnostics),
                Some(position) => {
                    assert_eq!(d.len(), 1, "{template}: {:?}", v.diagnostics);
                    assert_eq!(d[0].field, "spec.ticket.summaryTemplate");
                    assert_eq!(d[0].line, 13, "the file's line");
                    assert!(
                        d[0].message.contains(position),
                        "{template}: {}",
                        d[0].message
                    );
                }
            }
        }
    }

    /// Windows that pass the schema's pattern but are zero are `validate` findings naming the
    /// field.
    #[test]
    fn zero_windows_of_the_lifecycle_and_the_storm_breaker_are_reported() {
        let v = validate_connection(
            "  lifecycle:
    reopenWithin: 0h
  noise:
    maxNewTicketsPerCustomer: {count: 20, per: 0m}
",
        );
        let fields: Vec<&str> = v
            .diagnostics
            .iter()
            .filter(|d| d.reason == "FieldValueInvalid")
            .map(|d| d.field.as_str())
            .collect();
        assert_eq!(
            fields,
            vec![
                "spec.lifecycle.reopenWithin",
                "spec.noise.maxNewTicketsPerCustomer.per"
            ],
            "{:?}",
            v.diagnostics
        );
    }
}

#[cfg(test)]
mod route_tests {
    use super::fixtures::*;
    use super::*;

    /// A route an earlier one shadows, and a mapping's summary template that does not compile,
    /// are findings at their field paths; a route's shape is checked by the CRD's CEL rules.
    #[test]
    fn routes_and_overrides_are_checked_with_their_field_paths() {
        let text = connection_with(
            r#"  routes:
    - match: {severity: [critical, high]}
      priority: P1
    - match: {severity: [High], alertType: [Too Many Downloads]}
      board: Escalations
    - match: {}
      priority: P2
---
apiVersion: psa-operator.io/v1alpha1
kind: CustomerMapping
metadata: {name: m, namespace: psa}
spec:
  connectionRef: {name: c}
  organization: Contoso Ltd
  company: {identifier: CONTOSO}
  ticket: {board: Escalations, summaryTemplate: "{{ alertType "}
"#,
        );
        let v = validate_sources(&[Source {
            name: "c.yaml".into(),
            text,
        }]);
        let found: Vec<(&str, &str)> = v
            .diagnostics
            .iter()
            .map(|d| (d.field.as_str(), d.reason.as_str()))
            .collect();
        assert!(
            found.contains(&("spec.routes[1].match", "RouteNeverMatches")),
            "{found:?}"
        );
        assert!(
            found.contains(&("spec.ticket.summaryTemplate", "InvalidTemplate")),
            "{found:?}"
        );
        assert!(
            v.diagnostics.iter().any(|d| d
                .message
                .contains("a route matches on severity, alertType or both")),
            "{:?}",
            v.diagnostics
        );
    }
}
