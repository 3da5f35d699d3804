//! Every route in one place.

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
pub mod static_files;

use actix_web::web;

use crate::db::DbConn;
use crate::state::Services;
use error::AppError;

/// Shared by every handler: the services below web plus this server's metrics. Servers keep no
/// other state (sessions live in PostgreSQL).
pub struct AppState {
    pub services: Services,
    pub metrics: health::Metrics,
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}

impl AppState {
    pub fn new(services: Services) -> Self {
        AppState { services, metrics: Default::default() }
    }

    pub async fn db(&self) -> Result<DbConn, AppError> {
        Ok(self.pool.get().await?)
    }
}

pub const FORM_LIMIT_BYTES: usize = 64 * 1024;
pub const JSON_LIMIT_BYTES: usize = 1024 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    use pages::{
        admin_catalog, admin_groups, admin_settings, admin_users, audit, auth, calendar, dashboard, feed, freezes, input_sets, insights,
        processes as editor, processes, profile, release_groups, releases, reports, signoff, status, work,
    };
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/static/{path:.*}", web::get().to(static_files::serve))
        .service(web::scope("/api/v1").configure(api::routes))
        .route("/login", web::get().to(auth::login_page))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/", web::get().to(dashboard::dashboard))
        .route("/profile", web::get().to(profile::show))
        .route("/profile", web::post().to(profile::update))
        .route("/profile/password", web::post().to(profile::change_password))
        .route("/admin", web::get().to(admin_users::admin_home))
        .route("/admin/users", web::get().to(admin_users::list))
        .route("/admin/users", web::post().to(admin_users::create))
        .route("/admin/users/{id}", web::get().to(admin_users::show))
        .route("/admin/users/{id}/disable", web::post().to(admin_users::disable))
        .route("/admin/users/{id}/enable", web::post().to(admin_users::enable))
        .route("/admin/users/{id}/password", web::post().to(admin_users::reset_password))
        .route("/admin/users/{id}/roles", web::post().to(admin_users::add_role))
        .route("/admin/users/{id}/roles/{binding}/delete", web::post().to(admin_users::remove_role))
        .route("/admin/groups", web::get().to(admin_groups::list))
        .route("/admin/groups", web::post().to(admin_groups::create))
        .route("/admin/groups/{id}", web::get().to(admin_groups::show))
        .route("/admin/groups/{id}/members", web::post().to(admin_groups::add_member))
        .route("/admin/groups/{id}/members/{user}/delete", web::post().to(admin_groups::remove_member))
        .route("/admin/groups/{id}/delete", web::post().to(admin_groups::delete))
        .route("/admin/orgs", web::get().to(admin_catalog::orgs))
        .route("/admin/orgs", web::post().to(admin_catalog::create_org))
        .route("/admin/orgs/{id}", web::get().to(admin_catalog::org))
        .route("/admin/orgs/{id}", web::post().to(admin_catalog::rename_org))
        .route("/admin/orgs/{id}/delete", web::post().to(admin_catalog::delete_org))
        .route("/admin/environments", web::get().to(admin_catalog::environments))
        .route("/admin/environments", web::post().to(admin_catalog::create_environment))
        .route("/admin/environments/{id}", web::get().to(admin_catalog::environment))
        .route("/admin/environments/{id}", web::post().to(admin_catalog::update_environment))
        .route("/admin/environments/{id}/move", web::post().to(admin_catalog::move_environment))
        .route("/admin/environments/{id}/delete", web::post().to(admin_catalog::delete_environment))
        .route("/admin/services", web::get().to(admin_catalog::services))
        .route("/admin/services", web::post().to(admin_catalog::create_service))
        .route("/admin/services/{id}", web::get().to(admin_catalog::service))
        .route("/admin/services/{id}", web::post().to(admin_catalog::rename_service))
        .route("/admin/services/{id}/delete", web::post().to(admin_catalog::delete_service))
        .route("/admin/freezes", web::get().to(freezes::list))
        .route("/admin/freezes", web::post().to(freezes::create))
        .route("/admin/freezes/{id}/delete", web::post().to(freezes::delete))
        .route("/admin/settings", web::get().to(admin_settings::show))
        .route("/admin/settings", web::post().to(admin_settings::update))
        .route("/calendar", web::get().to(calendar::show))
        .route("/calendar.ics", web::get().to(feed::feed))
        .route("/profile/calendar-feed", web::post().to(feed::page_new_feed))
        .route("/release-groups", web::get().to(release_groups::list))
        .route("/release-groups", web::post().to(release_groups::create))
        .route("/release-groups/{id}/pause", web::post().to(release_groups::pause))
        .route("/release-groups/{id}/resume", web::post().to(release_groups::resume))
        .route("/release-groups/{id}/skip", web::post().to(release_groups::skip))
        .route("/releases", web::get().to(releases::list))
        .route("/releases", web::post().to(releases::create))
        .route("/releases/new", web::get().to(releases::new))
        .route("/releases/{id}", web::get().to(releases::show))
        .route("/releases/{id}/edit", web::get().to(releases::edit))
        .route("/releases/{id}/edit", web::post().to(releases::update))
        .route("/releases/{id}/activate", web::post().to(releases::activate))
        .route("/releases/{id}/run-now", web::post().to(releases::run_now))
        .route("/releases/{id}/abort", web::post().to(releases::abort))
        .route("/releases/{id}/restart", web::post().to(releases::restart))
        .route("/releases/{id}/rebase", web::post().to(releases::rebase))
        .route("/releases/{id}/delete", web::post().to(releases::delete))
        .route("/releases/{id}/rollback", web::post().to(releases::roll_back))
        .route("/releases/{id}/activities/{phase}/{activity}/{action}", web::post().to(releases::act))
        .route("/releases/{id}/status-link", web::post().to(status::create))
        .route("/releases/{id}/status-link/revoke", web::post().to(status::revoke))
        .route("/status/{token}", web::get().to(status::show))
        .route("/signoff/{token}", web::get().to(signoff::show))
        .route("/signoff/{token}", web::post().to(signoff::decide))
        .route("/reports/deployed", web::get().to(reports::deployed))
        .route("/reports/history", web::get().to(reports::history))
        .route("/reports/releases", web::get().to(reports::releases))
        .route("/insights", web::get().to(insights::insights))
        .route("/audit", web::get().to(audit::list))
        .route("/audit/verify", web::post().to(audit::verify))
        .route("/work", web::get().to(work::work))
        .route("/notifications", web::get().to(work::notifications_page))
        .route("/notifications/read", web::post().to(work::mark_read))
        .route("/profile/delegations", web::post().to(profile::add_delegation))
        .route("/profile/delegations/{id}/delete", web::post().to(profile::remove_delegation))
        .route("/profile/mutes", web::post().to(profile::set_mutes))
        .route("/profile/tokens", web::post().to(profile::create_token))
        .route("/profile/tokens/{id}/revoke", web::post().to(profile::revoke_token))
        .route("/processes", web::get().to(processes::list))
        .route("/processes", web::post().to(processes::create))
        .route("/processes/import", web::post().to(processes::import))
        .route("/processes/{id}", web::get().to(editor::show))
        .route("/processes/{id}/versions/{version}", web::get().to(editor::show_version))
        .route("/processes/{id}/diff", web::get().to(editor::diff_page))
        .route("/processes/{id}/export", web::get().to(editor::export))
        .route("/processes/{id}/yaml", web::get().to(editor::yaml))
        .route("/processes/{id}/yaml", web::post().to(editor::update_yaml))
        .route("/processes/{id}/save", web::post().to(editor::save))
        .route("/processes/{id}/discard", web::post().to(editor::discard))
        .route("/processes/{id}/phases", web::post().to(editor::add_phase))
        .route("/processes/{id}/phases/{phase}", web::get().to(editor::edit_phase))
        .route("/processes/{id}/phases/{phase}", web::post().to(editor::update_phase))
        .route("/processes/{id}/phases/{phase}/delete", web::post().to(editor::delete_phase))
        .route("/processes/{id}/phases/{phase}/activities", web::get().to(editor::new_activity))
        .route("/processes/{id}/phases/{phase}/activities", web::post().to(editor::add_activity))
        .route("/processes/{id}/phases/{phase}/activities/{activity}", web::get().to(editor::edit_activity))
        .route("/processes/{id}/phases/{phase}/activities/{activity}", web::post().to(editor::update_activity))
        .route("/processes/{id}/phases/{phase}/activities/{activity}/delete", web::post().to(editor::delete_activity))
        .route("/processes/{id}/input-sets", web::get().to(input_sets::list))
        .route("/processes/{id}/input-sets", web::post().to(input_sets::create))
        .route("/processes/{id}/input-sets/{set}", web::get().to(input_sets::show))
        .route("/processes/{id}/input-sets/{set}", web::post().to(input_sets::update))
        .route("/processes/{id}/input-sets/{set}/delete", web::post().to(input_sets::delete))
        .default_service(web::to(pages::not_found));
}
