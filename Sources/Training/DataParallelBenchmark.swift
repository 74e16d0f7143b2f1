import Foundation
import RobotData
import TensorKit
import VLAModel

/// Data-parallel training of the VLA on synthetic batches, one call per rank: every rank builds
/// the same global batch for each step from the seed, trains on its own `BatchShare` of it,
/// and the gradients meet in MLX's `all_sum`. Run as one process (no launcher) it trains on the
/// whole global batch — the reference the ranks must reproduce — and the timings give
/// samples/s per rank count and the all-reduce cost of one step at this model size.
public enum DataParallelBenchmark {
    public struct Result: Codable, Sendable {
        public var rank: Int
        public var ranks: Int
        public var globalBatch: Int
        public var steps: Int
        public var parameters: Int
        /// Median wall time of a timed step (ms) and global samples per second at that median.
        public var stepMilliseconds: Double
        public var samplesPerSecond: Double
        /// Best of 5 all_sums of a float32 vector the size of the gradients (ms; 0 with one rank).
        public var allReduceMilliseconds: Double
        /// The global loss of every step (identical on every rank).
        public var losses: [Float]
    }

    /// The global batch of `step`: random images, text, states and actions from the seed; sample
    /// i has 6 + i % 3 valid action slots, so shares carry different valid-entry counts.
    public static func syntheticBatch(config: VLAConfig, globalSize: Int, step: Int, seed: UInt64) throws -> PolicyBatch {
        let keys = try RandomKey(seed: seed &* 7919 &+ UInt64(step)).split(into: 4)
        let g = globalSize, s = config.imageSize, h = config.horizon, d = VLAConfig.actionDimension
        var stateMask = [Float](repeating: 0, count: g * d), actionMask = [Float](repeating: 0, count: g * h * d)
        for i in 0..<g {
            for j in 0..<8 { stateMask[i * d + j] = 1 }
            for k in 0..<h { for j in 0..<(6 + i % 3) { actionMask[(i * h + k) * d + j] = 1 } }
        }
        let text = config.maxTextLength / 2
        let tokenMask = (0..<(g * config.maxTextLength)).map { $0 % config.maxTextLength < text }
        let inputs = try PolicyInputs(
            images: keys[0].uniform([g, config.cameraSlots, s, s, 3]),
            cameraMask: Tensor([Bool](repeating: true, count: g * config.cameraSlots), shape: [g, config.cameraSlots]),
            tokens: keys[1].randint([g, config.maxTextLength], low: 0, high: 256),
            tokenMask: Tensor(tokenMask, shape: [g, config.maxTextLength]),
            state: keys[2].normal([g, d]) * Tensor(stateMask, shape: [g, d]),
            stateMask: Tensor(stateMask, shape: [g, d]))
        let mask = try Tensor(actionMask, shape: [g, h, d])
        return PolicyBatch(inputs: inputs, actions: try keys[3].normal([g, h, d]) * mask, actionMask: mask)
    }

    /// Rows `range` of every tensor of `batch`.
    public static func rows(_ batch: PolicyBatch, _ range: Range<Int>) throws -> PolicyBatch {
        let cut = { (x: Tensor) throws -> Tensor in try x.slice(axis: 0, range) }
        let i = batch.inputs
        return PolicyBatch(inputs: try PolicyInputs(images: cut(i.images), cameraMask: cut(i.cameraMask), tokens: cut(i.tokens),
                                                    tokenMask: cut(i.tokenMask), state: cut(i.state), stateMask: cut(i.stateMask),
                                                    advantage: cut(i.advantage), advantageMask: cut(i.advantageMask),
                                                    textFeatures: i.textFeatures.map(cut)),
                           actions: try cut(batch.actions), actionMask: try cut(batch.actionMask))
    }

    /// Trains `steps` steps (the first `warmup` untimed) and returns the timings with the policy.
    /// All ranks must call it with the same arguments.
    public static func run(config: VLAConfig, group: DistributedGroup?, globalBatch: Int, steps: Int, warmup: Int = 1,
                           seed: UInt64, bfloat16Gradients: Bool = false,
                           progress: ((Int, Double) -> Void)? = nil) throws -> (Result, VLAPolicy) {
        let ranks = group?.size ?? 1, rank = group?.rank ?? 0
        guard globalBatch >= ranks else { throw TensorError.shapeMismatch("global batch \(globalBatch) is smaller than \(ranks) ranks") }
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: config, key: RandomKey(seed: seed)), stats: NormalizationStats(episodes: []))
        var schedule = TrainingSchedule()
        schedule.batchSize = globalBatch
        schedule.totalSteps = steps
        schedule.warmupSteps = 1
        let trainer = BehaviorCloningTrainer(policy: policy, schedule: schedule, seed: seed, dataParallel: group)
        trainer.bfloat16Gradients = bfloat16Gradients
        let (share, size) = BatchShare.of(globalSize: globalBatch, rank: rank, ranks: ranks)
        var losses: [Float] = [], times: [Double] = []
        for step in 0..<steps {
            let global = try syntheticBatch(config: config, globalSize: globalBatch, step: step, seed: seed)
            let mine = try rows(global, share.offset..<(share.offset + size))
            try eval([mine.inputs.images, mine.inputs.tokens, mine.inputs.state, mine.actions, mine.actionMask])
            let start = DispatchTime.now()
            let (loss, _) = try trainer.trainStepWithSampleLosses(mine, share: share)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            losses.append(loss)
            if step >= warmup { times.append(seconds) }
            progress?(step, seconds)
        }
        let parameters = policy.model.trainableParameters().values.reduce(0) { $0 + $1.count }
        var allReduce = 0.0
        if let group, ranks > 1 {
            let rows = try AllReduceBenchmark.run(group: group, sizes: [parameters], repeats: 5)
            allReduce = rows[0].milliseconds
        }
        let median = times.isEmpty ? 0 : times.sorted()[times.count / 2]
        return (Result(rank: rank, ranks: ranks, globalBatch: globalBatch, steps: steps, parameters: parameters,
                       stepMilliseconds: median * 1000, samplesPerSecond: median > 0 ? Double(globalBatch) / median : 0,
                       allReduceMilliseconds: allReduce, losses: losses), policy)
    }
}
