import Foundation
import RobotData
import VLAModel

/// Training batches drawn from several datasets with Green-VLA's sampling curriculum: at step t
/// a sample comes from dataset i with probability W_i(t) ∝ w_i^α_t, α_t annealed linearly from
/// 0 (every dataset alike) to 1 (in proportion to its weight, e.g. `DataQA.datasetWeights`)
/// over `annealSteps`. Within a dataset, samples follow its own step weights.
///
/// Batches are built as host arrays on a background thread, `prefetch` steps ahead, and turned
/// into tensors by `next()` on the caller's thread (MLX stays on one thread). The sequence is a
/// function of the seed and the start step only: with or without prefetch, the same batches.
public final class CurriculumLoader: @unchecked Sendable {
    public struct Source: Sendable {
        public var name: String
        public var dataset: DemonstrationDataset
        public var weight: Double
        public init(name: String, dataset: DemonstrationDataset, weight: Double) {
            self.name = name; self.dataset = dataset; self.weight = weight
        }
    }

    public let sources: [Source]
    public let batchSize: Int
    public let annealSteps: Int
    public let prefetch: Int
    /// The step the next `next()` belongs to.
    public private(set) var step: Int
    /// Samples drawn from each source so far (by batches already returned).
    public private(set) var samplesDrawn: [Int]

    private var generator: SplitMix64
    private var producedStep: Int
    private let condition = NSCondition()
    private var ready: [(step: Int, batch: Result<(HostPolicyBatch, [Int]), any Error>)] = []
    private var stopped = false
    private var worker: Thread?

    /// `startStep` resumes a run: the generator is seeded from (seed, startStep), as a fresh
    /// run reaching that step would not be, but reproducibly.
    public init(sources: [Source], batchSize: Int, annealSteps: Int, seed: UInt64, startStep: Int = 0, prefetch: Int = 2) throws {
        guard !sources.isEmpty, sources.allSatisfy({ $0.dataset.count > 0 && $0.weight >= 0 && $0.weight.isFinite }),
              sources.contains(where: { $0.weight > 0 }) else {
            throw PolicyError.badObservation("a curriculum needs non-empty datasets with finite weights ≥ 0, one of them > 0")
        }
        self.sources = sources
        self.batchSize = batchSize
        self.annealSteps = max(0, annealSteps)
        self.prefetch = max(0, prefetch)
        step = startStep
        producedStep = startStep
        samplesDrawn = Array(repeating: 0, count: sources.count)
        generator = SplitMix64(seed: seed &+ UInt64(startStep))
        if self.prefetch > 0 {
            // Holds the loader until `stop()` ends the loop.
            let thread = Thread { self.produceLoop() }
            thread.name = "curriculum-prefetch"
            worker = thread
            thread.start()
        }
    }

    /// α_t: 0 at step 0, 1 from `annealSteps` on.
    public func alpha(at step: Int) -> Double {
        annealSteps == 0 ? 1 : min(1, Double(step) / Double(annealSteps))
    }

    /// W_i ∝ w_i^α (0^0 = 1: at α = 0 a zero-weight dataset is sampled like the others).
    public static func probabilities(weights: [Double], alpha: Double) -> [Double] {
        let raised = weights.map { $0 == 0 ? (alpha == 0 ? 1 : 0) : pow($0, alpha) }
        let total = raised.reduce(0, +)
        return raised.map { $0 / total }
    }

    /// The batch of the current step as tensors.
    public func next() throws -> PolicyBatch {
        let (host, counts): (HostPolicyBatch, [Int])
        if prefetch == 0 {
            (host, counts) = try produce(step: step)
        } else {
            condition.lock()
            while ready.first?.step != step && !stopped { condition.wait() }
            guard !ready.isEmpty, ready[0].step == step else {
                condition.unlock()
                throw PolicyError.badObservation("curriculum loader stopped")
            }
            let item = ready.removeFirst()
            condition.signal()
            condition.unlock()
            (host, counts) = try item.batch.get()
        }
        for (i, c) in counts.enumerated() { samplesDrawn[i] += c }
        step += 1
        return try host.tensors()
    }

    /// Ends the prefetch thread (call when done with the loader).
    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    private func produceLoop() {
        while true {
            condition.lock()
            while ready.count >= prefetch && !stopped { condition.wait() }
            if stopped { condition.unlock(); return }
            let s = producedStep
            producedStep += 1
            condition.unlock()
            let result = Result { try produce(step: s) }
            condition.lock()
            ready.append((s, result))
            condition.broadcast()
            condition.unlock()
        }
    }

    /// One step's batch: a source per sample from W(t), then each source's picks in source order.
    /// With one source no draw is spent on the choice (the same picks as `sampleBatch`).
    private func produce(step: Int) throws -> (HostPolicyBatch, [Int]) {
        var counts = Array(repeating: 0, count: sources.count)
        if sources.count == 1 {
            counts[0] = batchSize
        } else {
            let p = Self.probabilities(weights: sources.map(\.weight), alpha: alpha(at: step))
            for _ in 0..<batchSize {
                let r = generator.nextDouble()
                var acc = 0.0, chosen = p.count - 1
                for (i, pi) in p.enumerated() {
                    acc += pi
                    if r < acc { chosen = i; break }
                }
                counts[chosen] += 1
            }
        }
        var parts: [HostPolicyBatch] = []
        for (i, source) in sources.enumerated() where counts[i] > 0 {
            let picks = try source.dataset.samplePicks(size: counts[i], generator: &generator)
            parts.append(try source.dataset.hostBatch(picks.map { ($0.episode, $0.step) }))
        }
        return (parts.count == 1 ? parts[0] : HostPolicyBatch.concatenated(parts), counts)
    }
}
