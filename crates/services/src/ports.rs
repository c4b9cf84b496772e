//! Free loopback ports, picked by the OS.

use crate::ServiceError;

/// A port that was free on 127.0.0.1 a moment ago (the OS picks it; the caller binds it
/// soon after, and retries on a clash since other test processes do the same).
pub(crate) fn free_port(service: &'static str) -> Result<u16, ServiceError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| ServiceError::io(service, "picking a free port", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| ServiceError::io(service, "picking a free port", e))?
        .port();
    Ok(port)
}
