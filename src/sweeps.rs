//! The sweeps the worker runs besides the engine: auto-activation of due drafts and the daily
//! retention job. Tests call them directly (the worker is off there).

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
