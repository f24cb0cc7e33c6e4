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
/// allows ([`parses_later`]): it cannot fail. Should it, the value reads as
/// null (and is still written back as its text) rather than panic.
fn parse(text: &RawValue) -> Value {
    serde_json::from_str(text.get()).unwrap_or_else(|error| {
        tracing::warn!(%error, "a session value could not be parsed; it reads as null");
        Value::Null
    })
}

/// How deep serde_json parses arrays and objects into one another: the
/// 128th level is refused.
const MAX_NESTING: usize = 127;

/// Whether JSON text (already checked to be JSON) is nested no deeper than
/// [`MAX_NESTING`], so parsing it later cannot fail. Checking the text for
/// JSON does not count levels, and a value nested deeper made its session a
/// corrupt record when every value was parsed on read: it still does.
fn parses_later(text: &str) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in text.as_bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

impl Serialize for Slot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.text {
            Some(text) => text.serialize(serializer),
            None => self.value().serialize(serializer),
        }
    }
}

impl Data {
    /// No data.
    pub fn new() -> Data {
        Data::default()
    }

    /// Data from a JSON object's text, each value kept as its text until
    /// first read. `None` when the text is not a JSON object, or a value is
    /// nested deeper than it can be parsed. A key given twice keeps its last
    /// value, as a map read from JSON does.
    pub fn from_object_text(text: &str) -> Option<Data> {
        let entries: BTreeMap<String, Box<RawValue>> = serde_json::from_str(text).ok()?;
        if !entries.values().all(|text| parses_later(text.get())) {
            return None;
        }
        Some(Data(entries.into_iter().map(|(key, text)| (key, Slot::of_text(text))).collect()))
    }

    /// Adds a value given as JSON text (checked to be JSON), parsed on
    /// first read. Returns false, leaving the data as it was, when the
    /// text is not JSON (or nested deeper than it can be parsed).
    pub(crate) fn insert_text(&mut self, key: String, text: String) -> bool {
        match RawValue::from_string(text) {
            Ok(text) if parses_later(text.get()) => {
                self.0.insert(key, Slot::of_text(text));
                true
            }
            _ => false,
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

    /// The value of `key` as a `T`, read straight from its JSON text when it
    /// was not parsed yet (no [`Value`] in between).
    pub(crate) fn get_as<T: DeserializeOwned>(&self, key: &str) -> Option<serde_json::Result<T>> {
        let slot = self.0.get(key)?;
        Some(match (slot.value.get(), &slot.text) {
            (None, Some(text)) => serde_json::from_str(text.get()),
            _ => T::deserialize(slot.value()),
        })
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

    /// The keys and their values as they would be written: a value never
    /// parsed as the text it was read as.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&String, &Slot)> {
        self.0.iter()
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

impl PartialEq<Map<String, Value>> for Data {
    fn eq(&self, other: &Map<String, Value>) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b)
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

/// As a JSON object; a value never parsed is written as the text it was
/// read as.
impl Serialize for Data {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (key, slot) in &self.0 {
            map.serialize_entry(key, slot)?;
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

    #[test]
    fn values_never_read_are_written_back_as_the_text_they_were_read_as() {
        let mut data = Data::from_object_text(STORED).unwrap();
        // The text as stored, down to its spacing and `1.50`: nothing parsed.
        assert_eq!(serde_json::to_string(&data).unwrap(), STORED);
        assert_eq!(data.get("user"), Some(&json!({"name": "Ada"})));
        assert_eq!(serde_json::to_string(&data).unwrap(), STORED, "a value read, not changed, keeps its text");
        data.get_mut("cart").unwrap().as_array_mut().unwrap().pop();
        data.insert("n".into(), json!(2));
        assert_eq!(
            serde_json::to_string(&data).unwrap(),
            r#"{"cart":[{"qty":2,"sku":"A-1"}],"n":2,"user":{"name":"Ada"}}"#
        );
    }

    #[test]
    fn lazily_read_data_is_the_same_data_as_parsed_data() {
        let lazy = Data::from_object_text(STORED).unwrap();
        let parsed: Data = serde_json::from_str(STORED).unwrap();
        assert_eq!(lazy, parsed);
        assert_eq!(lazy.get_as::<f64>("n").unwrap().unwrap(), 1.5);
        assert_eq!(parsed.get_as::<f64>("n").unwrap().unwrap(), 1.5);
        assert!(lazy.get_as::<String>("n").unwrap().is_err(), "another type is an error, as from a parsed value");
        assert!(lazy.get_as::<String>("absent").is_none());
        let keys: Vec<&String> = lazy.keys().collect();
        assert_eq!(keys, ["cart", "n", "user"]);
        assert_eq!(Value::from(lazy.clone()), serde_json::from_str::<Value>(STORED).unwrap());
        let mut taken = lazy;
        assert_eq!(taken.remove("user"), Some(json!({"name": "Ada"})));
        assert_eq!(taken.len(), 2);
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
    fn a_value_nested_deeper_than_the_parser_allows_is_refused_as_before() {
        // Checking text for JSON does not count levels; parsing does. Data
        // that holds a value the parser would refuse is refused when read,
        // as when every value was parsed then, never a value that later
        // fails to parse.
        let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        for (levels, parses) in [(MAX_NESTING, true), (MAX_NESTING + 1, false)] {
            assert_eq!(serde_json::from_str::<Value>(&nested(levels)).is_ok(), parses, "{levels} levels");
            let text = format!(r#"{{"deep":{},"n":1}}"#, nested(levels));
            assert_eq!(Data::from_object_text(&text).is_some(), parses, "{levels} levels");
            assert_eq!(Data::new().insert_text("deep".into(), nested(levels)), parses, "{levels} levels");
        }
        // Brackets inside strings, escaped quotes among them, are not levels.
        let text = format!(r#"{{"s":"\"{}","n":[1]}}"#, "[".repeat(300));
        assert_eq!(Data::from_object_text(&text).unwrap()["n"], json!([1]));
    }
}
