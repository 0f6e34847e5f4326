//! Builder for ConnectWise `conditions` / `childConditions` query strings.
//!
//! Pure functions, no I/O. The query language compares `field op value`; strings are quoted with
//! `"` or `'`. Whether the server understands an escaped quote inside a string is not documented,
//! so this builder never escapes: it picks the quote character the value does not contain, and
//! when a value contains both, it falls back to `like` with `_` (any one character) in place of
//! every double quote. Such a condition can match more than the exact value, so every caller of
//! [`eq_str`] re-checks the returned records for exact equality.

use std::fmt::Write;

/// A literal in a condition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lit<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Null,
}

/// `field = value`, rendered with the quoting rules above.
pub fn eq(field: &str, value: Lit<'_>) -> String {
    match value {
        Lit::Str(s) => eq_str(field, s),
        Lit::Int(n) => format!("{field}={n}"),
        Lit::Bool(b) => format!("{field}={b}"),
        Lit::Null => format!("{field}=null"),
    }
}

/// `field = "value"` for a string, exact whenever the value lacks one of the two quote characters.
pub fn eq_str(field: &str, value: &str) -> String {
    match (value.contains('"'), value.contains('\'')) {
        (false, _) => format!("{field}=\"{value}\""),
        (true, false) => format!("{field}='{value}'"),
        (true, true) => format!("{field} like \"{}\"", value.replace('"', "_")),
    }
}

/// `field = id` for a numeric id; ids that are not integers are refused (they would let a caller
/// inject query syntax).
pub fn eq_id(field: &str, id: &str) -> Option<String> {
    id.trim()
        .parse::<i64>()
        .ok()
        .map(|n| eq(field, Lit::Int(n)))
}

/// `field in (1,2,3)` for numeric ids; `None` when one is not an integer (it would let a caller
/// inject query syntax) or the list is empty (`in ()` is not valid).
pub fn in_ids(field: &str, ids: &[String]) -> Option<String> {
    let nums: Option<Vec<i64>> = ids.iter().map(|i| i.trim().parse::<i64>().ok()).collect();
    let nums = nums.filter(|n| !n.is_empty())?;
    let list: Vec<String> = nums.iter().map(i64::to_string).collect();
    Some(format!("{field} in ({})", list.join(",")))
}

/// Joins clauses with ` and `; each clause containing ` or ` is parenthesised.
pub fn and<I, S>(clauses: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    join(clauses, " and ")
}

/// Joins clauses with ` or `, parenthesising each clause that itself contains ` and ` or ` or `.
pub fn or<I, S>(clauses: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    join(clauses, " or ")
}

fn join<I, S>(clauses: I, sep: &str) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for (i, c) in clauses.into_iter().enumerate() {
        let c = c.as_ref();
        if i > 0 {
            out.push_str(sep);
        }
        if needs_parens(c) {
            let _ = write!(out, "({c})");
        } else {
            out.push_str(c);
        }
    }
    out
}

/// Whether a clause has a top-level `and`/`or` (outside quotes and parentheses).
fn needs_parens(clause: &str) -> bool {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let lower = clause.to_ascii_lowercase();
    let bytes: Vec<char> = lower.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '(' => depth += 1,
                ')' => depth -= 1,
                ' ' if depth == 0 => {
                    let rest: String = bytes[i..].iter().take(5).collect();
                    if rest.starts_with(" and ") || rest.starts_with(" or ") {
                        return true;
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    false
}

/// Conditions finding a contact whose first and last names together read `full` ("Jane Doe",
/// "Mary Ann Smith", or a single name stored in either field). Every split point is tried,
/// because ConnectWise keeps first and last name apart and a space may belong to either.
pub fn full_name(full: &str) -> String {
    let words: Vec<&str> = full.split_whitespace().collect();
    if words.len() <= 1 {
        let w = words.first().copied().unwrap_or("");
        return or([eq_str("firstName", w), eq_str("lastName", w)]);
    }
    or((1..words.len()).map(|split| {
        and([
            eq_str("firstName", &words[..split].join(" ")),
            eq_str("lastName", &words[split..].join(" ")),
        ])
    }))
}

/// `childConditions` selecting contacts with this e-mail address among their communication items.
pub fn contact_email(email: &str) -> String {
    and([
        eq_str("communicationItems/value", email),
        eq_str("communicationItems/communicationType", "Email"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_quoted_by_what_they_contain() {
        let table = [
            (Lit::Str("CONTOSO"), r#"identifier="CONTOSO""#),
            (Lit::Str("O'Brien & Sons"), r#"identifier="O'Brien & Sons""#),
            (
                Lit::Str(r#"The "Best" Co"#),
                r#"identifier='The "Best" Co'"#,
            ),
            (
                Lit::Str(r#"Bob's "Best" Co"#),
                r#"identifier like "Bob's _Best_ Co""#,
            ),
            (Lit::Str(""), r#"identifier="""#),
            (Lit::Str(r"DOMAIN\user"), r#"identifier="DOMAIN\user""#),
            (Lit::Int(250), "identifier=250"),
            (Lit::Int(-3), "identifier=-3"),
            (Lit::Bool(false), "identifier=false"),
            (Lit::Null, "identifier=null"),
        ];
        for (lit, want) in table {
            assert_eq!(eq("identifier", lit), want, "{lit:?}");
        }
    }

    #[test]
    fn ids_must_be_integers() {
        assert_eq!(
            eq_id("company/id", "250").as_deref(),
            Some("company/id=250")
        );
        assert_eq!(eq_id("company/id", "1 or 1=1"), None);
        assert_eq!(eq_id("company/id", ""), None);
    }

    #[test]
    fn joins_parenthesise_compound_clauses_only() {
        let table = [
            (and(["a=1", "b=2"]), "a=1 and b=2"),
            (and(["a=1 or b=2", "c=3"]), "(a=1 or b=2) and c=3"),
            (or(["a=1 and b=2", "c=3"]), "(a=1 and b=2) or c=3"),
            // `and`/`or` inside a quoted value is not an operator.
            (
                and([r#"name="Salt and Pepper""#, "x=1"]),
                r#"name="Salt and Pepper" and x=1"#,
            ),
            // Already parenthesised: not wrapped again.
            (and(["(a=1 or b=2)", "c=3"]), "(a=1 or b=2) and c=3"),
        ];
        for (got, want) in table {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn full_names_try_every_split() {
        let table = [
            ("Jane Doe", r#"(firstName="Jane" and lastName="Doe")"#),
            (
                "Mary Ann  Smith",
                r#"(firstName="Mary" and lastName="Ann Smith") or (firstName="Mary Ann" and lastName="Smith")"#,
            ),
            ("Cher", r#"firstName="Cher" or lastName="Cher""#),
        ];
        for (name, want) in table {
            assert_eq!(full_name(name), want, "{name}");
        }
    }

    #[test]
    fn contact_email_filters_on_one_communication_item() {
        assert_eq!(
            contact_email("alerts@contoso.example"),
            r#"communicationItems/value="alerts@contoso.example" and communicationItems/communicationType="Email""#
        );
    }
}
