//! JSON API under `/api/v1` (DESIGN §10): Bearer tokens, the same policy, the JSON error shape.

pub mod account;
pub mod audit;
pub mod calendar;
pub mod callbacks;
pub mod catalog;
pub mod deployments;
pub mod freezes;
pub mod locks;
pub mod openapi;
pub mod processes;
pub mod release_groups;
pub mod release_json;
pub mod releases;
pub mod reports;
pub mod tokens;

use actix_web::HttpResponse;
use serde::Serialize;

crate::web::route_table! {
    /// The JSON API, under `/api/v1` (DESIGN §10).
    API_ROUTES, configure, "/api/v1" {
        get "/me" => account::me,
        get "/settings" => account::get_settings,
        patch "/settings" => account::patch_settings,
        get "/orgs" => catalog::list_orgs,
        post "/orgs" => catalog::create_org,
        get "/orgs/{slug}" => catalog::get_org,
        patch "/orgs/{slug}" => catalog::patch_org,
        delete "/orgs/{slug}" => catalog::delete_org,
        get "/environments" => catalog::list_environments,
        post "/environments" => catalog::create_environment,
        get "/environments/{name}" => catalog::get_environment,
        patch "/environments/{name}" => catalog::patch_environment,
        delete "/environments/{name}" => catalog::delete_environment,
        get "/services" => catalog::list_services,
        post "/services" => catalog::create_service,
        get "/services/{name}" => catalog::get_service,
        patch "/services/{name}" => catalog::patch_service,
        delete "/services/{name}" => catalog::delete_service,
        get "/groups" => catalog::list_groups,
        post "/groups" => catalog::create_group,
        get "/groups/{name}" => catalog::get_group,
        patch "/groups/{name}" => catalog::patch_group,
        delete "/groups/{name}" => catalog::delete_group,
        get "/processes" => processes::list,
        post "/processes" => processes::create,
        get "/processes/{id}" => processes::get,
        put "/processes/{id}" => processes::update,
        get "/processes/{id}/export" => processes::export,
        get "/processes/{id}/input-sets" => processes::list_input_sets,
        post "/processes/{id}/input-sets" => processes::create_input_set,
        put "/processes/{id}/input-sets/{name}" => processes::update_input_set,
        delete "/processes/{id}/input-sets/{name}" => processes::delete_input_set,
        get "/releases" => releases::list,
        post "/releases" => releases::create,
        get "/releases/{id}" => releases::get,
        patch "/releases/{id}" => releases::patch,
        delete "/releases/{id}" => releases::delete,
        post "/releases/{id}/activate" => releases::activate,
        post "/releases/{id}/run-now" => releases::run_now,
        post "/releases/{id}/abort" => releases::abort,
        post "/releases/{id}/retry" => releases::retry,
        post "/releases/{id}/restart" => releases::restart,
        post "/releases/{id}/rebase" => releases::rebase,
        post "/releases/{id}/rollback" => releases::rollback,
        post "/releases/{id}/override-freeze" => releases::override_freeze,
        post "/releases/{id}/activities/{phase}/{activity}/{action}" => releases::act,
        post "/callbacks/{token}" => callbacks::callback,
        get "/deployments" => deployments::deployments,
        get "/releases/{id}/audit" => audit::release,
        get "/releases/{id}/board" => releases::board,
        get "/audit" => audit::account,
        get "/reports/deployed" => reports::deployed,
        get "/reports/history" => reports::history,
        get "/reports/releases" => reports::releases,
        get "/insights" => reports::insights,
        get "/calendar" => calendar::get,
        post "/me/calendar-feed" => calendar::api_new_feed,
        get "/me/tokens" => tokens::list,
        post "/me/tokens" => tokens::create,
        delete "/me/tokens/{id}" => tokens::revoke,
        get "/release-groups" => release_groups::list,
        post "/release-groups" => release_groups::create,
        get "/release-groups/{id}" => release_groups::get,
        patch "/release-groups/{id}" => release_groups::patch,
        delete "/release-groups/{id}" => release_groups::delete,
        get "/release-groups/{id}/preview" => release_groups::preview,
        post "/release-groups/{id}/pause" => release_groups::pause,
        post "/release-groups/{id}/resume" => release_groups::resume,
        post "/release-groups/{id}/skip" => release_groups::skip,
        get "/locks" => locks::list,
        get "/freezes" => freezes::list,
        post "/freezes" => freezes::create,
        delete "/freezes/{id}" => freezes::delete,
        get "/openapi.json" => openapi::openapi_json,
    }
}

pub fn created<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Created().json(body)
}

pub fn ok<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().json(body)
}
