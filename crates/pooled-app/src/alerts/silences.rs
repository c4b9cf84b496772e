//! Silences: "send nothing for this alert (or for every alert) until an instant", created through
//! `POST /api/performance/alerts/silences`. They live in Redis (hash `pp:alerts:silences`, one
//! JSON field per silence) so every instance honours the same ones, or in this process's memory
//! without `REDIS_URL`. A request body is parsed once here into a [`Silence`]; a bad one is one
//! message naming the field.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::redis_link::{LinkError, RedisLink};

/// Most silences in force at once (a runaway script cannot fill Redis).
pub const MAX_SILENCES: usize = 1000;
/// Furthest a silence may end from now: a year (a typo such as 3025 is caught).
pub const MAX_AHEAD_MS: u64 = 366 * 24 * 3600 * 1000;
/// Longest comment, in characters.
pub const MAX_COMMENT: usize = 256;

const KEY: &str = "pp:alerts:silences";

/// One silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    /// The alert id it mutes; `None`: every alert.
    pub alert: Option<String>,
    /// It mutes until this instant (Unix ms, exclusive).
    pub ends_at_ms: u64,
    pub created_at_ms: u64,
    #[serde(default)]
    pub comment: String,
}

impl Silence {
    pub fn active(&self, now_ms: u64) -> bool {
        self.ends_at_ms > now_ms
    }

    /// Whether it mutes `alert_id` at `now_ms`.
    pub fn mutes(&self, alert_id: &str, now_ms: u64) -> bool {
        self.active(now_ms) && self.alert.as_deref().is_none_or(|a| a == alert_id)
    }

    /// The API's view: the stored fields plus the instants in RFC 3339.
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "alert": self.alert,
            "ends_at": rfc3339(self.ends_at_ms),
            "ends_at_ms": self.ends_at_ms,
            "created_at": rfc3339(self.created_at_ms),
            "comment": self.comment,
        })
    }
}

fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The body of `POST /api/performance/alerts/silences`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSilence {
    #[serde(default)]
    alert: Option<String>,
    ends_at: String,
    #[serde(default)]
    comment: Option<String>,
}

/// Parses and checks a request body: `{"alert": id or null, "ends_at": RFC 3339, "comment": ...}`.
/// `known` are the alert ids the rules can raise. The error is one line naming the field.
pub fn parse_new(body: &[u8], known: &[String], now_ms: u64) -> Result<Silence, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let n: NewSilence = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // A field's path for a wrong value; the body for broken JSON or a missing field.
        let field = inner.classify() == serde_json::error::Category::Data
            && !matches!(path.as_str(), "." | "?" | "");
        if field {
            format!("{path}: {inner}")
        } else {
            format!("body: {inner}")
        }
    })?;
    de.end().map_err(|e| format!("body: {e}"))?;
    let ends = chrono::DateTime::parse_from_rfc3339(n.ends_at.trim()).map_err(|_| {
        format!(
            "ends_at: expected an RFC 3339 instant such as 2030-01-31T12:00:00Z, got {:?}",
            shorten(&n.ends_at)
        )
    })?;
    let ends_at_ms = u64::try_from(ends.timestamp_millis()).unwrap_or(0);
    if ends_at_ms <= now_ms {
        return Err(format!(
            "ends_at: {} is not in the future (now is {}); a silence must end later",
            n.ends_at.trim(),
            rfc3339(now_ms)
        ));
    }
    if ends_at_ms - now_ms > MAX_AHEAD_MS {
        return Err(format!(
            "ends_at: {} is more than 366 days ahead",
            n.ends_at.trim()
        ));
    }
    if let Some(a) = &n.alert {
        if !known.iter().any(|k| k == a) {
            return Err(format!(
                "alert: unknown alert {:?}; the rules raise {} (or omit alert to silence every alert)",
                shorten(a),
                known.join(", ")
            ));
        }
    }
    let comment = n.comment.unwrap_or_default();
    if comment.chars().count() > MAX_COMMENT || comment.chars().any(char::is_control) {
        return Err(format!(
            "comment: at most {MAX_COMMENT} characters, without control characters"
        ));
    }
    Ok(Silence {
        id: uuid::Uuid::new_v4().simple().to_string(),
        alert: n.alert,
        ends_at_ms,
        created_at_ms: now_ms,
        comment,
    })
}

/// Whether `id` can name a silence (checked before it reaches Redis).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 64 {
        format!("{}…", s.chars().take(64).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// Why the store could not do it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{MAX_SILENCES} silences are in force already; delete one first")]
    Full,
    #[error("silences are kept in Redis, which did not answer ({0}); try again")]
    Unavailable(&'static str),
}

impl From<LinkError> for StoreError {
    fn from(e: LinkError) -> Self {
        StoreError::Unavailable(e.reason())
    }
}

/// Adds a silence after dropping expired ones, refusing past the cap; the hash expires with
/// its last silence.
const ADD: &str = r#"
local all = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[1])
local last = tonumber(ARGV[4])
local live = 0
for i = 1, #all, 2 do
  local ok, s = pcall(cjson.decode, all[i + 1])
  local e = ok and tonumber(s['ends_at_ms']) or nil
  if e == nil or e <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    live = live + 1
    if e > last then last = e end
  end
end
if live >= tonumber(ARGV[5]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], last)
return live + 1
"#;

/// Where silences are kept.
#[derive(Clone)]
pub enum SilenceStore {
    Redis(Arc<RedisLink>),
    /// Without `REDIS_URL`: this process only.
    Memory(Arc<Mutex<Vec<Silence>>>),
}

impl SilenceStore {
    pub fn source(&self) -> &'static str {
        match self {
            SilenceStore::Redis(_) => "redis",
            SilenceStore::Memory(_) => "memory",
        }
    }

    pub async fn add(&self, s: &Silence, now_ms: u64) -> Result<(), StoreError> {
        match self {
            SilenceStore::Redis(link) => {
                let json = serde_json::to_string(s).unwrap_or_default();
                let script = redis::Script::new(ADD);
                let mut inv = script.prepare_invoke();
                inv.key(KEY)
                    .arg(now_ms)
                    .arg(&s.id)
                    .arg(json)
                    .arg(s.ends_at_ms)
                    .arg(MAX_SILENCES);
                let n: i64 = link
                    .run(move |mut c| async move { inv.invoke_async(&mut c).await })
                    .await?;
                if n < 0 {
                    return Err(StoreError::Full);
                }
                Ok(())
            }
            SilenceStore::Memory(m) => {
                let mut v = m.lock().unwrap_or_else(|p| p.into_inner());
                v.retain(|x| x.active(now_ms));
                if v.len() >= MAX_SILENCES {
                    return Err(StoreError::Full);
                }
                v.push(s.clone());
                Ok(())
            }
        }
    }

    /// The silences in force at `now_ms`, soonest end first.
    pub async fn list(&self, now_ms: u64) -> Result<Vec<Silence>, StoreError> {
        let mut out: Vec<Silence> = match self {
            SilenceStore::Redis(link) => {
                let all: Vec<(String, String)> =
                    link.run(|mut c| async move {
                        redis::cmd("HGETALL").arg(KEY).query_async(&mut c).await
                    })
                    .await?;
                // A field that does not parse was not written by this app: skip it.
                all.iter()
                    .filter_map(|(_, v)| serde_json::from_str::<Silence>(v).ok())
                    .collect()
            }
            SilenceStore::Memory(m) => m.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        };
        out.retain(|s| s.active(now_ms));
        out.sort_by(|a, b| (a.ends_at_ms, &a.id).cmp(&(b.ends_at_ms, &b.id)));
        Ok(out)
    }

    /// Removes a silence; `false` when there was none with that id.
    pub async fn remove(&self, id: &str) -> Result<bool, StoreError> {
        match self {
            SilenceStore::Redis(link) => {
                let id = id.to_owned();
                let n: i64 = link
                    .run(move |mut c| async move {
                        redis::cmd("HDEL")
                            .arg(KEY)
                            .arg(id)
                            .query_async(&mut c)
                            .await
                    })
                    .await?;
                Ok(n > 0)
            }
            SilenceStore::Memory(m) => {
                let mut v = m.lock().unwrap_or_else(|p| p.into_inner());
                let before = v.len();
                v.retain(|s| s.id != id);
                Ok(v.len() < before)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_900_000_000_000; // 2030-03-17T17:46:40Z

    fn known() -> Vec<String> {
        vec!["lat_critical".into(), "lat_warning".into()]
    }

    fn parse(body: &str) -> Result<Silence, String> {
        parse_new(body.as_bytes(), &known(), NOW)
    }

    #[test]
    fn a_valid_body_becomes_a_silence() {
        let s = parse(
            r#"{"alert": "lat_warning", "ends_at": "2030-03-17T18:46:40Z", "comment": "deploy"}"#,
        )
        .unwrap();
        assert_eq!(s.alert.as_deref(), Some("lat_warning"));
        assert_eq!(s.ends_at_ms, NOW + 3_600_000);
        assert_eq!(s.comment, "deploy");
        assert!(s.mutes("lat_warning", NOW) && !s.mutes("lat_critical", NOW));
        assert!(
            !s.mutes("lat_warning", NOW + 3_600_000),
            "the end is exclusive"
        );
        let all = parse(r#"{"ends_at": "2030-03-17T19:46:40+01:00"}"#).unwrap();
        assert!(all.alert.is_none() && all.mutes("anything", NOW));
        assert_eq!(all.view()["ends_at"], "2030-03-17T18:46:40.000Z");
    }

    #[test]
    fn bad_bodies_name_the_field() {
        for (body, starts) in [
            ("not json", "body: expected ident"),
            ("", "body: EOF while parsing"),
            ("{", "body: EOF while parsing an object"),
            (
                r#"{"alert": "lat_warning"}"#,
                "body: missing field `ends_at`",
            ),
            (
                r#"{"ends_at": "tomorrow"}"#,
                "ends_at: expected an RFC 3339 instant",
            ),
            (
                r#"{"ends_at": "2020-01-01T00:00:00Z"}"#,
                "ends_at: 2020-01-01T00:00:00Z is not in the future",
            ),
            (
                r#"{"ends_at": "3030-01-01T00:00:00Z"}"#,
                "ends_at: 3030-01-01T00:00:00Z is more than 366 days ahead",
            ),
            (
                r#"{"ends_at": "2030-03-17T18:46:40Z", "alert": "nope"}"#,
                "alert: unknown alert \"nope\"; the rules raise lat_critical, lat_warning",
            ),
            (
                r#"{"ends_at": "2030-03-17T18:46:40Z", "until": 1}"#,
                "until: unknown field `until`",
            ),
            (r#"{"ends_at": 5}"#, "ends_at: invalid type: integer `5`"),
            (
                r#"{"ends_at": "2030-03-17T18:46:40Z", "comment": "a\nb"}"#,
                "comment: at most 256",
            ),
            (
                r#"{"ends_at": "2030-03-17T18:46:40Z"} x"#,
                "body: trailing characters",
            ),
        ] {
            let e = parse(body).unwrap_err();
            assert!(e.starts_with(starts), "{body}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn ids_are_checked_before_use() {
        assert!(valid_id("0f3a-9c"));
        assert!(
            !valid_id("") && !valid_id("a b") && !valid_id("x:y") && !valid_id(&"a".repeat(65))
        );
    }

    #[tokio::test]
    async fn memory_store_adds_lists_and_removes() {
        let store = SilenceStore::Memory(Arc::default());
        let s = parse(r#"{"ends_at": "2030-03-17T18:46:40Z"}"#).unwrap();
        store.add(&s, NOW).await.unwrap();
        assert_eq!(store.list(NOW).await.unwrap(), vec![s.clone()]);
        assert!(store.list(s.ends_at_ms).await.unwrap().is_empty());
        assert!(store.remove(&s.id).await.unwrap());
        assert!(!store.remove(&s.id).await.unwrap());
    }
}
