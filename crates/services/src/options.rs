//! What to start and how: the provider choice and the image names.

use std::time::{SystemTime, UNIX_EPOCH};

/// How Postgres and Redis are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Docker containers through testcontainers, from local images.
    Containers,
    /// The machine's own binaries as local processes (a non-root user when run as root).
    Processes,
}

impl Provider {
    /// The provider's name as scenario files and environment variables spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Containers => "containers",
            Provider::Processes => "processes",
        }
    }

    /// Parses `containers` or `processes` (case-insensitive).
    pub fn parse(text: &str) -> Option<Provider> {
        match text.trim().to_ascii_lowercase().as_str() {
            "containers" | "container" | "docker" => Some(Provider::Containers),
            "processes" | "process" => Some(Provider::Processes),
            _ => None,
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default Postgres image, built by `ci/build-images.sh`.
pub const DEFAULT_POSTGRES_IMAGE: &str = "poolproof/postgres:15";
/// Default Redis image, built by `ci/build-images.sh`.
pub const DEFAULT_REDIS_IMAGE: &str = "poolproof/redis:7";

/// Environment variable overriding the Postgres image.
pub const ENV_POSTGRES_IMAGE: &str = "POOLPROOF_POSTGRES_IMAGE";
/// Environment variable overriding the Redis image.
pub const ENV_REDIS_IMAGE: &str = "POOLPROOF_REDIS_IMAGE";
/// Environment variable forcing the provider (`containers` or `processes`).
pub const ENV_PROVIDER: &str = "POOLPROOF_SERVICES_PROVIDER";

/// What to start.
#[derive(Debug, Clone)]
pub struct Options {
    /// `None`: containers when a Docker engine answers and both images exist locally,
    /// else processes.
    pub provider: Option<Provider>,
    /// Postgres image reference, `name:tag`.
    pub postgres_image: String,
    /// Redis image reference, `name:tag`.
    pub redis_image: String,
    /// Value of the `poolproof.run` label on containers (and recorded in pid files), so a
    /// run's services can be found.
    pub run_label: String,
}

impl Default for Options {
    /// Images from `POOLPROOF_POSTGRES_IMAGE` / `POOLPROOF_REDIS_IMAGE` (else the local
    /// builds), provider from `POOLPROOF_SERVICES_PROVIDER` (else automatic), and a run label
    /// unique to this process and moment.
    fn default() -> Self {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Options {
            provider: env(ENV_PROVIDER).and_then(|v| Provider::parse(&v)),
            postgres_image: env(ENV_POSTGRES_IMAGE)
                .unwrap_or_else(|| DEFAULT_POSTGRES_IMAGE.to_owned()),
            redis_image: env(ENV_REDIS_IMAGE).unwrap_or_else(|| DEFAULT_REDIS_IMAGE.to_owned()),
            run_label: format!("{}-{:x}", std::process::id(), nanos),
        }
    }
}

impl Options {
    /// Same options with the provider fixed.
    pub fn with_provider(mut self, provider: Provider) -> Self {
        self.provider = Some(provider);
        self
    }
}

/// Splits `name:tag` (a registry `host:port/` prefix is kept in the name); no tag = `latest`.
pub(crate) fn split_image(reference: &str) -> (String, String) {
    match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') && !name.is_empty() => {
            (name.to_owned(), tag.to_owned())
        }
        _ => (reference.to_owned(), "latest".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_at_the_tag_only() {
        assert_eq!(
            split_image("poolproof/postgres:15"),
            ("poolproof/postgres".into(), "15".into())
        );
        assert_eq!(
            split_image("localhost:5000/redis"),
            ("localhost:5000/redis".into(), "latest".into())
        );
        assert_eq!(
            split_image("localhost:5000/redis:7"),
            ("localhost:5000/redis".into(), "7".into())
        );
        assert_eq!(split_image("redis"), ("redis".into(), "latest".into()));
    }

    #[test]
    fn provider_names_parse() {
        assert_eq!(Provider::parse("Containers"), Some(Provider::Containers));
        assert_eq!(Provider::parse("processes"), Some(Provider::Processes));
        assert_eq!(Provider::parse("external"), None);
    }
}
