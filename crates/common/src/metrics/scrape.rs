//! Collecting the meter provider's current values on demand (a Prometheus scrape) through a
//! manual reader that the provider owns and the metrics endpoint shares.

use std::sync::{Arc, Weak};
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, Temporality};

use super::MetricsError;
use super::prometheus;

/// Collects the current values and renders them for Prometheus.
#[derive(Clone)]
pub struct Scraper {
    reader: Weak<ManualReader>,
}

impl Scraper {
    /// A scraper of `provider`'s metrics through `reader` (which must be one of its readers, see
    /// [`shared_reader`]).
    pub fn new(reader: &Arc<ManualReader>) -> Self {
        Self { reader: Arc::downgrade(reader) }
    }

    /// Collects every instrument (running observable callbacks, which may block briefly) and
    /// renders the text exposition.
    pub fn scrape(&self) -> Result<String, MetricsError> {
        let reader = self.reader.upgrade().ok_or_else(|| MetricsError::Collect("metrics were shut down".into()))?;
        let mut rm = ResourceMetrics::default();
        reader.collect(&mut rm).map_err(|e| MetricsError::Collect(e.to_string()))?;
        Ok(prometheus::render(&rm))
    }
}

/// A manual reader the provider owns while the caller keeps a handle to collect from.
pub fn shared_reader(reader: &Arc<ManualReader>) -> impl MetricReader {
    SharedReader(reader.clone())
}

#[derive(Debug)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}
