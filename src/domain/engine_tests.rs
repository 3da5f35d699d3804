//! Unit and property tests of the engine's pure rules.
use super::*;
use chrono::TimeZone;
use proptest::prelude::*;

fn act(phase: &str, key: &str, kind: ActivityKind, status: Node) -> Act {
    Act {
        phase: phase.into(),
        key: key.into(),
        kind,
        status,
        depends_on: vec![],
        critical: true,
        on_failure: OnFailure::Manual,
        wake_at: None,
        deadline: None,
        fan_of: None,
        max_parallel: None,
        retry_start: false,
    }
}

/// A fan-out activity with its instances (as the worker makes them when it starts).
fn fan_out(phase: &str, key: &str, max_parallel: usize, items: usize) -> Vec<Act> {
    let mut acts = vec![Act { max_parallel: Some(max_parallel), ..act(phase, key, ActivityKind::Webhook, Node::NotStarted) }];
    for i in 0..items {
        acts.push(Act { fan_of: Some(key.into()), ..act(phase, &format!("{key}[s{i:02}]"), ActivityKind::Webhook, Node::NotStarted) });
    }
    acts
}

fn running_instances(tree: &Tree) -> usize {
    tree.activities.iter().filter(|a| a.fan_of.is_some() && matches!(a.status, Node::Running | Node::Waiting)).count()
}

#[test]
fn a_fan_out_runs_at_most_max_parallel_instances_and_finishes_with_them() {
    let mut activities = fan_out("deploy", "d", 4, 12);
    activities.push(Act { depends_on: vec!["d".into()], ..act("deploy", "verify", ActivityKind::Manual, Node::NotStarted) });
    let mut tree = Tree { phases: vec![phase("deploy", &[], Node::NotStarted)], activities, failing: false };
    run(&mut tree, t0());
    assert_eq!(tree.activities[0].status, Node::Running);
    assert_eq!(running_instances(&tree), 4, "four at once");
    let mut finished = 0;
    while finished < 12 {
        let next = tree.activities.iter().position(|a| a.fan_of.is_some() && a.status == Node::Running).unwrap();
        tree.activities[next].status = Node::Success;
        finished += 1;
        run(&mut tree, t0());
        assert!(running_instances(&tree) <= 4);
        assert_eq!(tree.activities[13].status == Node::NotStarted, finished < 12, "its dependant waits for every instance");
    }
    assert_eq!(tree.activities[0].status, Node::Success);
}

#[test]
fn fan_out_items_are_list_items_or_map_keys_in_order() {
    use serde_json::json;
    let texts = |v| fan_out_items(&v).unwrap().into_iter().map(|i| i.text).collect::<Vec<_>>();
    assert_eq!(texts(json!(["b", "a", 3])), ["b", "a", "3"]);
    assert_eq!(texts(json!({"web": "1.0", "api": "2.0"})), ["api", "web"]);
    assert_eq!(fan_out_items(&json!({"api": "2.0"})).unwrap()[0].value, Some(json!("2.0")));
    assert!(texts(json!([])).is_empty());
    assert!(fan_out_items(&json!(["a", "a"])).unwrap_err().contains("twice"));
    assert!(fan_out_items(&json!([{"x": 1}])).unwrap_err().contains("neither text"));
    assert!(fan_out_items(&json!("a, b")).unwrap_err().contains("neither a list"));
    assert_eq!(instance_key("deploy", "payment-service"), "deploy[payment-service]");
}

#[test]
fn a_held_instance_holds_its_activity_and_an_ignored_one_makes_it_partial() {
    let mut tree = Tree { phases: vec![phase("p", &[], Node::NotStarted)], activities: fan_out("p", "d", 10, 3), failing: false };
    run(&mut tree, t0());
    tree.activities[1].status = Node::Success;
    tree.activities[2].status = Node::OnHold;
    run(&mut tree, t0());
    assert_eq!(tree.activities[0].status, Node::Running, "one still runs");
    tree.activities[3].status = Node::Success;
    run(&mut tree, t0());
    assert_eq!(tree.activities[0].status, Node::OnHold, "only the held one is left");
    assert_eq!(rollup(&tree), Status::OnHold);
    tree.activities[2].status = Node::Ignored;
    run(&mut tree, t0());
    assert_eq!(tree.activities[0].status, Node::Success);
    assert_eq!(rollup(&tree), Status::PartialSuccess);
}

fn phase(key: &str, deps: &[&str], status: Node) -> Phase {
    Phase { key: key.into(), status, depends_on: deps.iter().map(|d| d.to_string()).collect(), rollback: false, not_before: None }
}

fn run(tree: &mut Tree, now: DateTime<Utc>) {
    for _ in 0..100 {
        let changes = next_changes(tree, now);
        if changes.is_empty() {
            return;
        }
        for c in &changes {
            tree.apply(c);
        }
    }
    panic!("did not settle");
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap()
}

#[test]
fn phases_in_sequence_with_parallel_activities() {
    let mut tree = Tree {
        phases: vec![phase("one", &[], Node::NotStarted), phase("two", &["one"], Node::NotStarted)],
        activities: vec![
            act("one", "a", ActivityKind::Manual, Node::NotStarted),
            act("one", "b", ActivityKind::Manual, Node::NotStarted),
            act("two", "approve", ActivityKind::Approval, Node::NotStarted),
        ],
        failing: false,
    };
    run(&mut tree, t0());
    assert_eq!(tree.activities[0].status, Node::Running);
    assert_eq!(tree.activities[1].status, Node::Running, "independent activities run in parallel");
    assert_eq!(tree.activities[2].status, Node::NotStarted);
    assert_eq!(rollup(&tree), Status::OnHold, "only people can move it");
    tree.activities[0].status = Node::Success;
    tree.activities[1].status = Node::Success;
    run(&mut tree, t0());
    assert_eq!(tree.phases[0].status, Node::Success);
    assert_eq!(tree.activities[2].status, Node::Running);
    tree.activities[2].status = Node::Success;
    run(&mut tree, t0());
    assert_eq!(rollup(&tree), Status::Success);
}

#[test]
fn not_before_waits_for_its_time() {
    let later = t0() + chrono::TimeDelta::hours(3);
    let mut tree = Tree {
        phases: vec![Phase { not_before: Some(later), ..phase("p", &[], Node::NotStarted) }],
        activities: vec![act("p", "a", ActivityKind::Manual, Node::NotStarted)],
        failing: false,
    };
    run(&mut tree, t0());
    assert_eq!(tree.phases[0].status, Node::Waiting);
    assert_eq!(next_wake(&tree), Some(later));
    assert_eq!(rollup(&tree), Status::Running, "waiting on time is running");
    run(&mut tree, later);
    assert_eq!(tree.phases[0].status, Node::Running);
}

#[test]
fn a_failure_runs_the_rollback_and_ends_rolled_back() {
    let mut rollback = phase("rollback", &[], Node::NotStarted);
    rollback.rollback = true;
    let mut failing = act("p", "deploy", ActivityKind::Manual, Node::Failed);
    failing.on_failure = OnFailure::Fail;
    let mut tree = Tree {
        phases: vec![phase("p", &[], Node::Running), phase("q", &["p"], Node::NotStarted), rollback],
        activities: vec![
            failing,
            act("q", "x", ActivityKind::Manual, Node::NotStarted),
            act("rollback", "revert", ActivityKind::Manual, Node::NotStarted),
        ],
        failing: false,
    };
    run(&mut tree, t0());
    assert!(tree.failing);
    assert_eq!(tree.phases[1].status, Node::Skipped);
    assert_eq!(tree.activities[2].status, Node::Running, "the rollback runs");
    tree.activities[2].status = Node::Success;
    run(&mut tree, t0());
    assert_eq!(rollup(&tree), Status::RolledBack);
}

#[test]
fn ignored_failures_end_partial_and_rollbacks_are_skipped() {
    let mut rollback = phase("rollback", &[], Node::NotStarted);
    rollback.rollback = true;
    let mut optional = act("p", "docs", ActivityKind::Manual, Node::Failed);
    optional.on_failure = OnFailure::Ignore;
    optional.critical = false;
    let mut tree = Tree {
        phases: vec![phase("p", &[], Node::Running), rollback],
        activities: vec![
            optional,
            act("p", "main", ActivityKind::Manual, Node::Success),
            act("rollback", "revert", ActivityKind::Manual, Node::NotStarted),
        ],
        failing: false,
    };
    run(&mut tree, t0());
    assert_eq!(tree.phases[1].status, Node::Skipped);
    assert_eq!(rollup(&tree), Status::PartialSuccess);
}

fn node() -> impl Strategy<Value = Node> {
    prop::sample::select(Node::ALL.to_vec())
}

fn kind() -> impl Strategy<Value = ActivityKind> {
    prop::sample::select(ActivityKind::ALL.to_vec())
}

fn on_failure() -> impl Strategy<Value = OnFailure> {
    prop::sample::select(vec![OnFailure::Manual, OnFailure::Fail, OnFailure::Ignore])
}

fn tree() -> impl Strategy<Value = Tree> {
    let phases = proptest::collection::vec((node(), any::<bool>()), 1..5);
    let acts = proptest::collection::vec((0usize..5, kind(), node(), on_failure()), 1..12);
    (phases, acts, any::<bool>()).prop_map(|(phases, acts, failing)| {
        let n = phases.len();
        let phases: Vec<Phase> = phases
            .into_iter()
            .enumerate()
            .map(|(i, (status, rollback))| Phase {
                key: format!("p{i}"),
                status,
                depends_on: vec![],
                rollback: rollback && i > 0,
                not_before: None,
            })
            .collect();
        let activities = acts
            .into_iter()
            .enumerate()
            .map(|(i, (p, kind, status, on_failure))| Act {
                phase: format!("p{}", p % n),
                key: format!("a{i}"),
                kind,
                status,
                depends_on: vec![],
                critical: on_failure != OnFailure::Ignore,
                on_failure,
                wake_at: None,
                deadline: None,
                fan_of: None,
                max_parallel: None,
                retry_start: false,
            })
            .collect();
        Tree { phases, activities, failing }
    })
}

/// A tree with one fan-out activity whose instances are in any state.
fn fan_out_tree() -> impl Strategy<Value = (Tree, usize)> {
    let instances = proptest::collection::vec((node(), on_failure()), 0..16);
    (tree(), instances, 1usize..6, node()).prop_map(|(mut t, instances, max_parallel, parent)| {
        let phase = t.phases.iter().find(|p| !p.rollback).map(|p| p.key.clone()).unwrap_or_else(|| "p0".into());
        t.activities.push(Act { max_parallel: Some(max_parallel), status: parent, ..act(&phase, "fan", ActivityKind::Webhook, parent) });
        for (i, (status, on_failure)) in instances.into_iter().enumerate() {
            t.activities.push(Act {
                fan_of: Some("fan".into()),
                on_failure,
                critical: on_failure != OnFailure::Ignore,
                ..act(&phase, &format!("fan[i{i:02}]"), ActivityKind::Webhook, status)
            });
        }
        (t, max_parallel)
    })
}

#[test]
fn a_timeout_ends_an_activity_in_progress_at_its_deadline_not_before() {
    let deadline = t0() + chrono::TimeDelta::minutes(2);
    let mut manual = act("p", "a", ActivityKind::Manual, Node::Running);
    manual.deadline = Some(deadline);
    assert!(!manual.timed_out(deadline - chrono::TimeDelta::seconds(1)));
    assert!(manual.timed_out(deadline));
    manual.status = Node::OnHold;
    assert!(manual.timed_out(deadline), "a hold is still in progress");
    manual.status = Node::Success;
    assert!(!manual.timed_out(deadline + chrono::TimeDelta::hours(1)), "a finished activity never times out");

    let mut wait = act("p", "w", ActivityKind::Wait, Node::Waiting);
    wait.deadline = Some(deadline);
    wait.wake_at = Some(deadline);
    assert!(!wait.timed_out(deadline), "a wait due by its deadline ends normally");
    wait.wake_at = Some(deadline + chrono::TimeDelta::seconds(1));
    assert!(wait.timed_out(deadline));

    let tree = Tree { phases: vec![phase("p", &[], Node::Running)], activities: vec![manual_running(deadline)], failing: false };
    assert_eq!(next_wake(&tree), Some(deadline), "the engine looks again at the deadline");
}

fn manual_running(deadline: DateTime<Utc>) -> Act {
    Act { deadline: Some(deadline), ..act("p", "a", ActivityKind::Manual, Node::Running) }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn never_success_with_an_unignored_critical_failure(t in tree()) {
        let status = rollup(&t);
        if t.activities.iter().any(|a| a.critical && a.fails_release()) {
            prop_assert!(!matches!(status, Status::Success | Status::PartialSuccess), "{status:?}");
        }
    }

    #[test]
    fn moving_means_running_and_only_people_means_on_hold(t in tree()) {
        let status = rollup(&t);
        if status.is_finished() { return Ok(()); }
        let moving = t.activities.iter().any(Act::moves_by_itself) || t.phases.iter().any(|p| p.status == Node::Waiting);
        let person = t.activities.iter().any(Act::waits_on_person);
        if moving { prop_assert_eq!(status, Status::Running); }
        if !moving && person { prop_assert_eq!(status, Status::OnHold); }
        if status == Status::OnHold { prop_assert!(person && !moving); }
    }

    #[test]
    fn skipped_rollback_phases_never_change_the_outcome(t in tree()) {
        let mut with = t.clone();
        let mut without = t.clone();
        for p in with.phases.iter_mut().filter(|p| p.rollback) { p.status = Node::Skipped; }
        for a in with.activities.iter_mut() {
            if with.phases.iter().any(|p| p.rollback && p.key == a.phase) { a.status = Node::Skipped; }
        }
        let rollback_keys: Vec<String> = without.phases.iter().filter(|p| p.rollback).map(|p| p.key.clone()).collect();
        without.phases.retain(|p| !p.rollback);
        without.activities.retain(|a| !rollback_keys.contains(&a.phase));
        prop_assume!(!without.phases.is_empty() && !without.activities.is_empty());
        with.failing = false;
        without.failing = false;
        prop_assert_eq!(rollup(&with), rollup(&without));
    }

    #[test]
    fn a_fan_out_never_starts_more_than_max_parallel_and_follows_its_instances((t, max_parallel) in fan_out_tree()) {
        let mut t = t;
        let active = |t: &Tree| t.activities.iter().filter(|a| a.fan_of.is_some() && matches!(a.status, Node::Running | Node::Waiting)).count();
        let before = active(&t);
        let was_finished = t.activities.iter().any(|a| a.key == "fan" && a.status.is_finished());
        for _ in 0..200 {
            let changes = next_changes(&t, t0());
            if changes.is_empty() { break; }
            for c in &changes { t.apply(c); }
            prop_assert!(active(&t) <= before.max(max_parallel), "{} instances run at once", active(&t));
        }
        let parent = t.activities.iter().find(|a| a.key == "fan").unwrap().clone();
        let instances: Vec<&Act> = t.activities.iter().filter(|a| a.fan_of.is_some()).collect();
        if parent.status.is_finished() && !was_finished && !t.failing && !instances.is_empty() {
            prop_assert!(instances.iter().all(|i| i.status.is_finished()), "finished before its instances");
            if parent.status == Node::Success { prop_assert!(instances.iter().all(|i| i.done())); }
        }
    }

    #[test]
    fn the_engine_always_settles_with_a_fan_out((t, _) in fan_out_tree()) {
        let mut t = t;
        for p in t.phases.iter_mut() { if p.status == Node::Waiting { p.not_before = None; } }
        for _ in 0..200 {
            let changes = next_changes(&t, t0());
            if changes.is_empty() { return Ok(()); }
            for c in &changes { t.apply(c); }
        }
        prop_assert!(false, "no fixpoint: {:?}", next_changes(&t, t0()));
    }

    #[test]
    fn the_engine_always_settles(t in tree()) {
        let mut t = t;
        for p in t.phases.iter_mut() { if p.status == Node::Waiting { p.not_before = None; } }
        for _ in 0..200 {
            let changes = next_changes(&t, t0());
            if changes.is_empty() { return Ok(()); }
            for c in &changes { t.apply(c); }
        }
        prop_assert!(false, "no fixpoint: {:?}", next_changes(&t, t0()));
    }
}
