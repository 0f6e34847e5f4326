//! Name matching against PSA lists: exact, then case-insensitive; suggestions for misses.
//!
//! Pure functions: the reconcilers fetch lists once and match every configured name here.

use crate::psa::{Named, StatusInfo};

/// Something with a display name.
pub trait HasName {
    fn name(&self) -> &str;
}

impl HasName for Named {
    fn name(&self) -> &str {
        &self.name
    }
}

impl HasName for StatusInfo {
    fn name(&self) -> &str {
        &self.name
    }
}

/// Why a name did not resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Miss {
    /// Nothing by that name; the nearest existing names.
    NotFound { nearest: Vec<String> },
    /// Several differ only in case; the user must write the exact one.
    Ambiguous { candidates: Vec<String> },
}

/// Finds `wanted` in `items`: an exact match wins; otherwise a unique case-insensitive match
/// (trimmed). ConnectWise names such as `>Closed` keep their punctuation.
pub fn find_by_name<'a, T: HasName>(items: &'a [T], wanted: &str) -> Result<&'a T, Miss> {
    if let Some(hit) = items.iter().find(|i| i.name() == wanted) {
        return Ok(hit);
    }
    let w = wanted.trim().to_lowercase();
    let folded: Vec<&T> = items
        .iter()
        .filter(|i| i.name().trim().to_lowercase() == w)
        .collect();
    match folded.len() {
        1 => Ok(folded[0]),
        0 => Err(Miss::NotFound {
            nearest: nearest(items.iter().map(|i| i.name()), wanted, 3),
        }),
        _ => Err(Miss::Ambiguous {
            candidates: folded.iter().map(|i| i.name().to_string()).collect(),
        }),
    }
}

/// Up to `n` names closest to `wanted` (normalised Damerau-Levenshtein similarity ≥ 0.4), best first.
pub fn nearest<'a>(names: impl Iterator<Item = &'a str>, wanted: &str, n: usize) -> Vec<String> {
    let w = wanted.to_lowercase();
    let mut scored: Vec<(f64, String)> = names
        .map(|name| {
            (
                strsim::normalized_damerau_levenshtein(&name.to_lowercase(), &w),
                name.to_string(),
            )
        })
        .filter(|(score, _)| *score >= 0.4)
        .collect();
    scored.sort_by(|a, b| {
        b.0.partial_cmp(&a.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.cmp(&b.1))
    });
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(n).map(|(_, name)| name).collect()
}

impl Miss {
    /// Human text for a condition message, e.g. `not found (did you mean "New", "News"?)`.
    pub fn describe(&self) -> String {
        match self {
            Miss::NotFound { nearest } if nearest.is_empty() => "not found".to_string(),
            Miss::NotFound { nearest } => {
                format!("not found (did you mean {}?)", quote_list(nearest))
            }
            Miss::Ambiguous { candidates } => {
                format!("ambiguous: {} differ only in case", quote_list(candidates))
            }
        }
    }
}

fn quote_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(names: &[&str]) -> Vec<Named> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| Named {
                id: i.to_string(),
                name: n.to_string(),
            })
            .collect()
    }

    #[test]
    fn matching_table() {
        let items = named(&[
            "New",
            "In Progress",
            ">Closed",
            "Completed",
            "Waiting",
            "waiting",
        ]);
        let table: &[(&str, Result<&str, &str>)] = &[
            ("New", Ok("0")),
            ("new", Ok("0")),
            (" In progress ", Ok("1")),
            (">Closed", Ok("2")),
            ("Waiting", Ok("4")),
            (
                "WAITING",
                Err("ambiguous: \"Waiting\", \"waiting\" differ only in case"),
            ),
            (
                "Closed",
                Err("not found (did you mean \">Closed\", \"Completed\"?)"),
            ),
            ("Nwe", Err("not found (did you mean \"New\"?)")),
            ("Escalated to vendor", Err("not found")),
        ];
        for (wanted, want) in table {
            let got = find_by_name(&items, wanted)
                .map(|n| n.id.as_str())
                .map_err(|m| m.describe());
            assert_eq!(got, want.map_err(|s| s.to_string()), "{wanted}");
        }
    }
}
