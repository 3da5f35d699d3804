//! The body of `POST /api/v1/callbacks/{token}`, parsed as the endpoint parses it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use railyard::ops::outcomes::CallbackBody;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<CallbackBody>(data) {
        let _ = serde_json::to_string(&body.outputs);
        let _ = railyard::domain::process::template::to_text(&serde_json::Value::Object(body.outputs));
    }
});
