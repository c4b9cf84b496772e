//! Cross-instance coordination through Redis, so several app instances send each transition once:
//! the first instance to fire opens a shared episode (its start is the idempotency key's time);
//! others join it; the alert resolves — and its resolution is sent — when the last firing instance
//! resolves (the episode key is deleted atomically by that one). The shared cooldown lives here too.
//! An episode remembers whether its firing went out (`n`), was kept back by the cooldown (`s`) or
//! by a mute (`m`: inhibition or silence); a muted episode is released — its firing sent — by the
//! first instance where the mute has ended. Episodes also tell each instance which alerts fire
//! elsewhere, so inhibition holds across instances.
//! Without Redis the caller sends on its own (duplicates across instances are then possible).

use std::time::Duration;

use crate::redis_link::{LinkError, RedisLink};

/// What to do with a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Send it; the string is the episode start (ms) for the idempotency key.
    Send(u64),
    /// Another instance owns it, or the shared cooldown suppresses it.
    Skip(&'static str),
    /// Another instance opened the episode already; what became of its firing.
    Joined(EpisodeFlag),
}

/// What became of an episode's firing notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpisodeFlag {
    Sent,
    Cooldown,
    Muted,
}

impl EpisodeFlag {
    fn of(ep: &str) -> EpisodeFlag {
        match ep.as_bytes().last() {
            Some(b's') => EpisodeFlag::Cooldown,
            Some(b'm') => EpisodeFlag::Muted,
            _ => EpisodeFlag::Sent,
        }
    }
    fn code(self) -> &'static str {
        match self {
            EpisodeFlag::Sent => "n",
            EpisodeFlag::Cooldown => "s",
            EpisodeFlag::Muted => "m",
        }
    }
}

const FIRE: &str = r#"
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local ep = redis.call('GET', KEYS[1])
if ep then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {ep, 'joined'}
end
local flag = ARGV[5]
local last = redis.call('GET', KEYS[3])
if flag == 's' or (last and (tonumber(ARGV[2]) - tonumber(last)) < tonumber(ARGV[4])) then flag = 's' end
local val = ARGV[2] .. ':' .. flag
redis.call('SET', KEYS[1], val, 'PX', ARGV[3])
if flag == 'n' then redis.call('SET', KEYS[3], ARGV[2], 'PX', math.max(tonumber(ARGV[4]), 1000)) end
if flag == 'n' then return {val, 'send'} end
if flag == 'm' then return {val, 'muted'} end
return {val, 'suppressed'}
"#;

// A muted episode's firing goes out once: the first instance whose mute ended turns `m` into `n`.
// Without an episode (expired while muted) one is opened as sent.
const RELEASE: &str = r#"
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local ep = redis.call('GET', KEYS[1])
if ep and string.sub(ep, -1) ~= 'm' then
  if string.sub(ep, -1) == 's' then return {ep, 'suppressed'} end
  return {ep, 'sent'}
end
local start = ARGV[2]
if ep then start = string.sub(ep, 1, -3) end
local val = start .. ':n'
redis.call('SET', KEYS[1], val, 'PX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[2], 'PX', math.max(tonumber(ARGV[4]), 1000))
return {val, 'send'}
"#;

const RESOLVE: &str = r#"
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
if redis.call('ZCARD', KEYS[2]) > 0 then return {'', 'others_firing'} end
local ep = redis.call('GET', KEYS[1])
if not ep then return {'', 'already_resolved'} end
redis.call('DEL', KEYS[1])
if string.sub(ep, -1) == 's' then return {ep, 'suppressed'} end
if string.sub(ep, -1) == 'm' then return {ep, 'muted'} end
return {ep, 'send'}
"#;

pub struct Coordinator {
    link: std::sync::Arc<RedisLink>,
    instance: String,
    /// Episode lifetime without heartbeats (a crashed instance's episode ends after it).
    episode_ttl: Duration,
    fire: redis::Script,
    resolve: redis::Script,
    release: redis::Script,
}

fn ep_key(rule: &str) -> String {
    format!("pp:alerts:ep:{rule}")
}
fn firing_key(rule: &str) -> String {
    format!("pp:alerts:firing:{rule}")
}
fn last_key(rule: &str) -> String {
    format!("pp:alerts:last:{rule}")
}

fn start_of(ep: &str) -> u64 {
    ep.split(':')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

impl Coordinator {
    pub fn new(
        link: std::sync::Arc<RedisLink>,
        instance: String,
        episode_ttl: Duration,
    ) -> Coordinator {
        Coordinator {
            link,
            instance,
            episode_ttl,
            fire: redis::Script::new(FIRE),
            resolve: redis::Script::new(RESOLVE),
            release: redis::Script::new(RELEASE),
        }
    }

    /// An invocation of one of the episode scripts: every one takes KEYS `ep`, `firing` (then its
    /// own) and ARGV `instance`, `now_ms`, `episode_ttl_ms` (then its own).
    fn episode_script<'a>(
        &self,
        script: &'a redis::Script,
        rule: &str,
        now_ms: u64,
    ) -> redis::ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        inv.key(ep_key(rule))
            .key(firing_key(rule))
            .arg(&self.instance)
            .arg(now_ms)
            .arg(self.episode_ttl.as_millis() as u64);
        inv
    }

    /// Runs an episode script; it answers `(episode, outcome)`.
    async fn invoke(
        &self,
        inv: redis::ScriptInvocation<'_>,
    ) -> Result<(String, String), LinkError> {
        self.link
            .run(move |mut c| async move { inv.invoke_async(&mut c).await })
            .await
    }

    /// A local firing transition; `local` is what this instance decided for it (sent, or kept
    /// back by its cooldown or a mute). The shared cooldown can still keep a send back.
    pub async fn fire(
        &self,
        rule: &str,
        now_ms: u64,
        cooldown: Duration,
        local: EpisodeFlag,
    ) -> Result<Claim, LinkError> {
        let mut inv = self.episode_script(&self.fire, rule, now_ms);
        inv.key(last_key(rule))
            .arg(cooldown.as_millis() as u64)
            .arg(local.code());
        let (ep, what) = self.invoke(inv).await?;
        Ok(match what.as_str() {
            "send" => Claim::Send(start_of(&ep)),
            "joined" => Claim::Joined(EpisodeFlag::of(&ep)),
            "muted" => Claim::Skip("muted"),
            _ => Claim::Skip("suppressed"),
        })
    }

    /// A firing a mute held back, due now that the mute ended here: sent by one instance.
    pub async fn release(
        &self,
        rule: &str,
        now_ms: u64,
        cooldown: Duration,
    ) -> Result<Claim, LinkError> {
        let mut inv = self.episode_script(&self.release, rule, now_ms);
        inv.key(last_key(rule)).arg(cooldown.as_millis() as u64);
        let (ep, what) = self.invoke(inv).await?;
        Ok(match what.as_str() {
            "send" => Claim::Send(start_of(&ep)),
            "suppressed" => Claim::Skip("suppressed"),
            _ => Claim::Skip("released"),
        })
    }

    /// Which of `alerts` have an episode open (fire on some instance).
    pub async fn firing_anywhere(
        &self,
        alerts: &[String],
    ) -> Result<std::collections::HashSet<String>, LinkError> {
        if alerts.is_empty() {
            return Ok(Default::default());
        }
        let keys: Vec<String> = alerts.iter().map(|a| ep_key(a)).collect();
        let eps: Vec<Option<String>> = self
            .link
            .run(move |mut c| async move { redis::cmd("MGET").arg(keys).query_async(&mut c).await })
            .await?;
        Ok(alerts
            .iter()
            .zip(eps)
            .filter(|(_, e)| e.is_some())
            .map(|(a, _)| a.clone())
            .collect())
    }

    /// A local resolution.
    pub async fn resolve(&self, rule: &str, now_ms: u64) -> Result<Claim, LinkError> {
        let inv = self.episode_script(&self.resolve, rule, now_ms);
        let (ep, what) = self.invoke(inv).await?;
        Ok(match what.as_str() {
            "send" => Claim::Send(start_of(&ep)),
            "others_firing" => Claim::Skip("others_firing"),
            "suppressed" => Claim::Skip("suppressed"),
            "muted" => Claim::Skip("muted"),
            _ => Claim::Skip("already_resolved"),
        })
    }

    /// A reminder: one instance per (episode, seq). Returns the episode start when this one sends.
    pub async fn remind(&self, rule: &str, seq: u32) -> Result<Claim, LinkError> {
        let ep_k = ep_key(rule);
        let ttl = self.episode_ttl.as_millis() as u64 * 4;
        let inst = self.instance.clone();
        let rule = rule.to_owned();
        let r: Option<(String, Option<String>)> = self
            .link
            .run(move |mut c| async move {
                let ep: Option<String> = redis::cmd("GET").arg(&ep_k).query_async(&mut c).await?;
                let Some(ep) = ep else { return Ok(None) };
                let claim: Option<String> = redis::cmd("SET")
                    .arg(format!("pp:alerts:sent:{rule}:{ep}:reminder:{seq}"))
                    .arg(inst)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl)
                    .query_async(&mut c)
                    .await?;
                Ok(Some((ep, claim)))
            })
            .await?;
        Ok(match r {
            Some((ep, Some(_))) if EpisodeFlag::of(&ep) == EpisodeFlag::Sent => {
                Claim::Send(start_of(&ep))
            }
            Some(_) => Claim::Skip("claimed"),
            None => Claim::Skip("no_episode"),
        })
    }

    /// Keeps this instance's membership and the episode alive while the rule fires here.
    pub async fn heartbeat(&self, rules: &[String], now_ms: u64) -> Result<(), LinkError> {
        if rules.is_empty() {
            return Ok(());
        }
        let ttl = self.episode_ttl.as_millis() as u64;
        let mut pipe = redis::pipe();
        for r in rules {
            pipe.zadd(firing_key(r), &self.instance, now_ms).ignore();
            pipe.cmd("PEXPIRE").arg(firing_key(r)).arg(ttl).ignore();
            pipe.cmd("PEXPIRE").arg(ep_key(r)).arg(ttl).ignore();
        }
        self.link
            .run(move |mut c| async move { pipe.query_async::<()>(&mut c).await })
            .await
    }
}
