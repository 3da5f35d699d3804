//! File downloads that pages and the API both answer with.

use actix_web::http::header;
use actix_web::HttpResponse;

/// A process version as a YAML file.
pub fn yaml_download(def: &crate::domain::process::Definition, id: i64, version: i32) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"process-{id}-v{version}.yaml\"")))
        .body(def.to_yaml())
}
