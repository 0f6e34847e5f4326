//! The sandbox's reading of ConnectWise `conditions` / `childConditions`: a parser to an
//! expression tree and an evaluator over a record's JSON. Written apart from the client's
//! builder on purpose.
//!
//! Grammar (keywords in any case):
//! ```text
//! expr  := term ("or" term)*          term := factor ("and" factor)*
//! factor:= "(" expr ")" | path op lit path := name ("/" name)*
//! op    := = != < <= > >= | [not] contains | [not] like | [not] in
//! lit   := "str" | 'str' | number | true | false | null | [2024-01-01T00:00:00Z] | (lit, …)
//! ```
//! Strings have no escapes: a value holding both quote characters cannot be written, which is
//! why clients fall back to `like` with `_`. String comparisons ignore case (SQL Server's default
//! collation). A path through an array matches when any member matches; in `childConditions`
//! the comparisons on one array must hold for the same member.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    Date(DateTime<Utc>),
    List(Vec<Lit>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    Like,
    In,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp {
        path: Vec<String>,
        op: Op,
        negated: bool,
        lit: Lit,
    },
}

/// Why a condition string was refused; the message restates the rules like the real API does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError(pub String);

const RULES: &str = "strings must be quoted, dates in [brackets] (yyyy-MM-ddTHH:mm:ssZ), \
numbers and true/false/null bare; operators = != < <= > >= contains like in not; join with and/or";

fn err<T>(msg: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError(format!("{}; {RULES}", msg.into())))
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Date(String),
    Sym(&'static str),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, QueryError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '"' | '\'' => {
                let end = chars[i + 1..].iter().position(|&d| d == c);
                let Some(end) = end else {
                    return err(format!("unterminated string at position {i}"));
                };
                out.push(Tok::Str(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '[' => {
                let Some(end) = chars[i + 1..].iter().position(|&d| d == ']') else {
                    return err(format!("unterminated date at position {i}"));
                };
                out.push(Tok::Date(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '(' => {
                out.push(Tok::Sym("("));
                i += 1;
            }
            ')' => {
                out.push(Tok::Sym(")"));
                i += 1;
            }
            ',' => {
                out.push(Tok::Sym(","));
                i += 1;
            }
            '=' => {
                out.push(Tok::Sym("="));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Sym("!="));
                i += 2;
            }
            '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                out.push(Tok::Sym(match (c, eq) {
                    ('<', true) => "<=",
                    ('<', false) => "<",
                    (_, true) => ">=",
                    _ => ">",
                }));
                i += if eq { 2 } else { 1 };
            }
            c if c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-' | '+') => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric()
                        || matches!(chars[i], '_' | '/' | '.' | '-' | '+'))
                {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
            other => return err(format!("unexpected {other:?} at position {i}")),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn expr(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.term()?;
        while self.keyword("or") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.factor()?;
        while self.keyword("and") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.factor()?));
        }
        Ok(left)
    }

    fn factor(&mut self) -> Result<Expr, QueryError> {
        if self.peek() == Some(&Tok::Sym("(")) {
            self.pos += 1;
            let e = self.expr()?;
            if self.next() != Some(Tok::Sym(")")) {
                return err("missing closing parenthesis");
            }
            return Ok(e);
        }
        let path = match self.next() {
            Some(Tok::Word(w)) if !w.chars().next().is_some_and(|c| c.is_ascii_digit()) => w,
            other => return err(format!("expected a field name, found {other:?}")),
        };
        let path: Vec<String> = path.split('/').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return err("empty segment in a field path");
        }
        let mut negated = false;
        if self.keyword("not") {
            self.pos += 1;
            negated = true;
        }
        let op = match self.next() {
            Some(Tok::Sym("=")) if !negated => Op::Eq,
            Some(Tok::Sym("!=")) if !negated => Op::Ne,
            Some(Tok::Sym("<")) if !negated => Op::Lt,
            Some(Tok::Sym("<=")) if !negated => Op::Le,
            Some(Tok::Sym(">")) if !negated => Op::Gt,
            Some(Tok::Sym(">=")) if !negated => Op::Ge,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("contains") => Op::Contains,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("like") => Op::Like,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") => Op::In,
            other => {
                return err(format!(
                    "expected an operator after {}, found {other:?}",
                    path.join("/")
                ))
            }
        };
        let lit = if op == Op::In {
            self.list()?
        } else {
            self.literal()?
        };
        Ok(Expr::Cmp {
            path,
            op,
            negated,
            lit,
        })
    }

    fn list(&mut self) -> Result<Lit, QueryError> {
        if self.next() != Some(Tok::Sym("(")) {
            return err("`in` takes a parenthesised list");
        }
        let mut items = vec![self.literal()?];
        loop {
            match self.next() {
                Some(Tok::Sym(",")) => items.push(self.literal()?),
                Some(Tok::Sym(")")) => return Ok(Lit::List(items)),
                other => return err(format!("expected , or ) in a list, found {other:?}")),
            }
        }
    }

    fn literal(&mut self) -> Result<Lit, QueryError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Date(d)) => DateTime::parse_from_rfc3339(d.trim())
                .map(|d| Lit::Date(d.with_timezone(&Utc)))
                .or_else(|_| err(format!("invalid date [{d}]"))),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Lit::Bool(true)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Lit::Bool(false)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Lit::Null),
            Some(Tok::Word(w)) => match w.parse::<f64>() {
                Ok(n) => Ok(Lit::Num(n)),
                Err(_) => err(format!("{w} is not a value (unquoted string?)")),
            },
            other => err(format!("expected a value, found {other:?}")),
        }
    }
}

/// Parses a condition string; an empty string is `None` (no filter).
pub fn parse(s: &str) -> Result<Option<Expr>, QueryError> {
    let toks = tokenize(s)?;
    if toks.is_empty() {
        return Ok(None);
    }
    let mut p = Parser { toks, pos: 0 };
    let e = p.expr()?;
    if p.pos < p.toks.len() {
        return err(format!(
            "unexpected {:?} after the condition",
            p.toks[p.pos]
        ));
    }
    Ok(Some(e))
}

/// Top-level field names the expression uses (to refuse unknown fields).
pub fn fields(e: &Expr) -> Vec<&str> {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            let mut v = fields(a);
            v.extend(fields(b));
            v
        }
        Expr::Cmp { path, .. } => vec![path[0].as_str()],
    }
}

/// Whether `record` satisfies `e` (plain `conditions`).
pub fn matches(e: &Expr, record: &Value) -> Result<bool, QueryError> {
    match e {
        Expr::And(a, b) => Ok(matches(a, record)? && matches(b, record)?),
        Expr::Or(a, b) => Ok(matches(a, record)? || matches(b, record)?),
        Expr::Cmp {
            path,
            op,
            negated,
            lit,
        } => {
            let mut values = Vec::new();
            resolve(record, path, &mut values);
            compare_any(&values, *op, *negated, lit)
        }
    }
}

/// `childConditions`: when every comparison names the same array, one member must satisfy all.
pub fn matches_child(e: &Expr, record: &Value) -> Result<bool, QueryError> {
    let roots = fields(e);
    let root = roots[0];
    let same_root = roots.iter().all(|r| r.eq_ignore_ascii_case(root));
    let members = get_ci(record, root).and_then(Value::as_array);
    match (same_root, members) {
        (true, Some(members)) => {
            for m in members {
                let mut wrapped = serde_json::Map::new();
                wrapped.insert(root.to_string(), m.clone());
                if matches(e, &Value::Object(wrapped))? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        _ => matches(e, record),
    }
}

fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Every value `path` reaches (arrays fan out); nothing for a missing field.
fn resolve<'a>(v: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| resolve(i, path, out)),
        _ if path.is_empty() => out.push(v),
        _ => {
            if let Some(next) = get_ci(v, &path[0]) {
                resolve(next, &path[1..], out);
            }
        }
    }
}

fn compare_any(values: &[&Value], op: Op, negated: bool, lit: &Lit) -> Result<bool, QueryError> {
    if *lit == Lit::Null {
        let is_null = values.iter().all(|v| v.is_null());
        return match op {
            Op::Eq => Ok(is_null),
            Op::Ne => Ok(!is_null),
            _ => err("null only compares with = and !="),
        };
    }
    let mut any = false;
    for v in values.iter().filter(|v| !v.is_null()) {
        if compare(v, op, lit)? {
            any = true;
            break;
        }
    }
    Ok(any != negated)
}

fn compare(v: &Value, op: Op, lit: &Lit) -> Result<bool, QueryError> {
    if let Lit::List(items) = lit {
        for item in items {
            if compare(v, Op::Eq, item)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if matches!(op, Op::Contains | Op::Like) {
        let (Some(s), Lit::Str(pat)) = (v.as_str(), lit) else {
            return err("contains and like compare text with a quoted string");
        };
        let (s, pat) = (s.to_lowercase(), pat.to_lowercase());
        return Ok(if op == Op::Contains {
            s.contains(&pat)
        } else {
            like(
                &s.chars().collect::<Vec<_>>(),
                &pat.chars().collect::<Vec<_>>(),
            )
        });
    }
    let ord = match (v, lit) {
        (Value::String(s), Lit::Str(l)) => s.to_lowercase().cmp(&l.to_lowercase()),
        (Value::Number(n), Lit::Num(l)) => n
            .as_f64()
            .and_then(|n| n.partial_cmp(l))
            .unwrap_or(Ordering::Less),
        (Value::Bool(b), Lit::Bool(l)) => b.cmp(l),
        (Value::String(s), Lit::Date(l)) => match DateTime::parse_from_rfc3339(s) {
            Ok(d) => d.with_timezone(&Utc).cmp(l),
            Err(_) => return err("date compared with a field that is not a date"),
        },
        (v, l) => return err(format!("cannot compare {v} with {l:?}")),
    };
    Ok(match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        Op::Contains | Op::Like | Op::In => false,
    })
}

/// SQL `like`: `%` any run, `_` any one character.
fn like(s: &[char], p: &[char]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('%') => (0..=s.len()).any(|i| like(&s[i..], &p[1..])),
        Some('_') => !s.is_empty() && like(&s[1..], &p[1..]),
        Some(c) => s.first() == Some(c) && like(&s[1..], &p[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contact() -> Value {
        json!({
            "id": 7, "firstName": "Jane", "lastName": "Doe", "inactiveFlag": false,
            "company": {"id": 2, "identifier": "CONTOSO", "name": "Contoso Ltd"},
            "communicationItems": [
                {"value": "555-1234", "communicationType": "Phone"},
                {"value": "jane@contoso.example", "communicationType": "Email"}
            ],
            "_info": {"lastUpdated": "2024-03-01T10:00:00Z"}
        })
    }

    fn eval(cond: &str) -> Result<bool, QueryError> {
        matches(&parse(cond)?.unwrap(), &contact())
    }

    #[test]
    fn conditions_match_like_the_documented_examples() {
        let table = [
            ("company/id=2", true),
            ("company/id = 3", false),
            (r#"company/identifier="contoso""#, true),
            (r#"firstName='Jane' and lastName="Doe""#, true),
            (r#"firstName="Jane" AND lastName="Smith""#, false),
            (
                r#"(firstName="X" and lastName="Y") or (firstName="Jane" and lastName="Doe")"#,
                true,
            ),
            ("company/id in (1,2,4)", true),
            ("company/id not in (1,4)", true),
            (r#"lastName like "D%""#, true),
            (r#"lastName like "D_""#, false),
            (r#"lastName like "D_e""#, true),
            (r#"lastName not like "D%""#, false),
            (r#"firstName contains "an""#, true),
            ("inactiveFlag = false", true),
            ("parentTicketId = null", true),
            ("company/id != null", true),
            ("_info/lastUpdated > [2024-01-01T00:00:00Z]", true),
            ("_info/lastUpdated < [2024-01-01T00:00:00Z]", false),
            (r#"communicationItems/value = "jane@contoso.example""#, true),
            (r#"firstName = "O'Brien""#, false),
        ];
        for (cond, want) in table {
            assert_eq!(eval(cond), Ok(want), "{cond}");
        }
    }

    #[test]
    fn malformed_conditions_are_refused_with_the_rules() {
        for bad in [
            "firstName = Jane",
            r#"firstName = "Jane"#,
            "company/id =",
            "company/id = 2 and",
            "(company/id = 2",
            "company/id ~ 2",
            "_info/lastUpdated > [yesterday]",
            r#"company/id = "2""#,
            "company/id in 2",
        ] {
            let e = parse(bad).and_then(|e| matches(&e.unwrap(), &contact()));
            let Err(QueryError(msg)) = e else {
                panic!("{bad} should be refused");
            };
            assert!(msg.contains("strings must be quoted"), "{msg}");
        }
    }

    #[test]
    fn child_conditions_bind_one_array_member() {
        let both = parse(
            r#"communicationItems/value = "jane@contoso.example" and communicationItems/communicationType = "Email""#,
        )
        .unwrap()
        .unwrap();
        assert!(matches_child(&both, &contact()).unwrap());
        // The phone number is not an e-mail: members must not be mixed.
        let mixed = parse(
            r#"communicationItems/value = "555-1234" and communicationItems/communicationType = "Email""#,
        )
        .unwrap()
        .unwrap();
        assert!(!matches_child(&mixed, &contact()).unwrap());
        // Plain conditions fan out per comparison.
        assert!(matches(&mixed, &contact()).unwrap());
    }

    #[test]
    fn empty_condition_is_no_filter_and_fields_are_listed() {
        assert_eq!(parse("  "), Ok(None));
        let e = parse(r#"company/id=2 and (name="x" or types/name="Client")"#)
            .unwrap()
            .unwrap();
        assert_eq!(fields(&e), vec!["company", "name", "types"]);
    }
}
