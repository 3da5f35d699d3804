//! JSON API under `/api/v1` (DESIGN §10): Bearer tokens, the same policy, the JSON error shape.

pub mod account;
pub mod audit;
pub mod calendar;
pub mod callbacks;
pub mod catalog;
pub mod deployments;
pub mod processes;
pub mod release_json;
pub mod releases;
pub mod reports;
pub mod tokens;

use actix_web::{web, HttpResponse};
use serde::Serialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/me", web::get().to(account::me))
        .route("/settings", web::get().to(account::get_settings))
        .route("/settings", web::patch().to(account::patch_settings))
        .route("/orgs", web::get().to(catalog::list_orgs))
        .route("/orgs", web::post().to(catalog::create_org))
        .route("/orgs/{slug}", web::get().to(catalog::get_org))
        .route("/orgs/{slug}", web::patch().to(catalog::patch_org))
        .route("/orgs/{slug}", web::delete().to(catalog::delete_org))
        .route("/environments", web::get().to(catalog::list_environments))
        .route("/environments", web::post().to(catalog::create_environment))
        .route("/environments/{name}", web::get().to(catalog::get_environment))
        .route("/environments/{name}", web::patch().to(catalog::patch_environment))
        .route("/environments/{name}", web::delete().to(catalog::delete_environment))
        .route("/services", web::get().to(catalog::list_services))
        .route("/services", web::post().to(catalog::create_service))
        .route("/services/{name}", web::get().to(catalog::get_service))
        .route("/services/{name}", web::patch().to(catalog::patch_service))
        .route("/services/{name}", web::delete().to(catalog::delete_service))
        .route("/groups", web::get().to(catalog::list_groups))
        .route("/groups", web::post().to(catalog::create_group))
        .route("/groups/{name}", web::get().to(catalog::get_group))
        .route("/groups/{name}", web::patch().to(catalog::patch_group))
        .route("/groups/{name}", web::delete().to(catalog::delete_group))
        .route("/processes", web::get().to(processes::list))
        .route("/processes", web::post().to(processes::create))
        .route("/processes/{id}", web::get().to(processes::get))
        .route("/processes/{id}", web::put().to(processes::update))
        .route("/processes/{id}/export", web::get().to(processes::export))
        .route("/processes/{id}/input-sets", web::get().to(processes::list_input_sets))
        .route("/processes/{id}/input-sets", web::post().to(processes::create_input_set))
        .route("/processes/{id}/input-sets/{name}", web::put().to(processes::update_input_set))
        .route("/processes/{id}/input-sets/{name}", web::delete().to(processes::delete_input_set))
        .route("/releases", web::get().to(releases::list))
        .route("/releases", web::post().to(releases::create))
        .route("/releases/{id}", web::get().to(releases::get))
        .route("/releases/{id}", web::patch().to(releases::patch))
        .route("/releases/{id}", web::delete().to(releases::delete))
        .route("/releases/{id}/activate", web::post().to(releases::activate))
        .route("/releases/{id}/run-now", web::post().to(releases::run_now))
        .route("/releases/{id}/abort", web::post().to(releases::abort))
        .route("/releases/{id}/restart", web::post().to(releases::restart))
        .route("/releases/{id}/rebase", web::post().to(releases::rebase))
        .route("/releases/{id}/rollback", web::post().to(releases::rollback))
        .route("/releases/{id}/override-freeze", web::post().to(releases::override_freeze))
        .route("/releases/{id}/activities/{phase}/{activity}/{action}", web::post().to(releases::act))
        .route("/callbacks/{token}", web::post().to(callbacks::callback))
        .route("/deployments", web::get().to(deployments::deployments))
        .route("/releases/{id}/audit", web::get().to(audit::release))
        .route("/audit", web::get().to(audit::account))
        .route("/reports/deployed", web::get().to(reports::deployed))
        .route("/reports/history", web::get().to(reports::history))
        .route("/reports/releases", web::get().to(reports::releases))
        .route("/insights", web::get().to(reports::insights))
        .route("/calendar", web::get().to(calendar::get))
        .route("/me/calendar-feed", web::post().to(calendar::api_new_feed))
        .route("/me/tokens", web::get().to(tokens::list))
        .route("/me/tokens", web::post().to(tokens::create))
        .route("/me/tokens/{id}", web::delete().to(tokens::revoke));
}

pub fn created<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Created().json(body)
}

pub fn ok<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().json(body)
}
