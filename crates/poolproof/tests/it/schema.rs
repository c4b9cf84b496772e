//! docs/scenario.schema.json is the committed output of `poolproof schema`: it must stay in
//! step with the model. Regenerate with `cargo run --release -p poolproof -- schema > docs/scenario.schema.json`.

use std::path::Path;

#[test]
fn committed_schema_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/scenario.schema.json");
    let committed =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let generated = poolproof::scenario::schema::schema_json();
    assert!(
        committed == generated,
        "docs/scenario.schema.json is stale: run `cargo run --release -p poolproof -- schema > docs/scenario.schema.json`"
    );
}

#[test]
fn schema_is_strict_and_describes_typed_values() {
    let v: serde_json::Value = serde_json::from_str(&poolproof::scenario::schema::schema_json())
        .unwrap_or_else(|e| panic!("schema is not JSON: {e}"));
    assert_eq!(
        v["additionalProperties"],
        serde_json::json!(false),
        "unknown top-level keys must be refused"
    );
    let required: Vec<&str> = v["required"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(required, ["name", "load"]);
    let defs = &v["$defs"];
    assert_eq!(
        defs["Load"]["additionalProperties"],
        serde_json::json!(false)
    );
    assert_eq!(defs["Duration"]["type"], "string");
    assert!(defs["Duration"]["pattern"]
        .as_str()
        .is_some_and(|p| p.contains("ms")));
    let threshold = defs["Threshold"]["oneOf"].to_string();
    assert!(
        threshold.contains("%$") && threshold.contains("x[0-9]"),
        "{threshold}"
    );
    let metrics = defs["Metric"].to_string();
    for m in [
        "latency_p95",
        "alert_latency",
        "capacity_ratio",
        "throughput_loss",
    ] {
        assert!(metrics.contains(m), "Metric lacks {m}");
    }
    assert_eq!(
        defs["Load"]["properties"]["users"]["maximum"],
        serde_json::json!(10000)
    );
}
