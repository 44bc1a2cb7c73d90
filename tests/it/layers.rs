//! The import graph runs one way: a module imports only modules in its own
//! layer or below, and no files import each other in a circle. The layers, from
//! the bottom (see `docs/ARCHITECTURE.md`):

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LAYERS: &[&[&str]] = &[
    &[
        "clock",
        "metrics",
        "health",
        "memory",
        "group_commit",
        "secret",
        "api_token",
        "git",
    ],
    &["scoring", "attribution", "github"],
    &["store"],
    &["config"],
    &["ledger"],
    &["digest"],
    &["notify"],
    &["chat"],
    &["jobs"],
    &["server"],
    &["dashboard"],
    &["app"],
    &["cli"],
    &["lib", "main"],
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` → `["a", "b"]`; `src/a/mod.rs` → `["a"]`.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The file a module path names: the longest prefix that is a file.
fn resolve(parts: &[String]) -> Option<PathBuf> {
    let mut found = None;
    for i in 1..=parts.len() {
        let base = parts[..i].iter().fold(src(), |p, s| p.join(s));
        let (file, module) = (base.with_extension("rs"), base.join("mod.rs"));
        if file.is_file() {
            found = Some(file);
        } else if module.is_file() {
            found = Some(module);
        } else {
            break;
        }
    }
    found
}

/// The code of a file without its unit tests (they may use anything).
fn code_of(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Paths that start at `crate::` or `super::`, including those in `{…}` groups.
fn referenced_paths(code: &str, me: &[String]) -> Vec<Vec<String>> {
    let parent: Vec<String> = me[..me.len().saturating_sub(1)].to_vec();
    let mut paths = Vec::new();
    let bytes = code.as_bytes();
    for (root, base) in [("crate::", Vec::new()), ("super::", parent)] {
        let mut from = 0;
        while let Some(at) = code[from..].find(root) {
            let start = from + at;
            from = start + root.len();
            let before = start.checked_sub(1).map(|i| bytes[i] as char);
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &code[from..];
            let group = rest.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'));
            let head: Vec<String> = group
                .clone()
                .next()
                .unwrap_or_default()
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            let mut path = base.clone();
            path.extend(head.iter().cloned());
            paths.push(path.clone());
            // `crate::a::{b, c::d}`: each item of the group too.
            let after_head: usize = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            if rest[after_head..].starts_with('{') {
                let close = rest[after_head..].find('}').unwrap_or(0);
                for item in rest[after_head + 1..after_head + close].split(',') {
                    let mut item_path = path.clone();
                    item_path.extend(
                        item.trim()
                            .split("::")
                            .filter(|s| !s.is_empty() && *s != "self")
                            .map(str::to_string),
                    );
                    paths.push(item_path);
                }
            }
        }
    }
    paths
}

fn layer_of(file: &Path) -> usize {
    let top = module_path(file)
        .first()
        .cloned()
        .unwrap_or_else(|| "lib".to_string());
    LAYERS
        .iter()
        .position(|layer| layer.contains(&top.as_str()))
        .unwrap_or_else(|| {
            panic!("src/{top} is in no layer: add it to LAYERS and docs/ARCHITECTURE.md")
        })
}

fn import_graph() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in &files {
        let me = module_path(file);
        let targets = graph.entry(file.clone()).or_default();
        for path in referenced_paths(&code_of(file), &me) {
            if let Some(target) = resolve(&path)
                && &target != file
            {
                targets.insert(target);
            }
        }
    }
    graph
}

fn name(file: &Path) -> String {
    file.strip_prefix(src()).unwrap().display().to_string()
}

#[test]
fn imports_only_run_down_the_layers() {
    let graph = import_graph();
    let mut upward = Vec::new();
    for (file, targets) in &graph {
        for target in targets {
            if layer_of(target) > layer_of(file) {
                upward.push(format!("{} -> {}", name(file), name(target)));
            }
        }
    }
    assert!(upward.is_empty(), "imports that run back up: {upward:#?}");
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let graph = import_graph();
    // Tarjan's strongly connected components.
    struct Search<'g> {
        graph: &'g BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'g PathBuf, usize>,
        low: BTreeMap<&'g PathBuf, usize>,
        stack: Vec<&'g PathBuf>,
        circles: Vec<Vec<String>>,
    }
    impl<'g> Search<'g> {
        fn visit(&mut self, v: &'g PathBuf) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in &self.graph[v] {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(name(w));
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.circles.push(component);
                }
            }
        }
    }
    let mut search = Search {
        graph: &graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        circles: Vec::new(),
    };
    for file in graph.keys() {
        if !search.index.contains_key(file) {
            search.visit(file);
        }
    }
    assert!(
        search.circles.is_empty(),
        "import circles: {:#?}",
        search.circles
    );
}

#[test]
fn the_check_sees_imports() {
    // The checker itself: a known downward import is found, and a made-up
    // upward one would be flagged.
    let graph = import_graph();
    let server = src().join("server/signals.rs");
    assert!(graph[&server].contains(&src().join("server/access.rs")));
    assert!(graph[&src().join("app.rs")].contains(&src().join("dashboard/mod.rs")));
    assert!(layer_of(&src().join("dashboard/mod.rs")) > layer_of(&server));
    let paths = referenced_paths(
        "use crate::store::{Store, ledger::NewEntry};\nfoo(super::x::y)",
        &["jobs".into(), "reconcile".into()],
    );
    assert!(paths.contains(&vec!["store".into(), "ledger".into(), "NewEntry".into()]));
    assert!(paths.contains(&vec!["jobs".into(), "x".into(), "y".into()]));
}
