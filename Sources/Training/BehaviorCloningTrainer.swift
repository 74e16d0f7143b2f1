import Foundation
import RobotData
import TensorKit
import VLAModel

/// Optimizer settings for a training run (Green-VLA's defaults: AdamW β = (0.9, 0.95),
/// warmup-stable-decay).
public struct TrainingSchedule: Codable, Sendable {
    public var learningRate: Float = 3e-4
    public var weightDecay: Float = 0.01
    public var warmupSteps = 50
    public var decayFraction: Double = 0.2
    public var totalSteps = 1000
    public var batchSize = 32
    public var gradientClip = 1.0
    public init() {}

    /// Post-training on the fleet: a lower constant rate than pretraining, no decay (the
    /// learner runs until stopped).
    public static var postTraining: TrainingSchedule {
        var s = TrainingSchedule()
        s.learningRate = 1e-4
        s.warmupSteps = 1
        s.totalSteps = 1_000_000
        s.decayFraction = 0
        s.batchSize = 16
        return s
    }

    /// R2's fine-tuning on R1 data + verified trajectories: gentler still, full batches.
    public static var r2FineTuning: TrainingSchedule {
        var s = postTraining
        s.learningRate = 5e-5
        s.warmupSteps = 10
        s.batchSize = 32
        return s
    }
}

/// Behaviour cloning with the flow-matching loss: one optimizer step per batch, one eval.
public final class BehaviorCloningTrainer: @unchecked Sendable {
    public let policy: VLAPolicy
    public let optimizer: AdamW
    public let schedule: TrainingSchedule
    public let lrSchedule: WarmupStableDecay
    public let seed: UInt64
    public private(set) var step = 0
    private let lossAndGrad: (FlowMatchingVLA) throws -> (loss: Tensor, grads: [String: Tensor])

    public init(policy: VLAPolicy, schedule: TrainingSchedule, seed: UInt64) {
        self.policy = policy
        self.schedule = schedule
        self.seed = seed
        optimizer = AdamW(learningRate: schedule.learningRate, beta1: 0.9, beta2: 0.95, weightDecay: schedule.weightDecay)
        lrSchedule = WarmupStableDecay(peak: schedule.learningRate, final: schedule.learningRate * 0.05,
                                       warmupSteps: schedule.warmupSteps,
                                       decaySteps: Int(Double(schedule.totalSteps) * schedule.decayFraction),
                                       totalSteps: schedule.totalSteps)
        let holder = BatchHolder()
        self.holder = holder
        lossAndGrad = valueAndGrad(model: policy.model) { m in
            let (loss, perSample) = try m.lossTerms(holder.batch!, key: holder.key)
            // Kept for `trainStepWithSampleLosses`: evaluated with the update, no second pass.
            holder.perSample = perSample
            return loss
        }
    }
    private let holder: BatchHolder

    /// One update on `batch`; returns the loss before the update.
    @discardableResult
    public func trainStep(_ batch: PolicyBatch) throws -> Float {
        try trainStepWithSampleLosses(batch).loss
    }

    /// One update; returns the batch loss and each sample's own loss before the update.
    public func trainStepWithSampleLosses(_ batch: PolicyBatch) throws -> (loss: Float, perSample: [Float]) {
        holder.batch = batch
        // A fresh, reproducible key per step: the run is a function of the seed.
        holder.key = RandomKey(seed: seed &* 1_000_003 &+ UInt64(step))
        optimizer.learningRate = lrSchedule(step)
        let (loss, grads) = try lossAndGrad(policy.model)
        let perSample = holder.perSample!
        let (clipped, _) = try clipGradNorm(grads, maxNorm: schedule.gradientClip)
        try optimizer.step(model: policy.model, gradients: clipped, alsoEvaluate: [loss, perSample])
        holder.batch = nil
        holder.perSample = nil
        step += 1
        return (try loss.item(), try perSample.toArray(Float.self))
    }

    /// Restores model, optimizer and step from a checkpoint written by `VLAPolicy.save`.
    public func resume(from directory: URL) throws {
        let manifest = try Checkpoint.load(into: policy.model, optimizer: optimizer, from: directory)
        step = manifest.step
    }
}

/// The batch and key the differentiated closure reads (set right before each step).
final class BatchHolder: @unchecked Sendable {
    var batch: PolicyBatch?
    var key = RandomKey(seed: 0)
    var perSample: Tensor?
}
