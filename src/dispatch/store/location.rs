//! Where the store lives, from the `--store` value: `sqlite:///path`, a bare file path (SQLite),
//! or `postgres://…` / `postgresql://…`. Anything else that looks like a URL scheme is refused
//! with a message naming the accepted forms — a mistyped URL must not become a file name.

use std::fmt;
use std::path::PathBuf;

/// A parsed `--store` value.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (kept whole; `postgres::PgConnectOptions` reads it).
    Postgres(String),
}

/// A path is an SQLite file (as `--store` always took it).
impl From<PathBuf> for StoreLocation {
    fn from(path: PathBuf) -> Self {
        StoreLocation::Sqlite(path)
    }
}

/// Why a `--store` value was refused. Never holds the password of the URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreLocationError {
    #[error("--store: empty value; use a file path, sqlite:///path or postgres://user@host/db")]
    Empty,
    #[error(
        "--store: unknown scheme {0:?}; use a file path, sqlite:///path or postgres://user@host/db"
    )]
    UnknownScheme(String),
    #[error("--store: {0:?} names no file after the sqlite: scheme")]
    EmptySqlitePath(String),
}

impl StoreLocation {
    /// Parses a `--store` value.
    pub fn parse(value: &str) -> Result<StoreLocation, StoreLocationError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(StoreLocationError::Empty);
        }
        let Some(scheme) = url_scheme(value) else {
            return Ok(StoreLocation::Sqlite(PathBuf::from(value)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(StoreLocation::Postgres(value.to_string())),
            "sqlite" => {
                let rest = &value[scheme.len() + 1..];
                // sqlite:///abs/path (empty authority), sqlite://rel/path, sqlite:rel/path
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(StoreLocationError::EmptySqlitePath(value.to_string()));
                }
                Ok(StoreLocation::Sqlite(PathBuf::from(path)))
            }
            _ => Err(StoreLocationError::UnknownScheme(scheme.to_string())),
        }
    }

    /// Whether several replicas can share this store.
    pub fn is_shared(&self) -> bool {
        matches!(self, StoreLocation::Postgres(_))
    }
}

/// The scheme of `value` when it starts like a URL (`letters:`), per RFC 3986 — at least two
/// characters, so a Windows drive letter (`C:\…`) stays a path.
fn url_scheme(value: &str) -> Option<&str> {
    let colon = value.find(':')?;
    let scheme = &value[..colon];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && scheme.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// The display form hides a URL's password: `postgres://psa:***@db/psa`.
impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            StoreLocation::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreLocation({self})")
    }
}

/// Replaces the password of `scheme://user:password@host…` with `***`, and a `password=`
/// query parameter too.
pub fn redact_password(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, tail) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, hosts)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:***@{hosts}"),
                    None => authority.to_string(),
                },
                None => authority.to_string(),
            };
            format!("{scheme}://{authority}{tail}")
        }
        None => base.to_string(),
    };
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_values_map_to_backends() {
        let sqlite = |p: &str| Ok(StoreLocation::Sqlite(PathBuf::from(p)));
        let pg = |u: &str| Ok(StoreLocation::Postgres(u.to_string()));
        let cases: &[(&str, Result<StoreLocation, StoreLocationError>)] = &[
            ("psa-operator.db", sqlite("psa-operator.db")),
            ("/var/lib/psa/store.db", sqlite("/var/lib/psa/store.db")),
            ("./dir:with:colons/x.db", sqlite("./dir:with:colons/x.db")),
            (r"C:\psa\store.db", sqlite(r"C:\psa\store.db")),
            (
                "sqlite:///var/lib/psa/store.db",
                sqlite("/var/lib/psa/store.db"),
            ),
            ("sqlite://rel/store.db", sqlite("rel/store.db")),
            ("sqlite:store.db", sqlite("store.db")),
            ("SQLite:///x.db", sqlite("/x.db")),
            (
                "postgres://psa@db:5432/psa",
                pg("postgres://psa@db:5432/psa"),
            ),
            (
                "postgresql://psa:pw@db/psa?sslmode=verify-full",
                pg("postgresql://psa:pw@db/psa?sslmode=verify-full"),
            ),
            (
                "mysql://root@db/psa",
                Err(StoreLocationError::UnknownScheme("mysql".into())),
            ),
            (
                "postgress://db/psa",
                Err(StoreLocationError::UnknownScheme("postgress".into())),
            ),
            (
                "sqlite://",
                Err(StoreLocationError::EmptySqlitePath("sqlite://".into())),
            ),
            ("  ", Err(StoreLocationError::Empty)),
        ];
        for (value, want) in cases {
            assert_eq!(&StoreLocation::parse(value), want, "--store {value}");
        }
    }

    #[test]
    fn an_unknown_scheme_names_the_accepted_forms() {
        let err = StoreLocation::parse("redis://cache:6379").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"redis\""), "{msg}");
        assert!(msg.contains("postgres://"), "{msg}");
        assert!(msg.contains("sqlite:///"), "{msg}");
    }

    #[test]
    fn passwords_never_show() {
        let cases = [
            (
                "postgres://psa:s3cret@db:5432/psa?sslmode=require",
                "postgres://psa:***@db:5432/psa?sslmode=require",
            ),
            ("postgres://psa@db/psa", "postgres://psa@db/psa"),
            (
                "postgres://db/psa?user=psa&password=s3cret",
                "postgres://db/psa?user=psa&password=***",
            ),
            ("postgres://a:b:c@h1,h2/db", "postgres://a:***@h1,h2/db"),
        ];
        for (url, shown) in cases {
            let loc = StoreLocation::parse(url).unwrap();
            assert_eq!(loc.to_string(), shown);
            assert!(!format!("{loc:?}").contains("s3cret"));
        }
    }
}
