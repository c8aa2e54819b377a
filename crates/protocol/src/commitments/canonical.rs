//! The one encoding of a structured body (from body version 2): JSON with
//! object keys in byte order, no whitespace, integers only, members whose
//! value is `null` left out, and strings escaped as serde_json escapes them
//! (`"` `\` and control characters only; `\b \t \n \f \r`, else `\u00xx`
//! in lower case). A decoder enforces it by re-encoding what it decoded.

use serde_json::Value;

use super::Structured;
use crate::error::DecodeError;
use crate::payload::BodyVersion;

/// A structured body: the typed value and the exact JSON its sender wrote
/// (the bytes the digest covers, never re-serialised).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructuredBody {
    value: Structured,
    json: Vec<u8>,
}

impl StructuredBody {
    /// The canonical body of `value`.
    ///
    /// ```
    /// use backchannel_protocol::commitments::{Structured, StructuredBody};
    /// let b = StructuredBody::new(Structured::Note { text: "hi".into() }).unwrap();
    /// assert_eq!(b.json(), br#"{"text":"hi","type":"note"}"#);
    /// ```
    pub fn new(value: Structured) -> Result<Self, DecodeError> {
        let json = to_canonical(&value)?;
        Ok(StructuredBody { value, json })
    }

    /// `value` in serde's own JSON (fields in declaration order, `null`s
    /// written): what a client breaking the canonical rule sends. For
    /// conformance tests only.
    pub(crate) fn dangerous_loose(value: Structured) -> Self {
        let json = serde_json::to_vec(&value).unwrap_or_default();
        StructuredBody { value, json }
    }

    /// Decodes JSON written under `version`: version 1 takes any JSON of the
    /// schema (old transcripts); later versions only the canonical form.
    pub fn decode(json: &[u8], version: BodyVersion) -> Result<Self, DecodeError> {
        let value: Structured = serde_json::from_slice(json).map_err(|_| DecodeError::Invalid {
            field: "structured",
            reason: "not the JSON of a typed payload",
        })?;
        if version >= BodyVersion::V2 && to_canonical(&value)? != json {
            return Err(DecodeError::NonCanonical {
                field: "structured",
            });
        }
        if version < value.min_version() {
            return Err(DecodeError::Invalid {
                field: "structured",
                reason: "terms of a later body version",
            });
        }
        Ok(StructuredBody {
            value,
            json: json.to_vec(),
        })
    }

    /// The typed value.
    pub fn value(&self) -> &Structured {
        &self.value
    }

    /// The exact JSON bytes.
    pub fn json(&self) -> &[u8] {
        &self.json
    }
}

impl std::ops::Deref for StructuredBody {
    type Target = Structured;
    fn deref(&self) -> &Structured {
        &self.value
    }
}

/// The canonical JSON of any serialisable value.
pub fn to_canonical<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, DecodeError> {
    let tree = serde_json::to_value(value).map_err(|_| DecodeError::Invalid {
        field: "structured",
        reason: "does not serialise",
    })?;
    let mut out = Vec::new();
    write(&tree, &mut out)?;
    Ok(out)
}

fn write(v: &Value, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    match v {
        Value::Null | Value::Bool(_) | Value::String(_) => {
            // serde_json's compact form of a scalar is already canonical.
            out.extend_from_slice(v.to_string().as_bytes());
        }
        Value::Number(n) => {
            if !(n.is_i64() || n.is_u64()) {
                return Err(DecodeError::Invalid {
                    field: "structured",
                    reason: "numbers are integers",
                });
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> =
                map.iter().filter(|(_, v)| !v.is_null()).collect();
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
                out.push(b':');
                write(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(json: &str) -> Result<StructuredBody, DecodeError> {
        StructuredBody::decode(json.as_bytes(), BodyVersion::V2)
    }

    #[test]
    fn only_the_canonical_form_decodes_from_version_2() {
        let canonical = r#"{"text":"a\nb \"c\" é","type":"note"}"#;
        assert_eq!(v2(canonical).unwrap().json(), canonical.as_bytes());
        for other in [
            r#"{"type":"note","text":"a\nb \"c\" é"}"#,
            r#"{"text": "a\nb \"c\" é","type":"note"}"#,
            r#"{"text":"a\u000ab \"c\" é","type":"note"}"#,
            r#"{"text":"a\nb \"c\" \u00e9","type":"note"}"#,
        ] {
            assert_eq!(
                v2(other),
                Err(DecodeError::NonCanonical {
                    field: "structured"
                }),
                "{other}"
            );
            // Version 1 took any of these (old transcripts still open),
            // keeping the exact bytes the digest covers.
            let old = StructuredBody::decode(other.as_bytes(), BodyVersion::V1).unwrap();
            assert_eq!(old.json(), other.as_bytes());
        }
    }

    #[test]
    fn a_repeated_key_never_decodes() {
        let twice = r#"{"text":"x","text":"y","type":"note"}"#;
        assert!(v2(twice).is_err());
        assert!(StructuredBody::decode(twice.as_bytes(), BodyVersion::V1).is_err());
    }

    #[test]
    fn nulls_are_left_out_and_absent_options_read_as_none() {
        let s = Structured::Revoke {
            assurance: None,
            red_line: None,
            effective_ms: 5,
            text: String::new(),
        };
        let b = StructuredBody::new(s.clone()).unwrap();
        assert_eq!(b.json(), br#"{"effective_ms":5,"text":"","type":"revoke"}"#);
        assert!(v2(r#"{"assurance":null,"effective_ms":5,"text":"","type":"revoke"}"#).is_err());
        assert_eq!(*v2(std::str::from_utf8(b.json()).unwrap()).unwrap(), s);
    }
}
