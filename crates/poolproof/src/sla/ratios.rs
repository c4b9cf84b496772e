//! A/B ratio SLA metrics between two arms' observations (measured load window, all routes).

use super::Measure;
use crate::observe::{Observations, PhaseKind};
use crate::scenario::{Metric, Sla, Threshold};
use std::collections::BTreeMap;

pub(crate) fn measure(
    sla: &Sla,
    arms: &BTreeMap<String, Observations>,
    arm_names: &[String],
) -> Measure {
    let (treatment, baseline) = match (&sla.arms, arm_names) {
        (Some(p), _) => (p.treatment.as_str(), p.baseline.as_str()),
        (None, [a, b, ..]) => (a.as_str(), b.as_str()),
        (None, _) => {
            return Measure::NotEvaluated(format!("{} needs two arms", sla.metric.as_str()));
        }
    };
    let (Some(t), Some(b)) = (arms.get(treatment), arms.get(baseline)) else {
        return Measure::NoData(format!(
            "arms `{treatment}` and `{baseline}` were not both run"
        ));
    };
    let stats = |o: &Observations| o.client.window(&o.windows(PhaseKind::Load), None);
    let (ts, bs) = (stats(t), stats(b));
    let as_ratio = matches!(sla.threshold, Threshold::Ratio(_));
    let names = format!("{treatment} vs {baseline}");
    match sla.metric {
        Metric::P95Improvement => {
            match (ts.latency.quantile_ms(0.95), bs.latency.quantile_ms(0.95)) {
                (Some(tp), Some(bp)) if tp > 0.0 && bp > 0.0 => Measure::Value {
                    // A ratio threshold (x10) reads "baseline p95 is 10 times treatment's".
                    value: if as_ratio { bp / tp } else { 1.0 - tp / bp },
                    detail: format!("p95 {tp:.3} ms vs {bp:.3} ms ({names})"),
                },
                _ => Measure::NoData(format!("a p95 is missing ({names})")),
            }
        }
        Metric::CapacityRatio | Metric::ThroughputLoss => {
            match (ts.throughput_rps(), bs.throughput_rps()) {
                (Some(tr), Some(br)) if br > 0.0 => {
                    let ratio = tr / br;
                    let value = if sla.metric == Metric::CapacityRatio {
                        ratio
                    } else {
                        1.0 - ratio
                    };
                    Measure::Value {
                        value,
                        detail: format!("throughput {tr:.1} rps vs {br:.1} rps ({names})"),
                    }
                }
                _ => Measure::NoData(format!("no baseline throughput ({names})")),
            }
        }
        Metric::ConnectionOverheadReduction => Measure::NotEvaluated(
            "connection_overhead_reduction: not evaluated yet (issue 5)".into(),
        ),
        other => Measure::NotEvaluated(format!("{} is not a ratio metric", other.as_str())),
    }
}
