//! Routing by severity: which channels a critical, warning or info notification goes to
//! (`ALERT_ROUTE_CRITICAL`, `ALERT_ROUTE_WARNING`, `ALERT_ROUTE_INFO`). Defaults: critical to
//! Slack and email, warning and info to Slack. A route naming a channel that is not configured
//! (no `SLACK_WEBHOOK_URL`, or no Resend key and recipient) sends nothing there.

use std::fmt;

use serde::Serialize;

use super::rules::Severity;

/// A notification channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Slack,
    Email,
}

impl ChannelKind {
    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Email => "email",
        }
    }
}

/// The channels of one severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Route {
    pub slack: bool,
    pub email: bool,
}

impl Route {
    pub const SLACK: Route = Route {
        slack: true,
        email: false,
    };
    pub const BOTH: Route = Route {
        slack: true,
        email: true,
    };

    pub fn allows(self, c: ChannelKind) -> bool {
        match c {
            ChannelKind::Slack => self.slack,
            ChannelKind::Email => self.email,
        }
    }

    /// Parses `slack`, `email`, `slack,email` (any order, spaces allowed) or `none`.
    pub fn parse(s: &str) -> Option<Route> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("none") {
            return Some(Route::default());
        }
        let mut r = Route::default();
        for part in s.split(',') {
            match part.trim().to_ascii_lowercase().as_str() {
                "slack" => r.slack = true,
                "email" => r.email = true,
                _ => return None,
            }
        }
        Some(r)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.slack, self.email) {
            (true, true) => "slack,email",
            (true, false) => "slack",
            (false, true) => "email",
            (false, false) => "none",
        })
    }
}

/// The form `Route::parse` accepts, for configuration errors.
pub const ROUTE_FORM: &str = "a comma-separated list of slack, email (or none)";

/// The route of every severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Routes {
    pub critical: Route,
    pub warning: Route,
    pub info: Route,
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            critical: Route::BOTH,
            warning: Route::SLACK,
            info: Route::SLACK,
        }
    }
}

impl Routes {
    pub fn of(&self, s: Severity) -> Route {
        match s {
            Severity::Critical => self.critical,
            Severity::Warning => self.warning,
            Severity::Info => self.info,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_default_by_severity() {
        assert_eq!(Route::parse("slack"), Some(Route::SLACK));
        assert_eq!(Route::parse(" Email , slack "), Some(Route::BOTH));
        assert_eq!(Route::parse("none"), Some(Route::default()));
        for bad in ["", "sms", "slack,,email", "slack;email"] {
            assert_eq!(Route::parse(bad), None, "{bad}");
        }
        let r = Routes::default();
        assert!(r.of(Severity::Critical).allows(ChannelKind::Email));
        assert!(r.of(Severity::Warning).allows(ChannelKind::Slack));
        assert!(!r.of(Severity::Warning).allows(ChannelKind::Email));
        assert_eq!(r.of(Severity::Critical).to_string(), "slack,email");
    }
}
