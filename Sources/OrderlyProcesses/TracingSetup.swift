import Foundation
import Logging
import OTel
import OrderlyEventStore
import ServiceLifecycle
import Synchronization
import Tracing

/// OpenTelemetry traces, configured by the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
/// `OTEL_EXPORTER_OTLP_PROTOCOL` (http/protobuf or http/json), `OTEL_SERVICE_NAME`,
/// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`, `OTEL_RESOURCE_ATTRIBUTES`) and off, at no
/// cost, when no endpoint is set. Tracing only: logs and metrics keep their own systems.
public enum TracingSetup {
    private static let exporter = Mutex<(any Service)?>(nil)

    /// Whether the environment asks for traces.
    public static func requested(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        let endpoint = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"] ?? ""
        return !endpoint.isEmpty && environment["OTEL_SDK_DISABLED"] != "true" && environment["OTEL_TRACES_EXPORTER"] != "none"
    }

    /// Once per long-running process, before its services are made. `serviceName` unless
    /// `OTEL_SERVICE_NAME` says otherwise.
    public static func bootstrap(serviceName: String, logger: Logger) {
        guard self.requested() else { return }
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.diagnosticLogger = .custom(logger)
        configuration.diagnosticLogLevel = .warning
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        // A collector that does not answer must not hold up the exit after SIGTERM (10 s): one
        // export waits at most 2 s, the last flush at most 3 s (the variables still override).
        configuration.traces.otlpExporter.timeout = .seconds(2)
        configuration.traces.batchSpanProcessor.exportTimeout = .seconds(3)
        configuration.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        do {
            let backend = try OTel.makeTracingBackend(configuration: configuration)
            InstrumentationSystem.bootstrap(backend.factory)
            self.exporter.withLock { $0 = backend.service }
            TraceContext.enable()
            logger.info("exporting traces", metadata: ["service.name": "\(serviceName)"])
        } catch {
            logger.warning("traces are not exported: the tracing configuration was refused", metadata: ["error": "\(error)"])
        }
    }

    /// The exporter, to run first in the process's service group (so it stops last, flushing the
    /// spans of everything stopped before it); nil when tracing is off.
    public static var service: (any Service)? { self.exporter.withLock { $0 } }

    /// For log lines: `trace_id` and `span_id` of the current span (nothing outside one).
    static func loggingMetadataProvider() -> Logger.MetadataProvider? {
        self.requested() ? OTel.makeLoggingMetadataProvider() : nil
    }
}
