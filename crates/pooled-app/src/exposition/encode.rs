//! One metric family at a time through prometheus-client's [`DescriptorEncoder`]: the
//! collectors of this app ([`crate::api::prometheus`], [`crate::pool::PoolMetrics`]) read live
//! state at scrape time and write it with these, so no value is copied into a registry between
//! scrapes.

use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::buckets::Counts;
use super::label::Labels;

type R = Result<(), std::fmt::Error>;

/// A gauge family: one sample per label set.
pub fn gauge<V: EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels, V)],
) -> R {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in samples {
        if labels.is_empty() {
            m.encode_gauge(v)?;
        } else {
            m.encode_family(labels)?.encode_gauge(v)?;
        }
    }
    Ok(())
}

/// A counter family; `name` without `_total` (the encoder appends it to the samples).
pub fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels, u64)],
) -> R {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in samples {
        if labels.is_empty() {
            m.encode_counter::<NoLabelSet, u64, f64>(v, None)?;
        } else {
            m.encode_family(labels)?
                .encode_counter::<NoLabelSet, u64, f64>(v, None)?;
        }
    }
    Ok(())
}

/// A histogram family in seconds; `name` without `_seconds` (the unit is appended).
pub fn histogram(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, &Counts)],
) -> R {
    let mut m = enc.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for (labels, c) in series {
        m.encode_family(labels)?.encode_histogram::<NoLabelSet>(
            c.sum_seconds(),
            c.count(),
            &c.pairs(),
            None,
        )?;
    }
    Ok(())
}
