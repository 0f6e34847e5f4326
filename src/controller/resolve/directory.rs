//! The batched directory of a connection: the contacts and contracts of every mapped company,
//! listed a few hundred companies per PSA call, so a wave of mappings costs a handful of calls
//! instead of a contact and a contract look-up per mapping (issue [S] item 1).
//!
//! Pure: it is built from what `Psa::contacts_of_companies` / `contracts_of_companies` answered
//! and only answers for the companies it *covers* (listed). For any other company it says
//! "not listed" (`None`) and the caller looks that one mapping up in the PSA. A later listing of
//! some companies replaces everything known about exactly those companies, so a contact that
//! moved to another company or an agreement that was renamed is seen as the PSA has it now.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::psa::{Contact, Contract, DirectoryContact, PsaId};

/// Contacts and contracts of the companies a listing covered.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    covered: HashSet<PsaId>,
    /// `None`: the provider cannot list contacts by company (every look-up goes to the PSA).
    contacts: Option<HashMap<PsaId, Vec<DirectoryContact>>>,
    /// `None`: the provider cannot list contracts by company.
    contracts: Option<HashMap<PsaId, Vec<Contract>>>,
}

/// The lists without spare capacity: most companies have one or two contacts and contracts,
/// and the room a growing list keeps for more cost about 700 bytes per company (7 MiB of a
/// 10,000-company directory that lives as long as the connection).
fn fitted<T>(mut by_company: HashMap<PsaId, Vec<T>>) -> HashMap<PsaId, Vec<T>> {
    by_company.values_mut().for_each(Vec::shrink_to_fit);
    by_company.shrink_to_fit();
    by_company
}

/// The directory of one connection as the dispatcher reads it: one handle per connection,
/// shared by the controller (which replaces the directory after each listing) and every routing
/// snapshot of the connection (a pointer, not a copy per mapping or per snapshot).
#[derive(Clone, Debug, Default)]
pub struct SharedDirectory(Arc<RwLock<Option<Listed>>>);

/// A directory and when its oldest listing was made.
type Listed = (Instant, Arc<Directory>);

impl SharedDirectory {
    /// Publishes a directory whose oldest listing is from `listed_at`.
    pub fn set(&self, listed_at: Instant, dir: Arc<Directory>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some((listed_at, dir));
    }

    /// Stops answering (credentials or PSA changed).
    pub fn clear(&self) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The directory and when it was listed, if any.
    pub fn current(&self) -> Option<Listed> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What the directory says about an alert user's e-mail in a company.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListedContacts {
    /// The ids of the company's contacts with that address (empty: the company has none).
    Listed(Vec<PsaId>),
    /// The directory does not cover the company, cannot list contacts, or is older than its
    /// TTL: the PSA has to be asked.
    AskPsa,
}

/// Whether the dispatcher may answer a contact look-up from the directory. A complete contact
/// list of the company younger than `ttl` answers both ways: a miss there means "no such
/// contact" without a PSA call. The staleness bound: a contact created in the PSA less than
/// `ttl` before the look-up may be missed, and the ticket falls back along the contact chain.
pub fn listed_contacts(
    listing: Option<(Instant, &Directory)>,
    now: Instant,
    ttl: Duration,
    company_id: &PsaId,
    email: &str,
) -> ListedContacts {
    let Some((listed_at, dir)) = listing else {
        return ListedContacts::AskPsa;
    };
    if now.saturating_duration_since(listed_at) >= ttl {
        return ListedContacts::AskPsa;
    }
    match dir.contacts_with_email(company_id, email) {
        Some(ids) => ListedContacts::Listed(ids),
        None => ListedContacts::AskPsa,
    }
}

/// Whole-name comparison as people write names: blanks collapsed, case ignored.
fn same_words(a: &str, b: &str) -> bool {
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    words(a).to_lowercase() == words(b).to_lowercase()
}

impl Directory {
    /// What one listing of `companies` returned. Rows of companies outside `companies` are
    /// ignored (a PSA filter matching loosely must not make the directory answer for them).
    pub fn from_listing(
        companies: &[PsaId],
        contacts: Option<Vec<DirectoryContact>>,
        contracts: Option<Vec<Contract>>,
    ) -> Self {
        let covered: HashSet<PsaId> = companies.iter().cloned().collect();
        let contacts = contacts.map(|rows| {
            let mut by_company: HashMap<PsaId, Vec<DirectoryContact>> = HashMap::new();
            for row in rows {
                let Some(company) = row.contact.company_id.clone() else {
                    continue;
                };
                if covered.contains(&company) {
                    by_company.entry(company).or_default().push(row);
                }
            }
            by_company
        });
        let contracts = contracts.map(|rows| {
            let mut by_company: HashMap<PsaId, Vec<Contract>> = HashMap::new();
            for row in rows.into_iter().filter(|c| covered.contains(&c.company_id)) {
                by_company
                    .entry(row.company_id.clone())
                    .or_default()
                    .push(row);
            }
            by_company
        });
        Directory {
            covered,
            contacts: contacts.map(fitted),
            contracts: contracts.map(fitted),
        }
    }

    /// Whether a listing covered this company.
    pub fn covers(&self, company_id: &PsaId) -> bool {
        self.covered.contains(company_id)
    }

    /// How many companies the directory answers for.
    pub fn len(&self) -> usize {
        self.covered.len()
    }

    pub fn is_empty(&self) -> bool {
        self.covered.is_empty()
    }

    /// Folds a newer listing in: the companies it covers are replaced as a whole (a contact
    /// that left one of them is gone from it); the others are kept.
    pub fn merge(&mut self, newer: Directory) {
        let replaced = newer.covered.clone();
        fn fold<T>(
            mine: &mut Option<HashMap<PsaId, Vec<T>>>,
            theirs: Option<HashMap<PsaId, Vec<T>>>,
            replaced: &HashSet<PsaId>,
        ) {
            match (mine.as_mut(), theirs) {
                (Some(m), Some(t)) => {
                    m.retain(|company, _| !replaced.contains(company));
                    m.extend(t);
                }
                // One side cannot list: keep the directory's answer "not listable".
                _ => *mine = None,
            }
        }
        fold(&mut self.contacts, newer.contacts, &replaced);
        fold(&mut self.contracts, newer.contracts, &replaced);
        self.covered.extend(replaced);
    }

    fn contacts_of(&self, company_id: &PsaId) -> Option<&[DirectoryContact]> {
        if !self.covers(company_id) {
            return None;
        }
        Some(
            self.contacts
                .as_ref()?
                .get(company_id)
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
    }

    /// The company's contact with this e-mail (any of its addresses, any case), the lowest id
    /// when several share it. Outer `None`: not listed, ask the PSA.
    pub fn contact_by_email(&self, company_id: &PsaId, email: &str) -> Option<Option<Contact>> {
        let want = email.trim();
        let rows = self.contacts_of(company_id)?;
        let hit = rows
            .iter()
            .filter(|r| r.emails.iter().any(|e| e.trim().eq_ignore_ascii_case(want)))
            .min_by_key(|r| numeric_order(&r.contact.id));
        Some(hit.map(|r| {
            Contact {
                email: r
                    .emails
                    .iter()
                    .find(|e| e.trim().eq_ignore_ascii_case(want))
                    .cloned(),
                ..r.contact.clone()
            }
        }))
    }

    /// The ids of every contact of the company with this e-mail (any of its addresses, any
    /// case), in id order. Outer `None`: not listed, ask the PSA.
    pub fn contacts_with_email(&self, company_id: &PsaId, email: &str) -> Option<Vec<PsaId>> {
        let want = email.trim();
        let rows = self.contacts_of(company_id)?;
        let mut ids: Vec<PsaId> = rows
            .iter()
            .filter(|r| r.emails.iter().any(|e| e.trim().eq_ignore_ascii_case(want)))
            .map(|r| r.contact.id.clone())
            .collect();
        ids.sort_by_key(|id| numeric_order(id));
        ids.dedup();
        Some(ids)
    }

    /// The company's contact named "First Last" (blanks and case ignored).
    pub fn contact_by_name(&self, company_id: &PsaId, name: &str) -> Option<Option<Contact>> {
        let rows = self.contacts_of(company_id)?;
        Some(
            rows.iter()
                .filter(|r| same_words(&r.contact.full_name(), name))
                .min_by_key(|r| numeric_order(&r.contact.id))
                .map(|r| r.contact.clone()),
        )
    }

    /// The contact the PSA marks as the company's primary one (BMS `IsPoc`, Autotask
    /// `primaryContact`). Outer `None`: not listed.
    pub fn primary_contact(&self, company_id: &PsaId) -> Option<Option<Contact>> {
        let rows = self.contacts_of(company_id)?;
        Some(
            rows.iter()
                .filter(|r| r.primary)
                .min_by_key(|r| numeric_order(&r.contact.id))
                .map(|r| r.contact.clone()),
        )
    }

    /// The company's contract with this name (case ignored); an active one wins over an ended
    /// one of the same name. Outer `None`: not listed.
    pub fn contract(&self, company_id: &PsaId, name: &str) -> Option<Option<Contract>> {
        if !self.covers(company_id) {
            return None;
        }
        let rows = self.contracts.as_ref()?.get(company_id);
        Some(
            rows.into_iter()
                .flatten()
                .filter(|c| same_words(&c.name, name))
                .min_by_key(|c| (!c.active, numeric_order(&c.id)))
                .cloned(),
        )
    }
}

/// Ids sort as numbers where they are numbers (every PSA here uses integers), text otherwise.
fn numeric_order(id: &str) -> (u64, String) {
    (id.parse().unwrap_or(u64::MAX), id.to_string())
}

/// How long after a listing ended the controllers reuse it: its TTL, or twice what the listing
/// took when that is longer. A PSA whose call budget makes a listing slower than the TTL (Kaseya
/// BMS: 1,500 calls per hour per endpoint, so 10,000 accounts' contacts take minutes) would
/// otherwise find every listing expired by the time the wave reads it and list again without
/// end; this way at most a third of the time goes to listing.
pub fn reuse_window(ttl: Duration, took: Duration) -> Duration {
    ttl.max(took.saturating_mul(2))
}

/// Which of `wanted` companies a directory does not cover yet, without duplicates, in order.
pub fn uncovered(dir: Option<&Directory>, wanted: impl IntoIterator<Item = PsaId>) -> Vec<PsaId> {
    let mut seen = HashSet::new();
    wanted
        .into_iter()
        .filter(|c| dir.is_none_or(|d| !d.covers(c)))
        .filter(|c| seen.insert(c.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(
        id: &str,
        company: &str,
        name: &str,
        emails: &[&str],
        primary: bool,
    ) -> DirectoryContact {
        let (first, last) = name.split_once(' ').unwrap_or((name, ""));
        DirectoryContact {
            contact: Contact {
                id: id.into(),
                company_id: Some(company.into()),
                first_name: first.into(),
                last_name: last.into(),
                email: emails.first().map(|e| e.to_string()),
            },
            emails: emails.iter().map(|e| e.to_string()).collect(),
            primary,
        }
    }

    fn contract(id: &str, company: &str, name: &str, active: bool) -> Contract {
        Contract {
            id: id.into(),
            company_id: company.into(),
            name: name.into(),
            active,
        }
    }

    fn ids(v: &[&str]) -> Vec<PsaId> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn answers_only_for_listed_companies() {
        let d = Directory::from_listing(
            &ids(&["1", "2"]),
            Some(vec![
                contact(
                    "10",
                    "1",
                    "Jane Doe",
                    &["jane@a.example", "j.doe@a.example"],
                    false,
                ),
                // A row of a company the listing did not ask for: ignored.
                contact("30", "3", "Stray Row", &["s@c.example"], false),
            ]),
            Some(vec![contract("100", "1", "Managed Security", true)]),
        );
        let one = "1".to_string();
        let two = "2".to_string();
        let three = "3".to_string();
        let by_email = |c: &PsaId, e: &str| d.contact_by_email(c, e).map(|c| c.map(|c| c.id));
        let by_name = |c: &PsaId, n: &str| d.contact_by_name(c, n).map(|c| c.map(|c| c.id));
        let contract = |c: &PsaId, n: &str| d.contract(c, n).map(|c| c.map(|c| c.id));
        // (what, the answer's id, the id wanted); `None`: the company is not listed.
        type Case<'a> = (&'a str, Option<Option<String>>, Option<Option<&'a str>>);
        let table: Vec<Case> = vec![
            (
                "1 by 2nd address, other case",
                by_email(&one, "J.DOE@a.example"),
                Some(Some("10")),
            ),
            (
                "1 by name, blanks",
                by_name(&one, "  jane   doe "),
                Some(Some("10")),
            ),
            (
                "1 unknown address",
                by_email(&one, "x@a.example"),
                Some(None),
            ),
            (
                "2 listed, no contacts",
                by_email(&two, "jane@a.example"),
                Some(None),
            ),
            ("3 not listed", by_email(&three, "s@c.example"), None),
            (
                "contract of 1",
                contract(&one, "managed security"),
                Some(Some("100")),
            ),
            (
                "contract of 2",
                contract(&two, "Managed Security"),
                Some(None),
            ),
            ("contract of 3", contract(&three, "Managed Security"), None),
        ];
        for (what, got, want) in table {
            assert_eq!(got.as_ref().map(|o| o.as_deref()), want, "{what}");
        }
        // The matched address is the one reported, not the contact's first.
        let hit = d
            .contact_by_email(&one, "J.DOE@a.example")
            .unwrap()
            .unwrap();
        assert_eq!(hit.email.as_deref(), Some("j.doe@a.example"));
    }

    #[test]
    fn a_contact_moved_between_companies_is_found_where_it_is_now() {
        let (a, b) = ("1".to_string(), "2".to_string());
        let mut d = Directory::from_listing(
            &ids(&["1", "2"]),
            Some(vec![contact(
                "7",
                "1",
                "Mo Ver",
                &["mo@example.com"],
                false,
            )]),
            Some(vec![]),
        );
        assert_eq!(
            d.contact_by_email(&a, "mo@example.com")
                .unwrap()
                .unwrap()
                .id,
            "7"
        );
        // The re-validation lists both companies again; the PSA now has contact 7 in company 2.
        d.merge(Directory::from_listing(
            &ids(&["1", "2"]),
            Some(vec![contact(
                "7",
                "2",
                "Mo Ver",
                &["mo@example.com"],
                false,
            )]),
            Some(vec![]),
        ));
        assert_eq!(d.contact_by_email(&a, "mo@example.com"), Some(None));
        assert_eq!(
            d.contact_by_email(&b, "mo@example.com")
                .unwrap()
                .unwrap()
                .id,
            "7"
        );
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn an_agreement_renamed_is_found_by_its_new_name_only() {
        let c = "5".to_string();
        let mut d = Directory::from_listing(
            &ids(&["5"]),
            Some(vec![]),
            Some(vec![contract("50", "5", "Managed Security", true)]),
        );
        assert_eq!(
            d.contract(&c, "Managed Security").unwrap().unwrap().id,
            "50"
        );
        d.merge(Directory::from_listing(
            &ids(&["5"]),
            Some(vec![]),
            Some(vec![contract("50", "5", "Security Plus", true)]),
        ));
        assert_eq!(d.contract(&c, "Managed Security"), Some(None));
        assert_eq!(d.contract(&c, "security plus").unwrap().unwrap().id, "50");
    }

    #[test]
    fn an_active_contract_wins_over_an_ended_one_of_the_same_name() {
        let c = "5".to_string();
        let d = Directory::from_listing(
            &ids(&["5"]),
            None,
            Some(vec![
                contract("40", "5", "Managed Security", false),
                contract("60", "5", "Managed Security", true),
            ]),
        );
        assert_eq!(
            d.contract(&c, "Managed Security").unwrap().unwrap().id,
            "60"
        );
        // The provider could not list contacts: the directory does not answer for them.
        assert_eq!(d.contact_by_name(&c, "Any One"), None);
    }

    #[test]
    fn a_company_with_two_thousand_contacts_is_answered_from_the_listing() {
        let c = "9".to_string();
        let rows: Vec<DirectoryContact> = (0..2000)
            .map(|i| {
                let email = format!("user{i}@big.example");
                contact(
                    &(1000 + i).to_string(),
                    "9",
                    &format!("User {i}"),
                    &[&email],
                    i == 1500,
                )
            })
            .collect();
        let d = Directory::from_listing(&ids(&["9"]), Some(rows), Some(vec![]));
        assert_eq!(
            d.contact_by_email(&c, "user1999@big.example")
                .unwrap()
                .unwrap()
                .id,
            "2999"
        );
        assert_eq!(d.contact_by_name(&c, "User 0").unwrap().unwrap().id, "1000");
        assert_eq!(d.primary_contact(&c).unwrap().unwrap().id, "2500");
    }

    #[test]
    fn a_merge_with_a_provider_that_cannot_list_stops_answering() {
        let c = "1".to_string();
        let mut d = Directory::from_listing(&ids(&["1"]), Some(vec![]), Some(vec![]));
        d.merge(Directory::from_listing(&ids(&["2"]), None, Some(vec![])));
        assert_eq!(d.contact_by_email(&c, "a@b.example"), None);
        assert_eq!(d.contract(&c, "X"), Some(None));
    }

    #[test]
    fn the_dispatcher_asks_the_psa_only_when_the_list_is_missing_or_stale() {
        let d = Directory::from_listing(
            &ids(&["1", "2"]),
            Some(vec![
                contact("10", "1", "Jane Doe", &["jane@a.example"], false),
                contact("12", "1", "Twin One", &["twin@a.example"], false),
                contact("11", "1", "Twin Two", &["TWIN@a.example"], false),
            ]),
            Some(vec![]),
        );
        let cannot_list = Directory::from_listing(&ids(&["1"]), None, Some(vec![]));
        let ttl = Duration::from_secs(120);
        let listed_at = Instant::now();
        let fresh = listed_at + Duration::from_secs(119);
        let stale = listed_at + ttl;
        let listed = |v: &[&str]| ListedContacts::Listed(ids(v));
        // (what, directory, now, company, e-mail, answer)
        type Case<'a> = (
            &'a str,
            Option<&'a Directory>,
            Instant,
            &'a str,
            &'a str,
            ListedContacts,
        );
        let table: Vec<Case> = vec![
            (
                "hit",
                Some(&d),
                fresh,
                "1",
                "Jane@A.example",
                listed(&["10"]),
            ),
            (
                "two contacts share it",
                Some(&d),
                fresh,
                "1",
                "twin@a.example",
                listed(&["11", "12"]),
            ),
            (
                "miss in a complete list",
                Some(&d),
                fresh,
                "1",
                "x@a.example",
                listed(&[]),
            ),
            (
                "listed company without contacts",
                Some(&d),
                fresh,
                "2",
                "jane@a.example",
                listed(&[]),
            ),
            (
                "company not covered",
                Some(&d),
                fresh,
                "3",
                "jane@a.example",
                ListedContacts::AskPsa,
            ),
            (
                "stale list",
                Some(&d),
                stale,
                "1",
                "jane@a.example",
                ListedContacts::AskPsa,
            ),
            (
                "stale miss",
                Some(&d),
                stale,
                "1",
                "x@a.example",
                ListedContacts::AskPsa,
            ),
            (
                "no directory",
                None,
                fresh,
                "1",
                "jane@a.example",
                ListedContacts::AskPsa,
            ),
            (
                "provider cannot list contacts",
                Some(&cannot_list),
                fresh,
                "1",
                "x@a.example",
                ListedContacts::AskPsa,
            ),
        ];
        for (what, dir, now, company, email, want) in table {
            let got = listed_contacts(
                dir.map(|d| (listed_at, d)),
                now,
                ttl,
                &company.to_string(),
                email,
            );
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn a_slow_listing_is_reused_twice_as_long_as_it_took() {
        let ttl = Duration::from_secs(120);
        // (the listing took, reused for)
        let table = [
            (Duration::from_millis(300), ttl),
            (Duration::from_secs(60), ttl),
            (Duration::from_secs(61), Duration::from_secs(122)),
            (Duration::from_secs(240), Duration::from_secs(480)),
        ];
        for (took, want) in table {
            assert_eq!(reuse_window(ttl, took), want, "{took:?}");
        }
    }

    #[test]
    fn uncovered_companies_keep_order_and_lose_duplicates() {
        let d = Directory::from_listing(&ids(&["1"]), Some(vec![]), Some(vec![]));
        assert_eq!(
            uncovered(Some(&d), ids(&["3", "1", "2", "3"])),
            ids(&["3", "2"])
        );
        assert_eq!(uncovered(None, ids(&["1", "1"])), ids(&["1"]));
    }
}
