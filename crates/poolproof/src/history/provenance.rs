//! Where a run's code came from, for its history record: the commit, the branch and whether
//! the work tree had uncommitted changes, read with git from the directory poolproof runs in.
//!
//! The branch: `POOLPROOF_BRANCH` when set (any CI), else `GITHUB_HEAD_REF` (a pull request's
//! source branch on GitHub Actions, whose checkout is a detached merge commit), else the branch
//! git has checked out, else `GITHUB_REF_NAME` when `GITHUB_REF_TYPE` is `branch`; null when
//! none says.

use std::path::Path;

use crate::gate::base_build::Repo;

/// The commit, branch and cleanliness of the work tree a run measured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub dirty: bool,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Provenance {
    /// Reads git in `dir`; outside a repository (or without git) commit and the git branch
    /// are unknown, not an error: a history record is still worth writing.
    pub fn of_dir(dir: &Path) -> Self {
        let repo = Repo::discover(dir).ok();
        let commit = repo
            .as_ref()
            .and_then(|r| r.resolve("HEAD").ok())
            .map(|c| c.id().to_owned());
        let dirty = commit.is_some()
            && repo
                .as_ref()
                .and_then(|r| r.is_clean().ok())
                .is_some_and(|clean| !clean);
        let branch = env_nonempty("POOLPROOF_BRANCH")
            .or_else(|| env_nonempty("GITHUB_HEAD_REF"))
            .or_else(|| repo.as_ref().and_then(Repo::branch))
            .or_else(|| {
                (env_nonempty("GITHUB_REF_TYPE").as_deref() == Some("branch"))
                    .then(|| env_nonempty("GITHUB_REF_NAME"))
                    .flatten()
            });
        Provenance {
            commit,
            branch,
            dirty,
        }
    }

    /// [`Provenance::of_dir`] of the current directory.
    pub fn here() -> Self {
        match std::env::current_dir() {
            Ok(d) => Self::of_dir(&d),
            Err(_) => Self::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_repository_the_commit_is_unknown() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let p = Provenance::of_dir(dir.path());
        assert_eq!(p.commit, None);
        assert!(!p.dirty);
    }

    #[test]
    fn inside_a_repository_the_commit_is_head() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let git = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q", "-b", "trunk"]);
        std::fs::write(dir.path().join("f"), "1").unwrap_or_else(|e| panic!("{e}"));
        git(&["add", "f"]);
        git(&["commit", "-q", "-m", "one"]);
        let p = Provenance::of_dir(dir.path());
        let c = p.commit.unwrap_or_default();
        assert_eq!(c.len(), 40, "{c}");
        assert!(!p.dirty);
        if std::env::var_os("POOLPROOF_BRANCH").is_none()
            && std::env::var_os("GITHUB_HEAD_REF").is_none()
        {
            assert_eq!(p.branch.as_deref(), Some("trunk"));
        }
        std::fs::write(dir.path().join("f"), "2").unwrap_or_else(|e| panic!("{e}"));
        assert!(Provenance::of_dir(dir.path()).dirty);
    }
}
