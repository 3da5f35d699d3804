//! Deploy locks as pure rules (DESIGN §2): which locks a phase needs, and whether it may take
//! them all now. The worker reads holders and queues, asks here, then writes the answer.

use std::collections::BTreeMap;

string_enum!(
    /// What an environment locks while a phase deploys into it: nothing; each service (two
    /// releases never deploy the same service into it at once); or the whole environment (one
    /// deploying phase at a time).
    DeployLock {
    None => "none",
    Service => "service",
    Environment => "environment",
});

impl DeployLock {
    /// The stored default for a new environment without an explicit setting.
    pub fn default_for(production: bool) -> DeployLock {
        if production {
            DeployLock::Service
        } else {
            DeployLock::None
        }
    }
}

/// One lock: a service in an environment, or the whole environment (`service` empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockKey {
    pub environment: String,
    pub service: String,
}

impl std::fmt::Display for LockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.service.is_empty() {
            f.write_str(&self.environment)
        } else {
            write!(f, "{} / {}", self.environment, self.service)
        }
    }
}

/// An environment's lock setting and its place in the account's order.
#[derive(Debug, Clone, Copy)]
pub struct EnvironmentLock {
    pub mode: DeployLock,
    pub position: i32,
}

/// The locks a phase needs for what its activities deploy, `(environment, service)` pairs, in
/// the order waits are reported: by environment position, then service name.
pub fn needed(targets: &[(String, String)], environments: &BTreeMap<String, EnvironmentLock>) -> Vec<LockKey> {
    let mut keys: Vec<(i32, LockKey)> = Vec::new();
    for (environment, service) in targets {
        let Some(env) = environments.get(environment) else { continue };
        let key = match env.mode {
            DeployLock::None => continue,
            DeployLock::Service if service.is_empty() => continue,
            DeployLock::Service => LockKey { environment: environment.clone(), service: service.clone() },
            DeployLock::Environment => LockKey { environment: environment.clone(), service: String::new() },
        };
        if !keys.iter().any(|(_, k)| k == &key) {
            keys.push((env.position, key));
        }
    }
    keys.sort();
    keys.into_iter().map(|(_, k)| k).collect()
}

/// Who a lock belongs to, or who waits for it: a release's phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub release_id: i64,
    pub phase: String,
}

/// What stands between a phase and one of its locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// Another release's phase holds it.
    HeldBy(Claim),
    /// It is free, but another waiter is ahead in its queue (a hotfix, or an earlier arrival).
    Behind(Claim),
}

/// Where one lock stands now: its holder and the first in its queue.
#[derive(Debug, Clone, Default)]
pub struct LockState {
    pub holder: Option<Claim>,
    pub first_waiting: Option<Claim>,
}

/// Whether `me` may take every lock in `needed` now: all free (or held by itself, or by a
/// release it runs inside of — `ancestors`, along `subprocess_of`) and it first in each queue.
/// All or nothing: the first lock it cannot take is returned, in `needed`'s order.
pub fn may_take(
    me: &Claim,
    ancestors: &[i64],
    needed: &[LockKey],
    states: &BTreeMap<LockKey, LockState>,
) -> Result<(), (LockKey, Blocked)> {
    let mine = |c: &Claim| c.release_id == me.release_id || ancestors.contains(&c.release_id);
    for key in needed {
        let state = states.get(key).cloned().unwrap_or_default();
        match (&state.holder, &state.first_waiting) {
            (Some(h), _) if !mine(h) => return Err((key.clone(), Blocked::HeldBy(h.clone()))),
            (None, Some(w)) if w != me && !mine(w) => return Err((key.clone(), Blocked::Behind(w.clone()))),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn envs() -> BTreeMap<String, EnvironmentLock> {
        BTreeMap::from([
            ("QA".to_string(), EnvironmentLock { mode: DeployLock::None, position: 1 }),
            ("PROD1".to_string(), EnvironmentLock { mode: DeployLock::Service, position: 3 }),
            ("PROD0".to_string(), EnvironmentLock { mode: DeployLock::Environment, position: 2 }),
        ])
    }

    fn key(e: &str, s: &str) -> LockKey {
        LockKey { environment: e.into(), service: s.into() }
    }

    fn claim(id: i64) -> Claim {
        Claim { release_id: id, phase: "deploy".into() }
    }

    #[test]
    fn a_phase_needs_a_lock_per_service_or_per_environment_in_order() {
        let targets: Vec<(String, String)> = [("PROD1", "web"), ("QA", "web"), ("PROD0", "web"), ("PROD0", "api"), ("PROD1", "api")]
            .iter()
            .map(|(e, s)| (e.to_string(), s.to_string()))
            .collect();
        assert_eq!(needed(&targets, &envs()), vec![key("PROD0", ""), key("PROD1", "api"), key("PROD1", "web")]);
        assert_eq!(DeployLock::default_for(true), DeployLock::Service);
        assert_eq!(key("PROD1", "web").to_string(), "PROD1 / web");
    }

    #[test]
    fn all_or_nothing_first_in_queue_and_reentrant_for_children() {
        let need = vec![key("PROD1", "api"), key("PROD1", "web")];
        let mut states = BTreeMap::new();
        states.insert(key("PROD1", "web"), LockState { holder: Some(claim(7)), first_waiting: None });
        assert_eq!(may_take(&claim(1), &[], &need, &states), Err((key("PROD1", "web"), Blocked::HeldBy(claim(7)))));
        assert_eq!(may_take(&claim(1), &[7], &need, &states), Ok(()), "a child deploys what its parent holds");
        states.insert(key("PROD1", "web"), LockState { holder: None, first_waiting: Some(claim(9)) });
        assert_eq!(may_take(&claim(1), &[], &need, &states), Err((key("PROD1", "web"), Blocked::Behind(claim(9)))));
        states.insert(key("PROD1", "web"), LockState { holder: None, first_waiting: Some(claim(1)) });
        assert_eq!(may_take(&claim(1), &[], &need, &states), Ok(()));
    }

    proptest! {
        #[test]
        fn a_phase_is_granted_only_when_every_lock_is_free_for_it(
            holders in proptest::collection::vec(proptest::option::of(0i64..4), 3),
            firsts in proptest::collection::vec(proptest::option::of(0i64..4), 3),
        ) {
            let need: Vec<LockKey> = (0..3).map(|i| key("PROD1", &format!("s{i}"))).collect();
            let states: BTreeMap<LockKey, LockState> = need.iter().enumerate().map(|(i, k)| {
                (k.clone(), LockState { holder: holders[i].map(claim), first_waiting: firsts[i].map(claim) })
            }).collect();
            let granted = may_take(&claim(0), &[], &need, &states).is_ok();
            let free = (0..3).all(|i| holders[i].is_none_or(|h| h == 0) && (holders[i].is_some() || firsts[i].is_none_or(|f| f == 0)));
            prop_assert_eq!(granted, free);
        }
    }
}
