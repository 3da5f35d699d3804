//! Engine throughput and scheduling lag: N releases of chained no-op webhooks against a local
//! receiver, run by the real worker (LISTEN/NOTIFY + polling) on the system clock.
//! Run with `cargo bench --bench engine` (RELEASES and WORKERS may be set in the environment).

#[path = "../tests/common/mod.rs"]
mod common;

use actix_web::{web, App, HttpResponse, HttpServer};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use railyard::clock::SystemClock;
use railyard::ops::{processes, releases, Actor};
use railyard::startup::Application;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("benches/engine runs under `cargo bench --bench engine`; skipped under cargo test.");
        return;
    }
    let n: usize = std::env::var("RELEASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let workers: usize = std::env::var("WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    // When each first activity's request really arrived: the start lag as the outside world sees
    // it, whatever times the engine records.
    let first_calls: Arc<std::sync::Mutex<Vec<Instant>>> = Arc::default();
    let seen = first_calls.clone();
    let receiver = HttpServer::new(move || {
        let seen = seen.clone();
        App::new().default_service(web::to(move |req: actix_web::HttpRequest| {
            if req.path() == "/a" {
                seen.lock().expect("arrivals").push(Instant::now());
            }
            async { HttpResponse::Ok().json(serde_json::json!({"ok": true})) }
        }))
    })
    .workers(2)
    .bind("127.0.0.1:0")
    .expect("receiver");
    let port = receiver.addrs()[0].port();
    tokio::spawn(receiver.run());

    let db = common::create_database().await;
    let url = common::database_url(&db);
    let mut settings = common::test_settings(&url);
    settings.pool_size = 12;
    let app = Application::build(settings, Arc::new(SystemClock)).await.expect("app");
    let state = app.state.clone();
    tokio::spawn(app.run_until_stopped());
    let mut conn = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&url).await.expect("db");
    let now = chrono::Utc::now();
    let account = railyard::ops::accounts::create_account(&mut conn, "bench", "Bench", now).await.expect("account").id;
    let input = railyard::ops::users::NewUserInput {
        email: "rm@bench.example.com".into(),
        name: "RM".into(),
        password: "bench-password".into(),
        role: "account_release_manager".into(),
        org: String::new(),
    };
    let rm = railyard::ops::users::create_user(&mut conn, &Actor::system(account, "bench"), &input, now).await.expect("rm");
    let settings_input =
        railyard::ops::settings::SettingsInput { webhook_allow_list: Some(vec![format!("127.0.0.1:{port}")]), ..Default::default() };
    railyard::ops::settings::update_settings(&mut conn, &Actor::system(account, "bench"), &settings_input, now).await.expect("allow-list");
    let actor = Actor::user(rm.id, account, &rm.email);
    let hook = |key: &str, dep: &str| {
        format!("{{key: {key}, name: {key}, kind: webhook, config: {{url: \"http://127.0.0.1:{port}/{key}\"}}{dep}}}")
    };
    let yaml = format!(
        "name: Bench\nphases: [{{key: p, name: P, activities: [{}, {}, {}]}}]\n",
        hook("a", ""),
        hook("b", ", depends_on: [a]"),
        hook("c", ", depends_on: [b]")
    );
    use railyard::db::schema::releases::dsl as r;
    let process = processes::create(&mut conn, &actor, None, processes::Source::Yaml(yaml), now).await.expect("process").process.id;
    for _ in 0..workers {
        railyard::worker::spawn_worker(state.services.clone());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Scheduled drafts that all come due at one instant: the measured window is the engine alone.
    let creating = Instant::now();
    for i in 0..n {
        let input = releases::ReleaseInput {
            process_id: Some(process),
            name: Some(format!("Bench run {i}")),
            schedule: Some(Some(releases::ScheduleInput {
                start: "2099-01-01T00:00:00Z".into(),
                end: "2099-01-01T01:00:00Z".into(),
                time_zone: None,
            })),
            ..Default::default()
        };
        let prepared = releases::prepare(&mut conn, &actor, "UTC", &state.secrets, &input, None, false).await.expect("prepare");
        releases::create(&mut conn, &actor, prepared, false, chrono::Utc::now()).await.expect("create");
    }
    let created = creating.elapsed();
    let due_instant = Instant::now() + Duration::from_millis(500);
    let due = railyard::clock::to_micros(chrono::Utc::now() + chrono::TimeDelta::milliseconds(500));
    diesel::update(r::releases)
        .set((r::schedule_start.eq(due), r::schedule_end.eq(due + chrono::TimeDelta::hours(1))))
        .execute(&mut conn)
        .await
        .expect("schedule");
    // As a schedule saved through the application does: the workers look again at what is next due.
    railyard::db::wake::wake(&mut conn).await.expect("wake");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    loop {
        let done: i64 = r::releases.filter(r::status.eq("Success")).count().get_result(&mut conn).await.expect("count");
        if done as usize == n {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            panic!("only {done} of {n} releases finished in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();

    #[derive(QueryableByName)]
    struct Lag {
        #[diesel(sql_type = diesel::sql_types::Double)]
        ms: f64,
    }
    let transitions: i64 = railyard::db::schema::audit_events::dsl::audit_events
        .filter(railyard::db::schema::audit_events::dsl::release_id.is_not_null())
        .filter(railyard::db::schema::audit_events::dsl::action.ne("release.create"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("transitions");
    let mut start_lag: Vec<f64> = diesel::sql_query(
        "SELECT (EXTRACT(EPOCH FROM (a.started_at - r.schedule_start)) * 1000)::float8 AS ms FROM releases r JOIN release_activities a ON a.release_id = r.id AND a.key = 'a'",
    )
    .load::<Lag>(&mut conn)
    .await
    .expect("lag")
    .into_iter()
    .map(|l| l.ms)
    .collect();
    let mut successor_lag: Vec<f64> = diesel::sql_query(
        "SELECT (EXTRACT(EPOCH FROM (b.started_at - a.finished_at)) * 1000)::float8 AS ms FROM release_activities a \
         JOIN release_activities b ON b.release_id = a.release_id AND ((a.key = 'a' AND b.key = 'b') OR (a.key = 'b' AND b.key = 'c'))",
    )
    .load::<Lag>(&mut conn)
    .await
    .expect("lag")
    .into_iter()
    .map(|l| l.ms)
    .collect();
    let mut observed_start: Vec<f64> =
        first_calls.lock().expect("arrivals").iter().map(|at| at.saturating_duration_since(due_instant).as_secs_f64() * 1000.0).collect();
    observed_start.sort_by(f64::total_cmp);
    start_lag.sort_by(f64::total_cmp);
    successor_lag.sort_by(f64::total_cmp);
    println!("engine bench: {n} releases × 3 chained no-op webhooks, {workers} in-process workers, 2 cores");
    println!(
        "  {n} scheduled drafts created in {:.2} s, all due at one instant; all finished {:.2} s after it",
        created.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!("  transitions recorded: {transitions} → {:.0} transitions/s", transitions as f64 / elapsed.as_secs_f64());
    println!("  webhook requests: {} → {:.0} requests/s", n * 3, (n * 3) as f64 / elapsed.as_secs_f64());
    println!(
        "  start lag (scheduled start → first activity started): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&start_lag, 0.5),
        percentile(&start_lag, 0.99)
    );
    println!(
        "  start lag seen by the receiver (scheduled start → first request arrived, {} requests): p50 {:.1} ms, p99 {:.1} ms",
        observed_start.len(),
        percentile(&observed_start, 0.5),
        percentile(&observed_start, 0.99)
    );
    println!(
        "  successor lag (finished → next started): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&successor_lag, 0.5),
        percentile(&successor_lag, 0.99)
    );
    drop(conn);
    drop(state);
    common::drop_database(db);
}
