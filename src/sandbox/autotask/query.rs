//! Autotask's JSON filter grammar evaluated over stored objects: `eq`, `noteq`, `gt`, `gte`,
//! `lt`, `lte`, `beginsWith`, `endsWith`, `contains`, `exist`, `notExist`, `in`, `notIn`, and
//! `and`/`or` groups; field names and string comparisons in any case (as SQL Server compares).

use std::cmp::Ordering;

use serde_json::Value;

use super::wire::FilterIn;

/// Most OR conditions one filter may hold.
pub const MAX_OR_CONDITIONS: usize = 500;

/// A field of an object, found in any case.
pub fn field<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    obj.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn compare(have: &Value, want: &Value) -> Option<Ordering> {
    let num = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    if let (Some(a), Some(b)) = (num(have), num(want)) {
        return a.partial_cmp(&b);
    }
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    Some(text(have)?.cmp(&text(want)?))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_lowercase(),
        other => other.to_string().to_lowercase(),
    }
}

/// Checks the filter's shape against the entity's fields; the message is Autotask's kind of text.
pub fn check(filters: &[FilterIn], entity: &str, fields: &[&str]) -> Result<(), String> {
    let mut ors = 0usize;
    fn walk(f: &FilterIn, entity: &str, fields: &[&str], ors: &mut usize) -> Result<(), String> {
        match f.op.to_ascii_lowercase().as_str() {
            "and" | "or" => {
                if f.items.is_empty() {
                    return Err(format!("The '{}' operator requires items.", f.op));
                }
                if f.op.eq_ignore_ascii_case("or") {
                    *ors += f.items.len();
                }
                f.items
                    .iter()
                    .try_for_each(|i| walk(i, entity, fields, ors))
            }
            "eq" | "noteq" | "gt" | "gte" | "lt" | "lte" | "beginswith" | "endswith"
            | "contains" | "exist" | "notexist" | "in" | "notin" => {
                let name = f.field.as_deref().unwrap_or("");
                if f.udf == Some(true) {
                    return Ok(());
                }
                if !fields.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                    return Err(format!("Unable to find {name} in the {entity} entity."));
                }
                Ok(())
            }
            other => Err(format!("Unknown filter operator '{other}'.")),
        }
    }
    for f in filters {
        walk(f, entity, fields, &mut ors)?;
    }
    if ors > MAX_OR_CONDITIONS {
        return Err(format!(
            "A query may hold at most {MAX_OR_CONDITIONS} OR conditions; this one holds {ors}."
        ));
    }
    Ok(())
}

/// Whether `obj` satisfies every top-level filter (they are ANDed).
pub fn matches_all(obj: &Value, filters: &[FilterIn]) -> bool {
    filters.iter().all(|f| matches(obj, f))
}

fn matches(obj: &Value, f: &FilterIn) -> bool {
    let op = f.op.to_ascii_lowercase();
    if op == "and" {
        return f.items.iter().all(|i| matches(obj, i));
    }
    if op == "or" {
        return f.items.iter().any(|i| matches(obj, i));
    }
    let have = f
        .field
        .as_deref()
        .and_then(|n| field(obj, n))
        .filter(|v| !v.is_null());
    let want = f.value.as_ref().unwrap_or(&Value::Null);
    match op.as_str() {
        "exist" => have.is_some_and(|v| v.as_str() != Some("")),
        "notexist" => have.is_none_or(|v| v.as_str() == Some("")),
        "in" | "notin" => {
            let list = want.as_array().cloned().unwrap_or_default();
            let found =
                have.is_some_and(|h| list.iter().any(|w| compare(h, w) == Some(Ordering::Equal)));
            found == (op == "in")
        }
        _ => {
            let Some(have) = have else {
                return op == "noteq";
            };
            match op.as_str() {
                "eq" => compare(have, want) == Some(Ordering::Equal),
                "noteq" => compare(have, want) != Some(Ordering::Equal),
                "gt" => compare(have, want) == Some(Ordering::Greater),
                "gte" => matches!(
                    compare(have, want),
                    Some(Ordering::Greater | Ordering::Equal)
                ),
                "lt" => compare(have, want) == Some(Ordering::Less),
                "lte" => matches!(compare(have, want), Some(Ordering::Less | Ordering::Equal)),
                "beginswith" => text(have).starts_with(&text(want)),
                "endswith" => text(have).ends_with(&text(want)),
                "contains" => text(have).contains(&text(want)),
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filters(v: Value) -> Vec<FilterIn> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_filter_grammar() {
        let obj = json!({"id": 7, "companyName": "Contoso Ltd", "emailAddress2": "Jane@Contoso.example", "isActive": true, "parentCompanyID": null});
        let table = [
            (
                json!([{"op":"eq","field":"companyname","value":"contoso ltd"}]),
                true,
            ),
            (json!([{"op":"eq","field":"id","value":"7"}]), true),
            (json!([{"op":"noteq","field":"id","value":7}]), false),
            (json!([{"op":"gt","field":"id","value":6}]), true),
            (json!([{"op":"lte","field":"id","value":6}]), false),
            (
                json!([{"op":"beginsWith","field":"companyName","value":"CON"}]),
                true,
            ),
            (
                json!([{"op":"endsWith","field":"companyName","value":"inc"}]),
                false,
            ),
            (
                json!([{"op":"contains","field":"companyName","value":"toso"}]),
                true,
            ),
            (json!([{"op":"exist","field":"parentCompanyID"}]), false),
            (json!([{"op":"notExist","field":"parentCompanyID"}]), true),
            (json!([{"op":"in","field":"id","value":[1,7]}]), true),
            (json!([{"op":"notIn","field":"id","value":[1,7]}]), false),
            (json!([{"op":"eq","field":"isActive","value":true}]), true),
            (
                json!([{"op":"or","items":[{"op":"eq","field":"emailAddress","value":"jane@contoso.example"},{"op":"eq","field":"emailAddress2","value":"jane@contoso.example"}]}]),
                true,
            ),
            (
                json!([{"op":"eq","field":"id","value":7},{"op":"eq","field":"companyName","value":"Fabrikam"}]),
                false,
            ),
        ];
        for (f, want) in table {
            assert_eq!(matches_all(&obj, &filters(f.clone())), want, "{f}");
        }
    }

    #[test]
    fn unknown_fields_and_operators_are_refused() {
        let fields = ["id", "companyName"];
        assert!(check(
            &filters(json!([{"op":"eq","field":"companyId","value":1}])),
            "Companies",
            &fields
        )
        .unwrap_err()
        .contains("Unable to find companyId"));
        assert!(check(
            &filters(json!([{"op":"like","field":"id","value":1}])),
            "Companies",
            &fields
        )
        .is_err());
        assert!(check(
            &filters(json!([{"op":"or","items":[]}])),
            "Companies",
            &fields
        )
        .is_err());
        assert!(check(
            &filters(json!([{"op":"EQ","field":"ID","value":1}])),
            "Companies",
            &fields
        )
        .is_ok());
    }
}
