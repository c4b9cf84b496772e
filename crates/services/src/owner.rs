//! Identity of a process that survives pid reuse (pid + start time), so leftovers of a
//! killed run can be told from services of a run that is still alive.

/// `pid:starttime` of a process, as recorded in labels and pid files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessToken {
    pub pid: i32,
    pub start: u64,
}

impl ProcessToken {
    /// The current process.
    pub fn current() -> ProcessToken {
        let pid = std::process::id() as i32;
        ProcessToken {
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    /// The process `pid`, if it exists.
    pub fn of(pid: i32) -> Option<ProcessToken> {
        start_time(pid).map(|start| ProcessToken { pid, start })
    }

    /// True while the very process this token names is alive.
    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }

    pub fn parse(text: &str) -> Option<ProcessToken> {
        let (pid, start) = text.trim().split_once(':')?;
        Some(ProcessToken {
            pid: pid.parse().ok()?,
            start: start.parse().ok()?,
        })
    }
}

impl std::fmt::Display for ProcessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.pid, self.start)
    }
}

/// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_process_is_alive_and_round_trips() {
        let me = ProcessToken::current();
        assert!(me.start > 0);
        assert!(me.is_alive());
        assert_eq!(ProcessToken::parse(&me.to_string()), Some(me.clone()));
        let other = ProcessToken {
            pid: me.pid,
            start: me.start + 1,
        };
        assert!(!other.is_alive());
    }
}
