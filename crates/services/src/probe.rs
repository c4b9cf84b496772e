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
    stream
        .write_all(&message)
        .await
        .map_err(|e| format!("send startup: {e}"))?;
    let mut reply = [0u8; 512];
    let n = stream
        .read(&mut reply)
        .await
        .map_err(|e| format!("read: {e}"))?;
    match reply.get(..n) {
        // An authentication request: the server accepts sessions for this user and database.
        Some([b'R', ..]) => Ok(()),
        Some([b'E', rest @ ..]) => Err(format!("server error: {}", printable(rest))),
        Some([]) | None => Err("connection closed".to_owned()),
        Some(other) => Err(format!("unexpected reply: {}", printable(other))),
    }
}

async fn redis(stream: &mut TcpStream) -> Result<(), String> {
    stream
        .write_all(b"*1\r\n$4\r\nPING\r\n")
        .await
        .map_err(|e| format!("send PING: {e}"))?;
    let mut reply = [0u8; 256];
    let n = stream
        .read(&mut reply)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&reply[..n]);
    if text.starts_with("+PONG") {
        Ok(())
    } else if n == 0 {
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
