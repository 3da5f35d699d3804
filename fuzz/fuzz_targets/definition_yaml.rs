//! The process definition parser on YAML text, then the save-time rules and the diff.
#![no_main]
use libfuzzer_sys::fuzz_target;
use railyard::domain::process::{definition, diff, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(def) = definition::parse_yaml(text) {
        let _ = validate::validate(&def);
        let _ = validate::mentions(&def);
        let _ = diff::diff(&def, &def);
    }
});
