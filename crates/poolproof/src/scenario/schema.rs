//! The JSON Schema of scenario files, generated from the model (`poolproof schema`), for editors.

use super::model::Scenario;

/// The schema as pretty JSON with a trailing newline (the form committed in
/// docs/scenario.schema.json).
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Scenario);
    let mut s =
        serde_json::to_string_pretty(&schema).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
