//! SLA metrics measured at PgBouncer (`pgbouncer` source), between the app instances and
//! Postgres: `pgbouncer_clients_waiting_peak` (the most clients `SHOW POOLS` showed waiting for
//! a server connection at once), `pgbouncer_server_connections_peak` (the most server
//! connections it held at once) and `pgbouncer_avg_wait` (the wait time `SHOW STATS` counted
//! between the phase's first and last sample, per transaction pooled in that span).

use super::{phase_windows, Measure};
use crate::observe::{Observations, PgbouncerSample};
use crate::scenario::{Metric, Sla, Source};

pub(crate) fn measure(sla: &Sla, obs: &Observations) -> Measure {
    let (phase, windows) = match phase_windows(sla, obs) {
        Ok(w) => w,
        Err(missing) => return missing,
    };
    let samples: Vec<_> = obs.pgbouncer_samples_in(&windows).collect();
    let within = format!(
        "{} PgBouncer samples in `{}`",
        samples.len(),
        phase.as_str()
    );
    let peak =
        |what: &str, of: &dyn Fn(&PgbouncerSample) -> Option<u64>, detail: &str| match samples
            .iter()
            .filter_map(|s| of(s))
            .max()
        {
            Some(p) => Measure::Value {
                value: p as f64,
                detail: format!("{detail} ({within})"),
            },
            None => Measure::NoData(no_figures(what, &within, &samples)),
        };
    match sla.metric {
        Metric::PgbouncerClientsWaitingPeak => peak(
            "SHOW POOLS cl_waiting",
            &|s| s.clients_waiting,
            "most clients waiting for a server connection at once (SHOW POOLS cl_waiting)",
        ),
        Metric::PgbouncerServerConnectionsPeak => peak(
            "SHOW POOLS sv_*",
            &|s| s.server_connections,
            "most server connections at once (SHOW POOLS sv_active+sv_idle+sv_used+sv_tested+sv_login)",
        ),
        Metric::PgbouncerAvgWait => {
            let counted: Vec<(u64, u64)> = samples
                .iter()
                .filter_map(|s| Some((s.xact_count?, s.wait_time_us?)))
                .collect();
            let (Some(first), Some(last)) = (counted.first(), counted.last()) else {
                return Measure::NoData(no_figures("SHOW STATS", &within, &samples));
            };
            let transactions = last.0.saturating_sub(first.0);
            if transactions == 0 {
                return Measure::NoData(format!(
                    "no transaction went through PgBouncer between the first and last sample ({within})"
                ));
            }
            let waited_us = last.1.saturating_sub(first.1);
            Measure::Value {
                value: waited_us as f64 / 1000.0 / transactions as f64,
                detail: format!(
                    "{:.0} ms waited (SHOW STATS total_wait_time) over {transactions} transactions ({within})",
                    waited_us as f64 / 1000.0
                ),
            }
        }
        other => Measure::NotEvaluated(format!("{} is not a PgBouncer metric", other.as_str())),
    }
}

/// "No data" naming what was looked for and, when the samples failed, why.
fn no_figures(what: &str, within: &str, samples: &[&PgbouncerSample]) -> String {
    let error = samples.iter().find_map(|s| s.error.as_deref());
    super::no_source_figures(what, within, Source::Pgbouncer, samples.len(), error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Window;

    fn sla(metric: Metric, threshold: &str) -> Sla {
        serde_yaml::from_str::<Sla>(&format!(
            "{{metric: {metric}, comparator: '<=', threshold: {threshold}}}"
        ))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn obs(samples: Vec<PgbouncerSample>) -> Observations {
        Observations {
            load: Window::new(0.0, 10.0),
            pgbouncer: samples,
            ..Observations::default()
        }
    }

    fn at(t: f64, waiting: u64, servers: u64, xacts: u64, wait_us: u64) -> PgbouncerSample {
        PgbouncerSample {
            t,
            clients_waiting: Some(waiting),
            server_connections: Some(servers),
            xact_count: Some(xacts),
            wait_time_us: Some(wait_us),
            ..PgbouncerSample::default()
        }
    }

    #[test]
    fn peaks_and_mean_wait_over_the_phase() {
        // A warm-up sample (t < 0) with a higher peak must not count.
        let mut samples = vec![at(-1.0, 99, 99, 0, 0)];
        // 100 transactions and 50 ms of waiting per second from t=0.5 to t=9.5.
        samples.extend((0..10).map(|t| {
            at(
                t as f64 + 0.5,
                t % 3,
                10 + t % 5,
                1000 + 100 * t,
                7_000 + 50_000 * t,
            )
        }));
        let o = obs(samples);
        let value = |m, th| match measure(&sla(m, th), &o) {
            Measure::Value { value, .. } => value,
            _ => panic!("{m}: no value"),
        };
        assert_eq!(value(Metric::PgbouncerClientsWaitingPeak, "1"), 2.0);
        assert_eq!(value(Metric::PgbouncerServerConnectionsPeak, "1"), 14.0);
        // 450 ms over 900 transactions.
        let wait = value(Metric::PgbouncerAvgWait, "1ms");
        assert!((wait - 0.5).abs() < 1e-9, "{wait}");
    }

    #[test]
    fn failed_samples_are_no_data_with_the_reason() {
        let o = obs(vec![PgbouncerSample {
            t: 1.0,
            error: Some("pgbouncer: cannot connect (connection error)".into()),
            ..PgbouncerSample::default()
        }]);
        for (m, th) in [
            (Metric::PgbouncerClientsWaitingPeak, "1"),
            (Metric::PgbouncerServerConnectionsPeak, "1"),
            (Metric::PgbouncerAvgWait, "1ms"),
        ] {
            match measure(&sla(m, th), &o) {
                Measure::NoData(why) => assert!(why.contains("cannot connect"), "{why}"),
                _ => panic!("{m}: expected no data"),
            }
        }
        // No samples at all: the source is named.
        match measure(&sla(Metric::PgbouncerAvgWait, "1ms"), &obs(Vec::new())) {
            Measure::NoData(why) => assert!(why.contains("`pgbouncer` in sources"), "{why}"),
            _ => panic!("expected no data"),
        }
    }
}
