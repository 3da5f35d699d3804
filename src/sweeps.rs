//! Background sweeps of `railyard serve`: auto-activation of due drafts (every second) and the
//! daily retention job. Tests run them step by step instead (the worker is off there).

use std::time::Duration;

use crate::web::AppState;

/// One pass of every sweep; returns (activated, archived).
pub async fn run_once(state: &AppState) -> anyhow::Result<(usize, usize)> {
    let mut conn = state.pool.get().await?;
    let now = state.clock.now();
    let activated = crate::ops::releases::activation_sweep(&mut conn, now).await.map_err(|e| anyhow::anyhow!("activation sweep: {e}"))?;
    let archived = crate::ops::releases::retention_sweep(&mut conn, state.settings.retention_days, now)
        .await
        .map_err(|e| anyhow::anyhow!("retention sweep: {e}"))?;
    Ok((activated, archived))
}

pub fn spawn(state: actix_web::web::Data<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(&state).await {
                Ok((0, 0)) => {}
                Ok((activated, archived)) => tracing::info!(activated, archived, "sweeps"),
                Err(e) => tracing::warn!(error = %e, "sweep failed; retrying"),
            }
        }
    });
}
