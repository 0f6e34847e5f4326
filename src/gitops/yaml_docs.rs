//! Multi-document YAML with line numbers: files, directories and standard input (kustomize
//! output), each document turned into JSON with the source line of every field path.
//!
//! serde_yaml gives no positions, so the event parser of `yaml-rust2` builds the JSON here and
//! records the line of each key and sequence item. Plain scalars are resolved as Kubernetes'
//! YAML reader does (YAML 1.1 booleans `yes`/`no`/`on`/`off` included), so a value that
//! `kubectl apply` reads as a boolean is a boolean here too.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Name under which standard input is reported.
pub const STDIN_NAME: &str = "<stdin>";

/// The text of one input file (or of standard input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// One object of the input with the line of each of its field paths.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub file: String,
    /// Line (1-based) where the object starts.
    pub line: usize,
    pub value: Value,
    /// Dotted field path (`spec.ticket.issueType.overrides[0].alertType`) → line, relative to
    /// this object (the root is `""`).
    lines: BTreeMap<String, usize>,
}

impl Document {
    /// The line of `path`, or of its nearest ancestor present in the source (a missing required
    /// field is reported where its parent is).
    pub fn line_of(&self, path: &str) -> usize {
        let mut p = path.trim_start_matches('.').to_string();
        loop {
            if let Some(l) = self.lines.get(&p) {
                return *l;
            }
            match parent_path(&p) {
                Some(parent) => p = parent,
                None => return self.line,
            }
        }
    }

    /// A string at a dotted path of simple keys (`metadata.name`).
    pub fn str_at(&self, path: &str) -> Option<&str> {
        path.split('.')
            .try_fold(&self.value, |v, k| v.get(k))
            .and_then(Value::as_str)
    }

    pub fn kind(&self) -> &str {
        self.str_at("kind").unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.str_at("metadata.name").unwrap_or("")
    }

    /// The namespace written in the object; `""` when absent (the one `kubectl apply` chooses).
    pub fn namespace(&self) -> &str {
        self.str_at("metadata.namespace").unwrap_or("")
    }

    pub fn api_version(&self) -> &str {
        self.str_at("apiVersion").unwrap_or("")
    }
}

fn parent_path(p: &str) -> Option<String> {
    if p.is_empty() {
        return None;
    }
    if p.ends_with(']') {
        if let Some(i) = p.rfind('[') {
            return Some(p[..i].to_string());
        }
    }
    Some(p.rfind('.').map(|i| p[..i].to_string()).unwrap_or_default())
}

/// Why the input could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoadError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{file}:{line}: YAML syntax error: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
}

/// Reads every path: a file, a directory (its `.yaml`, `.yml` and `.json` files, recursively, in
/// name order) or `-` for standard input (read once).
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Source>, LoadError> {
    let mut out = vec![];
    let mut stdin_read = false;
    for p in paths {
        if p.as_os_str() == "-" {
            if !stdin_read {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| io_error(Path::new(STDIN_NAME), e))?;
                out.push(Source {
                    name: STDIN_NAME.into(),
                    text,
                });
                stdin_read = true;
            }
            continue;
        }
        let meta = std::fs::metadata(p).map_err(|e| io_error(p, e))?;
        if meta.is_dir() {
            let mut files = vec![];
            collect_yaml_files(p, &mut files)?;
            for f in files {
                out.push(read_file(&f)?);
            }
        } else {
            out.push(read_file(p)?);
        }
    }
    Ok(out)
}

fn io_error(p: &Path, e: std::io::Error) -> LoadError {
    LoadError::Io {
        path: p.display().to_string(),
        message: e.to_string(),
    }
}

fn read_file(p: &Path) -> Result<Source, LoadError> {
    Ok(Source {
        name: p.display().to_string(),
        text: std::fs::read_to_string(p).map_err(|e| io_error(p, e))?,
    })
}

fn collect_yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_error(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            collect_yaml_files(&e, out)?;
        } else if matches!(
            e.extension().and_then(|x| x.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(e);
        }
    }
    Ok(())
}

/// Parses every document of `src`; empty documents are skipped and the items of a `kind: List`
/// become objects of their own (as `kubectl apply` treats them).
pub fn parse_documents(src: &Source) -> Result<Vec<Document>, LoadError> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(&src.text);
    if let Err(e) = parser.load(&mut b, true) {
        return Err(LoadError::Syntax {
            file: src.name.clone(),
            line: e.marker().line(),
            message: e.info().to_string(),
        });
    }
    if let Some(message) = b.error {
        return Err(LoadError::Syntax {
            file: src.name.clone(),
            line: b.error_line,
            message,
        });
    }
    let mut out = vec![];
    for (value, lines) in b.docs {
        let root_line = lines.get("").copied().unwrap_or(1);
        let doc = Document {
            file: src.name.clone(),
            line: root_line,
            value,
            lines,
        };
        match doc.value.get("items").and_then(Value::as_array) {
            Some(items) if doc.kind() == "List" => {
                for (i, item) in items.iter().enumerate() {
                    out.push(sub_document(&doc, &format!("items[{i}]"), item.clone()));
                }
            }
            _ if doc.value.is_null() => {}
            _ => out.push(doc),
        }
    }
    Ok(out)
}

fn sub_document(parent: &Document, prefix: &str, value: Value) -> Document {
    let lines = parent
        .lines
        .iter()
        .filter_map(|(k, l)| {
            let rest = k.strip_prefix(prefix)?;
            if rest.is_empty() {
                Some((String::new(), *l))
            } else {
                rest.strip_prefix('.').map(|r| (r.to_string(), *l))
            }
        })
        .collect();
    Document {
        file: parent.file.clone(),
        line: parent.line_of(prefix),
        value,
        lines,
    }
}

/// Parses all sources; the first syntax error of a file is returned for that file and the
/// other files are still parsed.
pub fn parse_all(sources: &[Source]) -> (Vec<Document>, Vec<LoadError>) {
    let mut docs = vec![];
    let mut errors = vec![];
    for s in sources {
        match parse_documents(s) {
            Ok(d) => docs.extend(d),
            Err(e) => errors.push(e),
        }
    }
    (docs, errors)
}

enum Frame {
    Map {
        obj: Map<String, Value>,
        path: String,
        anchor: usize,
        key: Option<String>,
    },
    Seq {
        items: Vec<Value>,
        path: String,
        anchor: usize,
    },
}

/// Builds JSON documents from parser events, recording the line of each path.
#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    lines: BTreeMap<String, usize>,
    docs: Vec<(Value, BTreeMap<String, usize>)>,
    error: Option<String>,
    error_line: usize,
}

impl Builder {
    /// Path of the next node, and whether that node is a mapping key.
    fn next_path(&self) -> (String, bool) {
        match self.stack.last() {
            None => (String::new(), false),
            Some(Frame::Map { path, key, .. }) => match key {
                None => (path.clone(), true),
                Some(k) => (join(path, k), false),
            },
            Some(Frame::Seq { path, items, .. }) => (format!("{path}[{}]", items.len()), false),
        }
    }

    fn fail(&mut self, mark: Marker, msg: &str) {
        if self.error.is_none() {
            self.error = Some(msg.to_string());
            self.error_line = mark.line();
        }
    }

    /// Attaches a finished node to its parent (or ends the document).
    fn attach(&mut self, v: Value, mark: Marker) {
        match self.stack.last_mut() {
            None => {
                let lines = std::mem::take(&mut self.lines);
                self.docs.push((v, lines));
            }
            Some(Frame::Seq { items, .. }) => items.push(v),
            Some(Frame::Map { obj, key, path, .. }) => match key.take() {
                Some(k) => {
                    // Kubernetes' YAML reader rejects a repeated key; so do we.
                    if obj.insert(k.clone(), v).is_some() && self.error.is_none() {
                        self.error = Some(format!("mapping key {k:?} already defined"));
                        // The key's line: the second occurrence overwrote the first.
                        let at = self.lines.get(&join(path, &k)).copied();
                        self.error_line = at.unwrap_or(mark.line());
                    }
                }
                None => match v {
                    Value::String(k) => *key = Some(k),
                    Value::Number(n) => *key = Some(n.to_string()),
                    Value::Bool(b) => *key = Some(b.to_string()),
                    _ => self.fail(mark, "mapping keys must be scalars"),
                },
            },
        }
    }

    fn open(&mut self, frame_for: impl FnOnce(String) -> Frame, mark: Marker) {
        let (path, is_key) = self.next_path();
        if is_key {
            self.fail(mark, "mapping keys must be scalars");
        }
        self.lines.entry(path.clone()).or_insert(mark.line());
        self.stack.push(frame_for(path));
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let (path, is_key) = self.next_path();
                let v = resolve_scalar(&text, style, tag.as_ref().map(|t| t.suffix.as_str()));
                if is_key {
                    if let Value::String(k) = &v {
                        self.lines.insert(join(&path, k), mark.line());
                    }
                } else {
                    self.lines.entry(path).or_insert(mark.line());
                }
                if anchor > 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                self.attach(v, mark);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(v) => {
                    let (path, is_key) = self.next_path();
                    if !is_key {
                        self.lines.entry(path).or_insert(mark.line());
                    }
                    self.attach(v, mark)
                }
                None => self.fail(mark, "alias to an unknown anchor"),
            },
            Event::MappingStart(anchor, _) => self.open(
                |path| Frame::Map {
                    obj: Map::new(),
                    path,
                    anchor,
                    key: None,
                },
                mark,
            ),
            Event::SequenceStart(anchor, _) => self.open(
                |path| Frame::Seq {
                    items: vec![],
                    path,
                    anchor,
                },
                mark,
            ),
            Event::MappingEnd | Event::SequenceEnd => {
                let (v, anchor) = match self.stack.pop() {
                    Some(Frame::Map { obj, anchor, .. }) => (Value::Object(obj), anchor),
                    Some(Frame::Seq { items, anchor, .. }) => (Value::Array(items), anchor),
                    None => return,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                self.attach(v, mark);
            }
            Event::DocumentStart => {
                self.anchors.clear();
            }
            _ => {}
        }
    }
}

/// Resolves a scalar the way Kubernetes' YAML reader does: quoted and block scalars are
/// strings; plain ones may be null, booleans (YAML 1.1 spellings too) or numbers.
fn resolve_scalar(text: &str, style: TScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("str") => return Value::String(text.to_string()),
        Some("null") => return Value::Null,
        _ => {}
    }
    if style != TScalarStyle::Plain {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    let digits = text.strip_prefix('+').unwrap_or(text);
    if let Ok(i) = digits.parse::<i64>() {
        return Value::Number(i.into());
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::Number(i.into());
        }
    }
    let looks_numeric = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric {
        if let Some(n) = digits.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Vec<Document> {
        parse_documents(&Source {
            name: "f.yaml".into(),
            text: text.into(),
        })
        .unwrap()
    }

    #[test]
    fn documents_carry_their_lines() {
        let docs = parse(
            "# leading comment\n---\napiVersion: v1\nkind: A\nmetadata:\n  name: a\n---\n---\n\
             kind: B\nspec:\n  list:\n    - x: 1\n    - {x: 2, y: [a, b]}\n  flow: {k: v}\n",
        );
        assert_eq!(docs.len(), 2, "the empty document is skipped");
        assert_eq!(docs[0].line, 3);
        assert_eq!(docs[0].line_of("metadata.name"), 6);
        assert_eq!(docs[0].name(), "a");
        let b = &docs[1];
        assert_eq!(b.line, 9);
        assert_eq!(b.line_of("spec.list[0].x"), 12);
        assert_eq!(b.line_of("spec.list[1]"), 13);
        assert_eq!(b.line_of("spec.list[1].y[1]"), 13);
        assert_eq!(b.line_of("spec.flow.k"), 14);
        // Absent fields are reported at their nearest present ancestor.
        assert_eq!(b.line_of("spec.list[1].z.w"), 13);
        assert_eq!(b.line_of("status.x"), 9);
        assert_eq!(
            b.value,
            json!({"kind": "B", "spec": {"list": [{"x": 1}, {"x": 2, "y": ["a", "b"]}], "flow": {"k": "v"}}})
        );
    }

    #[test]
    fn scalars_resolve_like_kubectl() {
        let docs = parse(
            "a: yes\nb: \"yes\"\nc: 42\nd: \"42\"\ne: 1.50\nf: ~\ng: 0x1F\nh: 1.2.3\ni: |\n  text\nj: !!str 7\n",
        );
        assert_eq!(
            docs[0].value,
            json!({"a": true, "b": "yes", "c": 42, "d": "42", "e": 1.5, "f": null, "g": 31,
                   "h": "1.2.3", "i": "text\n", "j": "7"})
        );
    }

    #[test]
    fn anchors_and_lists() {
        let docs =
            parse("kind: List\nitems:\n- kind: A\n  spec: &s {x: 1}\n- kind: B\n  spec: *s\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].value, json!({"kind": "B", "spec": {"x": 1}}));
        assert_eq!(docs[1].line, 5);
        assert_eq!(docs[1].line_of("spec"), 6);
    }

    #[test]
    fn repeated_keys_are_errors() {
        let err = parse_documents(&Source {
            name: "dup.yaml".into(),
            text: "kind: A\nspec:\n  x: 1\n  y: 2\n  x: 3\n".into(),
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dup.yaml:5: YAML syntax error: mapping key \"x\" already defined"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse_documents(&Source {
            name: "bad.yaml".into(),
            text: "a: 1\nb: [1, 2\nc: 3\n".into(),
        })
        .unwrap_err();
        match err {
            LoadError::Syntax { file, line, .. } => {
                assert_eq!(file, "bad.yaml");
                assert!((2..=4).contains(&line), "line {line}");
            }
            other => panic!("{other:?}"),
        }
    }
}
