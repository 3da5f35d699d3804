//! `/processes/{id}/input-sets`: named values that prefill a release ("EU prod").

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde_json::{Map, Value};

use super::{redirect, render, render_form_errors, Chrome};
use crate::db::models::processes::{InputSet, Process};
use crate::domain::policy::Action;
use crate::domain::process::definition::InputType;
use crate::domain::process::template::to_text;
use crate::domain::process::Definition;
use crate::domain::validate::FieldErrors;
use crate::ops::processes::{self as ops, InputSetInput, MASK};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::AppState;

/// One input as a form field.
pub struct Field {
    pub name: String,
    pub kind: &'static str,
    pub description: String,
    pub secret: bool,
    pub choices: Vec<String>,
    pub value: String,
    pub error: Option<String>,
}

fn fields(def: &Definition, values: &Map<String, Value>, errors: &FieldErrors) -> Vec<Field> {
    def.inputs
        .iter()
        .map(|i| Field {
            name: i.name.clone(),
            kind: i.kind.as_str(),
            description: i.description.clone().unwrap_or_default(),
            secret: i.secret,
            choices: match i.kind {
                InputType::Enum => i.values.clone(),
                InputType::Boolean => vec!["true".into(), "false".into()],
                _ => vec![],
            },
            value: match values.get(&i.name) {
                // A manifest is edited as `service=version` lines.
                Some(Value::Object(map)) => map.iter().map(|(k, v)| format!("{k}={}", to_text(v))).collect::<Vec<_>>().join("\n"),
                other => other.map(to_text).unwrap_or_default(),
            },
            error: errors.get(&format!("inputs.{}", i.name)).map(str::to_string),
        })
        .collect()
}

pub struct SetRow {
    pub id: i64,
    pub name: String,
    pub summary: String,
}

#[derive(Template)]
#[template(path = "pages/processes/input_sets.html")]
pub struct InputSetsPage {
    pub chrome: Chrome,
    pub id: i64,
    pub process_name: String,
    pub can_edit: bool,
    pub sets: Vec<SetRow>,
    /// `Some(set id)` when editing one set, `None` for the "new set" form.
    pub editing: Option<i64>,
    pub name: String,
    pub name_error: Option<String>,
    pub other_errors: Vec<String>,
    pub fields: Vec<Field>,
}

async fn process_and_definition(state: &AppState, user: &CurrentUser, id: i64) -> Result<(Process, Definition), AppError> {
    let mut conn = state.db().await?;
    let process = Process::find(&mut conn, user.account_id, id).await?;
    user.require(Action::ViewProcess, process.scope())?;
    let (_, def) = ops::load(&mut conn, &process, None).await?;
    Ok((process, def))
}

/// The input-set form as shown: which set is edited (`None`: a new one), and what it holds.
struct SetForm {
    editing: Option<i64>,
    name: String,
    values: Map<String, Value>,
    errors: FieldErrors,
}

impl SetForm {
    fn empty() -> Self {
        SetForm { editing: None, name: String::new(), values: Map::new(), errors: FieldErrors::new() }
    }
}

async fn page(
    (state, user, session): (&AppState, &CurrentUser, &Session),
    process: &Process,
    def: &Definition,
    form: SetForm,
) -> Result<InputSetsPage, AppError> {
    let SetForm { editing, name, values, errors } = form;
    let mut conn = state.db().await?;
    let sets = InputSet::list(&mut conn, user.account_id, process.id)
        .await?
        .into_iter()
        .map(|s| SetRow {
            id: s.id,
            summary: ops::masked(def, &s.input_values).iter().map(|(k, v)| format!("{k}={}", to_text(v))).collect::<Vec<_>>().join(" · "),
            name: s.name,
        })
        .collect();
    let input_names: Vec<String> = def.inputs.iter().map(|i| format!("inputs.{}", i.name)).collect();
    let other_errors =
        errors.0.iter().filter(|(f, _)| *f != "name" && !input_names.contains(f)).map(|(f, m)| format!("{f}: {m}")).collect();
    Ok(InputSetsPage {
        chrome: Chrome::new(user, session, format!("Input sets of {}", def.name), "/processes"),
        id: process.id,
        process_name: def.name.clone(),
        can_edit: user.may(Action::ManageProcess, process.scope()),
        sets,
        editing,
        name,
        name_error: errors.get("name").map(str::to_string),
        other_errors,
        fields: fields(def, &values, &errors),
    })
}

pub async fn list(state: web::Data<AppState>, user: CurrentUser, session: Session, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    let (process, def) = process_and_definition(&state, &user, *id).await?;
    render(&page((&state, &user, &session), &process, &def, SetForm::empty()).await?)
}

pub async fn show(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let (id, set_id) = path.into_inner();
    let (process, def) = process_and_definition(&state, &user, id).await?;
    let mut conn = state.db().await?;
    let set = InputSet::find(&mut conn, user.account_id, process.id, set_id).await?;
    let values = ops::masked(&def, &set.input_values);
    render(
        &page(
            (&state, &user, &session),
            &process,
            &def,
            SetForm { editing: Some(set.id), name: set.name, values, errors: FieldErrors::new() },
        )
        .await?,
    )
}

/// The typed form: `name` plus one `in.<input>` field per input.
fn parse_form(pairs: Vec<(String, String)>) -> InputSetInput {
    let mut input = InputSetInput::default();
    for (k, v) in pairs {
        if k == "name" {
            input.name = v;
        } else if let Some(name) = k.strip_prefix("in.") {
            input.values.insert(name.to_string(), Value::String(v));
        }
    }
    input
}

async fn save(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    htmx: Htmx,
    id: i64,
    set_id: Option<i64>,
    pairs: Vec<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (process, def) = process_and_definition(state, user, id).await?;
    user.require(Action::ManageProcess, process.scope())?;
    let input = parse_form(pairs);
    let mut conn = state.db().await?;
    let existing = match set_id {
        Some(s) => Some(InputSet::find(&mut conn, user.account_id, process.id, s).await?),
        None => None,
    };
    match ops::save_input_set(&mut conn, &user.actor(), &state.secrets, &process, existing.as_ref(), &input, state.now()).await {
        Ok(set) => {
            flash::success(session, format!("Input set {} saved.", set.name));
            Ok(redirect(htmx, &format!("/processes/{}/input-sets", process.id)))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            // Keep what was typed, but never send a typed secret back.
            let mut values = input.values.clone();
            for i in def.inputs.iter().filter(|i| i.secret) {
                if values.get(&i.name).and_then(Value::as_str).is_some_and(|v| !v.is_empty()) {
                    values.insert(i.name.clone(), Value::String(MASK.into()));
                }
            }
            let p = page((state, user, session), &process, &def, SetForm { editing: set_id, name: input.name, values, errors }).await?;
            render_form_errors(&p, htmx)
        }
    }
}

pub async fn create(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    save(&state, &user, &session, htmx, *id, None, form.into_inner()).await
}

pub async fn update(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    path: web::Path<(i64, i64)>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let (id, set_id) = path.into_inner();
    save(&state, &user, &session, htmx, id, Some(set_id), form.into_inner()).await
}

pub async fn delete(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let (id, set_id) = path.into_inner();
    let mut conn = state.db().await?;
    let process = Process::find(&mut conn, user.account_id, id).await?;
    user.require(Action::ManageProcess, process.scope())?;
    let set = InputSet::find(&mut conn, user.account_id, process.id, set_id).await?;
    ops::delete_input_set(&mut conn, &user.actor(), &process, &set, state.now()).await?;
    flash::success(&session, format!("Input set {} deleted.", set.name));
    Ok(redirect(htmx, &format!("/processes/{id}/input-sets")))
}
