//! Checks across objects: what each reference points at exists in the input, organizations are
//! mapped once per connection, catalog services are declared once, and — when the input carries
//! Secrets — the referenced Secrets exist with the keys the operator reads.
//!
//! The Secret checks run the operator's own code on the Secret (client factory, SMTP parser), so
//! a Secret `validate` accepts is one the operator can use.

use std::collections::BTreeMap;

use crate::api::PsaConnection;
use crate::controller::factory::{FactoryError, PsaFactory, RealPsaFactory};
use crate::controller::resolve::lifecycle::check_offline;
use crate::controller::resolve::names::nearest;
use crate::controller::resolve::noise::storm_limit;
use crate::controller::resolve::settings::{dispatch_config, smtp_settings};
use crate::controller::resolve::ticket::{required_by_psa, SUMMARY_TEMPLATE_FIELD};
use crate::controller::secrets::{decode_secret, SecretData};
use crate::dispatch::decide::render::cut_chars;

use super::diagnostic::Diagnostic;
use super::resource_set::{Located, ResourceSet};
use super::yaml_docs::Document;

/// Every cross-reference finding. `all` holds every document of the input (also the ones that
/// failed their schema check), so a broken object is still found by name and reported once.
pub fn check(set: &ResourceSet, all: &[Document]) -> Vec<Diagnostic> {
    let mut out = duplicate_objects(all);
    let named = |kind: &str, ns: &str| -> Vec<String> {
        all.iter()
            .filter(|d| d.kind() == kind && d.namespace() == ns && super::schema::is_ours(d))
            .map(|d| d.name().to_string())
            .collect()
    };
    let missing = |doc: &Document, field: &str, kind: &str, name: &str, reason: &str| {
        let candidates = named(kind, doc.namespace());
        let hint = match nearest(candidates.iter().map(String::as_str), name, 3) {
            n if n.is_empty() => String::new(),
            n => format!(" (did you mean {}?)", quoted(&n)),
        };
        Diagnostic::at(
            doc,
            field,
            reason,
            format!(
                "{kind} {name:?} is not in the input{}{hint}",
                ns_note(doc.namespace())
            ),
        )
    };
    for m in &set.mappings {
        out.extend(shadowed(&m.doc, &m.obj.spec.routes));
    }
    for c in &set.connections {
        out.extend(shadowed(&c.doc, &c.obj.spec.routes));
    }
    for m in &set.mappings {
        let spec = &m.obj.spec;
        let conn = &spec.connection_ref.name;
        let template = spec
            .ticket
            .as_ref()
            .and_then(|t| t.summary_template.as_deref());
        if let Some(Err(e)) = template.map(crate::dispatch::decide::render::check_template) {
            out.push(Diagnostic::at(
                &m.doc,
                "spec.ticket.summaryTemplate",
                "InvalidTemplate",
                e.0,
            ));
        }
        if !named("PsaConnection", m.namespace()).contains(conn) {
            out.push(missing(
                &m.doc,
                "spec.connectionRef.name",
                "PsaConnection",
                conn,
                "ConnectionNotFound",
            ));
        }
        if let Some(line) = &spec.contract_service {
            let svc = &line.service_ref.name;
            match set.service(m.namespace(), svc) {
                Some(s) if s.obj.spec.connection_ref.name != *conn => out.push(Diagnostic::at(
                    &m.doc,
                    "spec.contractService.serviceRef.name",
                    "ServiceOnOtherConnection",
                    format!(
                        "ContractService {svc:?} belongs to connection {:?}, this mapping to {conn:?}",
                        s.obj.spec.connection_ref.name
                    ),
                )),
                Some(_) => {}
                None if named("ContractService", m.namespace()).contains(svc) => {}
                None => out.push(missing(
                    &m.doc,
                    "spec.contractService.serviceRef.name",
                    "ContractService",
                    svc,
                    "ServiceNotFound",
                )),
            }
            if spec.contract.is_none() {
                out.push(Diagnostic::at(
                    &m.doc,
                    "spec.contractService",
                    "ContractMissing",
                    "contractService needs spec.contract: the line is kept on that contract",
                ));
            }
        }
    }
    for s in &set.services {
        let conn = &s.obj.spec.connection_ref.name;
        if !named("PsaConnection", s.namespace()).contains(conn) {
            out.push(missing(
                &s.doc,
                "spec.connectionRef.name",
                "PsaConnection",
                conn,
                "ConnectionNotFound",
            ));
        }
    }
    out.extend(duplicate_organizations(set));
    out.extend(duplicate_service_names(set));
    for c in &set.connections {
        out.extend(required_settings(c));
        out.extend(template_settings(c));
        let spec = &c.obj.spec;
        let settings = [
            dispatch_config(spec).err(),
            storm_limit(spec).err(),
            check_offline(spec.lifecycle.as_ref()).err(),
        ];
        for u in settings.into_iter().flatten() {
            out.push(Diagnostic::at(
                &c.doc,
                &format!("spec.{}", u.field),
                "FieldValueInvalid",
                format!("{:?} {}", u.value, u.problem),
            ));
        }
        for e in crate::dispatch::intake::sources::check(&c.obj.spec.sources) {
            out.push(Diagnostic::at(
                &c.doc,
                &format!("spec.{}", e.field),
                "InvalidSource",
                format!("{:?} {}", e.value, e.problem),
            ));
        }
    }
    if !set.secrets.is_empty() {
        for c in &set.connections {
            out.extend(connection_secrets(set, c));
        }
    }
    out
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ns_note(ns: &str) -> String {
    if ns.is_empty() {
        " (without a namespace)".into()
    } else {
        format!(" in namespace {ns:?}")
    }
}

/// The same kind/namespace/name twice: the later one silently replaces the earlier on apply.
fn duplicate_objects(all: &[Document]) -> Vec<Diagnostic> {
    let mut seen: BTreeMap<(String, String, String, String), &Document> = BTreeMap::new();
    let mut out = vec![];
    for d in all {
        if d.name().is_empty() {
            continue;
        }
        let group = d.api_version().split('/').next().unwrap_or("").to_string();
        let key = (
            group,
            d.kind().to_string(),
            d.namespace().to_string(),
            d.name().to_string(),
        );
        match seen.get(&key) {
            Some(first) => out.push(Diagnostic::at(
                d,
                "metadata.name",
                "DuplicateObject",
                format!(
                    "also defined at {}:{}; the later one replaces the earlier on apply",
                    first.file, first.line
                ),
            )),
            None => {
                seen.insert(key, d);
            }
        }
    }
    out
}

/// Organizations mapped twice on one connection: the operator routes neither of them.
fn duplicate_organizations(set: &ResourceSet) -> Vec<Diagnostic> {
    let mut groups: BTreeMap<(String, String, String), Vec<&Located<_>>> = BTreeMap::new();
    for m in &set.mappings {
        let key = (
            m.namespace().to_string(),
            m.obj.spec.connection_ref.name.clone(),
            m.obj.spec.organization.trim().to_lowercase(),
        );
        groups.entry(key).or_default().push(m);
    }
    let mut out = vec![];
    for ((_, conn, _), ms) in groups.into_iter().filter(|(_, v)| v.len() > 1) {
        for m in &ms {
            let others: Vec<String> = ms
                .iter()
                .filter(|o| o.name() != m.name())
                .map(|o| o.name().to_string())
                .collect();
            out.push(Diagnostic::at(
                &m.doc,
                "spec.organization",
                "DuplicateOrganization",
                format!(
                    "organization {:?} is also mapped by {} on connection {conn:?}; the operator uses neither",
                    m.obj.spec.organization,
                    others.join(", ")
                ),
            ));
        }
    }
    out
}

/// Two ContractServices naming the same catalog service on one connection would both adopt it
/// and correct each other's price forever.
fn duplicate_service_names(set: &ResourceSet) -> Vec<Diagnostic> {
    let mut first: BTreeMap<(String, String, String), &str> = BTreeMap::new();
    let mut out = vec![];
    for s in &set.services {
        let key = (
            s.namespace().to_string(),
            s.obj.spec.connection_ref.name.clone(),
            s.obj.spec.name.trim().to_lowercase(),
        );
        match first.get(&key) {
            Some(other) => out.push(Diagnostic::at(
                &s.doc,
                "spec.name",
                "DuplicateCatalogService",
                format!(
                    "catalog service {:?} is also declared by ContractService {other:?}; both would manage one PSA service",
                    s.obj.spec.name
                ),
            )),
            None => {
                first.insert(key, s.name());
            }
        }
    }
    out
}

/// Ticket settings the connection's PSA requires that the spec leaves unset (the same rule the
/// reconciler reports as `SettingsResolved=False RequiredByPsa`).
/// Routes an earlier route of the same list takes every alert of (first match wins).
fn shadowed(doc: &Document, routes: &[crate::api::TicketRoute]) -> Vec<Diagnostic> {
    use crate::dispatch::decide::ticket_route::{shadowed_routes, RouteMatcher};
    let matchers: Vec<RouteMatcher> = routes
        .iter()
        .map(|r| RouteMatcher::new(&r.matcher.severity, &r.matcher.alert_type))
        .collect();
    shadowed_routes(&matchers)
        .into_iter()
        .map(|(j, i)| {
            Diagnostic::at(
                doc,
                &format!("spec.routes[{j}].match"),
                "RouteNeverMatches",
                format!("routes[{i}] takes every alert this route matches (first match wins); reorder or narrow routes[{i}]"),
            )
        })
        .collect()
}

fn required_settings(c: &Located<PsaConnection>) -> Vec<Diagnostic> {
    let Some(provider) = c.obj.spec.provider.selected().map(|p| p.provider()) else {
        return vec![];
    };
    let ticket = c.obj.spec.ticket.clone().unwrap_or_default();
    required_by_psa(provider, &ticket)
        .into_iter()
        .map(|u| {
            // `line_of` falls back to the nearest parent present (the ticket block, or spec).
            let field = format!("spec.{}", u.field);
            let message = format!("{field} {}", u.problem);
            Diagnostic::at(&c.doc, &field, "RequiredByPsa", message)
        })
        .collect()
}

/// A summary template that cannot go live (the reconciler's `SettingsResolved=False
/// InvalidTemplate`): the same check, so a broken template fails in CI, not at the first alert.
/// The message keeps the template's own line (`in <string>:N`); the diagnostic has the file's.
fn template_settings(c: &Located<PsaConnection>) -> Vec<Diagnostic> {
    let Some(template) = c
        .obj
        .spec
        .ticket
        .as_ref()
        .and_then(|t| t.summary_template.as_deref())
    else {
        return vec![];
    };
    match crate::dispatch::decide::render::check_template(template) {
        Ok(()) => vec![],
        Err(e) => {
            let field = format!("spec.{SUMMARY_TEMPLATE_FIELD}");
            let message = format!("{field} {:?} {}", cut_chars(template, 60), e.0);
            vec![Diagnostic::at(&c.doc, &field, "InvalidTemplate", message)]
        }
    }
}

/// The Secrets a connection references: present, decodable, with the keys the operator reads.
fn connection_secrets(set: &ResourceSet, c: &Located<PsaConnection>) -> Vec<Diagnostic> {
    let spec = &c.obj.spec;
    let mut out = vec![];
    let mut lookup = |field: &str, name: &str| -> Option<SecretData> {
        let Some(s) = set.secret(c.namespace(), name) else {
            out.push(Diagnostic::at(
                &c.doc,
                field,
                "SecretNotFound",
                format!(
                    "Secret {name:?} is not in the input{} (other Secrets are)",
                    ns_note(c.namespace())
                ),
            ));
            return None;
        };
        match decode_secret(&s.obj) {
            Ok(d) => Some(d),
            Err(e) => {
                out.push(Diagnostic::at(&c.doc, field, e.reason(), e.to_string()));
                None
            }
        }
    };
    let provider_field = spec.provider.credentials_field();
    let mut found = vec![];
    if let Some(name) = spec.provider.credentials_secret_name() {
        if let Some(data) = lookup(provider_field, name) {
            found.push((provider_field, Check::Credentials, data));
        }
    }
    if let Some(i) = &spec.intake {
        let f = "spec.intake.tokenSecretRef.name";
        if let Some(data) = lookup(f, &i.token_secret_ref.name) {
            found.push((f, Check::Token, data));
        }
    }
    if let Some(fs) = &spec.failsafe {
        let f = "spec.failsafe.smtpSecretRef.name";
        if let Some(data) = lookup(f, &fs.smtp_secret_ref.name) {
            found.push((f, Check::Smtp, data));
        }
    }
    for (field, check, data) in found {
        let problem = match check {
            // Only the Secret's part: provider settings are the schema's business.
            Check::Credentials => match RealPsaFactory.build(&spec.provider, &data) {
                Err(FactoryError::Secret(e)) => Some((e.reason().to_string(), e.to_string())),
                _ => None,
            },
            Check::Token => data
                .require("token")
                .err()
                .map(|e| (e.reason().to_string(), e.to_string())),
            Check::Smtp => smtp_settings(&data.name, |k| data.optional(k))
                .err()
                .map(|u| {
                    (
                        "SecretKeyMissing".to_string(),
                        format!("{} {}", u.field, u.problem),
                    )
                }),
        };
        if let Some((reason, msg)) = problem {
            out.push(Diagnostic::at(&c.doc, field, &reason, msg));
        }
    }
    out
}

enum Check {
    Credentials,
    Token,
    Smtp,
}
