//! Readiness probes that speak each service's protocol: a Postgres startup message that must
//! be answered with an authentication request, and a Redis PING that must get PONG.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Which protocol to probe with.
#[derive(Debug, Clone)]
pub(crate) enum Probe {
    Postgres { user: String, database: String },
    Redis,
}

impl Probe {
    /// One attempt: `Ok(())` when the service answers as a ready one does, else why not.
    pub async fn once(&self, port: u16) -> Result<(), String> {
        let attempt = async {
            let mut stream = TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(|e| format!("connect: {e}"))?;
            match self {
                Probe::Postgres { user, database } => postgres(&mut stream, user, database).await,
                Probe::Redis => redis(&mut stream).await,
            }
        };
        match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(result) => result,
            Err(_) => Err("no answer within 2s".to_owned()),
        }
    }
}

/// Sends `request` (named `what` in errors) and reads the first part of the reply, at most
/// `max` bytes: enough to tell the answer's kind.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    what: &str,
    max: usize,
) -> Result<Vec<u8>, String> {
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("send {what}: {e}"))?;
    let mut reply = vec![0u8; max];
    let n = stream
        .read(&mut reply)
        .await
        .map_err(|e| format!("read: {e}"))?;
    reply.truncate(n);
    Ok(reply)
}

async fn postgres(stream: &mut TcpStream, user: &str, database: &str) -> Result<(), String> {
    // StartupMessage, protocol 3.0: length, version, key/value pairs, terminator.
    let mut body = Vec::new();
    body.extend_from_slice(&196_608_i32.to_be_bytes());
    for (key, value) in [("user", user), ("database", database)] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut message = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    let reply = exchange(stream, &message, "startup", 512).await?;
    match reply.as_slice() {
        // An authentication request: the server accepts sessions for this user and database.
        [b'R', ..] => Ok(()),
        [b'E', rest @ ..] => Err(format!("server error: {}", printable(rest))),
        [] => Err("connection closed".to_owned()),
        other => Err(format!("unexpected reply: {}", printable(other))),
    }
}

async fn redis(stream: &mut TcpStream) -> Result<(), String> {
    let reply = exchange(stream, b"*1\r\n$4\r\nPING\r\n", "PING", 256).await?;
    let text = String::from_utf8_lossy(&reply);
    if text.starts_with("+PONG") {
        Ok(())
    } else if reply.is_empty() {
        Err("connection closed".to_owned())
    } else {
        Err(format!("PING answered {:?}", text.trim_end()))
    }
}

/// The readable parts of a protocol message (field values of an ErrorResponse).
fn printable(bytes: &[u8]) -> String {
    bytes
        .split(|b| *b == 0)
        .filter_map(|field| {
            let text: String = field
                .iter()
                .skip(1)
                .filter(|b| b.is_ascii_graphic() || **b == b' ')
                .map(|b| *b as char)
                .collect();
            (!text.trim().is_empty()).then_some(text)
        })
        .collect::<Vec<_>>()
        .join(" | ")
}
