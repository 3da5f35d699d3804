//! The release page's pictures, laid out here and drawn as SVG by the template: the phase graph
//! (columns by dependency depth, arrows from each dependency) and the timeline of the window
//! with each phase's actual start and end.

use chrono::{DateTime, Utc};

use super::process::graph::depths;

pub const NODE_W: i32 = 170;
pub const NODE_H: i32 = 46;
const GAP_X: i32 = 48;
const GAP_Y: i32 = 18;
const MARGIN: i32 = 8;

/// One phase as the pictures need it.
#[derive(Debug, Clone)]
pub struct PhaseShape {
    pub key: String,
    pub name: String,
    pub status: String,
    pub depends_on: Vec<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GraphNode {
    pub key: String,
    pub name: String,
    pub status: String,
    pub x: i32,
    pub y: i32,
    /// Running, waiting or held: where the release is now.
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GraphEdge {
    pub from: String,
    pub to: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PhaseGraph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
    pub width: i32,
    pub height: i32,
}

fn is_current(status: &str) -> bool {
    matches!(status, "Running" | "Waiting" | "OnHold")
}

/// Phases in columns by dependency depth (definition order within a column), with an edge from
/// each dependency's right side to its dependent's left side.
pub fn phase_graph(phases: &[PhaseShape]) -> PhaseGraph {
    let nodes_in: Vec<(String, Vec<String>)> = phases.iter().map(|p| (p.key.clone(), p.depends_on.clone())).collect();
    let depth = depths(&nodes_in);
    let mut rows_used: Vec<i32> = Vec::new();
    let mut nodes = Vec::new();
    for p in phases {
        let column = depth.get(&p.key).copied().unwrap_or(0);
        if rows_used.len() <= column {
            rows_used.resize(column + 1, 0);
        }
        let row = rows_used[column];
        rows_used[column] += 1;
        nodes.push(GraphNode {
            key: p.key.clone(),
            name: p.name.clone(),
            status: p.status.clone(),
            x: MARGIN + column as i32 * (NODE_W + GAP_X),
            y: MARGIN + row * (NODE_H + GAP_Y),
            current: is_current(&p.status),
        });
    }
    let mut edges = Vec::new();
    for p in phases {
        let Some(to) = nodes.iter().find(|n| n.key == p.key) else { continue };
        for d in &p.depends_on {
            let Some(from) = nodes.iter().find(|n| &n.key == d) else { continue };
            let (x1, y1) = (from.x + NODE_W, from.y + NODE_H / 2);
            let (x2, y2) = (to.x, to.y + NODE_H / 2);
            let mid = (x1 + x2) / 2;
            edges.push(GraphEdge { from: d.clone(), to: p.key.clone(), path: format!("M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}") });
        }
    }
    let columns = rows_used.len().max(1) as i32;
    let rows = rows_used.iter().copied().max().unwrap_or(1).max(1);
    PhaseGraph {
        nodes,
        edges,
        width: 2 * MARGIN + columns * NODE_W + (columns - 1) * GAP_X,
        height: 2 * MARGIN + rows * NODE_H + (rows - 1) * GAP_Y,
    }
}

/// One phase's bar on the timeline, in per mille of the window's width.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub key: String,
    pub name: String,
    pub status: String,
    pub left: i32,
    pub width: i32,
    pub started: bool,
}

/// The window the timeline spans: the schedule, widened to what actually ran (and to now while
/// something runs); `None` before anything has a time.
pub fn window(
    schedule: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    phases: &[PhaseShape],
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let running = phases.iter().any(|p| p.started_at.is_some() && p.finished_at.is_none());
    let starts = phases.iter().filter_map(|p| p.started_at).chain(schedule.0);
    let ends = phases.iter().filter_map(|p| p.finished_at).chain(schedule.1).chain(running.then_some(now));
    let start = starts.min()?;
    let end = ends.max().unwrap_or(now).max(start + chrono::TimeDelta::minutes(1));
    Some((start, end))
}

/// Each phase's actual start and end within the window (a running phase reaches `now`).
pub fn timeline(window: (DateTime<Utc>, DateTime<Utc>), phases: &[PhaseShape], now: DateTime<Utc>) -> Vec<Bar> {
    let (from, to) = window;
    let span = (to - from).num_seconds().max(1) as f64;
    let at = |t: DateTime<Utc>| (((t - from).num_seconds() as f64 / span) * 1000.0).round().clamp(0.0, 1000.0) as i32;
    phases
        .iter()
        .map(|p| {
            let (left, right) = match (p.started_at, p.finished_at) {
                (Some(s), Some(f)) => (at(s), at(f)),
                (Some(s), None) => (at(s), at(now.min(to))),
                _ => (0, 0),
            };
            // A phase that just started still shows a sliver, inside the track.
            let width = (right - left).max(if p.started_at.is_some() { 4 } else { 0 });
            Bar {
                key: p.key.clone(),
                name: p.name.clone(),
                status: p.status.clone(),
                left: left.min(1000 - width),
                width,
                started: p.started_at.is_some(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn shape(key: &str, deps: &[&str], status: &str) -> PhaseShape {
        PhaseShape {
            key: key.into(),
            name: key.to_uppercase(),
            status: status.into(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn phases_sit_in_columns_by_depth_with_an_edge_per_dependency() {
        let g = phase_graph(&[
            shape("build", &[], "Success"),
            shape("qa", &["build"], "Running"),
            shape("perf", &["build"], "Waiting"),
            shape("prod", &["qa", "perf"], "NotStarted"),
        ]);
        let at = |k: &str| g.nodes.iter().find(|n| n.key == k).map(|n| (n.x, n.y)).unwrap();
        assert_eq!(at("build").0, at("build").0);
        assert!(at("qa").0 > at("build").0 && at("qa").0 == at("perf").0 && at("prod").0 > at("qa").0);
        assert!(at("perf").1 > at("qa").1, "a second phase of a column goes below");
        assert_eq!(g.edges.len(), 4);
        assert_eq!(g.nodes.iter().filter(|n| n.current).map(|n| n.key.as_str()).collect::<Vec<_>>(), ["qa", "perf"]);
        assert!(g.width >= 3 * NODE_W && g.height >= 2 * NODE_H);
    }

    #[test]
    fn the_timeline_places_actual_starts_and_ends_in_the_window() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap();
        let mut a = shape("a", &[], "Success");
        a.started_at = Some(t0);
        a.finished_at = Some(t0 + chrono::TimeDelta::hours(1));
        let mut b = shape("b", &["a"], "Running");
        b.started_at = Some(t0 + chrono::TimeDelta::hours(1));
        let c = shape("c", &["b"], "NotStarted");
        let phases = [a, b, c];
        let now = t0 + chrono::TimeDelta::hours(2);
        let w = window((Some(t0), Some(t0 + chrono::TimeDelta::hours(4))), &phases, now).unwrap();
        assert_eq!(w, (t0, t0 + chrono::TimeDelta::hours(4)));
        let bars = timeline(w, &phases, now);
        assert_eq!((bars[0].left, bars[0].width), (0, 250));
        assert_eq!((bars[1].left, bars[1].width), (250, 250), "running: up to now");
        assert!(!bars[2].started && bars[2].width == 0);
        assert_eq!(window((None, None), &[shape("x", &[], "NotStarted")], now), None);
    }
}
