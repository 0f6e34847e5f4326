//! A string that never shows itself: `Debug` and `Display` print `<redacted>`.
//!
//! Every credential (PSA keys, passwords, intake tokens, SMTP password) is held in this type
//! so that a stray `{:?}` in a log line or an error cannot leak it.

use subtle::ConstantTimeEq;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        SecretString(s.into())
    }

    /// The secret value. Call sites are the only places a secret is used (auth headers, compare).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time comparison with a presented value (intake tokens).
    pub fn ct_eq(&self, presented: &str) -> bool {
        // Length is not secret-dependent in a useful way for random tokens, but compare
        // over equal-length buffers anyway so the work does not depend on where bytes differ.
        let a = self.0.as_bytes();
        let b = presented.as_bytes();
        let len_eq = a.len().ct_eq(&b.len());
        let n = a.len().max(b.len());
        let mut pa = vec![0u8; n];
        let mut pb = vec![0u8; n];
        pa[..a.len()].copy_from_slice(a);
        pb[..b.len()].copy_from_slice(b);
        (pa.ct_eq(&pb) & len_eq).into()
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        SecretString(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        SecretString(s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn compares_whole_values() {
        let s = SecretString::new("token-abc");
        assert!(s.ct_eq("token-abc"));
        assert!(!s.ct_eq("token-abd"));
        assert!(!s.ct_eq("token-ab"));
        assert!(!s.ct_eq("token-abcd"));
        assert!(!s.ct_eq(""));
    }
}
