//! Whether a Docker engine answers, and whether an image exists in it (never pulls).

use std::time::Duration;

use testcontainers::bollard::Docker;

use crate::ServiceError;

/// A client for the engine named by `DOCKER_HOST` (else the local socket), with the API
/// version negotiated down to the engine's (Debian's 20.10 speaks 1.41).
pub(crate) async fn client() -> Result<Docker, ServiceError> {
    let docker =
        Docker::connect_with_defaults().map_err(|e| ServiceError::Engine(e.to_string()))?;
    tokio::time::timeout(Duration::from_secs(5), docker.negotiate_version())
        .await
        .map_err(|_| ServiceError::Engine("no answer within 5s".to_owned()))?
        .map_err(|e| ServiceError::Engine(e.to_string()))
}

/// True when an engine answers a ping within two seconds.
pub async fn engine_answers() -> bool {
    let Ok(docker) = client().await else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), docker.ping()).await,
        Ok(Ok(_))
    )
}

/// True when the image exists locally.
pub(crate) async fn image_exists(docker: &Docker, reference: &str) -> bool {
    docker.inspect_image(reference).await.is_ok()
}
