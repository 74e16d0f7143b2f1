import Fleet
import Foundation
import Prometheus

/// The dashboard's figures in Prometheus' text format (`/metrics`): learner counters as
/// `swiftvla_learner_*`, per-task and per-actor gauges labelled by task / actor. Values are
/// copied from a `DashboardSnapshot` at each scrape, so the page and the scrape agree.
public final class PrometheusExporter: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let lock = Locked(())

    public init() {}

    /// Updates every series from `s` and returns the exposition text.
    public func render(_ s: DashboardSnapshot) -> String {
        lock.withLock { _ in
            update(s)
            return registry.emitToString()
        }
    }

    private func counter(_ name: String, _ help: String, _ value: Int, labels: [(String, String)] = []) {
        let c = registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "swiftvla", metricName: name, unitName: "total", helpText: help),
                                     labels: labels)
        // The learner owns the running total; a counter here mirrors it.
        c.reset()
        c.increment(by: Int64(value))
    }

    private func gauge(_ name: String, _ help: String, _ value: Double, labels: [(String, String)] = []) {
        registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "swiftvla", metricName: name, unitName: "", helpText: help),
                           labels: labels).set(value)
    }

    private func update(_ s: DashboardSnapshot) {
        let m = s.metrics
        counter("learner_episodes_accepted", "Episodes validated, persisted and acknowledged.", m.episodesAccepted)
        counter("learner_episodes_duplicate", "Re-sent episodes that were already stored.", m.episodesDuplicate)
        counter("learner_episodes_rejected", "Uploads refused by validation.", m.episodesRejected)
        for (reason, n) in m.rejections {
            counter("learner_refusals", "Refused calls by reason.", n, labels: [("reason", reason)])
        }
        counter("learner_steps_accepted", "Steps in accepted episodes.", m.stepsAccepted)
        counter("learner_operator_steps_accepted", "Operator (intervention) steps in accepted episodes.", m.operatorStepsAccepted)
        counter("learner_bytes_received", "Upload payload bytes received.", m.bytesReceived)
        counter("learner_heartbeats", "Actor heartbeats.", m.heartbeats)
        counter("learner_train_steps", "Optimizer steps taken.", m.trainSteps)
        counter("learner_versions_published", "Policy versions published.", m.versionsPublished)
        counter("learner_checkpoints_saved", "Learner checkpoints written.", m.checkpointsSaved)
        counter("learner_versions_sent", "Policy versions written to actors' watch streams.", m.versionsSent)
        counter("learner_delta_versions_sent", "Policy versions sent as deltas against the stream's previous one.", m.deltaVersionsSent)
        counter("learner_weight_bytes_sent", "Weight payload bytes written to watch streams.", m.weightBytesSent)
        gauge("learner_uptime_seconds", "Seconds since the learner started.", s.uptimeSeconds)
        gauge("learner_policy_version", "Newest published policy version.", Double(s.latestVersion))
        gauge("learner_actors_registered", "Actors registered.", Double(m.actorsRegistered))
        if let loss = m.lastLoss { gauge("learner_last_loss", "Training loss of the last step.", Double(loss)) }
        gauge("learner_publication_bytes", "Size of the last published weights.", Double(m.lastPublicationBytes))
        gauge("learner_publication_delta_bytes", "Size of the last published version's delta (0: none).", Double(m.lastPublicationDeltaBytes))
        gauge("learner_publication_seconds", "Export + encode time of the last published weights.", m.lastPublicationSeconds)
        for t in s.tasks {
            let labels = [("task", t.task)]
            gauge("task_episodes", "Accepted episodes of the task.", Double(t.episodes), labels: labels)
            gauge("task_success_rate", "Fleet success rate of the task (operator takeovers included).", t.successRate, labels: labels)
            gauge("task_intervention_rate", "Operator steps / all steps of the task.", t.interventionRate, labels: labels)
            if let sampler = t.sampler {
                gauge("task_online_share", "Adaptive sampler's online share (SOP's omega_on).", sampler.onlineShare, labels: labels)
                if let l = sampler.onlineLoss { gauge("task_online_loss", "Windowed mean loss on online samples.", l, labels: labels) }
                if let l = sampler.offlineLoss { gauge("task_offline_loss", "Windowed mean loss on offline samples.", l, labels: labels) }
            }
        }
        for a in s.actors {
            let labels = [("actor", a.id), ("embodiment", a.embodiment), ("task", a.task)]
            gauge("actor_policy_version", "Policy version the actor runs.", Double(a.policyVersion), labels: labels)
            gauge("actor_policy_lag", "Versions the actor is behind the learner.", Double(a.policyLag), labels: labels)
            gauge("actor_episodes_per_second", "Accepted episodes per second (last minute).", a.episodesPerSecond, labels: labels)
            gauge("actor_intervention_rate", "Operator steps / all steps of the actor's episodes.", a.interventionRate, labels: labels)
        }
    }
}
