//! No import circles between the workspace's source files. Every `crate::`, `super::`, `self::`
//! and child-module path in a crate's `src/` is read as an arrow from its file to the module
//! file it names; a set of files that reach each other fails the test, with the paths that tie
//! them. Data is meant to flow one way (scenario → plan → provider → app → load + faults →
//! observe → sla → report), and a circle is where that breaks first.
//!
//! The reading is lexical, not a compiler's: comments and string literals are skipped, a path
//! is a run of `ident::ident…` (with `{…}` groups), and it resolves to the longest prefix that
//! is a module file. A `super::` inside an inline `mod tests { … }` stays in its own file, and
//! a file's use of one of its ancestors (`super::X` in `sla/client.rs` naming `sla/mod.rs`) is
//! nesting, not an arrow: a circle is between modules that sit side by side.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Other,
}

/// Rust source as the tokens a path is made of; comments, strings and chars dropped.
fn lex(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let raw_string_at = |i: usize| -> Option<usize> {
        // r"…", r#"…"#, br"…": the number of hashes, if a raw string starts here.
        let mut j = i;
        if c.get(j) == Some(&'b') {
            j += 1;
        }
        if c.get(j) != Some(&'r') {
            return None;
        }
        j += 1;
        let mut hashes = 0;
        while c.get(j) == Some(&'#') {
            hashes += 1;
            j += 1;
        }
        (c.get(j) == Some(&'"')).then_some(hashes)
    };
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_at(i) {
            while c[i] != '"' {
                i += 1;
            }
            i += 1;
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while i < c.len() && !c[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
        } else if ch == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if ch == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a): only the first is skipped.
            if c.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(c[start..i].iter().collect()));
        } else {
            out.push(match ch {
                ':' if c.get(i + 1) == Some(&':') => {
                    i += 1;
                    Tok::PathSep
                }
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                ';' => Tok::Semi,
                _ => Tok::Other,
            });
            i += 1;
        }
    }
    out
}

/// The paths a run of tokens from `*at` spells: `a::b::c`, or `a::{b, c::d}` as two paths.
fn paths(toks: &[Tok], at: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    loop {
        match toks.get(*at) {
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                *at += 1;
            }
            Some(Tok::Open) => {
                *at += 1;
                loop {
                    match toks.get(*at) {
                        Some(Tok::Close) => {
                            *at += 1;
                            return;
                        }
                        Some(Tok::Comma) => *at += 1,
                        Some(Tok::Ident(_)) | Some(Tok::Open) => paths(toks, at, path.clone(), out),
                        _ => return,
                    }
                }
            }
            _ => break,
        }
        if toks.get(*at) == Some(&Tok::PathSep) {
            *at += 1;
        } else {
            break;
        }
    }
    out.push(path);
}

/// One crate's module files, by module path (`[]` is lib.rs).
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, files);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).expect("under src");
        let mut segs: Vec<String> = rel
            .iter()
            .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        // Binaries are crates of their own; they reach the library by its name, not `crate::`.
        if segs == ["main"] || segs.first().is_some_and(|s| s == "bin") {
            continue;
        }
        if segs.last().is_some_and(|s| s == "mod" || s == "lib") {
            segs.pop();
        }
        out.insert(segs, f);
    }
    out
}

/// Arrows between a crate's module files: (from, to) -> the paths that make the arrow.
fn arrows(src: &Path) -> BTreeMap<(PathBuf, PathBuf), BTreeSet<String>> {
    let mods = modules(src);
    let mut out: BTreeMap<(PathBuf, PathBuf), BTreeSet<String>> = BTreeMap::new();
    for (here, file) in &mods {
        let text = std::fs::read_to_string(file).expect("readable source");
        let toks = lex(&text);
        // Children declared with `mod name;` are reached by their bare name.
        let children: BTreeSet<&str> = toks
            .windows(3)
            .filter_map(|w| match w {
                [Tok::Ident(m), Tok::Ident(name), Tok::Semi] if m == "mod" => Some(name.as_str()),
                _ => None,
            })
            .collect();
        let mut depth = 0usize;
        let mut inline_mods: Vec<usize> = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            match &toks[i] {
                Tok::Open => depth += 1,
                Tok::Close => {
                    depth = depth.saturating_sub(1);
                    if inline_mods.last() == Some(&depth) {
                        inline_mods.pop();
                    }
                }
                Tok::Ident(m)
                    if m == "mod"
                        && matches!(toks.get(i + 1), Some(Tok::Ident(_)))
                        && toks.get(i + 2) == Some(&Tok::Open) =>
                {
                    inline_mods.push(depth);
                }
                Tok::Ident(first)
                    if toks.get(i + 1) == Some(&Tok::PathSep)
                        && (i == 0 || toks[i - 1] != Tok::PathSep) =>
                {
                    let base: Option<Vec<String>> = match first.as_str() {
                        "crate" => Some(Vec::new()),
                        "self" => Some(here.clone()),
                        "super" => None,
                        name if children.contains(name) => Some(here.clone()),
                        _ => {
                            i += 1;
                            continue;
                        }
                    };
                    let mut at = i;
                    let mut found = Vec::new();
                    let (prefix, start) = match base {
                        Some(b) if first == "crate" || first == "self" => (b, i + 2),
                        Some(b) => (b, i),
                        None => {
                            let mut ups = 0usize;
                            while matches!(toks.get(at), Some(Tok::Ident(s)) if s == "super")
                                && toks.get(at + 1) == Some(&Tok::PathSep)
                            {
                                ups += 1;
                                at += 2;
                            }
                            let ups = ups.saturating_sub(inline_mods.len());
                            if ups == 0 || ups > here.len() {
                                i = at;
                                continue;
                            }
                            (here[..here.len() - ups].to_vec(), at)
                        }
                    };
                    at = start;
                    paths(&toks, &mut at, prefix, &mut found);
                    for p in found {
                        let target = (0..=p.len())
                            .rev()
                            .find_map(|n| mods.get(&p[..n]).map(|f| (f, n)));
                        if let Some((to, n)) = target {
                            // A module's own files use their parent's items (`super::X`, the
                            // shared types a `mod.rs` defines): that is nesting, not an arrow.
                            let ancestor = n < here.len() && p[..n] == here[..n];
                            if to != file && !ancestor {
                                out.entry((file.clone(), to.clone()))
                                    .or_default()
                                    .insert(p[..(n + 1).min(p.len())].join("::"));
                            }
                        }
                    }
                    i = at.max(i + 1);
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
    out
}

/// Sets of two or more files that reach each other (Tarjan's strongly connected components).
fn circles(edges: &BTreeMap<(PathBuf, PathBuf), BTreeSet<String>>) -> Vec<Vec<PathBuf>> {
    let mut next: BTreeMap<&PathBuf, Vec<&PathBuf>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
        next.entry(b).or_default();
    }
    struct State<'a> {
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        out: Vec<Vec<PathBuf>>,
    }
    fn visit<'a>(
        v: &'a PathBuf,
        next: &BTreeMap<&'a PathBuf, Vec<&'a PathBuf>>,
        s: &mut State<'a>,
    ) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in &next[v] {
            if !s.index.contains_key(w) {
                visit(w, next, s);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in next.keys() {
        if !s.index.contains_key(v) {
            visit(v, &next, &mut s);
        }
    }
    s.out
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn check(krate: &str) {
    let src = workspace().join("crates").join(krate).join("src");
    let edges = arrows(&src);
    assert!(
        !edges.is_empty(),
        "{krate}: no imports read from {}",
        src.display()
    );
    let found = circles(&edges);
    let mut report = String::new();
    for comp in &found {
        report.push_str("circle:\n");
        for ((a, b), names) in &edges {
            if comp.contains(a) && comp.contains(b) {
                let rel = |p: &Path| p.strip_prefix(&src).unwrap_or(p).display().to_string();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                report.push_str(&format!(
                    "  {} -> {}: {}\n",
                    rel(a),
                    rel(b),
                    names.join(", ")
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "{krate}: import circles in src/\n{report}"
    );
}

#[test]
fn poolproof_has_no_import_circles() {
    check("poolproof");
}

#[test]
fn pooled_app_has_no_import_circles() {
    check("pooled-app");
}

#[test]
fn services_has_no_import_circles() {
    check("services");
}

#[test]
fn the_reader_sees_the_arrows_a_circle_is_made_of() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).expect("mkdir");
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").expect("write");
    std::fs::write(
        src.join("a/mod.rs"),
        "mod inner;\npub use inner::X;\npub struct Z;\n// crate::b::Nope in a comment\nconst S: &str = \"crate::b\";\n",
    )
    .expect("write");
    std::fs::write(
        src.join("a/inner.rs"),
        "use crate::{b::{self, Y}};\nuse super::Z;\npub struct X;\n#[cfg(test)]\nmod tests { use super::*; }\n",
    )
    .expect("write");
    std::fs::write(src.join("b.rs"), "pub struct Y;\nfn f(_: super::a::X) {}\n").expect("write");
    let edges = arrows(src);
    let pairs: BTreeSet<(String, String)> = edges
        .keys()
        .map(|(a, b)| {
            let rel = |p: &Path| p.strip_prefix(src).expect("inside").display().to_string();
            (rel(a), rel(b))
        })
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("a/mod.rs", "a/inner.rs"),
        ("a/inner.rs", "b.rs"),
        ("b.rs", "a/mod.rs"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(pairs, want, "{edges:?}");
    assert_eq!(circles(&edges).len(), 1);
}
