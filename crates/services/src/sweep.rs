//! Removal of what a killed run left behind: containers whose owner process is gone, and
//! service processes (with their temp dirs) listed in pid files whose owner is gone.
//! Services of runs that are still alive (other test processes) are never touched.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use nix::sys::signal::Signal;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};

use crate::containers::OWNER_LABEL;
use crate::owner::ProcessToken;
use crate::processes::{pid_dir, Family};
use crate::{engine, ServiceError};

/// Removes leftovers of dead runs; returns how many containers and processes it removed.
pub async fn sweep_leftovers() -> Result<usize, ServiceError> {
    let mut removed = sweep_processes();
    if engine::engine_answers().await {
        removed += sweep_containers().await?;
    }
    Ok(removed)
}

async fn sweep_containers() -> Result<usize, ServiceError> {
    let docker = engine::client().await?;
    let filters = HashMap::from([("label", vec![OWNER_LABEL])]);
    let listed = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| ServiceError::Engine(format!("listing containers: {e}")))?;
    let mut removed = 0;
    for container in listed {
        let owner = container
            .labels
            .as_ref()
            .and_then(|labels| labels.get(OWNER_LABEL))
            .and_then(|text| ProcessToken::parse(text));
        let orphaned = owner.is_none_or(|owner| !owner.is_alive());
        if let (true, Some(id)) = (orphaned, container.id.as_deref()) {
            let options = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            if docker.remove_container(id, Some(options)).await.is_ok() {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Removes initdb templates whose build was interrupted (older than ten minutes: a build
/// takes seconds, so an older one has no live builder).
fn sweep_template_builds() {
    let Ok(entries) = fs::read_dir(crate::processes::state_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry.file_name().to_string_lossy().contains(".building-")
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(600));
        if stale {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn sweep_processes() -> usize {
    sweep_template_builds();
    let Ok(entries) = fs::read_dir(pid_dir()) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("pid") {
            continue;
        }
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let field = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
        };
        let owner = field("owner").and_then(|t| ProcessToken::parse(&t));
        if owner.as_ref().is_some_and(ProcessToken::is_alive) {
            continue;
        }
        // Only the very process that was recorded: a reused pid is someone else's.
        if let Some(child) = field("child").and_then(|t| ProcessToken::parse(&t)) {
            if child.is_alive() {
                let _ = Family::of(child.pid).signal(Signal::SIGKILL);
                removed += 1;
            }
        }
        if let Some(dir) = field("dir") {
            remove_service_dir(Path::new(&dir));
        }
        let _ = fs::remove_file(&path);
    }
    removed
}

/// Removes a service temp dir, but only one this crate creates (`poolproof-*` in the temp dir).
fn remove_service_dir(dir: &Path) {
    let ours = dir.parent() == Some(std::env::temp_dir().as_path())
        && dir.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            ["poolproof-pg-", "poolproof-redis-", "poolproof-pgbouncer-"]
                .iter()
                .any(|prefix| n.starts_with(prefix))
        });
    if ours {
        let _ = fs::remove_dir_all(dir);
    }
}
