//! Seed pieces the Kaseya BMS and Autotask sandboxes describe alike: both databases hold the same
//! ticket picklists (queues, ticket types, sources, priorities, statuses, issue types with their
//! sub-issue types, note types) and a service catalog with unit cost and price, under the same
//! top-level keys of their seeds. Each provider's `seed` module keeps the rest of its own
//! vocabulary (accounts or companies, status shapes, users).

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::Deserialize;

/// The picklists and the service catalog of a BMS or Autotask seed; `Status` is the provider's
/// own status record. Every list is optional.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct SeedPicklists<Status> {
    pub queues: Vec<String>,
    pub ticket_types: Vec<String>,
    pub sources: Vec<String>,
    pub priorities: Vec<String>,
    pub statuses: Vec<Status>,
    pub issue_types: Vec<SeedIssueType>,
    pub note_types: Vec<String>,
    pub services: Vec<SeedService>,
}

// Not derived: the derive would ask `Status: Default`, and an empty list needs no status.
impl<Status> Default for SeedPicklists<Status> {
    fn default() -> Self {
        SeedPicklists {
            queues: Vec::new(),
            ticket_types: Vec::new(),
            sources: Vec::new(),
            priorities: Vec::new(),
            statuses: Vec::new(),
            issue_types: Vec::new(),
            note_types: Vec::new(),
            services: Vec::new(),
        }
    }
}

/// An issue type and the names of its sub-issue types (ids assigned in order).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedIssueType {
    pub name: String,
    #[serde(default)]
    pub sub_issue_types: Vec<String>,
}

/// A service of the catalog.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedService {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub unit_cost: f64,
    #[serde(default)]
    pub unit_price: f64,
}

/// Reads a seed whose top-level keys belong either to the provider's own part `Own` or to the
/// shared [`SeedPicklists`], and refuses a key that neither knows, naming it.
///
/// Each part is read straight from the text, so errors keep their line and column and a plain
/// scalar such as `2024` still reads as a name (`#[serde(flatten)]` would buffer the values and
/// lose both). `Own` therefore must not deny unknown fields at its top level (the picklists' keys
/// are there); below the top level a key either part passes over is refused here.
pub(crate) fn read_with_picklists<Own, Status>(
    text: &str,
) -> Result<(Own, SeedPicklists<Status>), serde_yaml::Error>
where
    Own: DeserializeOwned,
    Status: DeserializeOwned,
{
    let (own, not_own) = read_noting_ignored::<Own>(text)?;
    let (picklists, not_picklists) = read_noting_ignored::<SeedPicklists<Status>>(text)?;
    // What one part passed over is unknown, unless it is a top-level key the other part read.
    let read_by =
        |other: &BTreeSet<String>, path: &String| !path.contains('.') && !other.contains(path);
    let unknown = not_own
        .iter()
        .find(|p| !read_by(&not_picklists, p))
        .or_else(|| not_picklists.iter().find(|p| !read_by(&not_own, p)));
    match unknown {
        Some(key) => Err(serde::de::Error::custom(format_args!(
            "unknown field `{key}`"
        ))),
        None => Ok((own, picklists)),
    }
}

/// Reads `T` from YAML text, with the paths of the keys it passed over.
fn read_noting_ignored<T: DeserializeOwned>(
    text: &str,
) -> Result<(T, BTreeSet<String>), serde_yaml::Error> {
    let mut ignored = BTreeSet::new();
    let value = serde_ignored::deserialize(serde_yaml::Deserializer::from_str(text), |path| {
        ignored.insert(path.to_string());
    })?;
    Ok((value, ignored))
}

/// `#[serde(default = "…")]` for flags that are on unless the seed says otherwise.
pub(crate) fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider's own part as the real ones are: nested records deny unknown fields, the top
    /// level leaves the picklists' keys alone.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Own {
        tenant: String,
        #[serde(default)]
        users: Vec<User>,
        #[serde(default)]
        settings: Loose,
    }

    /// A record that leaves unknown keys to the reader.
    #[derive(Debug, Default, Deserialize)]
    struct Loose {
        #[serde(default)]
        hours: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct User {
        name: String,
    }

    fn read(text: &str) -> Result<(Own, SeedPicklists<String>), String> {
        read_with_picklists(text).map_err(|e| e.to_string())
    }

    #[test]
    fn both_parts_come_from_one_top_level() {
        let (own, lists) =
            read("tenant: t\nusers: [{name: u}]\nsettings: {hours: 3}\nqueues: [Alerts, 2024]\nstatuses: [New]\n")
                .unwrap();
        assert_eq!(
            (own.tenant.as_str(), own.users[0].name.as_str()),
            ("t", "u")
        );
        assert_eq!(own.settings.hours, 3);
        assert_eq!(
            lists.queues,
            ["Alerts", "2024"],
            "plain scalars read as names"
        );
        assert_eq!(lists.statuses, ["New"]);
        assert!(lists.services.is_empty());
    }

    #[test]
    fn a_key_neither_part_knows_is_refused_by_name() {
        for (text, key) in [
            ("tenant: t\nqueue: [Alerts]\n", "`queue`"),
            ("tenant: t\nusers: [{name: u, role: admin}]\n", "`role`"),
            (
                "tenant: t\nissueTypes: [{name: I, subtypes: []}]\n",
                "`subtypes`",
            ),
            (
                "tenant: t\nsettings: {hours: 1, minutes: 2}\n",
                "`settings.minutes`",
            ),
        ] {
            let e = read(text).unwrap_err();
            assert!(e.contains(&format!("unknown field {key}")), "{text}: {e}");
        }
        let e = read("queues: [Alerts]\n").unwrap_err();
        assert!(e.contains("missing field `tenant`"), "{e}");
    }

    /// Each sandbox refuses a key its seed does not have, at the top or in a record, by name.
    #[test]
    fn every_sandbox_names_an_unknown_seed_key() {
        use crate::sandbox::{autotask, bms, connectwise};
        type Read = fn(&str) -> Option<String>;
        let bms: Read = |t| bms::Seed::from_yaml(t).err().map(|e| e.to_string());
        let autotask: Read = |t| autotask::Seed::from_yaml(t).err().map(|e| e.to_string());
        let connectwise: Read = |t| connectwise::seed::parse(t).err();
        let table = [
            (
                bms,
                "tenant: t\nusers: [{userName: u, password: p}]",
                [
                    ("queue: [Alerts]", "queue"),
                    ("accounts: [{name: A, number: '1'}]", "number"),
                    ("statuses: [{name: New, default: true}]", "default"),
                ],
            ),
            (
                autotask,
                "apiUsers: [{userName: a, secret: b, integrationCode: c}]",
                [
                    ("boards: []", "boards"),
                    ("companies: [{name: A, code: X}]", "code"),
                    ("statuses: [{value: 1, label: N, closed: true}]", "closed"),
                ],
            ),
            (
                connectwise,
                "companyId: x\npublicKey: a\nprivateKey: b",
                [
                    ("queues: [Alerts]", "queues"),
                    ("companies: [{identifier: C, name: C, code: X}]", "code"),
                    (
                        "boards: [{name: B, statuses: [{name: N, active: true}]}]",
                        "active",
                    ),
                ],
            ),
        ];
        for (read, base, cases) in table {
            for (extra, key) in cases {
                let e = read(&format!("{base}\n{extra}\n"))
                    .unwrap_or_else(|| panic!("{extra} was accepted"));
                assert!(
                    e.contains(&format!("unknown field `{key}`")),
                    "{extra}: {e}"
                );
            }
        }
    }
}
