//! The public service handles and the functions that start them with the chosen provider.

use std::path::PathBuf;
use std::time::Duration;

use testcontainers_modules::postgres::Postgres as PgImage;
use testcontainers_modules::redis::Redis as RedisImage;

use crate::managed::{Backend, Managed};
use crate::ports::free_port;
use crate::probe::Probe;
use crate::{containers, engine, pg_process, redis_process, Options, Provider, ServiceError};

/// How often a start is retried when another process took the chosen port meanwhile.
const PORT_ATTEMPTS: usize = 3;
/// Readiness deadline after a (re)start.
const CONTAINER_READY: Duration = Duration::from_secs(60);
const PROCESS_READY: Duration = Duration::from_secs(30);

/// The provider `options` ask for; when unset, containers if an engine answers and both
/// images exist locally, else processes.
pub async fn resolve_provider(options: &Options) -> Provider {
    if let Some(provider) = options.provider {
        return provider;
    }
    let Ok(docker) = engine::client().await else {
        return Provider::Processes;
    };
    if docker.ping().await.is_err() {
        return Provider::Processes;
    }
    let images = engine::image_exists(&docker, &options.postgres_image).await
        && engine::image_exists(&docker, &options.redis_image).await;
    if images {
        Provider::Containers
    } else {
        tracing::info!(
            postgres = %options.postgres_image,
            redis = %options.redis_image,
            "Docker engine answers but the images are missing (run ci/build-images.sh); using processes"
        );
        Provider::Processes
    }
}

/// A running Postgres 15.
pub struct Postgres {
    managed: Managed<PgImage>,
    user: String,
    password: String,
    database: String,
}

/// A running Redis.
pub struct Redis {
    managed: Managed<RedisImage>,
}

/// Before this process starts its first service, removes what killed runs left behind
/// (only services whose owning process is gone), so they do not pile up.
async fn sweep_once() {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            match crate::sweep_leftovers().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "removed services left by killed runs"),
                Err(e) => tracing::warn!(error = %e, "could not sweep leftovers of killed runs"),
            }
        })
        .await;
}

/// Starts a service with `try_start` and the provider `options` resolve to, again (up to
/// [`PORT_ATTEMPTS`] in all) when another process took the chosen port meanwhile.
async fn start_with<'a, T, F, Fut>(options: &'a Options, try_start: F) -> Result<T, ServiceError>
where
    F: Fn(&'a Options, Provider) -> Fut,
    Fut: std::future::Future<Output = Result<T, ServiceError>>,
{
    sweep_once().await;
    let provider = resolve_provider(options).await;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_start(options, provider).await {
            Err(e) if attempt < PORT_ATTEMPTS && e.is_port_clash() => continue,
            other => return other,
        }
    }
}

/// Starts Postgres with the provider `options` resolve to.
pub async fn start_postgres(options: &Options) -> Result<Postgres, ServiceError> {
    start_with(options, try_start_postgres).await
}

async fn try_start_postgres(
    options: &Options,
    provider: Provider,
) -> Result<Postgres, ServiceError> {
    let port = free_port("postgres")?;
    let user = pg_process::NAME.to_owned();
    let database = pg_process::NAME.to_owned();
    let probe = Probe::Postgres {
        user: user.clone(),
        database: database.clone(),
    };
    let (managed, password) = match provider {
        Provider::Containers => {
            let password = crate::processes::random_hex();
            let request = containers::postgres_request(
                &options.postgres_image,
                &user,
                &password,
                &database,
                port,
                &options.run_label,
            );
            let container = containers::start("postgres", request).await?;
            let managed = Managed::new(
                "postgres",
                port,
                probe,
                CONTAINER_READY,
                Backend::Container(Box::new(container)),
            );
            (managed, password)
        }
        Provider::Processes => {
            let run_label = options.run_label.clone();
            let started = tokio::task::spawn_blocking(move || pg_process::start(port, &run_label))
                .await
                .map_err(|e| {
                    ServiceError::io("postgres", "set-up task", std::io::Error::other(e))
                })??;
            let managed = Managed::new(
                "postgres",
                port,
                probe,
                PROCESS_READY,
                Backend::Process(started.process),
            );
            (managed, started.password)
        }
    };
    managed.wait_initially_ready().await?;
    Ok(Postgres {
        managed,
        user,
        password,
        database,
    })
}

/// Starts Redis with the provider `options` resolve to.
pub async fn start_redis(options: &Options) -> Result<Redis, ServiceError> {
    start_with(options, try_start_redis).await
}

async fn try_start_redis(options: &Options, provider: Provider) -> Result<Redis, ServiceError> {
    let port = free_port("redis")?;
    let managed = match provider {
        Provider::Containers => {
            let request = containers::redis_request(&options.redis_image, port, &options.run_label);
            let container = containers::start("redis", request).await?;
            Managed::new(
                "redis",
                port,
                Probe::Redis,
                CONTAINER_READY,
                Backend::Container(Box::new(container)),
            )
        }
        Provider::Processes => {
            let process = redis_process::start(port, &options.run_label)?;
            Managed::new(
                "redis",
                port,
                Probe::Redis,
                PROCESS_READY,
                Backend::Process(process),
            )
        }
    };
    managed.wait_initially_ready().await?;
    Ok(Redis { managed })
}

/// Starts both concurrently (same provider for both).
pub async fn start_both(options: &Options) -> Result<(Postgres, Redis), ServiceError> {
    sweep_once().await;
    let provider = resolve_provider(options).await;
    let fixed = options.clone().with_provider(provider);
    let (postgres, redis) = tokio::join!(start_postgres(&fixed), start_redis(&fixed));
    // On a failure the other one is dropped here, which removes it.
    Ok((postgres?, redis?))
}

macro_rules! controls {
    ($service:literal) => {
        /// Host port on 127.0.0.1; the same for the service's whole life.
        pub fn port(&self) -> u16 {
            self.managed.port
        }

        /// Which provider runs it.
        pub fn provider(&self) -> Provider {
            self.managed.provider()
        }

        #[doc = concat!("Freezes ", $service, " (docker pause / SIGSTOP): connections stay open, nothing answers.")]
        pub async fn pause(&self) -> Result<(), ServiceError> {
            self.managed.pause().await
        }

        /// Resumes after [`Self::pause`] and waits until it answers.
        pub async fn unpause(&self) -> Result<(), ServiceError> {
            self.managed.unpause().await
        }

        #[doc = concat!("Stops ", $service, " cleanly; port and data are kept for [`Self::start`].")]
        pub async fn stop(&self) -> Result<(), ServiceError> {
            self.managed.stop().await
        }

        /// Starts it again after [`Self::stop`] on the same port and data; waits until it answers.
        pub async fn start(&self) -> Result<(), ServiceError> {
            self.managed.start().await
        }

        /// Stop then start.
        pub async fn restart(&self) -> Result<(), ServiceError> {
            self.managed.restart().await
        }

        /// Waits until it answers its protocol's probe, at most `deadline`.
        pub async fn wait_ready(&self, deadline: Duration) -> Result<(), ServiceError> {
            self.managed.wait_ready(deadline).await
        }

        /// Container id (containers provider).
        pub async fn container_id(&self) -> Option<String> {
            self.managed.container_id().await
        }

        /// Pid of the server process, also its process group (processes provider, while running).
        pub async fn pid(&self) -> Option<u32> {
            self.managed.pid().await
        }

        /// Temp dir holding data and log (processes provider).
        pub async fn dir(&self) -> Option<PathBuf> {
            self.managed.dir().await
        }

        /// Removes the container or kills the process group and removes the temp dir.
        /// Dropping does the same, without reporting errors.
        pub async fn shutdown(self) -> Result<(), ServiceError> {
            self.managed.shutdown().await
        }
    };
}

impl Postgres {
    /// `postgres://USER:PASSWORD@127.0.0.1:PORT/DB`. Holds the password: never print it;
    /// use [`Postgres::url_redacted`] for output.
    pub fn url(&self) -> String {
        loopback_url(&self.user, &self.password, self.port(), &self.database)
    }

    /// [`Postgres::url`] with the password replaced by `***`.
    pub fn url_redacted(&self) -> String {
        loopback_url(&self.user, "***", self.port(), &self.database)
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    controls!("Postgres");
}

/// `postgres://USER:PASSWORD@127.0.0.1:PORT/DB`, for Postgres and for PgBouncer in front of it.
pub(crate) fn loopback_url(user: &str, password: &str, port: u16, database: &str) -> String {
    format!("postgres://{user}:{password}@127.0.0.1:{port}/{database}")
}

impl Redis {
    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port())
    }

    controls!("Redis");
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("url", &self.url_redacted())
            .field("provider", &self.provider())
            .finish()
    }
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("url", &self.url())
            .field("provider", &self.provider())
            .finish()
    }
}
