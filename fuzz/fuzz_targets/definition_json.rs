//! The process definition parser on JSON (as the API receives it), then the save-time rules.
#![no_main]
use libfuzzer_sys::fuzz_target;
use railyard::domain::process::{definition, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(def) = definition::parse_value(value) {
        let _ = validate::validate(&def);
    }
});
