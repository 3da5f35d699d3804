//! Static assets compiled into the binary: servers keep no local files (DESIGN §9).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

const ASSETS: &[(&str, &str, &str)] = &[
    ("vendor/htmx-2.0.11.min.js", "text/javascript; charset=utf-8", include_str!("../../static/vendor/htmx-2.0.11.min.js")),
    ("css/app.css", "text/css; charset=utf-8", include_str!("../../static/css/app.css")),
    ("js/upload.js", "text/javascript; charset=utf-8", include_str!("../../static/js/upload.js")),
    ("js/errors.js", "text/javascript; charset=utf-8", include_str!("../../static/js/errors.js")),
    ("js/dismiss.js", "text/javascript; charset=utf-8", include_str!("../../static/js/dismiss.js")),
];

pub async fn serve(path: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(p, _, _)| *p == path.as_str()) {
        Some((_, content_type, body)) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, *content_type))
            // htmx carries its version in the file name; the CSS is small enough to revalidate.
            .insert_header((
                header::CACHE_CONTROL,
                if path.starts_with("vendor/") { "public, max-age=31536000, immutable" } else { "public, max-age=300" },
            ))
            .body(*body),
        None => crate::web::error::error_page(actix_web::http::StatusCode::NOT_FOUND, "No such file.".into()),
    }
}
