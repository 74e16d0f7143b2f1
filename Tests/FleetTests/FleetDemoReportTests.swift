import Foundation
import Testing
@testable import Fleet

@Suite("Fleet demo report")
struct FleetDemoReportTests {
    func episode(_ task: String, v: Int, lag: Int = 0, steps: Int, op: Int, ok: Bool, at t: Double) -> FleetDemoReport.Episode {
        FleetDemoReport.Episode(actor: "a", task: task, policyVersion: v, policyLag: lag, steps: steps,
                                operatorSteps: op, success: ok, finishedAt: t)
    }

    @Test func aggregatesPerVersionAndTimeAndRendersHTML() throws {
        var r = FleetDemoReport()
        r.fleetSeconds = 100
        r.episodes = [
            episode("reach", v: 1, lag: 0, steps: 100, op: 50, ok: false, at: 10),
            episode("reach", v: 1, lag: 2, steps: 60, op: 0, ok: true, at: 30),
            episode("reach", v: 3, lag: 1, steps: 40, op: 10, ok: true, at: 90),
            episode("a<b", v: 2, steps: 10, op: 10, ok: true, at: 99),
        ]
        // Version 1 of reach: 1 of 2 successes, 50 operator steps of 160.
        #expect(r.byVersion(task: "reach") == [
            .init(version: 1, episodes: 2, successRate: 0.5, interventionRate: 50.0 / 160),
            .init(version: 3, episodes: 1, successRate: 1, interventionRate: 0.25),
        ])
        // 4 bins of 25 s: reach episodes at 10 and 30 s fall in bins 0 and 1, 90 s in bin 3.
        let bins = r.byTime(task: "reach", bins: 4)
        #expect(bins.map(\.start) == [0, 25, 75])
        #expect(bins.map(\.row.episodes) == [1, 1, 1])
        #expect(r.episodesPerSecond == 0.04)
        #expect(r.meanPolicyLag == 0.75)
        #expect(r.interventionRate == 70.0 / 210)
        #expect(r.takeoverSummary == "none; 0 episodes without one")   // reasons not recorded
        r.episodes[0].takeovers = ["stall", "deviation", "stall"]
        r.episodes[1].takeovers = []
        r.episodes[2].takeovers = ["budget"]
        #expect(r.takeoversByReason == ["stall": 2, "deviation": 1, "budget": 1])
        #expect(r.takeoverSummary == "stall 2, budget 1, deviation 1; 1 episodes without one")
        r.bytesReceived = 5_000_000
        #expect(r.ingestMegabytesPerSecond == 0.05)
        r.before = [.init(embodiment: "arm7", task: "reach", episodes: 20, successes: 4, rate: 0.2, interval: [0.08, 0.42])]
        r.after = [.init(embodiment: "arm7", task: "reach", episodes: 20, successes: 9, rate: 0.45, interval: [0.26, 0.66])]
        let html = r.html()
        #expect(html.contains("20% [8–42] (4/20)") && html.contains("45% [26–66] (9/20)") && html.contains("+25 points"))
        #expect(html.contains("<td>–</td><td>–</td></tr>"))   // no per-seed outcomes: no paired test
        // Per seed: before solves 0–3, after 0–2 and 4–9: 6 seeds only after, 1 only before;
        // McNemar exact p = 2·P(Binomial(7, ½) ≤ 1) = 2·(1 + 7)/128 = 0.125.
        r.before[0].perSeedSuccess = (0..<20).map { $0 < 4 }
        r.after[0].perSeedSuccess = (0..<20).map { $0 < 3 || (4...9).contains($0) }
        #expect(r.paired(r.after[0]).map { [$0.candidateOnly, $0.baselineOnly] } == [6, 1])
        #expect(r.html().contains("<td>6 / 1</td><td>0.125</td>"))
        #expect(html.contains("a&lt;b") && !html.contains("a<b"))
        #expect(html.components(separatedBy: "<svg").count - 1 == 4)   // 2 tasks × (version, time)
        #expect(!html.contains("OOD guard"))   // no guard, no table
        r.oodGuard = ["demo-actor-0": .init(chunks: 40, outOfDistribution: 3, corrected: 0)]
        #expect(r.html().contains("<td>demo-actor-0</td><td>40</td><td>3 (7.5%)</td><td>0</td>"))
        // Milestones: a row per milestone, before with its episodes, after's count beside it.
        #expect(!html.contains("Where episodes stop"))   // no counts, no table
        r.before[0].milestones = [.init(milestone: "near_object", episodes: 12), .init(milestone: "succeeded", episodes: 4)]
        r.after[0].milestones = [.init(milestone: "near_object", episodes: 15), .init(milestone: "succeeded", episodes: 9)]
        let withMilestones = r.html()
        #expect(withMilestones.contains("<td>arm7/reach</td><td>near_object</td><td>12/20</td><td>15</td></tr>"))
        #expect(withMilestones.contains("<td>arm7/reach</td><td>succeeded</td><td>4/20</td><td>9</td></tr>"))
        // JSON round trip.
        let decoded = try JSONDecoder().decode(FleetDemoReport.self, from: JSONEncoder().encode(r))
        #expect(decoded.episodes.count == 4 && decoded.after[0].successes == 9 && decoded.oodGuard == r.oodGuard)
        #expect(decoded.after[0].milestones == r.after[0].milestones)
    }

    @Test func aCachedEvaluationIsUsedOnlyWhenWrittenAfterTheCheckpoint() throws {
        let dir = temporaryDirectory("eval-cache")
        let checkpoint = dir.appendingPathComponent("checkpoint"), cache = dir.appendingPathComponent("held-out.json")
        try FileManager.default.createDirectory(at: checkpoint, withIntermediateDirectories: true)
        let config = checkpoint.appendingPathComponent("config.json")
        try Data("{}".utf8).write(to: config)
        let before = [FleetDemoReport.Evaluation(embodiment: "arm7", task: "reach", episodes: 3, successes: 1, rate: 1.0 / 3,
                                                 interval: [0.06, 0.79], perSeedSuccess: [false, true, false])]
        try JSONEncoder().encode(before).write(to: cache)
        let t0 = Date(timeIntervalSince1970: 1_000_000)
        try FileManager.default.setAttributes([.modificationDate: t0], ofItemAtPath: config.path)
        try FileManager.default.setAttributes([.modificationDate: t0.addingTimeInterval(60)], ofItemAtPath: cache.path)
        #expect(FleetDemo.cachedEvaluation(cache, newerThan: checkpoint)?.first?.perSeedSuccess == [false, true, false])
        // The checkpoint saved again (e.g. pretraining continued): the cache is stale.
        try FileManager.default.setAttributes([.modificationDate: t0.addingTimeInterval(120)], ofItemAtPath: config.path)
        #expect(FleetDemo.cachedEvaluation(cache, newerThan: checkpoint) == nil)
        #expect(FleetDemo.cachedEvaluation(dir.appendingPathComponent("missing.json"), newerThan: checkpoint) == nil)
    }

    @Test func fleetProgressLineCountsTheLastFiftyEpisodes() {
        var m = FleetMetrics.Snapshot()
        m.trainSteps = 120
        m.latestVersion = 13
        m.episodesAccepted = 60
        // 60 episodes of 20 steps: the first 10 failed with 20 operator steps; of the last 50,
        // 40 succeeded and each had 2 operator steps (100 of 1000 = 10%).
        let history = (0..<60).map { i in
            LearnerHistory.Episode(id: UUID(), actor: "a", embodiment: "arm7", task: "reach", policyVersion: 1, policyLag: 0,
                                   steps: 20, operatorSteps: i < 10 ? 20 : 2, success: i >= 20, receivedAt: Double(i))
        }
        #expect(FleetDemo.fleetProgress(m, history: history, seconds: 45.2, trainSteps: 1000)
                == "fleet 45 s: train step 120/1000, version 13, 60 episodes; last 50: success 80%, operator steps 10%")
        #expect(FleetDemo.fleetProgress(FleetMetrics.Snapshot(), history: [], seconds: 20, trainSteps: 1000)
                == "fleet 20 s: train step 0/1000, version 0, 0 episodes")
    }
}
