//! Findings of `validate` (and of `plan`'s own validation step): where, what, why.

use serde::Serialize;

use super::yaml_docs::{Document, LoadError};

/// One finding, printed as `file:line: Kind/name: field: message`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    /// Kind of the object, empty for a file-level problem (YAML syntax).
    pub kind: String,
    /// `metadata.name` of the object.
    pub name: String,
    /// Dotted field path; empty when the finding is about the whole object.
    pub field: String,
    /// CamelCase code a script can match on (`FieldValueRequired`, `ConnectionNotFound`, …).
    pub reason: String,
    pub message: String,
}

impl Diagnostic {
    /// A finding about `field` of the object in `doc`, at that field's line.
    pub fn at(doc: &Document, field: &str, reason: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            file: doc.file.clone(),
            line: doc.line_of(field),
            kind: doc.kind().to_string(),
            name: doc.name().to_string(),
            field: field.to_string(),
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    pub fn from_load_error(e: &LoadError) -> Self {
        let (file, line, message) = match e {
            LoadError::Io { path, message } => (path.clone(), 0, message.clone()),
            LoadError::Syntax {
                file,
                line,
                message,
            } => (file.clone(), *line, format!("YAML syntax error: {message}")),
        };
        Diagnostic {
            file,
            line,
            kind: String::new(),
            name: String::new(),
            field: String::new(),
            reason: match e {
                LoadError::Io { .. } => "Unreadable".into(),
                LoadError::Syntax { .. } => "SyntaxError".into(),
            },
            message,
        }
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        write!(f, ": ")?;
        if !self.kind.is_empty() {
            let name = if self.name.is_empty() {
                "<unnamed>"
            } else {
                &self.name
            };
            write!(f, "{}/{}: ", self.kind, name)?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.message)
    }
}

/// Sorts findings by file, line, then message, so output is stable between runs.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        (
            a.file.as_str(),
            a.line,
            a.field.as_str(),
            a.message.as_str(),
        )
            .cmp(&(
                b.file.as_str(),
                b.line,
                b.field.as_str(),
                b.message.as_str(),
            ))
    });
}
