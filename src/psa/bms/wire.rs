//! The client's view of BMS JSON. Every key arrives lowercased (see `envelope::lower_keys`), so
//! the renames below are the lowercased Swagger names. Ids are numbers on the wire; they are kept
//! as strings (accepting either) because the neutral types keep ids opaque.

use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::Value;

use crate::psa::{PsaError, PsaResult};

#[derive(Debug, Deserialize)]
pub struct WAccount {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    #[serde(rename = "accountname", default)]
    pub account_name: Option<String>,
    #[serde(rename = "accountcode", default)]
    pub account_code: Option<String>,
    #[serde(rename = "accounttype", default)]
    pub account_type: Option<String>,
    #[serde(rename = "parentid", default, deserialize_with = "de_opt_id")]
    pub parent_id: Option<String>,
    #[serde(rename = "isactive", default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    pub locations: Option<Vec<WAccountLocation>>,
}

#[derive(Debug, Deserialize)]
pub struct WAccountLocation {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    #[serde(rename = "ismain", default)]
    pub is_main: Option<bool>,
    #[serde(rename = "isactive", default)]
    pub is_active: Option<bool>,
}

/// `GET /v2/crm/accounts/{id}/locations/lookup` rows.
#[derive(Debug, Deserialize)]
pub struct WLocationLookup {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    #[serde(rename = "ismain", default)]
    pub is_main: Option<bool>,
}

/// `GET /v2/crm/contacts/search` rows.
#[derive(Debug, Deserialize)]
pub struct WContact {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    #[serde(rename = "accountid", default, deserialize_with = "de_opt_id")]
    pub account_id: Option<String>,
    #[serde(rename = "firstname", default)]
    pub first_name: Option<String>,
    #[serde(rename = "lastname", default)]
    pub last_name: Option<String>,
    #[serde(rename = "emailaddress", default)]
    pub email: Option<String>,
    #[serde(rename = "isactive", default)]
    pub is_active: Option<bool>,
    /// `IsPoc`: the account's point of contact (its primary contact).
    #[serde(rename = "ispoc", default)]
    pub is_poc: Option<bool>,
}

/// `GET /v2/finance/contracts/summary` rows (`ClientContractSummaryOutputDto`). The row names
/// its account by name only: the document gives it no account id.
#[derive(Debug, Deserialize)]
pub struct WContractSummary {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    #[serde(rename = "contractname", default)]
    pub contract_name: Option<String>,
    #[serde(rename = "accountname", default)]
    pub account_name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(rename = "enddate", default)]
    pub end_date: Option<String>,
}

/// Rows of the `…/lookup` picklists (queues, priorities, issue types, tenant lookups, contracts).
#[derive(Debug, Deserialize)]
pub struct WLookup {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "isactive", default)]
    pub is_active: Option<bool>,
    #[serde(rename = "isdefault", default)]
    pub is_default: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct WTicket {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(rename = "accountid", default, deserialize_with = "de_opt_id")]
    pub account_id: Option<String>,
    #[serde(rename = "statusid", default, deserialize_with = "de_opt_id")]
    pub status_id: Option<String>,
    #[serde(rename = "statusname", default)]
    pub status_name: Option<String>,
    #[serde(rename = "completeddate", default)]
    pub completed_date: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WIdOnly {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
}

/// `GET /v2/admin/finance/services/{id}`. The fields a PUT must carry back unchanged are kept raw.
#[derive(Debug, Deserialize)]
pub struct WService {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "unitcost", default)]
    pub unit_cost: Option<f64>,
    #[serde(rename = "unitprice", default)]
    pub unit_price: Option<f64>,
    #[serde(rename = "categoryid", default)]
    pub category_id: Option<Value>,
    #[serde(rename = "subcategoryid", default)]
    pub sub_category_id: Option<Value>,
    #[serde(rename = "unitofmeasureid", default)]
    pub unit_of_measure_id: Option<Value>,
    #[serde(rename = "incomeaccountid", default)]
    pub income_account_id: Option<Value>,
    #[serde(rename = "expenseaccountid", default)]
    pub expense_account_id: Option<Value>,
    #[serde(rename = "isactive", default)]
    pub is_active: Option<bool>,
    #[serde(rename = "istaxable", default)]
    pub is_taxable: Option<bool>,
    #[serde(default)]
    pub margin: Option<Value>,
    #[serde(rename = "margintype", default)]
    pub margin_type: Option<Value>,
}

/// A recurring-service line as `POST …/recurringservices/{contractId}/services` returns it.
#[derive(Debug, Deserialize)]
pub struct WLine {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    #[serde(rename = "serviceid", default, deserialize_with = "de_opt_id")]
    pub service_id: Option<String>,
    #[serde(rename = "contractid", default, deserialize_with = "de_opt_id")]
    pub contract_id: Option<String>,
    #[serde(default)]
    pub units: Option<f64>,
    #[serde(rename = "unitcost", default)]
    pub unit_cost: Option<f64>,
    #[serde(rename = "unitprice", default)]
    pub unit_price: Option<f64>,
}

/// A row of `POST …/services/{id}/relatedservices/search` (`RelatedServicesListOutputDto`).
#[derive(Debug, Deserialize)]
pub struct WRelated {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    #[serde(rename = "contractid", default, deserialize_with = "de_opt_id")]
    pub contract_id: Option<String>,
    #[serde(rename = "effectivedate", default)]
    pub effective_date: Option<String>,
    #[serde(rename = "unitcost", default)]
    pub unit_cost: Option<f64>,
    #[serde(rename = "unitprice", default)]
    pub unit_price: Option<f64>,
}

/// The parts of `GET /v2/security/userinfo` the client uses: the tenant's time zone.
#[derive(Debug, Default, Deserialize)]
pub struct WUserInfo {
    /// Hours from UTC (`TimeZoneValue`, a float in the document, e.g. `-5` or `5.5`).
    #[serde(rename = "timezonevalue", default)]
    pub time_zone_value: Option<f64>,
}

/// Reads a result into a wire type; a shape we cannot read is a permanent error naming `what`.
pub fn decode<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> PsaResult<T> {
    serde_json::from_value(v).map_err(|e| PsaError::Permanent {
        status: None,
        message: format!("unexpected {what} in the BMS answer: {e}"),
    })
}

/// A list result; `null` reads as empty.
pub fn decode_list<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> PsaResult<Vec<T>> {
    if v.is_null() {
        return Ok(Vec::new());
    }
    decode(what, v)
}

fn id_from_value(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_i64().map(|i| i.to_string()).or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0)
                .map(|f| (f as i64).to_string())
        }),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

fn de_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    id_from_value(&v).ok_or_else(|| de::Error::custom(format!("not an id: {v}")))
}

fn de_opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(id_from_value).filter(|s| s != "0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psa::bms::envelope::lower_keys;
    use serde_json::json;

    #[test]
    fn ids_are_read_from_numbers_or_strings() {
        let rows = lower_keys(json!([
            {"Id": 12, "Name": "Security Alerts", "IsActive": true},
            {"id": "13", "name": "Other"},
            {"id": 14.0}
        ]));
        let l: Vec<WLookup> = decode_list("queues", rows).unwrap();
        let ids: Vec<&str> = l.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["12", "13", "14"]);
        assert!(decode::<WLookup>("queue", json!({"id": null})).is_err());
        assert!(decode_list::<WLookup>("queues", Value::Null)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_zero_or_null_parent_is_no_parent() {
        let a: WAccount = decode(
            "account",
            json!({"id": 1, "parentid": 0, "accountname": "A"}),
        )
        .unwrap();
        assert_eq!(a.parent_id, None);
        let a: WAccount = decode("account", json!({"id": 1, "parentid": 9})).unwrap();
        assert_eq!(a.parent_id.as_deref(), Some("9"));
    }
}
