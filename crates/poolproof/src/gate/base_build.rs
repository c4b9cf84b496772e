//! pooled-app built from git for `poolproof gate`: resolving a git ref to a commit, building
//! that commit's pooled-app in a temporary `git worktree`, and keeping the binary in a cache
//! keyed by commit (`<target>/gate-cache/<commit>/pooled-app`), so a second gate against the
//! same base does not build again.
//!
//! Builds use the workspace's own cargo target directory (`CARGO_TARGET_DIR`, else
//! `<repo>/target`): cargo keys workspace crates by their path relative to the workspace
//! root, so the worktree's build reuses every compiled dependency and compiles only
//! pooled-app itself. Its binary is then copied into the cache before anything else builds
//! into that directory. The worktree is removed when its guard drops: after success, on
//! error, on Ctrl-C (the build is killed) and on panic.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::interrupt;

const APP_BIN: &str = "pooled-app";

/// Why pooled-app could not be had from git.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The current directory is not inside a git work tree (usage).
    #[error("{dir}: not inside a git repository (poolproof gate builds the base from git)")]
    NotARepo { dir: PathBuf },
    /// `--base` names no commit (usage).
    #[error("--base {git_ref}: no such commit, branch or tag in {repo}")]
    UnknownRef { git_ref: String, repo: PathBuf },
    /// git itself failed.
    #[error("git {args}: {message}")]
    Git { args: String, message: String },
    /// cargo failed to build pooled-app; `tail` is the end of its output.
    #[error("cannot build pooled-app at {what}: {tail}")]
    Build { what: String, tail: String },
    /// Reading or writing a file or starting a program failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Ctrl-C during the build.
    #[error("interrupted while building pooled-app")]
    Interrupted,
}

impl BuildError {
    /// Errors the command line is at fault for (exit 2); the others are the machine's (exit 3).
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::NotARepo { .. } | Self::UnknownRef { .. })
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A full commit id (40 or 64 hex digits, as git prints it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit(String);

impl Commit {
    /// The full id.
    pub fn id(&self) -> &str {
        &self.0
    }
    /// The first 12 digits, for messages.
    pub fn short(&self) -> &str {
        self.0.get(..12).unwrap_or(&self.0)
    }
}

impl std::fmt::Display for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.short())
    }
}

/// The git work tree poolproof runs in (its top level), and where its builds go.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
    target_dir: PathBuf,
}

impl Repo {
    /// The repository around `dir`; its target directory is `CARGO_TARGET_DIR` (relative to
    /// `dir`, as cargo reads it) or `<root>/target`.
    pub fn discover(dir: &Path) -> Result<Self, BuildError> {
        let root = git(dir, &["rev-parse", "--show-toplevel"]).map_err(|e| match e {
            BuildError::Git { .. } => BuildError::NotARepo {
                dir: dir.to_path_buf(),
            },
            e => e,
        })?;
        let root = PathBuf::from(root);
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(t) if !t.is_empty() => dir.join(t),
            _ => root.join("target"),
        };
        Ok(Self { root, target_dir })
    }

    /// The work tree's top level.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The commit `git_ref` names.
    pub fn resolve(&self, git_ref: &str) -> Result<Commit, BuildError> {
        let unknown = || BuildError::UnknownRef {
            git_ref: git_ref.to_owned(),
            repo: self.root.clone(),
        };
        // A ref that starts with `-` would be read as an option.
        if git_ref.is_empty() || git_ref.starts_with('-') {
            return Err(unknown());
        }
        let spec = format!("{git_ref}^{{commit}}");
        let id =
            git(&self.root, &["rev-parse", "--verify", "--quiet", &spec]).map_err(|e| match e {
                BuildError::Git { .. } => unknown(),
                e => e,
            })?;
        if id.len() >= 40 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Commit(id))
        } else {
            Err(unknown())
        }
    }

    /// The branch HEAD is on; `None` when HEAD is detached (CI checkouts of a pull request).
    pub fn branch(&self) -> Option<String> {
        git(&self.root, &["symbolic-ref", "--short", "-q", "HEAD"])
            .ok()
            .filter(|b| !b.is_empty())
    }

    /// Whether the work tree matches HEAD exactly (no change, no untracked file).
    pub fn is_clean(&self) -> Result<bool, BuildError> {
        Ok(git(&self.root, &["status", "--porcelain"])?.is_empty())
    }

    /// The cached binary of `commit`, `<target>/gate-cache/<commit>/pooled-app`.
    pub fn cached_app(&self, commit: &Commit) -> PathBuf {
        self.target_dir
            .join("gate-cache")
            .join(commit.id())
            .join(APP_BIN)
    }

    /// pooled-app as of `commit`: from the cache, else built (in place when the work tree is
    /// that commit unchanged, else in a temporary worktree) and put into the cache.
    pub fn app_at(&self, commit: &Commit) -> Result<AppBuild, BuildError> {
        let cached = self.cached_app(commit);
        if cached.is_file() {
            return Ok(AppBuild {
                path: cached,
                from_cache: true,
            });
        }
        let head = self.resolve("HEAD")?;
        let built = if head == *commit && self.is_clean()? {
            self.build(&self.root, &format!("{commit} (the work tree)"))?
        } else {
            let wt = Worktree::add(&self.root, commit)?;
            self.build(wt.path(), &format!("{commit}"))?
            // The worktree is removed here, as `wt` drops.
        };
        store(&built, &cached)?;
        Ok(AppBuild {
            path: cached,
            from_cache: false,
        })
    }

    /// pooled-app as the work tree has it now, uncommitted changes included (never cached).
    pub fn app_in_work_tree(&self) -> Result<AppBuild, BuildError> {
        Ok(AppBuild {
            path: self.build(&self.root, "the work tree")?,
            from_cache: false,
        })
    }

    /// `cargo build --release --workspace --bin pooled-app` of the workspace at `dir`, into the
    /// target directory; returns the built binary. Ctrl-C kills the build. `--workspace`
    /// because it resolves dependency features as the workspace's own builds do (`just
    /// services` builds `--workspace --bins`); `-p pooled-app` alone would compile hyper, h2
    /// and others again with fewer features.
    fn build(&self, dir: &Path, what: &str) -> Result<PathBuf, BuildError> {
        let manifest = dir.join("Cargo.toml");
        eprintln!(
            "poolproof gate: building pooled-app at {what} (cargo build --release --workspace --bin pooled-app, target {})",
            self.target_dir.display()
        );
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut child = Command::new(&cargo)
            .args(["build", "--release", "--workspace", "--bin", APP_BIN])
            .args(["--message-format", "short", "--manifest-path"])
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_err(Path::new(&cargo)))?;
        // Drained on a thread so a chatty build cannot fill the pipe while we poll.
        let stderr = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = e.read_to_string(&mut s);
                s
            })
        });
        let status = loop {
            if interrupt::requested() {
                let _ = child.kill();
                let _ = child.wait();
                return Err(BuildError::Interrupted);
            }
            match child.try_wait().map_err(io_err(Path::new(&cargo)))? {
                Some(status) => break status,
                None => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let output = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
        if !status.success() {
            let tail: Vec<&str> = output.lines().rev().take(5).collect();
            return Err(BuildError::Build {
                what: what.to_owned(),
                tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            });
        }
        let path = self.target_dir.join("release").join(APP_BIN);
        if path.is_file() {
            Ok(path)
        } else {
            Err(BuildError::Build {
                what: what.to_owned(),
                tail: format!("cargo succeeded but {} is missing", path.display()),
            })
        }
    }
}

/// A pooled-app binary and whether the cache had it.
#[derive(Debug, Clone)]
pub struct AppBuild {
    pub path: PathBuf,
    pub from_cache: bool,
}

/// Copies `built` to `cached` through a temporary name, so a half-written file is never
/// taken for a cached build.
fn store(built: &Path, cached: &Path) -> Result<(), BuildError> {
    let dir = cached.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = dir.join(format!(".{APP_BIN}.{}", std::process::id()));
    std::fs::copy(built, &tmp).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, cached).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(cached)(e)
    })
}

/// A detached `git worktree` in a temporary directory, removed (worktree and directory) when
/// dropped.
struct Worktree {
    repo: PathBuf,
    path: PathBuf,
    // Dropped after `Drop::drop` has unregistered the worktree: removes what is left.
    _dir: tempfile::TempDir,
}

impl Worktree {
    fn add(repo: &Path, commit: &Commit) -> Result<Self, BuildError> {
        let dir = tempfile::Builder::new()
            .prefix("poolproof-gate-")
            .tempdir()
            .map_err(io_err(&std::env::temp_dir()))?;
        let path = dir.path().join("base");
        let path_arg = path.to_string_lossy().into_owned();
        git(
            repo,
            &[
                "worktree",
                "add",
                "--detach",
                "--quiet",
                &path_arg,
                commit.id(),
            ],
        )?;
        Ok(Self {
            repo: repo.to_path_buf(),
            path,
            _dir: dir,
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        let path = self.path.to_string_lossy().into_owned();
        if let Err(e) = git(&self.repo, &["worktree", "remove", "--force", &path]) {
            eprintln!("poolproof gate: warning: cannot remove the worktree {path}: {e}");
        }
        // Forgets the worktree even if its directory went first.
        let _ = git(&self.repo, &["worktree", "prune"]);
    }
}

/// Runs git in `dir` and returns its trimmed stdout; a failure carries git's stderr.
fn git(dir: &Path, args: &[&str]) -> Result<String, BuildError> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(io_err(Path::new("git")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(BuildError::Git {
            args: args.join(" "),
            message: stderr.lines().next().unwrap_or("failed").trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_ok(dir: &Path, args: &[&str]) {
        let out = git(dir, args);
        assert!(out.is_ok(), "git {args:?}: {out:?}");
    }

    #[test]
    fn refs_resolve_to_commits_and_unknown_ones_are_usage_errors() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
        git_ok(dir, &["init", "--quiet"]);
        std::fs::write(dir.join("a.txt"), "a").expect("write");
        git_ok(dir, &["add", "a.txt"]);
        git_ok(
            dir,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "--quiet",
                "-m",
                "a",
            ],
        );
        let repo = Repo::discover(dir).expect("repo");
        let head = repo.resolve("HEAD").expect("HEAD");
        assert_eq!(head.id().len(), 40);
        assert_eq!(repo.resolve(head.id()).expect("by id"), head);
        assert!(repo.is_clean().expect("status"));
        std::fs::write(dir.join("b.txt"), "b").expect("write");
        assert!(!repo.is_clean().expect("status"));
        for bad in ["no-such-branch", "--all", ""] {
            let e = repo.resolve(bad).expect_err(bad);
            assert!(e.is_usage(), "{e}");
            assert!(e.to_string().starts_with(&format!("--base {bad}:")), "{e}");
        }
        assert!(repo
            .cached_app(&head)
            .ends_with(format!("gate-cache/{}/pooled-app", head.id())));
        // A worktree is gone once its guard drops.
        let wt = Worktree::add(dir, &head).expect("worktree");
        let path = wt.path().to_path_buf();
        assert!(path.join("a.txt").is_file());
        drop(wt);
        assert!(!path.exists());
        let list = git(dir, &["worktree", "list"]).expect("list");
        assert_eq!(list.lines().count(), 1, "{list}");

        let outside = tempfile::tempdir().expect("temp dir");
        let e = Repo::discover(outside.path()).expect_err("not a repo");
        assert!(e.is_usage(), "{e}");
    }
}
