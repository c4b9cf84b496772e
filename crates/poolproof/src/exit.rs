//! poolproof's process exit codes, the contract CI scripts gate on.

/// How a poolproof command ended. The numeric values are stable and documented in the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Exit {
    /// 0: every SLA met (or the command succeeded).
    Ok = 0,
    /// 1: an SLA or a regression gate failed.
    Failed = 1,
    /// 2: invalid scenario or command-line usage.
    Invalid = 2,
    /// 3: infrastructure failure (services, app, engine, I/O) — no verdict.
    Infrastructure = 3,
    /// 4: the measurements cannot decide (host too noisy, load generator saturated) — no verdict.
    Inconclusive = 4,
    /// 130: interrupted by Ctrl-C / SIGTERM (128 + SIGINT) — load stopped, everything torn
    /// down, partial reports written, no verdict.
    Interrupted = 130,
}

impl Exit {
    /// The numeric exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
    /// The more severe of two outcomes when several scenarios run: interrupted > invalid >
    /// infrastructure > failed > inconclusive > ok.
    pub fn worst(self, other: Exit) -> Exit {
        fn rank(e: Exit) -> u8 {
            match e {
                Exit::Ok => 0,
                Exit::Inconclusive => 1,
                Exit::Failed => 2,
                Exit::Infrastructure => 3,
                Exit::Invalid => 4,
                Exit::Interrupted => 5,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn codes_are_stable_and_worst_wins() {
        assert_eq!(
            [
                Exit::Ok,
                Exit::Failed,
                Exit::Invalid,
                Exit::Infrastructure,
                Exit::Inconclusive
            ]
            .map(Exit::code),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(Exit::Ok.worst(Exit::Failed), Exit::Failed);
        assert_eq!(
            Exit::Failed.worst(Exit::Infrastructure),
            Exit::Infrastructure
        );
        assert_eq!(Exit::Invalid.worst(Exit::Ok), Exit::Invalid);
        assert_eq!(Exit::Inconclusive.worst(Exit::Failed), Exit::Failed);
    }
}
