import Foundation
import Testing
@testable import Dashboard
@testable import Fleet

/// Parses Prometheus text: the value of the first sample of `name` whose labels include
/// every pair in `labels`.
func prometheusValue(_ text: String, _ name: String, labels: [String: String] = [:]) -> Double? {
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        let parts = line.split(separator: " ")
        guard parts.count == 2 else { continue }
        let series = parts[0]
        let base = series.split(separator: "{", maxSplits: 1).first.map(String.init) ?? ""
        guard base == name else { continue }
        if labels.allSatisfy({ series.contains("\($0.key)=\"\($0.value)\"") }) { return Double(parts[1]) }
    }
    return nil
}

/// The snapshot's figures on a hand-made history, each worked out by hand in the comments.
@Suite struct DashboardSnapshotTests {
    static func episode(_ actor: String, task: String, at t: Double, success: Bool, steps: Int, op: Int, version: Int) -> LearnerHistory.Episode {
        LearnerHistory.Episode(id: UUID(), actor: actor, embodiment: "arm7", task: task, policyVersion: version, policyLag: 0,
                               steps: steps, operatorSteps: op, success: success, receivedAt: t)
    }

    static func make() -> DashboardSnapshot {
        let episodes = [
            episode("a1", task: "reach", at: 10, success: true, steps: 10, op: 5, version: 1),
            episode("a1", task: "reach", at: 30, success: false, steps: 20, op: 0, version: 2),
            episode("a2", task: "pick", at: 60, success: true, steps: 10, op: 10, version: 2),
            episode("a1", task: "reach", at: 90, success: true, steps: 10, op: 0, version: 3),
        ]
        let reach = "arm7/reach"
        let points = [
            LearnerHistory.TrainPoint(step: 1, seconds: 5, loss: 1.0, sampler: [:]),
            LearnerHistory.TrainPoint(step: 2, seconds: 20, loss: 3.0, sampler: [reach: TaskSamplerStatus(onlineShare: 0.3, onlineLoss: nil, offlineLoss: 0.5)]),
            LearnerHistory.TrainPoint(step: 3, seconds: 80, loss: 0.5, sampler: [reach: TaskSamplerStatus(onlineShare: 0.6, onlineLoss: 0.4, offlineLoss: 0.2)]),
        ]
        let now = Date()
        let actors = [
            FleetLearner.ActorStatus(id: "a1", embodiment: "arm7", task: "reach", episodesFinished: 3, episodesAcked: 3, steps: 40,
                                     operatorSteps: 5, successes: 2, policyVersion: 3, registeredAt: now, lastSeen: now.addingTimeInterval(-2)),
            // No heartbeat yet: version 0, so the newest episode's version (2) stands in.
            FleetLearner.ActorStatus(id: "a2", embodiment: "arm7", task: "pick", episodesFinished: 0, episodesAcked: 0, steps: 0,
                                     operatorSteps: 0, successes: 0, policyVersion: 0, registeredAt: now, lastSeen: now),
        ]
        var metrics = FleetMetrics.Snapshot()
        metrics.episodesAccepted = 4
        metrics.trainSteps = 3
        metrics.lastLoss = 0.5
        metrics.rejections = ["nan": 2]
        metrics.versionsSent = 6
        metrics.deltaVersionsSent = 4
        metrics.weightBytesSent = 2_500_000
        return DashboardSnapshot.make(history: LearnerHistory.Snapshot(episodes: episodes, trainPoints: points, seconds: 100),
                                      actors: actors, metrics: metrics, latestVersion: 4, now: now, bins: 4)
    }

    @Test func actorAndTaskRowsMatchHandCounts() throws {
        let s = Self.make()
        let a1 = try #require(s.actors.first { $0.id == "a1" }), a2 = try #require(s.actors.first { $0.id == "a2" })
        #expect(a1.policyVersion == 3 && a1.policyLag == 1 && a2.policyVersion == 2 && a2.policyLag == 2)
        #expect(a1.episodes == 3 && a2.episodes == 1)
        // Operator steps 5 of 40; 2 of 3 succeeded; last 60 s of 100 hold one episode each.
        #expect(abs(a1.interventionRate - 0.125) < 1e-12 && abs(a1.successRate - 2.0 / 3) < 1e-12)
        #expect(abs(a1.episodesPerSecond - 1.0 / 60) < 1e-12 && abs(a2.episodesPerSecond - 1.0 / 60) < 1e-12)
        #expect(abs(a1.secondsSinceSeen - 2) < 1e-6)
        #expect(s.tasks.map(\.task) == ["arm7/pick", "arm7/reach"])
        let reach = s.tasks[1]
        #expect(reach.episodes == 3 && reach.sampler == TaskSamplerStatus(onlineShare: 0.6, onlineLoss: 0.4, offlineLoss: 0.2))
        #expect(s.tasks[0].sampler == nil && s.tasks[0].interventionRate == 1)
    }

    @Test func curvesAreBinMeansOverLearnerTime() {
        // 4 bins of 25 s: centres 12.5, 37.5, 62.5, 87.5.
        let s = Self.make()
        let reach = s.successCurves["arm7/reach"]!
        #expect(reach.map(\.seconds) == [12.5, 37.5, 87.5] && reach.map(\.value) == [1, 0, 1])
        #expect(s.interventionCurves["arm7/reach"]!.map(\.value) == [0.5, 0, 0])
        // Losses 1.0 and 3.0 share bin 0; 0.5 sits alone in bin 3.
        #expect(s.lossCurve.map(\.seconds) == [12.5, 87.5] && s.lossCurve.map(\.value) == [2.0, 0.5])
        #expect(s.onlineShareCurves["arm7/reach"]!.map(\.value) == [0.3, 0.6])
        #expect(s.recentEpisodes.first?.actor == "a1" && s.recentEpisodes.first?.receivedAt == 90)
    }

    @Test func pageAndPrometheusCarryTheSameFigures() throws {
        let s = Self.make()
        let html = DashboardPage().html(s)
        #expect(html.contains("data-metric='actor-a1-policy-lag'>1<"))
        #expect(html.contains("data-metric='actor-a1-intervention-rate'>12.5%<"))
        #expect(html.contains("data-metric='task-arm7/reach-online-share'>0.600<"))
        #expect(html.contains("data-metric='episodes-accepted'>4<"))
        #expect(html.contains("data-metric='rejections-nan'>nan 2<"))
        #expect(html.components(separatedBy: "<svg").count - 1 == 4)  // 2 tasks, loss, ω_on
        let text = PrometheusExporter().render(s)
        #expect(prometheusValue(text, "swiftvla_learner_episodes_accepted_total") == 4)
        #expect(prometheusValue(text, "swiftvla_learner_refusals_total", labels: ["reason": "nan"]) == 2)
        #expect(prometheusValue(text, "swiftvla_actor_policy_lag", labels: ["actor": "a2"]) == 2)
        #expect(prometheusValue(text, "swiftvla_task_online_share", labels: ["task": "arm7/reach"]) == 0.6)
        #expect(prometheusValue(text, "swiftvla_learner_last_loss") == 0.5)
        #expect(html.contains("data-metric='weight-bytes-sent'>2.5 MB (4/6)<"))
        #expect(prometheusValue(text, "swiftvla_learner_delta_versions_sent_total") == 4)
        #expect(prometheusValue(text, "swiftvla_learner_weight_bytes_sent_total") == 2_500_000)
        // A second scrape of changed figures replaces, not adds.
        var later = s
        later.metrics.episodesAccepted = 6
        let exporter = PrometheusExporter()
        _ = exporter.render(s)
        #expect(prometheusValue(exporter.render(later), "swiftvla_learner_episodes_accepted_total") == 6)
    }
}
