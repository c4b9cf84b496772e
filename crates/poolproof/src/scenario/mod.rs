//! Scenario files: strict parsing of the YAML format (docs/scenario-format.md) into a typed,
//! validated [`Scenario`], with every error one located line.
//!
//! Pipeline: size and UTF-8 checks → `${VAR}` interpolation → serde_yaml with
//! `deny_unknown_fields` and field paths (serde_path_to_error) → semantic validation, whose
//! errors are located in the text afterwards ([`locate`]).

pub mod error;
pub mod files;
pub mod interpolate;
pub mod locate;
pub mod model;
pub mod schema;
pub mod target;
pub mod types;
pub mod validate;

use std::path::Path;

pub use error::{ErrorKind, ScenarioError};
pub use files::{expand_paths, load_all, LoadedScenario, PathsError};
pub use model::*;
pub use target::{ExternalApp, Target};
pub use types::{Duration, Percent, Secret, Template, TemplatePart, Threshold, ThresholdKind};

use interpolate::Interpolated;
use locate::Seg;

/// Largest scenario file accepted; real scenarios are a few KiB.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Reads, interpolates, parses and validates one scenario file. The error's origin is the path
/// as given.
pub fn load_file(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
    let (origin, bytes) = read_scenario_file(path.as_ref())?;
    load_bytes(&bytes, &origin)
}

/// The file's bytes and its origin (the path as given), refusing directories and files over
/// the size limit before reading them.
fn read_scenario_file(path: &Path) -> Result<(String, Vec<u8>), ScenarioError> {
    let origin = path.display().to_string();
    let io_error = |e: std::io::Error| {
        ScenarioError::new(
            &origin,
            ErrorKind::Io,
            format!("cannot read: {}", io_reason(&e)),
        )
    };
    let meta = std::fs::metadata(path).map_err(io_error)?;
    if meta.is_dir() {
        return Err(ScenarioError::new(
            &origin,
            ErrorKind::Io,
            "is a directory, not a scenario file",
        ));
    }
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(too_large(&origin, meta.len()));
    }
    let bytes = std::fs::read(path).map_err(io_error)?;
    Ok((origin, bytes))
}

/// Like [`load_str`] for raw bytes: checks size and UTF-8 first.
pub fn load_bytes(bytes: &[u8], origin: &str) -> Result<Scenario, ScenarioError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large(origin, bytes.len() as u64));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        // Safe: valid_up_to marks a UTF-8 boundary.
        let prefix = std::str::from_utf8(good).unwrap_or("");
        let line = prefix.matches('\n').count() + 1;
        let column = prefix
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        let byte = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
        ScenarioError::new(
            origin,
            ErrorKind::Syntax,
            format!("not UTF-8: byte 0x{byte:02x} (scenario files are UTF-8 text)"),
        )
        .at(Some((line, column)))
    })?;
    load_str(text, origin)
}

/// Interpolates, parses and validates scenario text; `origin` names it in errors.
pub fn load_str(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    load_str_with(text, origin, |name| std::env::var(name).ok())
}

/// Like [`load_str`] with `${VAR}` values from `lookup` instead of the process environment.
pub fn load_str_with(
    text: &str,
    origin: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Scenario, ScenarioError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(too_large(origin, text.len() as u64));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let blank = text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    });
    if blank {
        return Err(ScenarioError::new(
            origin,
            ErrorKind::Syntax,
            "empty scenario file: expected a mapping with at least name and load",
        )
        .at(Some((1, 1))));
    }
    let interp = interpolate::interpolate(text, lookup).map_err(|e| {
        ScenarioError::new(origin, ErrorKind::Interpolation, e.message).at(Some((e.line, e.column)))
    })?;
    parse(&interp, origin)
}

/// Reads a scenario for listing only: unset variables become empty and semantic validation is
/// skipped, so that e.g. an external scenario whose URL variable is unset still lists.
pub fn load_for_listing(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
    let (origin, bytes) = read_scenario_file(path.as_ref())?;
    let text = String::from_utf8_lossy(&bytes);
    let interp = interpolate::interpolate(&text, |n| Some(std::env::var(n).unwrap_or_default()))
        .map_err(|e| {
            ScenarioError::new(&origin, ErrorKind::Interpolation, e.message)
                .at(Some((e.line, e.column)))
        })?;
    deserialize(&interp, &origin)
}

fn deserialize(interp: &Interpolated, origin: &str) -> Result<Scenario, ScenarioError> {
    let de = serde_yaml::Deserializer::from_str(&interp.text);
    serde_path_to_error::deserialize(de).map_err(|e| yaml_error(interp, origin, e))
}

fn parse(interp: &Interpolated, origin: &str) -> Result<Scenario, ScenarioError> {
    let mut scenario = deserialize(interp, origin)?;
    scenario.target = validate::validate(&scenario).map_err(|issue| {
        let pos =
            locate::locate(&interp.text, &issue.path).map(|(l, c)| interp.source_position(l, c));
        ScenarioError::new(origin, ErrorKind::Semantic, interp.redact(&issue.message))
            .at(pos)
            .with_path(locate::path_string(&issue.path))
    })?;
    Ok(scenario)
}

fn yaml_error(
    interp: &Interpolated,
    origin: &str,
    e: serde_path_to_error::Error<serde_yaml::Error>,
) -> ScenarioError {
    let path: Vec<Seg> = e
        .path()
        .iter()
        .filter_map(|seg| match seg {
            serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
            serde_path_to_error::Segment::Unknown => None,
        })
        .collect();
    let path_str = locate::path_string(&path);
    let inner = e.into_inner();
    let mut message = bare_message(&inner, &path, interp);
    let mut pos = inner.location().map(|l| (l.line(), l.column()));
    if message.starts_with("repetition limit exceeded")
        || message.starts_with("recursion limit exceeded")
    {
        message = format!("{message}: too many or too deeply nested aliases (YAML alias bomb?)");
        if pos.is_none() {
            pos = first_alias(&interp.text);
        }
    }
    if message.starts_with("found character that cannot start any token")
        || message.contains("found a tab character")
    {
        if let Some((l, c)) = pos {
            let ch = interp
                .text
                .lines()
                .nth(l.saturating_sub(1))
                .and_then(|line| line.chars().nth(c.saturating_sub(1)));
            if ch == Some('\t') {
                message = "tab character: YAML indents with spaces only".into();
            }
        }
    }
    if let Some(field) = message
        .strip_prefix("duplicate field `")
        .and_then(|r| r.split('`').next())
    {
        // serde reports the enclosing mapping; point at the second occurrence of the key.
        if let Some(p) = duplicate_key_position(&interp.text, pos, field) {
            pos = Some(p);
        }
    }
    if message.starts_with("deserializing from YAML containing more than one document") {
        message = "more than one YAML document (---): a scenario file holds exactly one".into();
        pos = pos.or_else(|| second_document(&interp.text));
    }
    if message == "unknown anchor" {
        message =
            "unknown anchor: an alias (*name) refers to no anchor (&name) defined before it".into();
    }
    if message == "EOF while parsing a value" {
        message = "empty scenario document: expected a mapping with at least name and load".into();
    }
    if pos.is_none() && !path.is_empty() {
        pos = locate::locate(&interp.text, &path);
    }
    let kind = if is_syntax(&message) {
        ErrorKind::Syntax
    } else {
        ErrorKind::Schema
    };
    let pos = pos.map(|(l, c)| interp.source_position(l, c));
    // A syntax error belongs to the text, not to the field the parser was filling.
    let path_str = if kind == ErrorKind::Syntax {
        String::new()
    } else {
        path_str
    };
    ScenarioError::new(origin, kind, interp.redact(&message))
        .at(pos)
        .with_path(path_str)
}

/// The error text without serde_yaml's own path prefix and its first " at line L column C"
/// (the position we print in front); later positions (a syntax error's context) are mapped
/// back to the source and kept as " at L:C".
fn bare_message(e: &serde_yaml::Error, path: &[Seg], interp: &Interpolated) -> String {
    let mut s = e.to_string();
    let mut first = true;
    let mut from = 0;
    while let Some(i) = s[from..].find(" at line ").map(|i| i + from) {
        let rest = &s[i + " at line ".len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let Some(col) = rest[digits..].strip_prefix(" column ") else {
            from = i + 1;
            continue;
        };
        let cd = col.chars().take_while(char::is_ascii_digit).count();
        let end = i + " at line ".len() + digits + " column ".len() + cd;
        let replacement = if first {
            String::new()
        } else {
            let line: usize = rest[..digits].parse().unwrap_or(0);
            let column: usize = col[..cd].parse().unwrap_or(0);
            let (l, c) = interp.source_position(line, column);
            format!(" at {l}:{c}")
        };
        s.replace_range(i..end, &replacement);
        from = i + replacement.len();
        first = false;
    }
    // serde_yaml prefixes its own idea of the path (possibly an ancestor of ours).
    for n in (1..=path.len()).rev() {
        let prefix = format!("{}: ", locate::path_string(&path[..n]));
        if let Some(rest) = s.strip_prefix(&prefix) {
            s = rest.to_string();
            break;
        }
    }
    suggest(&s).unwrap_or(s)
}

/// Turns serde's "unknown variant/field `x`, expected one of `a`, `b`, …" into a short
/// "did you mean `a`?" when one candidate is close; None when none is.
fn suggest(message: &str) -> Option<String> {
    let (what, rest) = if let Some(r) = message.strip_prefix("unknown variant `") {
        ("value", r)
    } else {
        ("field", message.strip_prefix("unknown field `")?)
    };
    let (given, rest) = rest.split_once('`')?;
    let list = rest.split_once("expected one of ")?.1;
    let candidates: Vec<&str> = list.split(", ").map(|c| c.trim_matches('`')).collect();
    if given.chars().count() < 4 {
        // Too short for a meaningful guess (`=<` is as near `<` as `<=`): keep the full list.
        return Some(message.replacen("unknown variant", "unknown value", 1));
    }
    let (best, dist) = candidates
        .iter()
        .map(|c| (*c, edit_distance(given, c)))
        .min_by_key(|(_, d)| *d)?;
    let limit = (given.chars().count() / 3).clamp(1, 3);
    Some(if dist <= limit {
        format!("unknown {what} `{given}`; did you mean `{best}`?")
    } else {
        message.replacen("unknown variant", "unknown value", 1)
    })
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Line and column of the second document's `---` marker.
fn second_document(text: &str) -> Option<(usize, usize)> {
    let mut seen_content = false;
    for (l, line) in text.lines().enumerate() {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") {
            if seen_content {
                return Some((l + 1, 1));
            }
        } else if !t.trim_start().is_empty()
            && !t.trim_start().starts_with('#')
            && !t.starts_with('%')
        {
            seen_content = true;
        }
    }
    None
}

fn is_syntax(message: &str) -> bool {
    [
        "while scanning",
        "while parsing",
        "did not find expected",
        "found character",
        "mapping values are not allowed",
        "found unexpected",
        "could not find expected",
        "more than one YAML document",
        "tab character",
        "not UTF-8",
        "found undefined",
    ]
    .iter()
    .any(|p| message.contains(p))
}

fn first_alias(text: &str) -> Option<(usize, usize)> {
    for (l, line) in text.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        for (c, ch) in chars.iter().enumerate() {
            if *ch == '#' {
                break;
            }
            if *ch == '*'
                && (c == 0
                    || chars[c - 1].is_whitespace()
                    || matches!(chars[c - 1], '[' | ',' | '{'))
            {
                return Some((l + 1, c + 1));
            }
        }
    }
    None
}

/// Line/column of the second `field:` key at the indentation of the mapping at `start`.
fn duplicate_key_position(
    text: &str,
    start: Option<(usize, usize)>,
    field: &str,
) -> Option<(usize, usize)> {
    let (sl, sc) = start.unwrap_or((1, 1));
    let mut seen = 0;
    for (l, line) in text.lines().enumerate().skip(sl.saturating_sub(1)) {
        let trimmed = line.trim_start_matches([' ', '-']);
        let indent = line.len() - trimmed.len();
        let key = trimmed.strip_prefix(field).map(str::trim_start);
        if indent + 1 == sc && key.is_some_and(|r| r.starts_with(':')) {
            seen += 1;
            if seen == 2 {
                return Some((l + 1, line[..indent].chars().count() + 1));
            }
        }
    }
    None
}

fn too_large(origin: &str, len: u64) -> ScenarioError {
    ScenarioError::new(
        origin,
        ErrorKind::Syntax,
        format!("file is {len} bytes; scenario files are limited to {MAX_FILE_BYTES} bytes"),
    )
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOKE: &str = include_str!("../../../../scenarios/smoke.yaml");

    fn env(name: &str) -> Option<String> {
        match name {
            "USERS" => Some("many-many-users".into()),
            "TOKEN" => Some("tok-very-secret".into()),
            "URL" => Some("http://127.0.0.1:9".into()),
            _ => None,
        }
    }

    fn err(text: &str) -> String {
        match load_str_with(text, "t.yaml", env) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn shipped_smoke_parses_into_the_typed_model() {
        let s = match load_str_with(SMOKE, "smoke.yaml", env) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(s.name, "smoke");
        assert_eq!(s.load.duration, Duration::from_secs(25));
        assert!(s.load_time() <= std::time::Duration::from_secs(60));
        let p95 = s
            .slas
            .iter()
            .find(|x| x.metric == Metric::LatencyP95 && x.route.is_none());
        assert_eq!(
            p95.map(|x| x.threshold),
            Some(Threshold::Duration(Duration::from_millis(50)))
        );
        let respond = s
            .transaction("respond")
            .map(|t| (t.method, t.body.is_some()));
        assert_eq!(respond, Some((Method::Post, true)));
        for m in [
            Metric::LatencyP50,
            Metric::LatencyP99,
            Metric::LatencyMax,
            Metric::ErrorRate,
            Metric::Throughput,
            Metric::PoolEfficiency,
            Metric::PoolUtilization,
            Metric::AcquireWaitP95,
            Metric::HealthScore,
            Metric::ServerLatencyP95,
        ] {
            assert!(s.slas.iter().any(|x| x.metric == m), "smoke lacks {m}");
        }
    }

    #[test]
    fn positions_survive_interpolation_and_secrets_stay_hidden() {
        // `${USERS}` expands to 15 characters; the error must point at the `${` in the file.
        let e = err("name: x\nload:\n  users: ${USERS}\n  duration: 1s\n  transactions: [{name: a, path: /a}]\n");
        assert!(
            e.starts_with("t.yaml:3:10: load.users: invalid type: string \"${USERS}\""),
            "{e}"
        );
        assert!(!e.contains("many-many-users"), "{e}");
        // A field after a substitution on the same line keeps its original column.
        let e = err(
            "name: x\nload: {users: ${URL}, duration: 0s, transactions: [{name: a, path: /a}]}\n",
        );
        assert!(e.starts_with("t.yaml:2:"), "{e}");
        let e = err("name: x\nservices: {provider: external}\napp: {url: ${URL}, token: ${TOKEN}, instances: 0}\nload: {users: 1, duration: 1s, transactions: [{name: a, path: /a}]}\n");
        assert!(!e.contains("tok-very-secret"), "{e}");
    }

    #[test]
    fn external_token_is_a_secret() {
        let text = "name: x\nservices: {provider: external}\napp: {url: \"${URL}\", token: \"${TOKEN}\"}\nload: {users: 1, duration: 1s, transactions: [{name: a, path: /a}]}\n";
        let s = match load_str_with(text, "t.yaml", env) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            s.app.token.as_ref().map(Secret::expose),
            Some("tok-very-secret")
        );
        assert!(!format!("{s:?}").contains("tok-very-secret"));
        assert!(s.is_external());
    }

    #[test]
    fn arms_run_their_own_command_and_sources_default_by_app() {
        let text = "name: x\napp: {command: [/bin/true, a], ready: /up}\nload: {users: 2, duration: 1s, transactions: [{name: a, path: /a}]}\narms:\n  - {name: one}\n  - {name: two, command: [/bin/sh], port_env: HTTP_PORT}\n";
        let s = match load_str_with(text, "t.yaml", env) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            s.launch(s.arm("one")),
            Launch::Command {
                argv: vec!["/bin/true".into(), "a".into()],
                port_env: "PORT".into(),
                ready: "/up".into(),
            }
        );
        assert_eq!(
            s.launch(s.arm("two")),
            Launch::Command {
                argv: vec!["/bin/sh".into()],
                port_env: "HTTP_PORT".into(),
                ready: "/up".into(),
            }
        );
        assert_eq!(s.sources(), vec![Source::Prometheus]);
        let smoke = match load_str_with(SMOKE, "smoke.yaml", env) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            smoke.launch(None),
            Launch::PooledApp {
                ready: "/readyz".into()
            }
        );
        assert_eq!(smoke.sources(), vec![Source::PooledApp]);
    }

    /// The contract's example (docs/scenario-format.md) uses every key once; it must fit the
    /// model's shape (its field combinations are illustrative, so semantic checks are skipped).
    #[test]
    fn format_doc_example_fits_the_model() {
        let doc = include_str!("../../../../docs/scenario-format.md");
        let block = doc
            .split("```yaml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .unwrap_or_else(|| panic!("no yaml block in docs/scenario-format.md"));
        let interp = match interpolate::interpolate(block, |_| Some("http://127.0.0.1:9".into())) {
            Ok(i) => i,
            Err(e) => panic!("{e}"),
        };
        match deserialize(&interp, "docs/scenario-format.md") {
            Ok(s) => {
                assert_eq!(s.faults.first().map(|f| f.kind), Some(FaultKind::DbLatency));
                assert_eq!(s.arms.len(), 2);
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// Thousands of damaged variants of a real scenario: never a panic, always one line, and a
    /// position whenever the text is not empty.
    #[test]
    fn damaged_scenarios_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let bytes = SMOKE.as_bytes();
        let specials: &[&[u8]] = &[
            b"\t",
            b"&a ",
            b"*a",
            b"{",
            b"]",
            b"\"",
            b"'",
            b"- ",
            b": ",
            b"${",
            b"\xff",
            b"\n  ",
            b"-1",
            b"99999999999999999999",
            b"{{rand:",
            b"%",
            b"!!binary ",
        ];
        let mut errors = 0;
        for i in 0..3000 {
            let mut v = bytes.to_vec();
            match i % 4 {
                0 => v.truncate(rng.gen_range(0..v.len())),
                1 => {
                    let at = rng.gen_range(0..v.len());
                    let s = specials[rng.gen_range(0..specials.len())];
                    v.splice(at..at, s.iter().copied());
                }
                2 => {
                    let at = rng.gen_range(0..v.len());
                    let len = rng.gen_range(1..40).min(v.len() - at);
                    v.drain(at..at + len);
                }
                _ => {
                    let at = rng.gen_range(0..v.len());
                    v[at] = rng.gen();
                }
            }
            if let Err(e) = load_bytes(&v, "m.yaml") {
                errors += 1;
                let line = e.to_string();
                assert!(!line.contains('\n'), "{line}");
                if e.kind != ErrorKind::Io {
                    assert!(
                        e.position.is_some() || e.message.contains("more than one"),
                        "unlocated: {line}"
                    );
                }
            }
        }
        assert!(
            errors > 1000,
            "mutations should mostly break the scenario, {errors} did"
        );
    }
}
