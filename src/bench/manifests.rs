//! The resources and PSA seeds a benchmark applies: generated, so sizes scale with the flags.
//! Connections get a large request budget (the benchmarks measure calls, not the limiter) and a
//! long re-validation interval (so periodic re-validation does not add calls mid-measurement).

use serde_json::json;

use crate::sandbox;

/// Namespace every benchmark resource lives in.
pub const NAMESPACE: &str = "bench";

/// Which PSA a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    ConnectWise,
    KaseyaBms,
    Autotask,
}

impl Provider {
    pub fn label(self) -> &'static str {
        match self {
            Provider::ConnectWise => "connectWise",
            Provider::KaseyaBms => "kaseyaBms",
            Provider::Autotask => "autotask",
        }
    }
}

/// One PsaConnection of a benchmark.
#[derive(Clone, Debug)]
pub struct ConnectionSpec {
    pub name: String,
    pub provider: Provider,
    pub url: String,
    /// `dispatch.groupWait`, e.g. "0s" or "2s".
    pub group_wait: String,
    pub suspend: bool,
}

impl ConnectionSpec {
    /// The bearer token of this connection's intake.
    pub fn token(&self) -> String {
        format!("{}-bench-intake-token", self.name)
    }
}

/// Namespace and the shared credential Secrets.
pub fn base_yaml() -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}}}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: cw-keys, namespace: {NAMESPACE}}}\n\
         stringData: {{publicKey: demo-public, privateKey: demo-private}}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: bms-keys, namespace: {NAMESPACE}}}\n\
         stringData: {{username: demo-api, password: demo-password}}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: at-keys, namespace: {NAMESPACE}}}\n\
         stringData: {{secret: {at_secret}, integrationCode: {at_code}}}\n",
        at_secret = sandbox::autotask::DEMO_SECRET,
        at_code = sandbox::autotask::DEMO_INTEGRATION_CODE,
    )
}

/// A PsaConnection and its intake Secret, shaped like `config/samples/`.
pub fn connection_yaml(c: &ConnectionSpec) -> String {
    let (provider, priority, issue) = match c.provider {
        Provider::ConnectWise => (
            format!(
                "connectWise: {{url: \"{}\", companyId: demo, clientId: 00000000-0000-0000-0000-000000000001, credentialsSecretRef: {{name: cw-keys}}}}",
                c.url
            ),
            "{map: {critical: Priority 1 - Critical, high: Priority 2 - High}, default: Priority 3 - Medium}",
            "{default: Identity}",
        ),
        Provider::KaseyaBms => (
            format!(
                "kaseyaBms: {{url: \"{}\", tenant: demo, credentialsSecretRef: {{name: bms-keys}}}}",
                c.url
            ),
            "{map: {critical: Critical, high: High}, default: Medium}",
            "{default: SaaS Alerts, subIssueType: General}",
        ),
        Provider::Autotask => (
            format!(
                "autotask: {{zoneUrl: \"{}/atservicesrest/\", username: {}, credentialsSecretRef: {{name: at-keys}}}}",
                c.url,
                sandbox::autotask::DEMO_USERNAME,
            ),
            "{map: {critical: Critical, high: High}, default: Medium}",
            "{default: SaaS Alerts, subIssueType: General}",
        ),
    };
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-intake, namespace: {ns}}}\n\
         stringData: {{token: {token}}}\n---\n\
         apiVersion: psa-operator.io/v1alpha1\nkind: PsaConnection\n\
         metadata: {{name: {name}, namespace: {ns}}}\n\
         spec:\n  suspend: {suspend}\n  revalidateInterval: 1h\n  provider:\n    {provider}\n\
         \x20 catchAll: {{company: Default Customer, contact: Default Contact}}\n\
         \x20 accountMapping: Manual\n  grouping: User\n\
         \x20 ticket:\n    board: Security Alerts\n    source: {{value: SaaS Alerts}}\n\
         \x20   status: {{value: New}}\n    type: {{value: Alert}}\n    priority: {priority}\n\
         \x20   issueType: {issue}\n    summaryTemplate: \"{{{{ alertType }}}} — {{{{ user }}}}\"\n\
         \x20 intake: {{tokenSecretRef: {{name: {name}-intake}}}}\n\
         \x20 dispatch: {{maxAttempts: 8, initialBackoff: 1s, requestsPerHour: 1000000, groupWait: {wait}}}\n",
        name = c.name,
        ns = NAMESPACE,
        token = c.token(),
        suspend = c.suspend,
        wait = c.group_wait,
    )
}

/// Identifier of the `i`-th generated company.
pub fn company_identifier(i: usize) -> String {
    format!("BENCH{i:05}")
}

/// Name of the `i`-th generated company (and the organization its alerts carry).
pub fn company_name(i: usize) -> String {
    format!("Bench Customer {i:05}")
}

/// `count` CustomerMappings on `connection`, each to its own generated company with a default
/// contact and a contract: the shape of a mapping as an MSP writes it.
pub fn mappings_yaml(connection: &str, count: usize) -> String {
    let mut out = String::with_capacity(count * 400);
    for i in 0..count {
        out.push_str(&format!(
            "---\napiVersion: psa-operator.io/v1alpha1\nkind: CustomerMapping\n\
             metadata: {{name: customer-{i:05}, namespace: {NAMESPACE}}}\n\
             spec:\n  connectionRef: {{name: {connection}}}\n  organization: {org}\n\
             \x20 company: {{identifier: {id}}}\n\
             \x20 defaultContact: {{email: alerts@bench{i:05}.example}}\n\
             \x20 contract: {{name: Managed Security}}\n",
            org = company_name(i),
            id = company_identifier(i),
        ));
    }
    out
}

/// The ConnectWise demo seed plus `count` generated companies, each with the contact and the
/// agreement its generated mapping names.
pub fn connectwise_seed(
    count: usize,
) -> Result<sandbox::connectwise::seed::Seed, serde_json::Error> {
    let mut seed = sandbox::connectwise::demo_seed();
    for i in 0..count {
        seed.companies.push(serde_json::from_value(json!({
            "identifier": company_identifier(i),
            "name": company_name(i),
            "contacts": [{"firstName": "Alert", "lastName": "Contact",
                          "email": format!("alerts@bench{i:05}.example")}],
            "agreements": [{"name": "Managed Security", "type": "Managed Services"}],
        }))?);
    }
    Ok(seed)
}

/// The Kaseya BMS demo seed with a per-endpoint budget high enough not to throttle a benchmark.
pub fn bms_seed() -> sandbox::bms::Seed {
    let mut seed = sandbox::bms::demo_seed();
    seed.settings.calls_per_hour_per_endpoint = 1_000_000;
    seed
}

/// [`bms_seed`] plus `count` generated accounts (code = the company identifier), each with the
/// contact and the contract its generated mapping names.
pub fn bms_seed_with(count: usize) -> Result<sandbox::bms::Seed, serde_json::Error> {
    let mut seed = bms_seed();
    for i in 0..count {
        seed.accounts.push(serde_json::from_value(json!({
            "name": company_name(i),
            "code": company_identifier(i),
            "type": "Customer",
            "locations": ["Main"],
            "contacts": [{"firstName": "Alert", "lastName": "Contact",
                          "email": format!("alerts@bench{i:05}.example")}],
            "contracts": [{"name": "Managed Security"}],
        }))?);
    }
    Ok(seed)
}

/// The Autotask demo database plus `count` generated companies (number = the company
/// identifier), each with the contact and the contract its generated mapping names. The
/// database threshold is off: the benchmark counts calls against Autotask's 10,000 per hour
/// instead of being refused at it.
pub fn autotask_seed_with(count: usize) -> Result<sandbox::autotask::Seed, serde_json::Error> {
    let mut seed = sandbox::autotask::demo_seed();
    seed.settings.requests_per_hour = 0;
    for i in 0..count {
        seed.companies.push(serde_json::from_value(json!({
            "name": company_name(i),
            "number": company_identifier(i),
            "type": "Customer",
            "contacts": [{"firstName": "Alert", "lastName": "Contact",
                          "email": format!("alerts@bench{i:05}.example")}],
            "contracts": [{"name": "Managed Security"}],
        }))?);
    }
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(yaml: &str) -> Vec<serde_yaml::Value> {
        serde_yaml::Deserializer::from_str(yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .filter(|v: &serde_yaml::Value| !v.is_null())
            .collect()
    }

    #[test]
    fn connection_yaml_parses_as_a_connection_the_crd_accepts() {
        for provider in [
            Provider::ConnectWise,
            Provider::KaseyaBms,
            Provider::Autotask,
        ] {
            let c = ConnectionSpec {
                name: "c1".into(),
                provider,
                url: "http://127.0.0.1:1".into(),
                group_wait: "2s".into(),
                suspend: false,
            };
            let d = docs(&connection_yaml(&c));
            assert_eq!(d.len(), 2);
            assert_eq!(
                d[0]["stringData"]["token"].as_str(),
                Some("c1-bench-intake-token")
            );
            let conn: crate::api::PsaConnection =
                serde_yaml::from_value(d[1].clone()).expect("a PsaConnection");
            assert_eq!(
                conn.spec.dispatch.unwrap().group_wait.as_deref(),
                Some("2s")
            );
        }
    }

    #[test]
    fn mappings_and_seed_name_the_same_companies() {
        let d = docs(&mappings_yaml("c1", 3));
        assert_eq!(d.len(), 3);
        let m: crate::api::CustomerMapping = serde_yaml::from_value(d[2].clone()).unwrap();
        assert_eq!(m.spec.organization, "Bench Customer 00002");
        let seed = connectwise_seed(3).unwrap();
        let last = seed.companies.last().unwrap();
        assert_eq!(last.identifier, "BENCH00002");
        assert_eq!(
            last.contacts[0].email.as_deref(),
            Some("alerts@bench00002.example")
        );
    }
}
