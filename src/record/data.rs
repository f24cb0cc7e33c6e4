//! A session's data, each value parsed on first read.
//!
//! A hit in the cache used to parse every value of the session into a
//! [`Value`] tree, whether the request read it or not: for a session holding
//! a 20-line cart, that was most of the cost of a load (BENCHMARKS.md, issue
//! #13). Values a tier hands back now stay as the JSON text it held, checked
//! to be JSON, until they are first read; a value never read is written back
//! as the same text.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::de::{DeserializeOwned, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The session data: a JSON object, its keys in order.
///
/// It reads and changes like a map of [`Value`]s (`get`, `insert`,
/// `remove`, `iter`, indexing by key). Values read from a tier are parsed
/// on first read, so a request pays only for the keys it reads; one never
/// read is written back as the text the tier held.
#[derive(Clone, Default)]
pub struct Data(BTreeMap<String, Slot>);

/// One value: its JSON text as a tier held it, and the value, parsed from
/// that text on first read (or as the app set it).
#[derive(Clone)]
pub(crate) struct Slot {
    /// Dropped when the value changes.
    text: Option<Box<RawValue>>,
    value: OnceLock<Value>,
}

impl Slot {
    fn of(value: Value) -> Slot {
        Slot { text: None, value: OnceLock::from(value) }
    }

    fn of_text(text: Box<RawValue>) -> Slot {
        Slot { text: Some(text), value: OnceLock::new() }
    }

    fn value(&self) -> &Value {
        self.value.get_or_init(|| match &self.text {
            Some(text) => parse(text),
            None => Value::Null,
        })
    }

    fn into_value(self) -> Value {
        match (self.value.into_inner(), self.text) {
            (Some(value), _) => value,
            (None, Some(text)) => parse(&text),
            (None, None) => Value::Null,
        }
    }

    fn value_mut(&mut self) -> &mut Value {
        self.value();
        self.text = None;
        self.value.get_mut().expect("initialized just above")
    }
}

/// Parses text already checked to be JSON nested no deeper than the parser
/// allows ([`canonical`]): it cannot fail. Should it, the value reads as
/// null (and is still written back as its text) rather than panic.
fn parse(text: &RawValue) -> Value {
    serde_json::from_str(text.get()).unwrap_or_else(|error| {
        tracing::warn!(%error, "a session value could not be parsed; it reads as null");
        Value::Null
    })
}

/// How deep a value may nest arrays and objects: one level under what
/// serde_json parses (128 is refused), as the object holding it is one
/// more. A database column held no deeper values before values were parsed
/// on first read.
pub(crate) const MAX_NESTING: usize = 126;

/// Numbers longer than this may be out of a double's range.
const LONG_NUMBER: usize = 300;

/// JSON text (already checked to be JSON) in the form a value is kept in
/// until it is read: without whitespace outside strings (PostgreSQL's
/// `jsonb` output has some, which would count against a session's size
/// limit), and only when parsing it later cannot fail. Checking text for
/// JSON counts neither nesting levels nor whether numbers fit a double or
/// `\u` escapes pair up; a value that fails those made its session a
/// corrupt record when every value was parsed on read, and still does:
/// `None`. Text that may fail them (a surrogate escape, a number with an
/// exponent or over [`LONG_NUMBER`] digits) is parsed to decide.
fn canonical(text: Box<RawValue>) -> Option<Box<RawValue>> {
    let bytes = text.get().as_bytes();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let (mut doubtful, mut number) = (false, 0usize);
    // From the first whitespace outside a string on: the text without it.
    let mut compact: Option<Vec<u8>> = None;
    for (at, &byte) in bytes.iter().enumerate() {
        if in_string {
            match byte {
                b'u' if escaped => {
                    // `\uD800`–`\uDFFF`: a surrogate, which must pair up.
                    let hex = bytes.get(at + 1..at + 3).unwrap_or_default();
                    doubtful |= matches!(hex, [b'd' | b'D', b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F']);
                    escaped = false;
                }
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if (number > 0 || matches!(byte, b'-' | b'0'..=b'9'))
            && matches!(byte, b'-' | b'+' | b'.' | b'0'..=b'9' | b'e' | b'E')
        {
            // A number starts with `-` or a digit (the `e` of `true` is none).
            number += 1;
            doubtful |= matches!(byte, b'e' | b'E') || number > LONG_NUMBER;
        } else {
            number = 0;
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return None;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b' ' | b'\t' | b'\n' | b'\r' => {
                    compact.get_or_insert_with(|| bytes[..at].to_vec());
                    continue;
                }
                _ => {}
            }
        }
        if let Some(compact) = &mut compact {
            compact.push(byte);
        }
    }
    if doubtful && serde_json::from_str::<Value>(text.get()).is_err() {
        return None;
    }
    match compact {
        None => Some(text),
        // Only ASCII whitespace was left out: still UTF-8, still JSON.
        Some(compact) => RawValue::from_string(String::from_utf8(compact).ok()?).ok(),
    }
}

/// A value as it is written to a tier (always with serde_json): the text
/// it was read as when it was never changed.
pub(crate) struct Verbatim<'a>(&'a Slot);

impl Serialize for Verbatim<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0.text {
            Some(text) => text.serialize(serializer),
            None => self.0.value().serialize(serializer),
        }
    }
}

/// The data as it is written to a tier (always with serde_json): a JSON
/// object whose values never changed are the text they were read as. Any
/// other serializer would get serde_json's private form of that text, so
/// `Data`'s own `Serialize` writes values.
pub(crate) struct VerbatimData<'a>(pub(crate) &'a Data);

impl Serialize for VerbatimData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, slot) in &self.0.0 {
            map.serialize_entry(key, &Verbatim(slot))?;
        }
        map.end()
    }
}

impl Data {
    /// No data.
    pub fn new() -> Data {
        Data::default()
    }

    /// Data from a JSON object's text, each value kept as its text (without
    /// whitespace outside strings) until first read. `None` when the text is
    /// not a JSON object, or a value would fail to parse: nested more than
    /// 126 deep, an unpaired surrogate escape, a number past a double's
    /// range. A key given twice keeps its last value, as a map read from
    /// JSON does.
    pub fn from_object_text(text: &str) -> Option<Data> {
        let entries: BTreeMap<String, Box<RawValue>> = serde_json::from_str(text).ok()?;
        let slots = entries.into_iter().map(|(key, text)| Some((key, Slot::of_text(canonical(text)?))));
        slots.collect::<Option<_>>().map(Data)
    }

    /// Adds a value given as JSON text (checked to be JSON), parsed on
    /// first read. Returns false, leaving the data as it was, when the
    /// text is not JSON or would fail to parse ([`canonical`]).
    pub(crate) fn insert_text(&mut self, key: String, text: String) -> bool {
        match RawValue::from_string(text).ok().and_then(canonical) {
            Some(text) => {
                self.0.insert(key, Slot::of_text(text));
                true
            }
            None => false,
        }
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The value of `key`, parsed now if it was not yet.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).map(Slot::value)
    }

    /// The value of `key` as a `T`, read from its [`Value`] (not from its
    /// text, which would read some values differently, a `u128` past
    /// `u64::MAX` or an object with a key twice, depending on whether
    /// anything read the value before), without copying it.
    pub(crate) fn get_as<T: DeserializeOwned>(&self, key: &str) -> Option<serde_json::Result<T>> {
        self.0.get(key).map(|slot| T::deserialize(slot.value()))
    }

    /// The value of `key`, to change in place.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.get_mut(key).map(Slot::value_mut)
    }

    /// Sets `key`; returns the value it replaces.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        self.0.insert(key, Slot::of(value)).map(Slot::into_value)
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key).map(Slot::into_value)
    }

    /// Sets `key` without parsing the value it replaces.
    pub(crate) fn set(&mut self, key: String, value: Value) {
        self.0.insert(key, Slot::of(value));
    }

    /// Removes `key` without parsing its value.
    pub(crate) fn discard(&mut self, key: &str) {
        self.0.remove(key);
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }

    /// The keys and their values, in key order (each value parsed now if
    /// it was not yet).
    pub fn iter(&self) -> DataIter<'_> {
        DataIter(self.0.iter())
    }

    /// The keys and their values as they are written to a tier (with
    /// serde_json): a value never changed as the text it was read as.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&String, Verbatim<'_>)> {
        self.0.iter().map(|(key, slot)| (key, Verbatim(slot)))
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Equal when they hold the same keys with equal values, however each was
/// read.
impl PartialEq for Data {
    fn eq(&self, other: &Data) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

/// Key by key: a `Map` may iterate in insertion order (serde_json's
/// `preserve_order`).
impl PartialEq<Map<String, Value>> for Data {
    fn eq(&self, other: &Map<String, Value>) -> bool {
        self.len() == other.len() && other.iter().all(|(key, value)| self.get(key) == Some(value))
    }
}

impl std::ops::Index<&str> for Data {
    type Output = Value;

    /// The value of `key`.
    ///
    /// # Panics
    ///
    /// When `key` is absent, as indexing a [`Map`] does.
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or_else(|| panic!("no key {key:?} in the session data"))
    }
}

impl From<Map<String, Value>> for Data {
    fn from(map: Map<String, Value>) -> Data {
        map.into_iter().collect()
    }
}

impl From<Data> for Map<String, Value> {
    fn from(data: Data) -> Map<String, Value> {
        data.into_iter().collect()
    }
}

impl From<Data> for Value {
    fn from(data: Data) -> Value {
        Value::Object(data.into())
    }
}

impl FromIterator<(String, Value)> for Data {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(entries: I) -> Data {
        Data(entries.into_iter().map(|(key, value)| (key, Slot::of(value))).collect())
    }
}

impl Extend<(String, Value)> for Data {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, entries: I) {
        self.0.extend(entries.into_iter().map(|(key, value)| (key, Slot::of(value))));
    }
}

impl IntoIterator for Data {
    type Item = (String, Value);
    type IntoIter = DataIntoIter;

    fn into_iter(self) -> DataIntoIter {
        DataIntoIter(self.0.into_iter())
    }
}

impl<'a> IntoIterator for &'a Data {
    type Item = (&'a String, &'a Value);
    type IntoIter = DataIter<'a>;

    fn into_iter(self) -> DataIter<'a> {
        DataIter(self.0.iter())
    }
}

/// The keys and values of a [`Data`], taken out of it, in key order.
pub struct DataIntoIter(std::collections::btree_map::IntoIter<String, Slot>);

impl Iterator for DataIntoIter {
    type Item = (String, Value);

    fn next(&mut self) -> Option<(String, Value)> {
        self.0.next().map(|(key, slot)| (key, slot.into_value()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// The keys and values of a [`Data`], in key order.
pub struct DataIter<'a>(std::collections::btree_map::Iter<'a, String, Slot>);

impl<'a> Iterator for DataIter<'a> {
    type Item = (&'a String, &'a Value);

    fn next(&mut self) -> Option<(&'a String, &'a Value)> {
        self.0.next().map(|(key, slot)| (key, slot.value()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// As a map of its values (each parsed now if it was not yet), so any
/// serializer gets the values themselves.
impl Serialize for Data {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (key, value) in self {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// From a JSON object, each value parsed at once (the tiers' reads use
/// [`Data::from_object_text`], which keeps the text).
impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Data, D::Error> {
        Map::<String, Value>::deserialize(deserializer).map(Data::from)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const STORED: &str = r#"{"cart":[{"sku":"A-1","qty":2}, {"sku":"B-2","qty":1}],"n":1.50,"user":{"name":"Ada"}}"#;

    /// What a tier is given to write.
    fn written(data: &Data) -> String {
        serde_json::to_string(&VerbatimData(data)).unwrap()
    }

    #[test]
    fn values_never_changed_are_written_back_as_the_text_they_were_read_as() {
        let mut data = Data::from_object_text(STORED).unwrap();
        // The text as stored, down to `1.50`, without the space between
        // the cart's lines: nothing parsed, nothing counted twice.
        let compact = STORED.replace("}, {", "},{");
        assert_eq!(written(&data), compact);
        assert_eq!(data.get("user"), Some(&json!({"name": "Ada"})));
        assert_eq!(written(&data), compact, "a value read, not changed, keeps its text");
        data.get_mut("cart").unwrap().as_array_mut().unwrap().pop();
        data.insert("n".into(), json!(2));
        assert_eq!(written(&data), r#"{"cart":[{"qty":2,"sku":"A-1"}],"n":2,"user":{"name":"Ada"}}"#);
    }

    #[test]
    fn any_serializer_gets_the_values_not_their_text() {
        let data = Data::from_object_text(STORED).unwrap();
        let pretty = serde_json::to_string_pretty(&data).unwrap();
        assert!(pretty.contains("\"sku\": \"A-1\""), "nested values are formatted, not copied: {pretty}");
        assert_eq!(serde_json::to_value(&data).unwrap(), serde_json::from_str::<Value>(STORED).unwrap());
    }

    #[test]
    fn whitespace_outside_strings_is_not_kept() {
        // PostgreSQL's `jsonb` output: the spaces would count against the
        // session's size limit, though a save re-encoding the value would
        // not write them.
        let data = Data::from_object_text(r#"{"a": [1, 2, {"b": "x y"}],	"c" : "\" z"}"#).unwrap();
        assert_eq!(written(&data), r#"{"a":[1,2,{"b":"x y"}],"c":"\" z"}"#);
        let mut one = Data::new();
        assert!(one.insert_text("a".into(), "[1,\n 2]".into()));
        assert_eq!(written(&one), r#"{"a":[1,2]}"#);
    }

    #[test]
    fn lazily_read_data_is_the_same_data_as_parsed_data() {
        let lazy = Data::from_object_text(STORED).unwrap();
        let parsed: Data = serde_json::from_str(STORED).unwrap();
        assert_eq!(lazy, parsed);
        assert_eq!(lazy, serde_json::from_str::<Map<String, Value>>(STORED).unwrap());
        assert_eq!(lazy.get_as::<f64>("n").unwrap().unwrap(), 1.5);
        assert!(lazy.get_as::<String>("n").unwrap().is_err(), "another type is an error, as from a parsed value");
        assert!(lazy.get_as::<String>("absent").is_none());
        let keys: Vec<&String> = lazy.keys().collect();
        assert_eq!(keys, ["cart", "n", "user"]);
        assert_eq!(Value::from(lazy.clone()), serde_json::from_str::<Value>(STORED).unwrap());
        let mut taken = lazy;
        assert_eq!(taken.remove("user"), Some(json!({"name": "Ada"})));
        taken.discard("n");
        taken.set("m".into(), json!(1));
        assert_eq!(Value::from(taken), json!({"cart": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}], "m": 1}));
    }

    #[test]
    fn a_type_reads_the_same_before_and_after_the_value_is_parsed() {
        // Read from the text, a `u128` past u64::MAX would parse; read from
        // a parsed value it does not. Every read goes through the value.
        let data = Data::from_object_text(r#"{"big":123456789012345678901}"#).unwrap();
        let first = data.get_as::<u128>("big").unwrap().is_ok();
        data.get("big");
        assert_eq!(data.get_as::<u128>("big").unwrap().is_ok(), first);
    }

    #[test]
    fn text_that_is_not_an_object_or_not_json_is_refused() {
        for text in ["[1]", "1", "{", r#"{"a":}"#, ""] {
            assert!(Data::from_object_text(text).is_none(), "{text:?}");
        }
        let mut data = Data::new();
        assert!(!data.insert_text("a".into(), "{".into()));
        assert!(data.is_empty(), "nothing half-added");
        assert!(data.insert_text("a".into(), " [1, 2] ".into()));
        assert_eq!(data["a"], json!([1, 2]));
    }

    #[test]
    fn text_that_is_json_but_would_not_parse_is_refused_as_before() {
        // Checked for JSON, these pass; parsed, they fail. When every value
        // was parsed on read they made the session a corrupt record; they
        // still do, rather than read as null later.
        let long = "9".repeat(400);
        for value in [r#""\ud800""#, r#""x\uDC00y""#, "1e400", "-1E400", long.as_str(), r#"[1, {"a": 2e999}]"#] {
            let text = format!(r#"{{"v":{value},"n":1}}"#);
            assert!(serde_json::from_str::<Value>(&text).is_err(), "{value}: the parser refuses it");
            assert!(Data::from_object_text(&text).is_none(), "{value}");
            assert!(!Data::new().insert_text("v".into(), value.into()), "{value}");
        }
        let fine = "9".repeat(300);
        for value in [r#""\ud83d\ude00""#, "1e10", "-2.5E-3", fine.as_str(), "true", "false", "null"] {
            let text = format!(r#"{{"v":{value}}}"#);
            let data = Data::from_object_text(&text).unwrap_or_else(|| panic!("{value}"));
            assert_eq!(data["v"], serde_json::from_str::<Value>(value).unwrap(), "{value}");
        }
    }

    #[test]
    fn a_value_nested_deeper_than_the_data_column_parses_is_refused_as_before() {
        // The column's object is one level more than its values: 126
        // levels in a value read, 127 were refused (a corrupt record) and
        // still are, from the column, an envelope or a Redis field.
        let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        for (levels, parses) in [(MAX_NESTING, true), (MAX_NESTING + 1, false)] {
            let text = format!(r#"{{"deep":{},"n":1}}"#, nested(levels));
            assert_eq!(serde_json::from_str::<Value>(&text).is_ok(), parses, "{levels} levels");
            assert_eq!(Data::from_object_text(&text).is_some(), parses, "{levels} levels");
            assert_eq!(Data::new().insert_text("deep".into(), nested(levels)), parses, "{levels} levels");
        }
        // Brackets inside strings, escaped quotes among them, are not levels.
        let text = format!(r#"{{"s":"\"{}","n":[1]}}"#, "[".repeat(300));
        assert_eq!(Data::from_object_text(&text).unwrap()["n"], json!([1]));
    }
}
