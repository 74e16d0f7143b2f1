import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
import TestSupport
@testable import Training
import VLAModel

/// Green-VLA's sampling curriculum W_i(t) ∝ w_i^α_t and the loader's background prefetch.
@Suite(.serialized)
struct CurriculumLoaderTests {
    static func sources(weights: [Double]) throws -> [CurriculumLoader.Source] {
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010, 10_011, 10_012], imageSize: 16)
        let config = tinyVLAConfig()
        let stats = try DemonstrationDataset.statistics(episodes: demos, specs: DemoCollector.specs, config: config)
        return try weights.enumerated().map { i, w in
            CurriculumLoader.Source(name: "d\(i)", dataset: try DemonstrationDataset(episodes: [demos[i % demos.count]], specs: DemoCollector.specs,
                                                                                    config: config, stats: stats), weight: w)
        }
    }

    @Test func probabilitiesFollowTheAnnealedPower() {
        let w = [0.6, 0.3, 0.1]
        // α = 0: uniform; α = 1: the weights; α = ½: √w normalised (by hand: √.6, √.3, √.1 = 0.774597,
        // 0.547723, 0.316228, sum 1.638548).
        for (a, b) in zip(CurriculumLoader.probabilities(weights: w, alpha: 0), [1.0 / 3, 1.0 / 3, 1.0 / 3]) { #expect(abs(a - b) < 1e-12) }
        for (a, b) in zip(CurriculumLoader.probabilities(weights: w, alpha: 1), w) { #expect(abs(a - b) < 1e-12) }
        for (a, b) in zip(CurriculumLoader.probabilities(weights: w, alpha: 0.5), [0.472734, 0.334274, 0.192992]) { #expect(abs(a - b) < 1e-6) }
        // A zero-weight dataset: sampled like the others at α = 0, never once α > 0.
        #expect(CurriculumLoader.probabilities(weights: [1, 0], alpha: 0) == [0.5, 0.5])
        #expect(CurriculumLoader.probabilities(weights: [1, 0], alpha: 0.1) == [1, 0])
    }

    @Test func drawnFrequenciesMatchTheCurriculumAtBothEnds() throws {
        let w = [0.6, 0.3, 0.1]
        for (anneal, expected) in [(0, w), (100_000_000, [1.0 / 3, 1.0 / 3, 1.0 / 3])] {
            let loader = try CurriculumLoader(sources: try Self.sources(weights: w), batchSize: 64, annealSteps: anneal, seed: 5, prefetch: 2)
            defer { loader.stop() }
            for _ in 0..<40 { _ = try loader.next() }
            let n = 64.0 * 40
            for (i, p) in expected.enumerated() {
                // Binomial: within 4 standard deviations of n·p.
                let sigma = (n * p * (1 - p)).squareRoot()
                #expect(abs(Double(loader.samplesDrawn[i]) - n * p) < 4 * sigma, "anneal \(anneal) source \(i): \(loader.samplesDrawn)")
            }
        }
    }

    @Test func prefetchGivesTheSameBatchesAsTheTrainingThread() throws {
        let sources = try Self.sources(weights: [0.5, 0.3, 0.2])
        let sync = try CurriculumLoader(sources: sources, batchSize: 8, annealSteps: 4, seed: 9, prefetch: 0)
        let ahead = try CurriculumLoader(sources: sources, batchSize: 8, annealSteps: 4, seed: 9, prefetch: 3)
        defer { ahead.stop() }
        for _ in 0..<6 {
            let a = try sync.next(), b = try ahead.next()
            #expect(try a.actions.toArray(Float.self) == b.actions.toArray(Float.self))
            #expect(try a.inputs.images.toArray(Float.self) == b.inputs.images.toArray(Float.self))
            #expect(try a.inputs.state.toArray(Float.self) == b.inputs.state.toArray(Float.self))
        }
        #expect(sync.samplesDrawn == ahead.samplesDrawn && sync.step == 6)
    }

    @Test func oneSourceDrawsWhatTheDatasetItselfDraws() throws {
        // A single dataset spends no draws on the choice: a run with one (embodiment, task)
        // samples exactly as before the curriculum existed.
        let source = try Self.sources(weights: [1])[0]
        let loader = try CurriculumLoader(sources: [source], batchSize: 6, annealSteps: 10, seed: 21, startStep: 3, prefetch: 1)
        defer { loader.stop() }
        var generator = SplitMix64(seed: 21 &+ 3)
        for _ in 0..<3 {
            let expected = try source.dataset.sampleBatch(size: 6, generator: &generator)
            let got = try loader.next()
            #expect(try got.actions.toArray(Float.self) == expected.actions.toArray(Float.self))
            #expect(try got.inputs.tokens.toArray(Int32.self) == expected.inputs.tokens.toArray(Int32.self))
        }
    }

    @Test func batchesCarryEachRowsEmbodiment() throws {
        // Two bodies, two datasets: every row names its own body, in the counts drawn.
        let arm7 = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010], imageSize: 16)
        let arm6 = try DemoCollector.collect(embodiment: .arm6, task: .reach, seeds: [10_010], imageSize: 16)
        let config = tinyVLAConfig()
        let stats = try DemonstrationDataset.statistics(episodes: arm7 + arm6, specs: DemoCollector.specs, config: config)
        let sources = try [("arm7/reach", arm7), ("arm6/reach", arm6)].map { name, episodes in
            CurriculumLoader.Source(name: name, dataset: try DemonstrationDataset(episodes: episodes, specs: DemoCollector.specs,
                                                                                 config: config, stats: stats), weight: 0.5)
        }
        let loader = try CurriculumLoader(sources: sources, batchSize: 16, annealSteps: 0, seed: 4, prefetch: 1)
        defer { loader.stop() }
        var counts: [String: Int] = [:]
        for _ in 0..<5 {
            let batch = try loader.next()
            #expect(batch.embodiments.count == 16)
            for e in batch.embodiments { counts[e, default: 0] += 1 }
            // Rows are grouped by source: arm7's first, then arm6's.
            #expect(batch.embodiments == batch.embodiments.sorted { ($0 == "arm7" ? 0 : 1) < ($1 == "arm7" ? 0 : 1) })
        }
        #expect(counts["arm7"] == loader.samplesDrawn[0] && counts["arm6"] == loader.samplesDrawn[1])
    }
}

/// `vla data stats STORE` writes the statistics the loader and checkpoints use next to the data.
struct DatasetStatisticsFileTests {
    @Test func statsCommandWritesTheStoresStatisticsNextToIt() async throws {
        let vla = try #require(ChildProcess.vlaBinary(), "no vla binary beside the tests: build it (swift build) first")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("stats-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010, 10_011], imageSize: 16)
            + DemoCollector.collect(embodiment: .arm6, task: .reach, seeds: [10_010], imageSize: 16)
        let store = try EpisodeStore(root: root)
        for d in demos { try store.insert(d) }
        let result = try await ChildProcess.run(vla, ["data", "stats", root.path], timeout: 60)
        #expect(result.status == 0, "\(result.stderr.suffix(500))")
        let written = try NormalizationStats.read(NormalizationStats.url(inStore: root))
        // The same numbers an in-process computation over the same episodes gives.
        #expect(written == NormalizationStats(episodes: demos))
        #expect(Set(written.actions.keys) == ["arm7", "arm6"])
        let arm7 = try #require(written.actions["arm7"])
        for j in 0..<7 where arm7.count[j] > 0 { #expect(arm7.q01[j] <= arm7.mean[j] && arm7.mean[j] <= arm7.q99[j]) }
    }
}
