//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the JSON API.
//!
//! Its paths come from the route table (`API_ROUTES`), so a route cannot be missing; its
//! schemas are derived (utoipa) from the very types the handlers parse and answer with. Each
//! route names its request and answer types in `contract`; a route without a contract fails
//! `every_api_route_has_a_contract` below.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr, Required, ResponseBuilder,
    Schema, Type,
};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::API_ROUTES;
use crate::web::error::ErrorJson;

/// What a route reads and answers.
pub struct Contract {
    pub request: Option<Body>,
    pub query: fn() -> Vec<utoipa::openapi::path::Parameter>,
    pub status: u16,
    pub answer: Body,
    /// Also answers CSV (`format=csv`).
    pub csv: bool,
}

#[derive(Clone, Copy)]
pub enum Body {
    /// A named schema in the components.
    Named(&'static str),
    /// A JSON object whose shape the route builds from rows (`{orgs: [...]}` and the like).
    Object,
    /// YAML text.
    Yaml,
    Nothing,
}

fn none() -> Vec<utoipa::openapi::path::Parameter> {
    Vec::new()
}

fn params<T: IntoParams>() -> Vec<utoipa::openapi::path::Parameter> {
    T::into_params(|| Some(ParameterIn::Query))
}

fn c(request: Option<Body>, status: u16, answer: Body) -> Contract {
    Contract { request, query: none, status, answer, csv: false }
}

/// The contract of each API route; `None` for a route nobody described (a test fails on it).
pub fn contract(method: &str, path: &str) -> Option<Contract> {
    use super::{deployments::DeploymentQuery, processes::VersionQuery};
    use crate::ops::{audit_trail::AuditQuery, calendar::CalendarQuery, releases::ListQuery, reports::ReportQuery};
    use Body::*;
    let p = path.strip_prefix("/api/v1")?;
    Some(match (method, p) {
        ("get", "/me") => c(None, 200, Named("MeJson")),
        ("get", "/settings") => c(None, 200, Named("SettingsJson")),
        ("patch", "/settings") => c(Some(Named("SettingsInput")), 200, Named("SettingsJson")),
        ("get", "/orgs" | "/environments" | "/services" | "/groups") => c(None, 200, Object),
        ("post", "/orgs") => c(Some(Named("OrgBody")), 201, Object),
        ("post", "/environments") => c(Some(Named("EnvironmentBody")), 201, Object),
        ("post", "/services") => c(Some(Named("NameBody")), 201, Object),
        ("post", "/groups") => c(Some(Named("GroupBody")), 201, Object),
        ("get", "/orgs/{slug}" | "/environments/{name}" | "/services/{name}" | "/groups/{name}") => c(None, 200, Object),
        ("patch", "/orgs/{slug}" | "/services/{name}") => c(Some(Named("NameBody")), 200, Object),
        ("patch", "/environments/{name}") => c(Some(Named("EnvironmentBody")), 200, Object),
        ("patch", "/groups/{name}") => c(Some(Named("GroupPatch")), 200, Object),
        ("delete", "/orgs/{slug}" | "/environments/{name}" | "/services/{name}" | "/groups/{name}") => c(None, 204, Nothing),
        ("get", "/processes") => c(None, 200, Object),
        ("post", "/processes") => c(Some(Named("CreateBody")), 201, Named("ProcessJson")),
        ("get", "/processes/{id}") => Contract { query: params::<VersionQuery>, ..c(None, 200, Named("ProcessJson")) },
        ("put", "/processes/{id}") => c(Some(Named("UpdateBody")), 200, Named("ProcessJson")),
        ("get", "/processes/{id}/export") => Contract { query: params::<VersionQuery>, ..c(None, 200, Yaml) },
        ("get", "/processes/{id}/input-sets") => c(None, 200, Object),
        ("post", "/processes/{id}/input-sets") => c(Some(Named("InputSetInput")), 201, Named("InputSetJson")),
        ("put", "/processes/{id}/input-sets/{name}") => c(Some(Named("InputSetInput")), 200, Named("InputSetJson")),
        ("delete", "/processes/{id}/input-sets/{name}") => c(None, 204, Nothing),
        ("get", "/releases") => Contract { query: params::<ListQuery>, ..c(None, 200, Named("ReleaseListJson")) },
        ("post", "/releases") => c(Some(Named("ReleaseInput")), 201, Named("ReleaseJson")),
        ("get", "/releases/{id}") => c(None, 200, Named("ReleaseJson")),
        ("patch", "/releases/{id}") => c(Some(Named("ReleaseInput")), 200, Named("ReleaseJson")),
        ("delete", "/releases/{id}") => c(None, 200, Named("DeletedJson")),
        ("post", "/releases/{id}/activate" | "/releases/{id}/rebase") => c(None, 200, Named("ReleaseJson")),
        ("post", "/releases/{id}/restart") => c(None, 201, Named("ReleaseJson")),
        (
            "post",
            "/releases/{id}/run-now"
            | "/releases/{id}/abort"
            | "/releases/{id}/rollback"
            | "/releases/{id}/override-freeze"
            | "/releases/{id}/retry",
        ) => c(Some(Named("ReasonBody")), 200, Named("ReleaseJson")),
        ("post", "/releases/{id}/activities/{phase}/{activity}/{action}") => c(Some(Named("ActInput")), 200, Named("ReleaseJson")),
        ("post", "/callbacks/{token}") => c(Some(Named("CallbackBody")), 200, Object),
        ("get", "/deployments") => Contract { query: params::<DeploymentQuery>, ..c(None, 200, Object) },
        ("get", "/releases/{id}/audit" | "/audit") => Contract { query: params::<AuditQuery>, csv: true, ..c(None, 200, Object) },
        ("get", "/reports/deployed" | "/reports/history" | "/reports/releases" | "/insights") => {
            Contract { query: params::<ReportQuery>, csv: true, ..c(None, 200, Object) }
        }
        ("get", "/calendar") => Contract { query: params::<CalendarQuery>, ..c(None, 200, Named("CalendarJson")) },
        ("post", "/me/calendar-feed") => c(None, 201, Object),
        ("get", "/me/tokens") => c(None, 200, Object),
        // A token never makes a token (DESIGN §10): always 403 `token_from_token`.
        ("post", "/me/tokens") => c(None, 403, Named("ErrorJson")),
        ("delete", "/me/tokens/{id}") => c(None, 204, Nothing),
        ("get", "/release-groups") => c(None, 200, Object),
        ("post", "/release-groups") => c(Some(Named("ReleaseGroupFields")), 201, Named("ReleaseGroupJson")),
        ("get", "/release-groups/{id}") => c(None, 200, Named("ReleaseGroupJson")),
        ("patch", "/release-groups/{id}") => c(Some(Named("ReleaseGroupFields")), 200, Named("ReleaseGroupJson")),
        ("delete", "/release-groups/{id}") => c(None, 200, Named("GroupDeletedJson")),
        ("get", "/release-groups/{id}/preview") => c(None, 200, Named("GroupPreviewJson")),
        ("post", "/release-groups/{id}/pause" | "/release-groups/{id}/resume") => c(None, 200, Named("ReleaseGroupJson")),
        ("post", "/release-groups/{id}/skip") => c(Some(Named("SkipBody")), 200, Named("GroupSkippedJson")),
        ("get", "/freezes" | "/locks") => c(None, 200, Object),
        ("get", "/releases/{id}/board") => c(None, 200, Named("Board")),
        ("post", "/freezes") => c(Some(Named("FreezeFields")), 201, Named("FreezeJson")),
        ("delete", "/freezes/{id}") => c(None, 204, Nothing),
        ("get", "/openapi.json") => c(None, 200, Object),
        _ => return None,
    })
}

fn components() -> utoipa::openapi::Components {
    use super::{account, catalog, processes, release_json, releases};
    use crate::ops;
    fn add<T: ToSchema>(b: ComponentsBuilder) -> ComponentsBuilder {
        let mut schemas = Vec::new();
        T::schemas(&mut schemas);
        b.schema(T::name(), T::schema()).schemas_from_iter(schemas)
    }
    let mut b = ComponentsBuilder::new();
    b = add::<ErrorJson>(b);
    b = add::<account::MeJson>(b);
    b = add::<account::SettingsJson>(b);
    b = add::<ops::settings::SettingsInput>(b);
    b = add::<catalog::OrgBody>(b);
    b = add::<catalog::NameBody>(b);
    b = add::<catalog::EnvironmentBody>(b);
    b = add::<catalog::GroupBody>(b);
    b = add::<catalog::GroupPatch>(b);
    b = add::<processes::CreateBody>(b);
    b = add::<processes::UpdateBody>(b);
    b = add::<processes::ProcessJson>(b);
    b = add::<processes::InputSetJson>(b);
    b = add::<ops::processes::InputSetInput>(b);
    b = add::<ops::releases::ReleaseInput>(b);
    b = add::<release_json::ReleaseJson>(b);
    b = add::<crate::ops::board::Board>(b);
    b = add::<release_json::ReleaseListJson>(b);
    b = add::<release_json::DeletedJson>(b);
    b = add::<releases::ReasonBody>(b);
    b = add::<ops::activities::ActInput>(b);
    b = add::<ops::outcomes::CallbackBody>(b);
    b = add::<super::calendar::CalendarJson>(b);
    b = add::<ops::release_groups::ReleaseGroupFields>(b);
    b = add::<super::release_groups::ReleaseGroupJson>(b);
    b = add::<super::release_groups::GroupDeletedJson>(b);
    b = add::<super::release_groups::GroupPreviewJson>(b);
    b = add::<super::release_groups::GroupSkippedJson>(b);
    b = add::<super::release_groups::SkipBody>(b);
    b = add::<ops::freezes::FreezeFields>(b);
    b = add::<super::freezes::FreezeJson>(b);
    b.security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer))).build()
}

fn content(body: Body) -> Option<(&'static str, utoipa::openapi::Content)> {
    let schema = |s: RefOr<Schema>| ContentBuilder::new().schema(Some(s)).build();
    match body {
        Body::Named(name) => Some(("application/json", schema(Ref::from_schema_name(name).into()))),
        Body::Object => Some(("application/json", schema(ObjectBuilder::new().schema_type(Type::Object).into()))),
        // A YAML document: its content is the process definition (an object).
        Body::Yaml => Some(("application/yaml", schema(ObjectBuilder::new().schema_type(Type::Object).into()))),
        Body::Nothing => None,
    }
}

fn path_parameters(path: &str) -> Vec<utoipa::openapi::path::Parameter> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let schema: RefOr<Schema> = if name == "id" { i64::schema() } else { String::schema() };
            ParameterBuilder::new().name(name).parameter_in(ParameterIn::Path).required(Required::True).schema(Some(schema)).build()
        })
        .collect()
}

const ERRORS: [(u16, &str); 9] = [
    (400, "The request could not be read (names the field or line)"),
    (401, "No valid API token"),
    (403, "The caller may never do this"),
    (404, "Not found (also another account's objects)"),
    (409, "Not in this state"),
    (413, "The body is larger than the limit"),
    (422, "A named rule refused the input"),
    (429, "Too many attempts"),
    (503, "The database is unavailable or busy; try again"),
];

/// Builds the document from the route table and the contracts.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    for route in API_ROUTES {
        let Some(contract) = contract(route.method, route.path) else { continue };
        let mut op = OperationBuilder::new()
            .operation_id(Some(format!("{} {}", route.method, route.path)))
            .parameters(Some(path_parameters(route.path).into_iter().chain((contract.query)())));
        if route.path != "/api/v1/callbacks/{token}" && route.path != "/api/v1/openapi.json" {
            op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        } else {
            op = op.security(SecurityRequirement::default());
        }
        if let Some((content_type, body)) = contract.request.and_then(content) {
            op = op.request_body(Some(RequestBodyBuilder::new().content(content_type, body).required(Some(Required::True)).build()));
        }
        let mut ok = ResponseBuilder::new().description("Success");
        if let Some((content_type, body)) = content(contract.answer) {
            ok = ok.content(content_type, body);
        }
        if contract.csv {
            ok = ok.content("text/csv", ContentBuilder::new().schema(Some(String::schema())).build());
        }
        op = op.response(contract.status.to_string(), ok.build());
        for (status, description) in ERRORS {
            let error = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorJson"))).build();
            op =
                op.response(status.to_string(), ResponseBuilder::new().description(description).content("application/json", error).build());
        }
        let method = match route.method {
            "get" => HttpMethod::Get,
            "post" => HttpMethod::Post,
            "put" => HttpMethod::Put,
            "patch" => HttpMethod::Patch,
            _ => HttpMethod::Delete,
        };
        paths.add_path_operation(route.path, vec![method], op.build());
    }
    OpenApiBuilder::new()
        .info(InfoBuilder::new().title("Railyard API").version(env!("CARGO_PKG_VERSION")).build())
        .paths(paths)
        .components(Some(components()))
        .build()
}

/// The document, rendered once.
pub async fn openapi_json() -> HttpResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| document().to_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")));
    HttpResponse::Ok().content_type("application/json").body(json.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_has_a_contract_and_appears_in_the_document() {
        let doc = serde_json::to_value(document()).expect("json");
        let mut missing = Vec::new();
        for route in API_ROUTES {
            if contract(route.method, route.path).is_none() {
                missing.push(format!("{} {}: no contract", route.method, route.path));
            }
            if doc["paths"][route.path][route.method].is_null() {
                missing.push(format!("{} {}: not in the document", route.method, route.path));
            }
        }
        assert!(missing.is_empty(), "{missing:#?}");
        assert_eq!(doc["openapi"], "3.1.0");
        // Every named schema the contracts use is in the components.
        let text = doc.to_string();
        for name in text.split("#/components/schemas/").skip(1).map(|s| s.split('"').next().unwrap_or_default()) {
            assert!(!doc["components"]["schemas"][name].is_null(), "schema {name} is referenced but not defined");
        }
    }
}
