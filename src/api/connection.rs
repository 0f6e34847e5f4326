//! `PsaConnection`: one PSA account, how alerts become tickets in it, and where failures go.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::common::{conditions_schema, SecretRef};
use super::sources::WebhookSource;

/// One PSA account and the ticket settings for every alert sent to it.
#[skip_serializing_none]
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "psa-operator.io",
    version = "v1alpha1",
    kind = "PsaConnection",
    doc = "PsaConnection: one PSA account (ConnectWise PSA, Kaseya BMS or Autotask), the settings of every ticket created in it, where alerts are received (intake) and where they go when no ticket can be made (failsafe e-mail). `kubectl explain psaconnection.spec` describes each field.",
    plural = "psaconnections",
    singular = "psaconnection",
    shortname = "psaconn",
    category = "psa",
    namespaced,
    status = "PsaConnectionStatus",
    printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".status.provider"}"#,
    printcolumn = r#"{"name":"Tickets","type":"integer","jsonPath":".status.dispatch.ticketsCreated"}"#,
    printcolumn = r#"{"name":"Dead Letters","type":"integer","jsonPath":".status.dispatch.deadLetters"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PsaConnectionSpec {
    /// Durable enable/disable: when true, alerts are accepted and held, and nothing is sent to the PSA.
    /// Default: false.
    pub suspend: Option<bool>,
    /// The PSA and its credentials. Exactly one provider must be set.
    pub provider: ProviderSpec,
    /// Company and contact for alerts whose organization is not mapped.
    pub catch_all: Option<CatchAll>,
    /// How organizations without a CustomerMapping are matched to PSA companies (default Manual).
    pub account_mapping: Option<AccountMapping>,
    /// How alerts are grouped into tickets (default User).
    pub grouping: Option<Grouping>,
    /// Values set on every ticket.
    pub ticket: Option<TicketSettings>,
    /// Where alerts go by e-mail when no ticket can be created.
    pub failsafe: Option<FailsafeSettings>,
    /// Authentication of the alert intake for this connection.
    pub intake: Option<IntakeSettings>,
    /// Retry, rate and grouping-delay settings of the dispatcher.
    pub dispatch: Option<DispatchSettings>,
    /// Labels of Alertmanager alerts that carry the organization, user and alert type.
    pub alertmanager: Option<AlertmanagerLabels>,
    /// Labels of Grafana alerts (`/grafana`) that carry the organization, user and alert type
    /// (same defaults as `alertmanager`).
    pub grafana: Option<AlertmanagerLabels>,
    /// Generic JSON webhook senders (`/webhook/{name}`) and CloudEvents mappings
    /// (`/cloudevents`): CEL expressions that read the alert fields from the payload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.all(s, self.exists_one(t, t.name == s.name))").message("source names must be unique"))]
    pub sources: Vec<WebhookSource>,
    /// What a resolved alert does to its group's ticket (default: a note).
    pub lifecycle: Option<super::lifecycle::LifecycleSettings>,
    /// Board, priority and type by severity or alert type: the first route that matches an
    /// alert replaces what it sets of `ticket` (after a CustomerMapping's own `ticket` and
    /// `routes`, which come first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub routes: Vec<super::routing::TicketRoute>,
    /// Noise control: the storm breaker (default: none).
    pub noise: Option<super::noise::NoiseSettings>,
    /// How often the PSA settings are re-validated to catch renames and deletions in the PSA (default 10m).
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub revalidate_interval: Option<String>,
}

/// The PSA this connection talks to. Exactly one member is set; `crate::providers` reads it.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("(has(self.connectWise) ? 1 : 0) + (has(self.kaseyaBms) ? 1 : 0) + (has(self.autotask) ? 1 : 0) == 1")
        .message("exactly one provider must be set: connectWise, kaseyaBms or autotask")
        .reason(Reason::FieldValueInvalid)
)]
pub struct ProviderSpec {
    /// ConnectWise PSA (formerly Manage).
    pub connect_wise: Option<ConnectWiseProvider>,
    /// Kaseya BMS.
    pub kaseya_bms: Option<KaseyaBmsProvider>,
    /// Autotask PSA (Datto/Kaseya).
    pub autotask: Option<AutotaskProvider>,
}

/// ConnectWise PSA site and API member.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectWiseProvider {
    /// Site URL: the API host (`https://api-na.myconnectwise.net`) or the web address users log
    /// in at (`https://na.myconnectwise.net`, also eu/au/aus/za), which is mapped to its API
    /// host; on-premises sites as they are. The codebase is discovered from it.
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("url must start with https:// (or http:// for a local sandbox)"))]
    pub url: String,
    /// The "Company ID" used when logging in to ConnectWise.
    #[schemars(length(min = 1))]
    pub company_id: String,
    /// The integration's clientId from the ConnectWise developer portal.
    #[schemars(length(min = 1))]
    pub client_id: String,
    /// Secret with keys `publicKey` and `privateKey` of the API member.
    pub credentials_secret_ref: SecretRef,
    /// Codebase override (e.g. `v2025_1/`); discovered from `/login/companyinfo` when absent.
    pub codebase: Option<String>,
    /// Let ConnectWise process notifications (e-mails to the contact and resources) for the
    /// tickets and notes the operator writes. Default false: alert follow-ups stay quiet.
    pub process_notifications: Option<bool>,
}

/// Kaseya BMS site and API user.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KaseyaBmsProvider {
    /// API URL, e.g. `https://api.bms.kaseya.com`.
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("url must start with https:// (or http:// for a local sandbox)"))]
    pub url: String,
    /// The BMS tenant (company) name.
    #[schemars(length(min = 1))]
    pub tenant: String,
    /// Secret with keys `username` and `password` of the API user.
    pub credentials_secret_ref: SecretRef,
    /// Names of the tenant lookup tables read for ticket types, sources and note types. Kaseya
    /// does not publish them; absent = `TicketType`, `TicketSource`, `TicketNoteType`.
    pub lookup_tables: Option<BmsLookupTables>,
    /// Contract `Status` texts that count as active when the contracts of many mapped accounts
    /// are read from one contract summary listing (case ignored). Kaseya's document does not
    /// list the statuses; absent = `[Active]`. Contracts whose end date has passed are left out
    /// whatever their status.
    #[schemars(length(min = 1))]
    pub active_contract_statuses: Option<Vec<String>>,
}

/// Kaseya BMS tenant lookup table names (`GET /v2/system/tenantlookup/{tableName}`).
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BmsLookupTables {
    /// Table of ticket types (default `TicketType`).
    #[schemars(length(min = 1))]
    pub ticket_type: Option<String>,
    /// Table of ticket sources (default `TicketSource`).
    #[schemars(length(min = 1))]
    pub ticket_source: Option<String>,
    /// Table of ticket note types (default `TicketNoteType`).
    #[schemars(length(min = 1))]
    pub note_type: Option<String>,
}

/// Autotask zone and API-only user.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutotaskProvider {
    /// The zone's REST URL, e.g. `https://webservices15.autotask.net/atservicesrest/`;
    /// discovered from the API user (`ZoneInformation`) when absent.
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("zoneUrl must start with https:// (or http:// for a local sandbox)"))]
    pub zone_url: Option<String>,
    /// The API-only user's user name (its e-mail address).
    #[schemars(length(min = 1))]
    pub username: String,
    /// Secret with keys `secret` (the API user's secret) and `integrationCode` (the tracking identifier).
    pub credentials_secret_ref: SecretRef,
}

/// Catch-all account for unmapped organizations.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatchAll {
    /// Company by name or identifier.
    #[schemars(length(min = 1))]
    pub company: String,
    /// Contact in that company by name or e-mail.
    pub contact: Option<String>,
}

/// How an organization without a CustomerMapping is matched to a PSA company. Default: Manual.
#[derive(JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountMapping {
    /// Only CustomerMappings; everything else goes to the catch-all.
    #[default]
    Manual,
    /// The organization name equals a company identifier.
    ByCompanyIdentifier,
    /// The organization name equals a company name.
    ByCompanyName,
}

/// Which alerts share one ticket. Default: User.
#[derive(JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grouping {
    /// One open ticket per (organization, user): later alerts of any type become notes.
    #[default]
    User,
    /// One open ticket per (organization, user, alert type).
    UserAndAlert,
}

/// Ticket field values. Each value mapping: absent = do not set, `value` = one value for all,
/// `map` + `default` = per event value.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketSettings {
    /// ConnectWise service board / BMS queue.
    pub board: Option<String>,
    /// Ticket source.
    pub source: Option<ValueMapping>,
    /// Ticket status for new tickets.
    pub status: Option<ValueMapping>,
    /// Ticket type.
    #[serde(rename = "type")]
    pub type_: Option<ValueMapping>,
    /// Ticket priority.
    pub priority: Option<ValueMapping>,
    /// BMS issue type / sub-issue type (ConnectWise: subtype / item).
    pub issue_type: Option<IssueTypeSettings>,
    /// minijinja template for the ticket summary; cut to the PSA's limit.
    #[schemars(length(max = 2048))]
    pub summary_template: Option<String>,
    /// Status used to close a ticket when a finding is resolved (default: the board's first closed status).
    pub closed_status: Option<String>,
}

/// A ticket field value: one value for all events, or a map from an event value to a PSA value.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("has(self.value) != has(self.map)")
        .message("set exactly one of value or map")
        .reason(Reason::FieldValueInvalid),
    validation = Rule::new("!has(self.default) || has(self.map)")
        .message("default is only used with map")
        .reason(Reason::FieldValueInvalid),
    validation = Rule::new("!has(self.key) || has(self.map)")
        .message("key is only used with map")
        .reason(Reason::FieldValueInvalid)
)]
pub struct ValueMapping {
    /// The one PSA value for every event.
    #[schemars(length(min = 1))]
    pub value: Option<String>,
    /// Event value → PSA value.
    pub map: Option<BTreeMap<String, String>>,
    /// PSA value for event values not in the map; absent = do not set.
    pub default: Option<String>,
    /// Which event field the map keys on (severity, alertType, status, type, priority).
    /// Default: severity for priority, alertType for type, status for status, alertType for source.
    pub key: Option<EventField>,
}

/// An event field a value map can key on.
#[derive(JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventField {
    Severity,
    AlertType,
    Status,
    Type,
    Priority,
    Organization,
}

/// Issue type / sub-issue type combinations (all five of the seed guide are expressible).
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("!has(self.subIssueType) || has(self.default)")
        .message("subIssueType needs a default issue type")
        .reason(Reason::FieldValueInvalid)
)]
pub struct IssueTypeSettings {
    /// Issue type for every ticket without an override; absent = none.
    pub default: Option<String>,
    /// Sub-issue type for every ticket without an override.
    pub sub_issue_type: Option<String>,
    /// Per-alert-type issue type / sub-issue type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<IssueTypeOverride>,
}

/// Issue type for one alert type.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueTypeOverride {
    /// Alert type as alerts name it, e.g. `Too Many Downloads` (the intake takes at most 256
    /// bytes).
    #[schemars(length(min = 1, max = 256))]
    pub alert_type: String,
    /// Issue type for this alert type.
    #[schemars(length(min = 1))]
    pub issue_type: String,
    /// Sub-issue type for this alert type.
    pub sub_issue_type: Option<String>,
}

/// Failsafe e-mail: used when a ticket cannot be created after the retry budget.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailsafeSettings {
    /// E-mail addresses that receive the alert when no ticket could be created.
    #[schemars(length(min = 1))]
    pub recipients: Vec<String>,
    /// Secret with keys host, port, from, optional username, password, tls (none|starttls|tls).
    pub smtp_secret_ref: SecretRef,
    /// What the subject of a failsafe e-mail starts with, for the MSP's mail rules (the subject
    /// always ends with "integration failsafe used"). Empty: no prefix. Default: [psa-operator].
    #[schemars(length(max = 60), regex(pattern = r"^[^\r\n]*$"))]
    pub subject_prefix: Option<String>,
}

/// Intake authentication.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntakeSettings {
    /// Secret with key `token`: the Bearer token senders must present.
    pub token_secret_ref: SecretRef,
}

/// Dispatcher tuning. Defaults (in code): maxAttempts 8, initialBackoff 2s, groupWait 0s,
/// requestsPerHour per provider (ConnectWise: none, pacing by 429 Retry-After; Kaseya BMS: 1500).
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchSettings {
    /// Attempts before the failsafe e-mail and a dead letter. Default: 8.
    #[schemars(range(min = 1, max = 100))]
    pub max_attempts: Option<u32>,
    /// First retry delay; doubles per attempt with jitter. Default: 2s.
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub initial_backoff: Option<String>,
    /// PSA request budget per hour for this connection (overrides the provider's default: ConnectWise none, Kaseya BMS 1500).
    #[schemars(range(min = 1, max = 1000000))]
    pub requests_per_hour: Option<u32>,
    /// How long to collect alerts of a new group before creating its ticket (the rest become one note).
    /// Default: 0s (no wait).
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub group_wait: Option<String>,
    /// How long events wait while this connection's settings or an organization's mapping do
    /// not resolve (company not found, mapping not evaluated yet), before they become dead
    /// letters and go out by failsafe e-mail. Overrides the operator's `--unresolved-hold`
    /// (default 15m) for this connection.
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub unresolved_hold: Option<String>,
}

/// Alertmanager label names (defaults: organization, user, alertname).
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerLabels {
    /// Label with the organization (the CustomerMapping's `organization`). Default: organization.
    #[schemars(length(min = 1, max = 256))]
    pub organization_label: Option<String>,
    /// Label with the user the alert is about. Default: user.
    #[schemars(length(min = 1, max = 256))]
    pub user_label: Option<String>,
    /// Label with the alert type (grouping, issue-type overrides). Default: alertname.
    #[schemars(length(min = 1, max = 256))]
    pub alert_type_label: Option<String>,
    /// Label with the severity (priority map). Default: severity.
    #[schemars(length(min = 1, max = 256))]
    pub severity_label: Option<String>,
}

/// Observed state of a PsaConnection.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PsaConnectionStatus {
    /// The metadata.generation this status describes; older than the generation = not yet
    /// reconciled.
    pub observed_generation: Option<i64>,
    /// Ready, Synced, Authenticated, SettingsResolved, Suspended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// `ConnectWise`, `KaseyaBMS` or `Autotask`.
    pub provider: Option<String>,
    /// PSA ids of every resolved name.
    pub resolved: Option<ResolvedIds>,
    /// Path of the intake for this connection.
    pub intake_path: Option<String>,
    /// Dispatcher counters.
    pub dispatch: Option<DispatchCounters>,
    /// Organizations matched / not matched by automatic account mapping.
    pub auto_mapping: Option<AutoMappingCounts>,
    /// When the settings were last checked against the PSA.
    pub last_validated: Option<String>,
}

/// Resolved PSA ids (as strings: ids are numbers in ConnectWise and BMS, but we keep them opaque).
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedIds {
    /// Id of `ticket.board`.
    pub board: Option<String>,
    /// Id of `catchAll.company`.
    pub catch_all_company: Option<String>,
    /// Id of `catchAll.contact`.
    pub catch_all_contact: Option<String>,
    /// Id of the status that closes a ticket when a finding is resolved.
    pub closed_status: Option<String>,
    /// Setting (e.g. `priority.map.critical`) → PSA id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
}

/// Counters of the dispatcher for this connection.
#[skip_serializing_none]
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchCounters {
    /// Events accepted by the intake and stored.
    pub accepted: u64,
    /// Events queued (waiting, retrying or held).
    pub pending: u64,
    /// Tickets this process created.
    pub tickets_created: u64,
    /// Notes this process added to open tickets.
    pub notes_added: u64,
    /// Alerts the storm breaker (`noise.maxNewTicketsPerCustomer`) sent to a customer's
    /// roll-up ticket instead of a ticket of their own.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub alerts_rolled_up: u64,
    /// Roll-up tickets the storm breaker opened.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rollups_opened: u64,
    /// Failsafe e-mails sent.
    pub failsafe_emails: u64,
    /// Events kept as dead letters (replay them with `psa-operator replay`).
    pub dead_letters: u64,
    /// The PSA request budget in effect (spec or the provider's default); absent when there
    /// is none (ConnectWise: calls are paced by the PSA's 429 Retry-After).
    pub requests_per_hour: Option<u32>,
    /// The latest failed delivery to the PSA (retried or dead-lettered), for `kubectl describe`.
    pub last_error: Option<DeliveryFailure>,
}

/// One failed delivery of an event to the PSA.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryFailure {
    /// When it failed (RFC 3339).
    pub time: String,
    /// What failed, as the PSA or the dispatcher said it (never a credential).
    pub message: String,
}

/// Counts of automatic account mapping.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoMappingCounts {
    /// Organizations matched to a PSA company.
    pub matched: u64,
    /// Organizations with no matching PSA company (they go to the catch-all).
    pub unmatched: u64,
    /// Some of the unmatched organizations, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmatched_organizations: Vec<String>,
}

impl PsaConnectionSpec {
    /// `true` when the connection is suspended (durable disable).
    pub fn suspended(&self) -> bool {
        self.suspend.unwrap_or(false)
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
