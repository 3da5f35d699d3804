//! Dependency graphs (phases on phases, activities on activities): acyclic, ordered, layered.

use std::collections::{BTreeMap, HashMap};

/// A dependency cycle, as the path that closes it: `["build", "test", "build"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<String>);

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" → "))
    }
}

/// Nodes in their given order, each with the nodes it depends on (unknown ones ignored here;
/// validation reports them separately).
pub fn topological_order(nodes: &[(String, Vec<String>)]) -> Result<Vec<String>, Cycle> {
    if let Some(cycle) = find_cycle(nodes) {
        return Err(cycle);
    }
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, (k, _))| (k.as_str(), i)).collect();
    let mut remaining: Vec<usize> = nodes.iter().map(|(_, deps)| deps.iter().filter(|d| index.contains_key(d.as_str())).count()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, (_, deps)) in nodes.iter().enumerate() {
        for d in deps {
            if let Some(&j) = index.get(d.as_str()) {
                dependents[j].push(i);
            }
        }
    }
    // Kahn's algorithm, always taking the earliest ready node: stable, definition order first.
    let mut ready: std::collections::BTreeSet<usize> = (0..nodes.len()).filter(|&i| remaining[i] == 0).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(&i) = ready.iter().next() {
        ready.remove(&i);
        order.push(nodes[i].0.clone());
        for &j in &dependents[i] {
            remaining[j] -= 1;
            if remaining[j] == 0 {
                ready.insert(j);
            }
        }
    }
    Ok(order)
}

/// The first cycle found (depth-first, in definition order), closed on its start.
pub fn find_cycle(nodes: &[(String, Vec<String>)]) -> Option<Cycle> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, (k, _))| (k.as_str(), i)).collect();
    let mut marks = vec![Mark::New; nodes.len()];
    let mut path: Vec<usize> = Vec::new();

    fn visit(
        i: usize,
        nodes: &[(String, Vec<String>)],
        index: &HashMap<&str, usize>,
        marks: &mut Vec<Mark>,
        path: &mut Vec<usize>,
    ) -> Option<Cycle> {
        marks[i] = Mark::Open;
        path.push(i);
        for dep in &nodes[i].1 {
            let Some(&j) = index.get(dep.as_str()) else { continue };
            match marks[j] {
                Mark::Open => {
                    let start = path.iter().position(|&p| p == j).unwrap_or(0);
                    let mut names: Vec<String> = path[start..].iter().map(|&p| nodes[p].0.clone()).collect();
                    // Written in the direction of the dependency: `a → b` means a depends on b.
                    names.push(nodes[j].0.clone());
                    return Some(Cycle(names));
                }
                Mark::New => {
                    if let Some(c) = visit(j, nodes, index, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[i] = Mark::Done;
        None
    }

    for i in 0..nodes.len() {
        if marks[i] == Mark::New {
            if let Some(c) = visit(i, nodes, &index, &mut marks, &mut path) {
                return Some(c);
            }
        }
    }
    None
}

/// Depth of each node: 0 without dependencies, else one more than its deepest dependency.
pub fn depths(nodes: &[(String, Vec<String>)]) -> BTreeMap<String, usize> {
    let mut depth: BTreeMap<String, usize> = BTreeMap::new();
    let order = topological_order(nodes).unwrap_or_else(|_| nodes.iter().map(|(k, _)| k.clone()).collect());
    let deps: HashMap<&str, &Vec<String>> = nodes.iter().map(|(k, d)| (k.as_str(), d)).collect();
    for key in order {
        let d = deps.get(key.as_str()).map(|ds| ds.iter().filter_map(|x| depth.get(x)).map(|x| x + 1).max().unwrap_or(0)).unwrap_or(0);
        depth.insert(key, d);
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn graph(edges: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        edges.iter().map(|(k, d)| (k.to_string(), d.iter().map(|s| s.to_string()).collect())).collect()
    }

    #[test]
    fn names_the_cycle() {
        let g = graph(&[("build", &["test"]), ("test", &["build"])]);
        assert_eq!(find_cycle(&g).unwrap().to_string(), "build → test → build");
        let g = graph(&[("a", &["a"])]);
        assert_eq!(find_cycle(&g).unwrap().to_string(), "a → a");
        let g = graph(&[("a", &[]), ("b", &["a"]), ("c", &["b", "d"]), ("d", &["c"])]);
        assert_eq!(find_cycle(&g).unwrap().to_string(), "c → d → c");
    }

    #[test]
    fn orders_and_layers() {
        let g = graph(&[("deploy", &["qa"]), ("build", &[]), ("qa", &["build"]), ("docs", &[])]);
        assert_eq!(topological_order(&g).unwrap(), ["build", "qa", "deploy", "docs"]);
        let d = depths(&g);
        assert_eq!((d["build"], d["qa"], d["deploy"], d["docs"]), (0, 1, 2, 0));
    }

    /// A random DAG: node i may only depend on nodes with a smaller index.
    fn dag() -> impl Strategy<Value = Vec<(String, Vec<String>)>> {
        (1usize..25).prop_flat_map(|n| {
            proptest::collection::vec(proptest::collection::vec(any::<prop::sample::Index>(), 0..4), n).prop_map(move |choices| {
                choices
                    .into_iter()
                    .enumerate()
                    .map(|(i, picks)| {
                        let deps = if i == 0 { Vec::new() } else { picks.iter().map(|p| format!("n{}", p.index(i))).collect() };
                        (format!("n{i}"), deps)
                    })
                    .collect::<Vec<_>>()
            })
        })
    }

    proptest! {
        #[test]
        fn random_dags_are_accepted_and_the_order_respects_every_edge(mut g in dag(), seed in any::<u64>()) {
            // Shuffle the listing so the order is not simply the construction order.
            let n = g.len();
            for i in (1..n).rev() {
                let j = ((seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64)) % (i as u64 + 1)) as usize;
                g.swap(i, j);
            }
            let order = topological_order(&g).expect("a DAG has an order");
            prop_assert_eq!(order.len(), n);
            let pos: HashMap<&str, usize> = order.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
            for (node, deps) in &g {
                for d in deps {
                    prop_assert!(pos[d.as_str()] < pos[node.as_str()], "{} must come after {}", node, d);
                }
            }
        }

        #[test]
        fn a_back_edge_makes_a_cycle_that_is_refused(g in dag(), pick in any::<prop::sample::Index>()) {
            // Add an edge from the first node to one that (transitively) depends on it, or itself.
            let mut g = g;
            let target = pick.index(g.len());
            let target_name = g[target].0.clone();
            // n0 depends on target; target reaches n0 if target == 0 or target depends on n0's descendants.
            let reaches_n0 = |g: &Vec<(String, Vec<String>)>| -> bool {
                let mut stack = vec![target_name.clone()];
                let mut seen = std::collections::HashSet::new();
                while let Some(k) = stack.pop() {
                    if k == "n0" { return true; }
                    if !seen.insert(k.clone()) { continue; }
                    if let Some((_, deps)) = g.iter().find(|(n, _)| *n == k) { stack.extend(deps.iter().cloned()); }
                }
                false
            };
            let cyclic = reaches_n0(&g);
            g[0].1.push(target_name.clone());
            let result = topological_order(&g);
            prop_assert_eq!(result.is_err(), cyclic);
            if let Err(cycle) = result {
                prop_assert_eq!(cycle.0.first(), cycle.0.last());
                // Every step of the named cycle is a real edge.
                for pair in cycle.0.windows(2) {
                    let deps = &g.iter().find(|(n, _)| *n == pair[0]).unwrap().1;
                    prop_assert!(deps.contains(&pair[1]));
                }
            }
        }
    }
}
