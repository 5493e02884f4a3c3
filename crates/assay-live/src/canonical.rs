//! Hashing a JSON value's canonical form (RFC 8785, the JSON Canonicalization Scheme) as it is
//! written, without building the text: object members sorted by the UTF-16 code units of their
//! names, no whitespace, strings escaped as ECMAScript's `JSON.stringify` does, numbers as
//! ECMAScript prints them. The bytes hashed are exactly those of
//! `serde_json_canonicalizer::to_vec`, which still writes the numbers that are not small integers.

use serde_json::Value;
use sha2::Digest as _;

/// The largest integer an IEEE double holds exactly; up to it ECMAScript prints integers as
/// their decimal digits.
const EXACT: u64 = 1 << 53;

/// SHA-256 (lower-case hex) of `value`'s canonical JSON.
pub(crate) fn sha256_hex(value: &Value) -> String {
    let mut hasher = sha2::Sha256::new();
    hash(value, &mut hasher);
    hex::encode(hasher.finalize())
}

/// Feeds `value`'s canonical JSON to `hasher`.
pub(crate) fn hash(value: &Value, hasher: &mut sha2::Sha256) {
    match value {
        Value::Null => hasher.update(b"null"),
        Value::Bool(true) => hasher.update(b"true"),
        Value::Bool(false) => hasher.update(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= EXACT) {
                hasher.update(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64().filter(|u| *u <= EXACT) {
                hasher.update(u.to_string().as_bytes());
            } else {
                hasher.update(serde_json_canonicalizer::to_vec(value).unwrap_or_default());
            }
        }
        Value::String(s) => string(s, hasher),
        Value::Array(items) => {
            hasher.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                hash(item, hasher);
            }
            hasher.update(b"]");
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|(a, _), (b, _)| {
                if a.is_ascii() && b.is_ascii() {
                    a.as_bytes().cmp(b.as_bytes())
                } else {
                    a.encode_utf16().cmp(b.encode_utf16())
                }
            });
            hasher.update(b"{");
            for (i, (name, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                string(name, hasher);
                hasher.update(b":");
                hash(member, hasher);
            }
            hasher.update(b"}");
        }
    }
}

/// A string as JSON: `"` and `\` escaped, control characters as `\b \t \n \f \r` or `\u00xx`,
/// everything else as it is (serde_json escapes exactly these, the same way).
fn string(s: &str, hasher: &mut sha2::Sha256) {
    let plain = !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
    if plain {
        hasher.update(b"\"");
        hasher.update(s.as_bytes());
        hasher.update(b"\"");
    } else {
        hasher.update(serde_json::to_string(s).unwrap_or_default().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn hashed(value: &Value) -> Vec<u8> {
        let mut h = sha2::Sha256::new();
        hash(value, &mut h);
        h.finalize().to_vec()
    }

    fn reference(value: &Value) -> Vec<u8> {
        sha2::Sha256::digest(serde_json_canonicalizer::to_vec(value).expect("canonical")).to_vec()
    }

    #[test]
    fn hashes_the_bytes_of_the_canonical_text() {
        let values = [
            json!(null),
            json!({"b": 1, "a": [true, false, null], "": "x"}),
            // RFC 8785 3.2.3: sorted by UTF-16 code units, where "\u{20ac}" (one unit) sorts
            // before the emoji (a surrogate pair, 0xd83d…) although its UTF-8 sorts after.
            json!({"\u{20ac}": 1, "\u{1f600}": 2, "\r": 3, "1": 4, "\u{80}": 5, "\u{fb33}": 6}),
            json!({"n": [0, -0.0, 1e21, 1e-7, 0.1, 123456789012345678_u64, -9007199254740993_i64, 9007199254740992_u64, 4.5]}),
            json!({"s": "quote \" backslash \\ tab \t nl \n nul \u{0} del \u{7f} line sep \u{2028} slash /"}),
        ];
        for value in values {
            assert_eq!(hashed(&value), reference(&value), "{value}");
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|u| json!(u)),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_value_hashes_as_its_canonical_text(value in json_value()) {
            prop_assert_eq!(hashed(&value), reference(&value));
        }
    }
}
