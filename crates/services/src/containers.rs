//! The containers provider: testcontainers from local images, a fixed host port on
//! loopback (kept across stop/start), and labels that let leftovers be swept.

use std::time::Duration;

use testcontainers::core::IntoContainerPort;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ContainerRequest, Image, ImageExt};
use testcontainers_modules::postgres::Postgres as PgImage;
use testcontainers_modules::redis::Redis as RedisImage;

use crate::options::split_image;
use crate::owner::ProcessToken;
use crate::ServiceError;

/// Label carrying the run label of [`crate::Options`].
pub const RUN_LABEL: &str = "poolproof.run";
/// Label carrying the `pid:starttime` of the process that started the container.
pub const OWNER_LABEL: &str = "poolproof.owner";

/// How long a container may take to print its ready line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

/// Postgres settings for tests: durability off (throwaway data), room for unpooled load.
pub(crate) const POSTGRES_SETTINGS: [&str; 8] = [
    "-c",
    "fsync=off",
    "-c",
    "synchronous_commit=off",
    "-c",
    "full_page_writes=off",
    "-c",
    "max_connections=200",
];

pub(crate) fn postgres_request(
    image: &str,
    user: &str,
    password: &str,
    database: &str,
    host_port: u16,
    run_label: &str,
) -> ContainerRequest<PgImage> {
    let (name, tag) = split_image(image);
    let request = PgImage::default()
        .with_user(user)
        .with_password(password)
        .with_db_name(database)
        .with_name(name)
        .with_tag(tag)
        .with_cmd(POSTGRES_SETTINGS)
        .with_mapped_port(host_port, 5432.tcp());
    finish(request, run_label)
}

pub(crate) fn redis_request(
    image: &str,
    host_port: u16,
    run_label: &str,
) -> ContainerRequest<RedisImage> {
    let (name, tag) = split_image(image);
    let request = RedisImage::default()
        .with_name(name)
        .with_tag(tag)
        .with_mapped_port(host_port, 6379.tcp());
    finish(request, run_label)
}

pub(crate) fn finish<I: Image>(
    request: ContainerRequest<I>,
    run_label: &str,
) -> ContainerRequest<I> {
    request
        .with_label(RUN_LABEL, run_label)
        .with_label(OWNER_LABEL, ProcessToken::current().to_string())
        .with_startup_timeout(STARTUP_TIMEOUT)
        // testcontainers publishes on every interface; tests only ever need loopback.
        .with_host_config_modifier(|host_config| {
            if let Some(bindings) = host_config.port_bindings.as_mut() {
                for binding in bindings.values_mut().flatten().flatten() {
                    binding.host_ip = Some("127.0.0.1".to_owned());
                }
            }
        })
}

/// Creates and starts the container; testcontainers waits for the image's ready line.
/// The image is used as found locally: testcontainers only pulls when creation reports
/// the image missing.
pub(crate) async fn start<I: Image>(
    service: &'static str,
    request: ContainerRequest<I>,
) -> Result<ContainerAsync<I>, ServiceError> {
    let image = request.descriptor();
    match request.start().await {
        Ok(container) => Ok(container),
        Err(source) => {
            // The usual cause on a machine without a registry: the local image was never built.
            if let Ok(docker) = crate::engine::client().await {
                if !crate::engine::image_exists(&docker, &image).await {
                    return Err(ServiceError::Engine(format!(
                        "{service}: image {image} is not available locally and could not be \
                         pulled ({source}); build it with ci/build-images.sh"
                    )));
                }
            }
            Err(ServiceError::Container {
                service,
                op: "start",
                source: Box::new(source),
            })
        }
    }
}

/// Tail of the container's output, for error messages.
pub(crate) async fn log_tail<I: Image>(container: &ContainerAsync<I>) -> String {
    let mut text = String::new();
    if let Ok(out) = container.stdout_to_vec().await {
        text.push_str(&String::from_utf8_lossy(&out));
    }
    if let Ok(err) = container.stderr_to_vec().await {
        text.push_str(&String::from_utf8_lossy(&err));
    }
    crate::processes::last_lines(&text, 15)
}
