//! Which contact a ticket is assigned to.
//!
//! Seed 000: the user's e-mail from the alert is looked up among the company's contacts; when no
//! contact matches, the ticket gets the customer's default contact. For the catch-all company the
//! catch-all contact completes the chain; another company's ticket never gets it (the PSA would
//! refuse a contact of a different company), so without a default it has no contact.

use crate::psa::PsaId;

/// What looking the alert user's e-mail up in the company gave (possibly from the cache).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmailLookup {
    /// The user is a name, not an e-mail address: nothing to look up.
    NotAnEmail,
    Found(PsaId),
    NotFound,
    /// More than one contact has that e-mail: picking one would be a guess.
    Ambiguous,
}

/// Which link of the chain gave the contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactSource {
    UserEmail,
    CustomerDefault,
    CatchAll,
    /// No contact at all: the ticket is created without one (the PSA's default applies).
    NoContact,
}

impl ContactSource {
    pub fn label(self) -> &'static str {
        match self {
            ContactSource::UserEmail => "userEmail",
            ContactSource::CustomerDefault => "customerDefault",
            ContactSource::CatchAll => "catchAll",
            ContactSource::NoContact => "none",
        }
    }
}

/// The e-mail address to look up for `user`, normalised (trimmed, lower case), if it is one.
pub fn user_email(user: Option<&str>) -> Option<String> {
    let u = user?.trim();
    let (local, domain) = u.split_once('@')?;
    let plausible = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !u.chars().any(char::is_whitespace)
        && !domain.contains('@');
    plausible.then(|| u.to_lowercase())
}

/// Walks the chain: user e-mail → customer default contact → catch-all contact.
pub fn choose_contact(
    lookup: &EmailLookup,
    customer_default: Option<&PsaId>,
    catch_all_contact: Option<&PsaId>,
) -> (Option<PsaId>, ContactSource) {
    if let EmailLookup::Found(id) = lookup {
        return (Some(id.clone()), ContactSource::UserEmail);
    }
    if let Some(id) = customer_default {
        return (Some(id.clone()), ContactSource::CustomerDefault);
    }
    if let Some(id) = catch_all_contact {
        return (Some(id.clone()), ContactSource::CatchAll);
    }
    (None, ContactSource::NoContact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_email_users() {
        let table = [
            (Some("jane@contoso.example"), Some("jane@contoso.example")),
            (
                Some("  Jane.Doe@Contoso.Example "),
                Some("jane.doe@contoso.example"),
            ),
            (Some("Jane Doe"), None),
            (Some("jane@localhost"), None),
            (Some("@contoso.example"), None),
            (Some("jane doe@contoso.example"), None),
            (Some("a@b@c.example"), None),
            (Some(""), None),
            (None, None),
        ];
        for (user, want) in table {
            assert_eq!(user_email(user).as_deref(), want, "{user:?}");
        }
    }

    #[test]
    fn fallback_chain() {
        let found = EmailLookup::Found("501".into());
        let def = "600".to_string();
        let catch = "900".to_string();
        use ContactSource::*;
        type Row<'a> = (
            &'a EmailLookup,
            Option<&'a PsaId>,
            Option<&'a PsaId>,
            Option<&'a str>,
            ContactSource,
        );
        let table: Vec<Row> = vec![
            (&found, Some(&def), Some(&catch), Some("501"), UserEmail),
            (
                &EmailLookup::NotFound,
                Some(&def),
                Some(&catch),
                Some("600"),
                CustomerDefault,
            ),
            (
                &EmailLookup::Ambiguous,
                Some(&def),
                Some(&catch),
                Some("600"),
                CustomerDefault,
            ),
            (
                &EmailLookup::NotAnEmail,
                Some(&def),
                Some(&catch),
                Some("600"),
                CustomerDefault,
            ),
            (
                &EmailLookup::NotFound,
                None,
                Some(&catch),
                Some("900"),
                CatchAll,
            ),
            (
                &EmailLookup::Ambiguous,
                None,
                Some(&catch),
                Some("900"),
                CatchAll,
            ),
            (&EmailLookup::NotFound, None, None, None, NoContact),
            (&found, None, None, Some("501"), UserEmail),
        ];
        for (lookup, d, c, want_id, want_src) in table {
            let (id, src) = choose_contact(lookup, d, c);
            assert_eq!(id.as_deref(), want_id, "{lookup:?}");
            assert_eq!(src, want_src, "{lookup:?}");
        }
    }
}
