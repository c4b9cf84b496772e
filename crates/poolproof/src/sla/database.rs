//! SLA metrics measured at the database (`postgres` source), whatever the app says about
//! itself: `db_sessions_opened_per_request` (the sessions `pg_stat_database.sessions` counted
//! between the phase's first and last sample, per client request completed in that span) and
//! `db_connections_peak` (the most client connections `pg_stat_activity` showed at once).

use super::{phase_windows, Measure};
use crate::observe::{Observations, Window};
use crate::scenario::{Metric, Sla, Source};

pub(crate) fn measure(sla: &Sla, obs: &Observations) -> Measure {
    let (phase, windows) = match phase_windows(sla, obs) {
        Ok(w) => w,
        Err(missing) => return missing,
    };
    let samples: Vec<_> = obs.db_samples_in(&windows).collect();
    let within = format!("{} database samples in `{}`", samples.len(), phase.as_str());
    match sla.metric {
        Metric::DbSessionsOpenedPerRequest => {
            let counted: Vec<(f64, u64)> = samples
                .iter()
                .filter_map(|s| s.sessions.map(|n| (s.t, n)))
                .collect();
            let (Some(first), Some(last)) = (counted.first(), counted.last()) else {
                return Measure::NoData(no_figures("pg_stat_database.sessions", &within, &samples));
            };
            if last.0 <= first.0 {
                return Measure::NoData(format!(
                    "one pg_stat_database.sessions figure in the {within}: a rate needs two"
                ));
            }
            // The span between the two samples, clipped to the phase's windows.
            let span: Vec<Window> = windows
                .iter()
                .filter_map(|w| w.intersect(&Window::new(first.0, last.0)))
                .collect();
            let requests = obs.client.window(&span, None).requests;
            if requests == 0 {
                return Measure::NoData(format!(
                    "no requests completed between the first and last database sample ({within})"
                ));
            }
            let opened = last.1.saturating_sub(first.1);
            Measure::Value {
                value: opened as f64 / requests as f64,
                detail: format!(
                    "{opened} sessions opened (pg_stat_database.sessions) for {requests} requests ({within})"
                ),
            }
        }
        Metric::DbConnectionsPeak => {
            let peak = samples.iter().filter_map(|s| s.connections).max();
            match peak {
                Some(p) => Measure::Value {
                    value: p as f64,
                    detail: format!(
                        "most client connections in pg_stat_activity at once ({within})"
                    ),
                },
                None => Measure::NoData(no_figures("pg_stat_activity", &within, &samples)),
            }
        }
        other => Measure::NotEvaluated(format!("{} is not a database metric", other.as_str())),
    }
}

/// "No data" naming what was looked for and, when the samples failed, why.
fn no_figures(what: &str, within: &str, samples: &[&crate::observe::DbSample]) -> String {
    let error = samples.iter().find_map(|s| s.error.as_deref());
    super::no_source_figures(what, within, Source::Postgres, samples.len(), error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{ClientSeries, DbSample};
    use crate::scenario::{Comparator, Phase, Threshold};

    fn sla(metric: Metric) -> Sla {
        serde_yaml::from_str::<Sla>(&format!(
            "{{metric: {metric}, comparator: '<=', threshold: 1}}"
        ))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn obs(samples: Vec<DbSample>) -> Observations {
        let mut o = Observations {
            load: Window::new(0.0, 10.0),
            db: samples,
            ..Observations::default()
        };
        o.client = ClientSeries::new(vec!["r".into()]);
        for t in 0..10 {
            for _ in 0..20 {
                o.client.record("r", t as f64 + 0.5, None, None);
            }
        }
        o
    }

    fn at(t: f64, sessions: u64, connections: u64) -> DbSample {
        DbSample {
            t,
            sessions: Some(sessions),
            connections: Some(connections),
            error: None,
        }
    }

    #[test]
    fn sessions_per_request_and_peak_connections() {
        // 5 sessions per second between t=0.5 and t=9.5, 20 requests per second.
        let o = obs((0..10)
            .map(|t| at(t as f64 + 0.5, 100 + 5 * t, 3 + t % 4))
            .collect());
        let s = sla(Metric::DbSessionsOpenedPerRequest);
        assert_eq!(s.comparator, Comparator::Le);
        assert_eq!(s.phase, Phase::Load);
        assert_eq!(s.threshold, Threshold::Number(1.0));
        match measure(&s, &o) {
            Measure::Value { value, detail } => {
                assert!((value - 45.0 / 180.0).abs() < 0.02, "{value} {detail}");
                assert!(detail.contains("45 sessions"), "{detail}");
            }
            _ => panic!("no value"),
        }
        match measure(&sla(Metric::DbConnectionsPeak), &o) {
            Measure::Value { value, .. } => assert_eq!(value, 6.0),
            _ => panic!("no value"),
        }
    }

    #[test]
    fn failed_samples_are_no_data_with_the_reason() {
        let gap = DbSample {
            t: 1.0,
            error: Some("postgres: cannot connect (connection error)".into()),
            ..DbSample::default()
        };
        let o = obs(vec![gap]);
        for m in [
            Metric::DbSessionsOpenedPerRequest,
            Metric::DbConnectionsPeak,
        ] {
            match measure(&sla(m), &o) {
                Measure::NoData(why) => assert!(why.contains("cannot connect"), "{why}"),
                _ => panic!("{m}: expected no data"),
            }
        }
    }
}
