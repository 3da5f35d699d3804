//! The variable template parser: `${inputs.x}` references in text and in JSON values, and rendering.
#![no_main]
use libfuzzer_sys::fuzz_target;
use railyard::domain::process::template;

struct Everything;
impl template::Lookup for Everything {
    fn lookup(&self, reference: &template::Reference) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(format!("{reference:?}")))
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = template::parse(text);
    let value = serde_json::Value::String(text.to_string());
    let _ = template::references_in(&value);
    let _ = template::render(&value, &Everything);
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = template::references_in(&json);
        let _ = template::render(&json, &Everything);
    }
});
