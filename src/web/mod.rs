//! Every route in one place.

use actix_web::web;

use crate::db::DbConn;
use crate::state::Services;
use error::AppError;

/// Shared by every handler: the services below web plus this server's metrics. Servers keep no
/// other state (sessions live in PostgreSQL).
pub struct AppState {
    pub services: Services,
    pub metrics: health::Metrics,
    /// Single sign-on, when the operator configured a provider.
    pub sso: Option<sso::Sso>,
    /// What the hot pages read, while the database is unchanged (`ops::read_cache`).
    pub pages: std::sync::Arc<crate::ops::read_cache::PageCaches>,
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}

impl AppState {
    pub fn new(services: Services, sso: Option<sso::Sso>) -> Self {
        AppState { services, metrics: Default::default(), sso, pages: Default::default() }
    }

    pub async fn db(&self) -> Result<DbConn, AppError> {
        Ok(self.pool.get().await?)
    }

    /// Whether the operator's identity provider serves this account (`RAILYARD_OIDC_ACCOUNT`).
    pub fn sso_serves(&self, account_slug: &str) -> bool {
        self.sso.as_ref().is_some_and(|s| s.settings.account == account_slug)
    }
}

pub const FORM_LIMIT_BYTES: usize = 64 * 1024;
pub const JSON_LIMIT_BYTES: usize = 1024 * 1024;

/// One route of the table: its method (lower case) and its full path template. Tests enumerate
/// every route from here (the authorization matrix, the hostile corpus, the OpenAPI check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
}

/// Declares a route table once: a constant listing it and the function that registers it.
macro_rules! route_table {
    ($(#[$doc:meta])* $table:ident, $configure:ident, $prefix:literal { $( $method:ident $path:literal => $handler:path, )* }) => {
        $(#[$doc])*
        pub const $table: &[crate::web::Route] =
            &[ $( crate::web::Route { method: stringify!($method), path: concat!($prefix, $path) }, )* ];

        pub fn $configure(cfg: &mut actix_web::web::ServiceConfig) {
            $( cfg.route($path, actix_web::web::$method().to($handler)); )*
        }
    };
}
pub(crate) use route_table;

pub mod api;
pub mod download;
pub mod error;
pub mod exports;
pub mod extractors;
pub mod flash;
pub mod health;
pub mod log_redaction;
pub mod middleware;
pub mod pages;
pub mod sso;
pub mod static_files;

/// Every route: the API's and the pages'.
pub fn all_routes() -> impl Iterator<Item = Route> {
    api::API_ROUTES.iter().chain(PAGE_ROUTES).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_path_names_its_methods() {
        assert_eq!(allowed_methods("/api/v1/releases/7"), ["GET", "PATCH", "DELETE"]);
        assert_eq!(allowed_methods("/static/css/app.css"), ["GET"]);
        assert!(allowed_methods("/api/v1/releases/7/nothing").is_empty());
        assert!(allowed_methods("/api/v1/releases//abort").is_empty());
    }
}

/// Whether a path template of the route table matches a request path: `{name}` takes one
/// segment, `{name:.*}` the rest.
fn template_matches(template: &str, path: &str) -> bool {
    let mut parts = path.split('/');
    for t in template.split('/') {
        if t.starts_with('{') && t.contains(":.*") {
            return true;
        }
        match parts.next() {
            Some(p) if t.starts_with('{') && !p.is_empty() => {}
            Some(p) if p == t => {}
            _ => return false,
        }
    }
    parts.next().is_none()
}

/// The methods the route table answers on this path (upper case); empty when the path is unknown.
pub fn allowed_methods(path: &str) -> Vec<String> {
    let mut methods: Vec<String> = all_routes().filter(|r| template_matches(r.path, path)).map(|r| r.method.to_uppercase()).collect();
    methods.dedup();
    methods
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/api/v1").configure(api::configure));
    configure_pages(cfg);
    cfg.default_service(web::to(pages::not_found));
}

mod page_routes {
    use super::pages::{
        admin_catalog, admin_groups, admin_settings, admin_users, audit, auth, calendar, dashboard, feed, freezes, input_sets, insights,
        locks, processes as editor, processes, profile, release_groups, releases, reports, signoff, status, work,
    };
    use super::{health, static_files};

    route_table! {
        /// The pages, the health and metrics endpoints, and the static files.
        PAGE_ROUTES, configure_pages, "" {
    get "/healthz" => health::healthz,
    get "/metrics" => health::metrics,
    get "/static/{path:.*}" => static_files::serve,
    get "/login" => auth::login_page,
    post "/login" => auth::login,
    get "/login/sso" => crate::web::sso::start,
    get "/login/sso/callback" => crate::web::sso::callback,
    post "/logout" => auth::logout,
    get "/" => dashboard::dashboard,
    get "/profile" => profile::show,
    post "/profile" => profile::update,
    post "/profile/password" => profile::change_password,
    get "/admin" => admin_users::admin_home,
    get "/admin/users" => admin_users::list,
    post "/admin/users" => admin_users::create,
    get "/admin/users/{id}" => admin_users::show,
    post "/admin/users/{id}/disable" => admin_users::disable,
    post "/admin/users/{id}/enable" => admin_users::enable,
    post "/admin/users/{id}/password" => admin_users::reset_password,
    post "/admin/users/{id}/roles" => admin_users::add_role,
    post "/admin/users/{id}/roles/{binding}/delete" => admin_users::remove_role,
    get "/admin/groups" => admin_groups::list,
    post "/admin/groups" => admin_groups::create,
    get "/admin/groups/{id}" => admin_groups::show,
    post "/admin/groups/{id}/members" => admin_groups::add_member,
    post "/admin/groups/{id}/members/{user}/delete" => admin_groups::remove_member,
    post "/admin/groups/{id}/delete" => admin_groups::delete,
    get "/admin/orgs" => admin_catalog::orgs,
    post "/admin/orgs" => admin_catalog::create_org,
    get "/admin/orgs/{id}" => admin_catalog::org,
    post "/admin/orgs/{id}" => admin_catalog::rename_org,
    post "/admin/orgs/{id}/delete" => admin_catalog::delete_org,
    get "/admin/environments" => admin_catalog::environments,
    post "/admin/environments" => admin_catalog::create_environment,
    get "/admin/environments/{id}" => admin_catalog::environment,
    post "/admin/environments/{id}" => admin_catalog::update_environment,
    post "/admin/environments/{id}/move" => admin_catalog::move_environment,
    post "/admin/environments/{id}/delete" => admin_catalog::delete_environment,
    get "/admin/services" => admin_catalog::services,
    post "/admin/services" => admin_catalog::create_service,
    get "/admin/services/{id}" => admin_catalog::service,
    post "/admin/services/{id}" => admin_catalog::rename_service,
    post "/admin/services/{id}/delete" => admin_catalog::delete_service,
    get "/admin/freezes" => freezes::list,
    post "/admin/freezes" => freezes::create,
    post "/admin/freezes/{id}/delete" => freezes::delete,
    get "/admin/settings" => admin_settings::show,
    post "/admin/settings" => admin_settings::update,
    post "/admin/settings/sso" => admin_settings::update_sso,
    post "/admin/settings/sso/mappings" => admin_settings::add_mapping,
    post "/admin/settings/sso/mappings/{id}/delete" => admin_settings::remove_mapping,
    get "/calendar" => calendar::show,
    get "/calendar/entries/{id}" => calendar::entry,
    get "/calendar.ics" => feed::feed,
    post "/profile/calendar-feed" => feed::page_new_feed,
    get "/release-groups" => release_groups::list,
    post "/release-groups" => release_groups::create,
    post "/release-groups/{id}/pause" => release_groups::pause,
    post "/release-groups/{id}/resume" => release_groups::resume,
    post "/release-groups/{id}/skip" => release_groups::skip,
    get "/release-groups/{id}" => release_groups::show,
    post "/release-groups/{id}" => release_groups::update,
    post "/release-groups/{id}/delete" => release_groups::delete,
    get "/releases" => releases::list,
    post "/releases" => releases::create,
    get "/releases/new" => releases::new,
    get "/releases/{id}" => releases::show,
    get "/releases/{id}/edit" => releases::edit,
    post "/releases/{id}/edit" => releases::update,
    post "/releases/{id}/activate" => releases::activate,
    post "/releases/{id}/run-now" => releases::run_now,
    post "/releases/{id}/override-freeze" => releases::override_freeze,
    post "/releases/{id}/abort" => releases::abort,
    post "/releases/{id}/retry" => releases::retry,
    post "/releases/{id}/restart" => releases::restart,
    post "/releases/{id}/rebase" => releases::rebase,
    post "/releases/{id}/delete" => releases::delete,
    post "/releases/{id}/rollback" => releases::roll_back,
    get "/releases/{id}/instances/{phase}/{activity}" => releases::instances::list,
    post "/releases/{id}/activities/{phase}/{activity}/comment" => releases::comment,
    post "/releases/{id}/activities/{phase}/{activity}/reassign" => releases::reassign,
    post "/releases/{id}/activities/{phase}/{activity}/{action}" => releases::act,
    post "/releases/{id}/status-link" => status::create,
    post "/releases/{id}/status-link/revoke" => status::revoke,
    get "/status/{token}" => status::show,
    get "/signoff/{token}" => signoff::show,
    post "/signoff/{token}" => signoff::decide,
    get "/reports/deployed" => reports::deployed,
    get "/reports/history" => reports::history,
    get "/reports/releases" => reports::releases,
    get "/insights" => insights::insights,
    get "/audit" => audit::list,
    post "/audit/verify" => audit::verify,
    get "/work" => work::work,
    get "/locks" => locks::locks,
    get "/notifications" => work::notifications_page,
    post "/notifications/read" => work::mark_read,
    post "/profile/delegations" => profile::add_delegation,
    post "/profile/delegations/{id}/delete" => profile::remove_delegation,
    post "/profile/mutes" => profile::set_mutes,
    post "/profile/tokens" => profile::create_token,
    post "/profile/tokens/{id}/revoke" => profile::revoke_token,
    get "/processes" => processes::list,
    post "/processes" => processes::create,
    post "/processes/import" => processes::import,
    get "/processes/{id}" => editor::show,
    get "/processes/{id}/versions/{version}" => editor::show_version,
    get "/processes/{id}/diff" => editor::diff_page,
    get "/processes/{id}/export" => editor::export,
    post "/processes/{id}/duplicate" => editor::duplicate,
    post "/processes/{id}/archive" => editor::archive,
    post "/processes/{id}/unarchive" => editor::unarchive,
    post "/processes/{id}/delete" => editor::delete,
    get "/processes/{id}/yaml" => editor::yaml,
    post "/processes/{id}/yaml" => editor::update_yaml,
    post "/processes/{id}/save" => editor::save,
    post "/processes/{id}/discard" => editor::discard,
    post "/processes/{id}/phases" => editor::add_phase,
    get "/processes/{id}/phases/{phase}" => editor::edit_phase,
    post "/processes/{id}/phases/{phase}" => editor::update_phase,
    post "/processes/{id}/phases/{phase}/delete" => editor::delete_phase,
    get "/processes/{id}/phases/{phase}/activities" => editor::new_activity,
    post "/processes/{id}/phases/{phase}/activities" => editor::add_activity,
    get "/processes/{id}/phases/{phase}/activities/{activity}" => editor::edit_activity,
    post "/processes/{id}/phases/{phase}/activities/{activity}" => editor::update_activity,
    post "/processes/{id}/phases/{phase}/activities/{activity}/delete" => editor::delete_activity,
    get "/processes/{id}/input-sets" => input_sets::list,
    post "/processes/{id}/input-sets" => input_sets::create,
    get "/processes/{id}/input-sets/{set}" => input_sets::show,
    post "/processes/{id}/input-sets/{set}" => input_sets::update,
    post "/processes/{id}/input-sets/{set}/delete" => input_sets::delete,
        }
    }
}
pub use page_routes::{configure_pages, PAGE_ROUTES};
