//! `/api/v1/reports/*` and `/api/v1/insights` (DESIGN §8, §10): JSON, or CSV with `format=csv`.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::ok;
use crate::db::reports::DeploymentRow;
use crate::ops::reports::{self, ReportQuery};
use crate::web::error::ApiError;
use crate::web::exports::{deployments_csv, insights_csv, releases_csv, wants_csv};
use crate::web::extractors::ApiUser;
use crate::web::AppState;

#[derive(Serialize, utoipa::ToSchema)]
struct CellJson<'a> {
    service: &'a str,
    environment: &'a str,
    version: &'a str,
    release_id: Option<i64>,
    release_name: &'a str,
    deployed_at: DateTime<Utc>,
}

impl<'a> CellJson<'a> {
    fn of(d: &'a DeploymentRow) -> Self {
        CellJson {
            service: &d.service,
            environment: &d.environment,
            version: &d.version,
            release_id: d.release_id,
            release_name: &d.release_name,
            deployed_at: d.deployed_at,
        }
    }
}

pub async fn deployed(state: web::Data<AppState>, user: ApiUser, query: web::Query<ReportQuery>) -> Result<HttpResponse, ApiError> {
    let csv = wants_csv(&query.format)?;
    let mut conn = state.db().await?;
    let actor = user.actor();
    let report = reports::deployed(&mut conn, user.requester(&actor), &query, state.now()).await?;
    if csv {
        return Ok(deployments_csv("deployed", &report.cells));
    }
    let cells: Vec<CellJson> = report.cells.iter().map(CellJson::of).collect();
    Ok(ok(&json!({ "cells": cells })))
}

pub async fn history(state: web::Data<AppState>, user: ApiUser, query: web::Query<ReportQuery>) -> Result<HttpResponse, ApiError> {
    let csv = wants_csv(&query.format)?;
    let mut conn = state.db().await?;
    let actor = user.actor();
    let rows = reports::history(&mut conn, user.requester(&actor), &query, state.now()).await?;
    if csv {
        return Ok(deployments_csv("history", &rows));
    }
    let deployments: Vec<CellJson> = rows.iter().map(CellJson::of).collect();
    Ok(ok(&json!({ "deployments": deployments })))
}

#[derive(Serialize, utoipa::ToSchema)]
struct ApprovalJson<'a> {
    phase: &'a str,
    activity: &'a str,
    approver: &'a str,
    on_behalf_of: Option<&'a str>,
    decision: &'a str,
    comment: Option<&'a str>,
    at: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ReleaseRowJson<'a> {
    id: i64,
    name: &'a str,
    #[serde(rename = "type")]
    release_type: &'a str,
    org: Option<&'a str>,
    state: &'a str,
    status: &'a str,
    owner: Option<&'a str>,
    environments: &'a [String],
    services: &'a [String],
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    duration_seconds: Option<i64>,
    approvals: Vec<ApprovalJson<'a>>,
    failure_reasons: &'a [String],
}

pub async fn releases(state: web::Data<AppState>, user: ApiUser, query: web::Query<ReportQuery>) -> Result<HttpResponse, ApiError> {
    let csv = wants_csv(&query.format)?;
    let mut conn = state.db().await?;
    let actor = user.actor();
    let (_, rows) = reports::releases(&mut conn, user.requester(&actor), &query, state.now()).await?;
    if csv {
        return Ok(releases_csv(&rows));
    }
    let releases: Vec<ReleaseRowJson> = rows
        .iter()
        .map(|row| {
            let r = &row.release;
            ReleaseRowJson {
                id: r.id,
                name: &r.name,
                release_type: r.release_type.as_str(),
                org: r.org.as_deref(),
                state: r.state.as_str(),
                status: r.status.as_str(),
                owner: r.owner.as_deref(),
                environments: &r.environments,
                services: &r.services,
                created_at: r.created_at,
                started_at: r.started_at,
                finished_at: r.finished_at,
                duration_seconds: row.duration_seconds,
                approvals: row
                    .approvals
                    .iter()
                    .map(|a| ApprovalJson {
                        phase: &a.phase,
                        activity: &a.activity,
                        approver: &a.approver,
                        on_behalf_of: a.on_behalf_of.as_deref(),
                        decision: &a.decision,
                        comment: a.comment.as_deref(),
                        at: a.at,
                    })
                    .collect(),
                failure_reasons: &row.failure_reasons,
            }
        })
        .collect();
    Ok(ok(&json!({ "releases": releases })))
}

pub async fn insights(state: web::Data<AppState>, user: ApiUser, query: web::Query<ReportQuery>) -> Result<HttpResponse, ApiError> {
    let csv = wants_csv(&query.format)?;
    let mut conn = state.db().await?;
    let actor = user.actor();
    let insights = reports::insights(&mut conn, user.requester(&actor), &query, state.now()).await?;
    if csv {
        return Ok(insights_csv(&insights));
    }
    let rows: Vec<serde_json::Value> = insights
        .rows
        .iter()
        .map(|r| {
            json!({
                "service": r.service,
                "environment": r.environment,
                "deployments": r.deployments,
                "deployments_per_week": r.deployments_per_week,
                "lead_time_hours": {"median": r.lead_time_median_hours, "p90": r.lead_time_p90_hours},
                "change_failure_rate": r.change_failure_rate,
                "time_to_restore_hours": {"median": r.time_to_restore_median_hours},
            })
        })
        .collect();
    Ok(ok(&json!({ "from": insights.from, "to": insights.to, "rows": rows })))
}
