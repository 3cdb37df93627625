import Metrics
import Prometheus

/// Metrics for the whole process, exported in the Prometheus text format at `/metrics`.
public enum Observability {
    public static let registry = PrometheusCollectorRegistry()

    /// Routes swift-metrics into the registry. Once per process, before any metric is made; tests
    /// skip it and their metrics go nowhere.
    public static func bootstrapMetrics() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: self.registry))
    }
}
