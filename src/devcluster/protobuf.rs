//! Decoding the protobuf bodies kubectl's typed clients send (`kubectl create secret|configmap|
//! namespace`). client-go 1.32 posts built-ins as `application/vnd.kubernetes.protobuf` and does
//! not fall back to JSON, so the few kinds those commands create are decoded into JSON here.
//!
//! Wire format: the magic `k8s\0`, then a `runtime.Unknown` {1: typeMeta {1: apiVersion,
//! 2: kind}, 2: raw object bytes}. Field numbers below follow k8s.io/api `generated.proto`.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::error::ApiError;

const MAGIC: &[u8] = b"k8s\0";

/// One protobuf field value.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn malformed(what: &str) -> ApiError {
    ApiError::BadRequest(format!("malformed protobuf body: {what}"))
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, ApiError> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or_else(|| malformed("truncated varint"))?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err(malformed("varint too long"))
}

/// Every (field number, value) of a message, in order.
fn fields(buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, ApiError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        let wire = match tag & 7 {
            0 => Wire::Varint(varint(buf, &mut pos)?),
            1 | 5 => {
                let n = if tag & 7 == 1 { 8 } else { 4 };
                if pos + n > buf.len() {
                    return Err(malformed("truncated fixed field"));
                }
                pos += n;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?)
                    .map_err(|_| malformed("length overflow"))?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or_else(|| malformed("truncated bytes"))?;
                let b = &buf[pos..end];
                pos = end;
                Wire::Bytes(b)
            }
            _ => return Err(malformed("unsupported wire type")),
        };
        out.push((tag >> 3, wire));
    }
    Ok(out)
}

fn text(w: Wire<'_>) -> Result<String, ApiError> {
    match w {
        Wire::Bytes(b) => String::from_utf8(b.to_vec()).map_err(|_| malformed("invalid UTF-8")),
        _ => Err(malformed("expected a string")),
    }
}

fn bytes(w: Wire<'_>) -> Result<&[u8], ApiError> {
    match w {
        Wire::Bytes(b) => Ok(b),
        _ => Err(malformed("expected bytes")),
    }
}

/// A `map<string, V>` entry: {1: key, 2: value}.
fn map_entry(w: Wire<'_>) -> Result<(String, Option<Wire<'_>>), ApiError> {
    let mut key = String::new();
    let mut value = None;
    for (n, v) in fields(bytes(w)?)? {
        match n {
            1 => key = text(v)?,
            2 => value = Some(v),
            _ => {}
        }
    }
    Ok((key, value))
}

fn string_map_insert(map: &mut Map<String, Value>, w: Wire<'_>) -> Result<(), ApiError> {
    let (k, v) = map_entry(w)?;
    let v = v.map(text).transpose()?.unwrap_or_default();
    map.insert(k, Value::String(v));
    Ok(())
}

fn bytes_map_insert(map: &mut Map<String, Value>, w: Wire<'_>) -> Result<(), ApiError> {
    let (k, v) = map_entry(w)?;
    let v = v.map(bytes).transpose()?.unwrap_or_default();
    map.insert(
        k,
        Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
    );
    Ok(())
}

fn owner_reference(w: Wire<'_>) -> Result<Value, ApiError> {
    let mut r = Map::new();
    for (n, v) in fields(bytes(w)?)? {
        let key = match n {
            1 => "kind",
            3 => "name",
            4 => "uid",
            5 => "apiVersion",
            6 => "controller",
            7 => "blockOwnerDeletion",
            _ => continue,
        };
        let value = match v {
            Wire::Varint(x) => Value::Bool(x != 0),
            other => Value::String(text(other)?),
        };
        r.insert(key.into(), value);
    }
    Ok(Value::Object(r))
}

/// The client-settable part of ObjectMeta (the server sets the rest).
fn object_meta(w: Wire<'_>) -> Result<Value, ApiError> {
    let mut m = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    let mut owners = Vec::new();
    for (n, v) in fields(bytes(w)?)? {
        match n {
            1 => {
                m.insert("name".into(), Value::String(text(v)?));
            }
            2 => {
                m.insert("generateName".into(), Value::String(text(v)?));
            }
            3 => {
                m.insert("namespace".into(), Value::String(text(v)?));
            }
            6 => {
                m.insert("resourceVersion".into(), Value::String(text(v)?));
            }
            11 => string_map_insert(&mut labels, v)?,
            12 => string_map_insert(&mut annotations, v)?,
            13 => owners.push(owner_reference(v)?),
            14 => finalizers.push(Value::String(text(v)?)),
            _ => {}
        }
    }
    for (key, value) in [
        ("labels", Value::Object(labels)),
        ("annotations", Value::Object(annotations)),
        ("finalizers", Value::Array(finalizers)),
        ("ownerReferences", Value::Array(owners)),
    ] {
        let empty = value.as_object().is_some_and(Map::is_empty)
            || value.as_array().is_some_and(Vec::is_empty);
        if !empty {
            m.insert(key.into(), value);
        }
    }
    Ok(Value::Object(m))
}

fn secret(raw: &[u8]) -> Result<Value, ApiError> {
    let mut obj = json!({"apiVersion": "v1", "kind": "Secret"});
    let mut data = Map::new();
    let mut string_data = Map::new();
    for (n, v) in fields(raw)? {
        match n {
            1 => obj["metadata"] = object_meta(v)?,
            2 => bytes_map_insert(&mut data, v)?,
            3 => obj["type"] = Value::String(text(v)?),
            4 => string_map_insert(&mut string_data, v)?,
            5 => obj["immutable"] = Value::Bool(matches!(v, Wire::Varint(x) if x != 0)),
            _ => {}
        }
    }
    if !data.is_empty() {
        obj["data"] = Value::Object(data);
    }
    if !string_data.is_empty() {
        obj["stringData"] = Value::Object(string_data);
    }
    Ok(obj)
}

fn config_map(raw: &[u8]) -> Result<Value, ApiError> {
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap"});
    let mut data = Map::new();
    let mut binary = Map::new();
    for (n, v) in fields(raw)? {
        match n {
            1 => obj["metadata"] = object_meta(v)?,
            2 => string_map_insert(&mut data, v)?,
            3 => bytes_map_insert(&mut binary, v)?,
            4 => obj["immutable"] = Value::Bool(matches!(v, Wire::Varint(x) if x != 0)),
            _ => {}
        }
    }
    if !data.is_empty() {
        obj["data"] = Value::Object(data);
    }
    if !binary.is_empty() {
        obj["binaryData"] = Value::Object(binary);
    }
    Ok(obj)
}

fn namespace(raw: &[u8]) -> Result<Value, ApiError> {
    let mut obj = json!({"apiVersion": "v1", "kind": "Namespace"});
    for (n, v) in fields(raw)? {
        if n == 1 {
            obj["metadata"] = object_meta(v)?;
        }
    }
    Ok(obj)
}

/// Whether a body is in Kubernetes' protobuf envelope.
pub fn is_protobuf(body: &[u8]) -> bool {
    body.starts_with(MAGIC)
}

/// Decodes a protobuf Secret, ConfigMap or Namespace into its JSON form; other kinds get 415.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("missing k8s magic"))?;
    let mut kind = String::new();
    let mut api_version = String::new();
    let mut raw: &[u8] = &[];
    for (n, v) in fields(envelope)? {
        match n {
            1 => {
                for (m, t) in fields(bytes(v)?)? {
                    match m {
                        1 => api_version = text(t)?,
                        2 => kind = text(t)?,
                        _ => {}
                    }
                }
            }
            2 => raw = bytes(v)?,
            _ => {}
        }
    }
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret") => secret(raw),
        ("v1", "ConfigMap") => config_map(raw),
        ("v1", "Namespace") => namespace(raw),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "protobuf bodies are accepted for Secret, ConfigMap and Namespace only (got {api_version} {kind}); send application/json"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_varint(out: &mut Vec<u8>, mut x: u64) {
        loop {
            let b = (x & 0x7f) as u8;
            x >>= 7;
            if x == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field(n: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, (n << 3) | 2);
        put_varint(&mut out, payload.len() as u64);
        out.extend_from_slice(payload);
        out
    }

    fn entry(k: &str, v: &[u8]) -> Vec<u8> {
        [field(1, k.as_bytes()), field(2, v)].concat()
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
        [MAGIC.to_vec(), field(1, &type_meta), field(2, raw)].concat()
    }

    #[test]
    fn decodes_a_kubectl_create_secret() {
        let meta = [
            field(1, b"foo"),
            field(3, b"default"),
            field(11, &entry("app", b"psa")),
        ]
        .concat();
        let raw = [
            field(1, &meta),
            field(2, &entry("a", b"b")),
            field(3, b"Opaque"),
        ]
        .concat();
        let body = envelope("v1", "Secret", &raw);
        assert!(is_protobuf(&body));
        let v = decode(&body).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "foo", "namespace": "default", "labels": {"app": "psa"}},
                "data": {"a": "Yg=="}, "type": "Opaque"})
        );
    }

    #[test]
    fn decodes_configmaps_and_namespaces() {
        let cm = envelope(
            "v1",
            "ConfigMap",
            &[field(1, &field(1, b"c")), field(2, &entry("k", b"v"))].concat(),
        );
        assert_eq!(decode(&cm).unwrap()["data"]["k"], "v");
        let ns = envelope("v1", "Namespace", &field(1, &field(1, b"psa")));
        assert_eq!(decode(&ns).unwrap()["metadata"]["name"], "psa");
    }

    #[test]
    fn other_kinds_and_garbage_are_refused() {
        let pod = envelope("v1", "Pod", &[]);
        assert_eq!(decode(&pod).unwrap_err().code(), 415);
        let mut truncated = envelope("v1", "Secret", &field(1, &field(1, b"foo")));
        truncated.truncate(truncated.len() - 2);
        assert_eq!(decode(&truncated).unwrap_err().code(), 400);
        assert!(decode(b"{}").is_err());
    }
}
