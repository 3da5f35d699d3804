//! The engine's rules as pure functions: what may start or finish now, and the status roll-up
//! activity → phase → release (DESIGN §4). The worker applies these to the stored tree.

use chrono::{DateTime, Utc};

use super::process::definition::{ActivityKind, OnFailure};
use super::release::Status;

string_enum!(Node {
    NotStarted => "NotStarted",
    Waiting => "Waiting",
    Running => "Running",
    OnHold => "OnHold",
    Success => "Success",
    Failed => "Failed",
    Ignored => "Ignored",
    Skipped => "Skipped",
    Aborted => "Aborted",
});

string_enum!(
    /// Where a webhook attempt is: queued until due, `sending` under a worker's lease, `sent` while
    /// it waits for a callback, then succeeded, failed or superseded (abort, roll back, timeout).
    AttemptState {
    Queued => "queued",
    Sending => "sending",
    Sent => "sent",
    Succeeded => "succeeded",
    Failed => "failed",
    Superseded => "superseded",
});

impl Node {
    pub fn is_finished(self) -> bool {
        matches!(self, Node::Success | Node::Failed | Node::Ignored | Node::Skipped | Node::Aborted)
    }

    pub fn in_progress(self) -> bool {
        matches!(self, Node::Waiting | Node::Running | Node::OnHold)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Act {
    pub phase: String,
    pub key: String,
    pub kind: ActivityKind,
    pub status: Node,
    pub depends_on: Vec<String>,
    pub critical: bool,
    pub on_failure: OnFailure,
    /// When a waiting activity (a `wait`) is due.
    pub wake_at: Option<DateTime<Utc>>,
    /// When its `timeout` runs out, if it has one.
    pub deadline: Option<DateTime<Utc>>,
    /// A fan-out instance: the key of its activity.
    pub fan_of: Option<String>,
    /// A fan-out activity: how many of its instances may run at once.
    pub max_parallel: Option<usize>,
    /// Waiting for a deploy lock that may have come free: the worker tries its start again.
    pub retry_start: bool,
}

impl Act {
    /// Done for its dependents: succeeded, skipped, ignored, or failed where failure is ignored.
    pub fn done(&self) -> bool {
        match self.status {
            Node::Success | Node::Ignored | Node::Skipped => true,
            Node::Failed => self.on_failure == OnFailure::Ignore,
            _ => false,
        }
    }

    /// A failure that fails the release (and starts its rollback).
    pub fn fails_release(&self) -> bool {
        self.status == Node::Failed && self.on_failure != OnFailure::Ignore
    }

    /// Only a person can move it: a manual task or approval in progress, or any hold.
    pub fn waits_on_person(&self) -> bool {
        self.status == Node::OnHold || (self.status == Node::Running && matches!(self.kind, ActivityKind::Manual | ActivityKind::Approval))
    }

    /// Its `timeout` ran out while it was still in progress. A `wait` due no later than its
    /// deadline has ended, not timed out.
    pub fn timed_out(&self, now: DateTime<Utc>) -> bool {
        let Some(deadline) = self.deadline.filter(|d| *d <= now) else { return false };
        let wait_ended_first = self.status == Node::Waiting && self.wake_at.is_some_and(|w| w <= deadline);
        self.status.in_progress() && !wait_ended_first
    }

    /// It moves by itself: something runs, or waits on time or a callback.
    pub fn moves_by_itself(&self) -> bool {
        self.status == Node::Waiting
            || (self.status == Node::Running && matches!(self.kind, ActivityKind::Webhook | ActivityKind::Subprocess | ActivityKind::Wait))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub key: String,
    pub status: Node,
    pub depends_on: Vec<String>,
    pub rollback: bool,
    /// `not_before`, resolved against the release's start and zone.
    pub not_before: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub phases: Vec<Phase>,
    pub activities: Vec<Act>,
    /// A failure decided the release fails: rollback phases run, nothing else starts.
    pub failing: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Phase {
        key: String,
        to: Node,
        wake_at: Option<DateTime<Utc>>,
    },
    /// The activity starts now: the worker initialises it by kind (approvers, deadlines…).
    Start {
        phase: String,
        key: String,
    },
    Activity {
        phase: String,
        key: String,
        to: Node,
    },
    Failing,
}

impl Tree {
    /// Every activity row of a phase, fan-out instances included.
    fn acts<'a>(&'a self, phase: &'a str) -> impl Iterator<Item = &'a Act> + 'a {
        self.activities.iter().filter(move |a| a.phase == phase)
    }

    /// The phase's activities as its definition has them (a fan-out activity stands for its
    /// instances).
    fn main_acts<'a>(&'a self, phase: &'a str) -> impl Iterator<Item = &'a Act> + 'a {
        self.acts(phase).filter(|a| a.fan_of.is_none())
    }

    fn instances<'a>(&'a self, of: &'a Act) -> impl Iterator<Item = &'a Act> + 'a {
        self.acts(&of.phase).filter(move |a| a.fan_of.as_deref() == Some(of.key.as_str()))
    }

    /// A fan-out activity's status as its instances make it (DESIGN §3): Running while any runs
    /// or waits, or has yet to start; else OnHold while any is held; else finished like a phase.
    pub fn fan_out_status(&self, of: &Act) -> Option<Node> {
        let instances: Vec<&Act> = self.instances(of).collect();
        if instances.is_empty() {
            return None;
        }
        Some(if instances.iter().any(|i| matches!(i.status, Node::Running | Node::Waiting | Node::NotStarted)) {
            Node::Running
        } else if instances.iter().any(|i| i.status == Node::OnHold) {
            Node::OnHold
        } else if instances.iter().all(|i| i.done()) {
            if instances.iter().all(|i| i.status == Node::Skipped) {
                Node::Skipped
            } else {
                Node::Success
            }
        } else if instances.iter().any(|i| i.status == Node::Aborted) {
            Node::Aborted
        } else {
            Node::Failed
        })
    }

    fn phase_done(&self, key: &str) -> bool {
        self.phases.iter().find(|p| p.key == key).is_none_or(|p| matches!(p.status, Node::Success | Node::Skipped | Node::Ignored))
    }

    /// Applies one change to the tree (the worker applies the same change to the database).
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Phase { key, to, .. } => {
                if let Some(p) = self.phases.iter_mut().find(|p| &p.key == key) {
                    p.status = *to;
                }
            }
            Change::Start { phase, key } => {
                if let Some(a) = self.activities.iter_mut().find(|a| &a.phase == phase && &a.key == key) {
                    a.status = Node::Running;
                    a.retry_start = false;
                }
            }
            Change::Activity { phase, key, to } => {
                if let Some(a) = self.activities.iter_mut().find(|a| &a.phase == phase && &a.key == key) {
                    a.status = *to;
                }
            }
            Change::Failing => self.failing = true,
        }
    }
}

/// The next batch of changes due now. Apply them and ask again until none are left.
pub fn next_changes(tree: &Tree, now: DateTime<Utc>) -> Vec<Change> {
    let mut out = Vec::new();
    // Waits whose time has come; an activity held until a time (a freeze) is tried again.
    for a in &tree.activities {
        if a.status == Node::Waiting && a.wake_at.is_some_and(|t| t <= now) {
            out.push(Change::Activity { phase: a.phase.clone(), key: a.key.clone(), to: Node::Success });
        }
        if a.status == Node::OnHold && a.wake_at.is_some_and(|t| t <= now) {
            out.push(Change::Activity { phase: a.phase.clone(), key: a.key.clone(), to: Node::NotStarted });
        }
    }
    // A lock that may have come free: the start is tried again (once per look).
    for a in tree.activities.iter().filter(|a| a.status == Node::Waiting && a.retry_start && !tree.failing) {
        out.push(Change::Start { phase: a.phase.clone(), key: a.key.clone() });
    }
    if !out.is_empty() {
        return out;
    }
    // A failure that fails the release switches it to failing: nothing else starts.
    if !tree.failing && tree.activities.iter().any(|a| a.fails_release()) {
        return vec![Change::Failing];
    }
    if tree.failing {
        for p in tree.phases.iter().filter(|p| !p.rollback) {
            for a in tree.acts(&p.key) {
                match a.status {
                    Node::NotStarted => out.push(Change::Activity { phase: a.phase.clone(), key: a.key.clone(), to: Node::Skipped }),
                    s if s.in_progress() => out.push(Change::Activity { phase: a.phase.clone(), key: a.key.clone(), to: Node::Aborted }),
                    _ => {}
                }
            }
            match p.status {
                Node::NotStarted | Node::Waiting => out.push(Change::Phase { key: p.key.clone(), to: Node::Skipped, wake_at: None }),
                Node::Running => out.push(Change::Phase { key: p.key.clone(), to: Node::Failed, wake_at: None }),
                _ => {}
            }
        }
        if !out.is_empty() {
            return out;
        }
    }
    for p in &tree.phases {
        let eligible = if p.rollback { tree.failing } else { !tree.failing };
        match p.status {
            Node::NotStarted | Node::Waiting if eligible && p.depends_on.iter().all(|d| tree.phase_done(d)) => match p.not_before {
                Some(t) if t > now => {
                    if p.status != Node::Waiting {
                        out.push(Change::Phase { key: p.key.clone(), to: Node::Waiting, wake_at: Some(t) });
                    }
                }
                _ => out.push(Change::Phase { key: p.key.clone(), to: Node::Running, wake_at: None }),
            },
            Node::Running => {
                let acts: Vec<&Act> = tree.main_acts(&p.key).collect();
                if acts.iter().all(|a| a.status.is_finished()) {
                    let to = if acts.iter().all(|a| a.done()) { Node::Success } else { Node::Failed };
                    out.push(Change::Phase { key: p.key.clone(), to, wake_at: None });
                    continue;
                }
                for a in acts.iter().filter(|a| a.status == Node::NotStarted) {
                    let ready = a.depends_on.iter().all(|d| tree.main_acts(&p.key).find(|x| &x.key == d).is_none_or(|x| x.done()));
                    if ready {
                        out.push(Change::Start { phase: p.key.clone(), key: a.key.clone() });
                    }
                }
                for a in acts.iter().filter(|a| a.max_parallel.is_some() && matches!(a.status, Node::Running | Node::OnHold)) {
                    fan_out_changes(tree, a, &mut out);
                }
            }
            _ => {}
        }
    }
    // A release that did not fail skips its rollback phases once everything else is done.
    if !tree.failing
        && tree.phases.iter().filter(|p| !p.rollback).all(|p| p.status == Node::Success || p.status == Node::Skipped)
        && out.is_empty()
    {
        for p in tree.phases.iter().filter(|p| p.rollback && !p.status.is_finished()) {
            out.push(Change::Phase { key: p.key.clone(), to: Node::Skipped, wake_at: None });
            for a in tree.acts(&p.key).filter(|a| !a.status.is_finished()) {
                out.push(Change::Activity { phase: a.phase.clone(), key: a.key.clone(), to: Node::Skipped });
            }
        }
    }
    out
}

/// One item of a fan-out: its text (in the instance key) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub text: String,
    /// The map value of a map item (a manifest's version); `None` for a list item.
    pub value: Option<serde_json::Value>,
}

/// The key of a fan-out instance: `deploy[payment-service]`.
pub fn instance_key(activity: &str, item: &str) -> String {
    format!("{activity}[{item}]")
}

/// What `for_each` resolved to, as items (DESIGN §3): a list's strings or numbers, or a map's
/// keys in key order. Duplicates, other kinds of item, or other values are refused, named.
pub fn fan_out_items(value: &serde_json::Value) -> Result<Vec<Item>, String> {
    use serde_json::Value;
    let items: Vec<Item> = match value {
        Value::Array(list) => list
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(Item { text: s.clone(), value: None }),
                Value::Number(n) => Ok(Item { text: n.to_string(), value: None }),
                other => Err(format!("item {other} is neither text nor a number")),
            })
            .collect::<Result<_, _>>()?,
        Value::Object(map) => {
            let mut keys: Vec<(&String, &Value)> = map.iter().collect();
            keys.sort_by(|a, b| a.0.cmp(b.0));
            keys.into_iter().map(|(k, v)| Item { text: k.clone(), value: Some(v.clone()) }).collect()
        }
        Value::Null => Vec::new(),
        other => return Err(format!("for_each resolved to {other}, which is neither a list nor a map")),
    };
    if items.len() > crate::domain::process::definition::MAX_FAN_OUT {
        return Err(format!("for_each has {} items; at most {}", items.len(), crate::domain::process::definition::MAX_FAN_OUT));
    }
    let mut seen = std::collections::HashSet::new();
    for item in &items {
        if item.text.trim().is_empty() || item.text.len() > 200 || item.text.chars().any(|c| c.is_control() || matches!(c, '[' | ']' | '/'))
        {
            return Err(format!("item {:?} cannot name an instance (1–200 characters, no [ ] / or control characters)", item.text));
        }
        if !seen.insert(item.text.as_str()) {
            return Err(format!("item {:?} appears twice", item.text));
        }
    }
    Ok(items)
}

/// A running fan-out activity: its status follows its instances, and instances start while
/// fewer than `max_parallel` run or wait.
fn fan_out_changes(tree: &Tree, a: &Act, out: &mut Vec<Change>) {
    let Some(status) = tree.fan_out_status(a) else { return };
    if status != a.status {
        out.push(Change::Activity { phase: a.phase.clone(), key: a.key.clone(), to: status });
        if status.is_finished() {
            return;
        }
    }
    let active = tree.instances(a).filter(|i| matches!(i.status, Node::Running | Node::Waiting)).count();
    let room = a.max_parallel.unwrap_or(1).saturating_sub(active);
    for i in tree.instances(a).filter(|i| i.status == Node::NotStarted).take(room) {
        out.push(Change::Start { phase: i.phase.clone(), key: i.key.clone() });
    }
}

/// The earliest time something waits for (a `not_before`, a `wait`, a callback or a timeout):
/// when to look again.
pub fn next_wake(tree: &Tree) -> Option<DateTime<Utc>> {
    let phases = tree.phases.iter().filter(|p| p.status == Node::Waiting).filter_map(|p| p.not_before);
    let acts =
        tree.activities.iter().filter(|a| matches!(a.status, Node::Waiting | Node::Running | Node::OnHold)).filter_map(|a| a.wake_at);
    let deadlines = tree.activities.iter().filter(|a| a.status.in_progress()).filter_map(|a| a.deadline);
    phases.chain(acts).chain(deadlines).min()
}

/// Release status from its phases and activities (DESIGN §4), for an active, unaborted release.
pub fn rollup(tree: &Tree) -> Status {
    let in_progress = tree.activities.iter().any(|a| !a.status.is_finished()) && tree.phases.iter().any(|p| !p.status.is_finished());
    let moving = tree.activities.iter().any(Act::moves_by_itself) || tree.phases.iter().any(|p| p.status == Node::Waiting);
    let person = tree.activities.iter().any(Act::waits_on_person);
    let main_done = tree.phases.iter().filter(|p| !p.rollback).all(|p| matches!(p.status, Node::Success | Node::Skipped));
    let rollbacks: Vec<&Phase> = tree.phases.iter().filter(|p| p.rollback).collect();
    let all_finished = tree.phases.iter().all(|p| p.status.is_finished());
    if all_finished || (!in_progress && !tree.failing && main_done && rollbacks.iter().all(|p| p.status.is_finished())) {
        if tree.failing
            || tree.phases.iter().any(|p| !p.rollback && p.status == Node::Failed)
            || tree.activities.iter().any(Act::fails_release)
        {
            let ran_rollback = rollbacks.iter().any(|p| p.status != Node::Skipped);
            return if ran_rollback && rollbacks.iter().all(|p| p.status == Node::Success) { Status::RolledBack } else { Status::Failed };
        }
        if main_done {
            let partial = tree
                .activities
                .iter()
                .any(|a| a.status == Node::Ignored || (a.status == Node::Failed && a.on_failure == OnFailure::Ignore));
            return if partial { Status::PartialSuccess } else { Status::Success };
        }
    }
    if moving {
        Status::Running
    } else if person {
        Status::OnHold
    } else {
        Status::Running
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
