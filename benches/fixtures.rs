//! Data shared by the benches, so they all measure the same session.

use serde_json::{Map, Value, json};

/// A data object whose compact JSON is about 1 KB: a user, a 20-line cart,
/// a 300-byte token.
pub fn one_kb_data() -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("user".into(), json!({"name": "Ada Lovelace", "roles": ["admin", "editor"]}));
    data.insert(
        "cart".into(),
        Value::Array((0..20).map(|i| json!({"sku": format!("SKU-{i:05}"), "qty": i % 3 + 1})).collect()),
    );
    data.insert("csrf".into(), json!("x".repeat(300)));
    data
}
