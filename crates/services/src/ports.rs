//! Free loopback ports for the services and apps a run starts.
//!
//! The port is picked below the kernel's ephemeral range (`ip_local_port_range`): the OS hands
//! ports of that range to every `bind(0)` and outgoing connection, and a load test opens
//! thousands of those, so a port picked there and released for a child to bind a moment later
//! is often taken meanwhile. Below the range only another picker like this one can clash, and
//! callers still retry on a clash.

use crate::ServiceError;
use std::net::TcpListener;

/// The lowest port picked: above the usual fixed service ports (Postgres 5432, Redis 6379,
/// Prometheus 9090, ...).
const LOWEST: u16 = 15_000;
/// Random candidates tried below the ephemeral range before falling back to `bind(0)`.
const CANDIDATES: usize = 64;

/// A port that was free on 127.0.0.1 a moment ago; the caller binds it (or has a child bind
/// it) soon after and retries on a clash.
pub fn free_loopback_port() -> std::io::Result<u16> {
    let below = ephemeral_start().unwrap_or(32_768);
    if below > LOWEST + 1_000 {
        let span = u32::from(below - LOWEST);
        for seed in random_u32s(CANDIDATES) {
            let port = LOWEST + (seed % span) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// [`free_loopback_port`] with the service named in the error.
pub(crate) fn free_port(service: &'static str) -> Result<u16, ServiceError> {
    free_loopback_port().map_err(|e| ServiceError::io(service, "picking a free port", e))
}

/// The first port of the kernel's ephemeral range, if readable.
fn ephemeral_start() -> Option<u16> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// `n` random numbers.
fn random_u32s(n: usize) -> Vec<u32> {
    let mut bytes = vec![0u8; n * 4];
    crate::processes::random_bytes(&mut bytes);
    bytes
        .chunks(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// True when a start-up's error text says the port was taken meanwhile (Linux' bind error,
/// Docker's port mapping), so that a retry on another free port can succeed.
pub fn says_port_taken(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("port is already allocated") || text.contains("address already in use")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picked_ports_are_free_and_below_the_ephemeral_range() {
        let below = ephemeral_start().unwrap_or(32_768);
        for _ in 0..20 {
            let port = free_loopback_port().expect("a free port");
            assert!(port >= LOWEST, "{port}");
            if below > LOWEST + 1_000 {
                assert!(
                    port < below,
                    "{port} is in the ephemeral range from {below}"
                );
            }
            // Free: it can be bound now.
            TcpListener::bind(("127.0.0.1", port)).expect("bindable");
        }
    }
}
