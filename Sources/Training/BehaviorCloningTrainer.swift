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
///
/// Data-parallel (`dataParallel` with more than one rank): every rank holds the same model,
/// trains on its own share of the global batch, and the gradients are combined with one MLX
/// `all_sum` before clipping and AdamW, weighted by each share's count of valid action
/// entries so the step equals the masked-mean loss of the concatenated batch. Every rank then
/// applies the same update, so the parameters stay identical without being sent.
public final class BehaviorCloningTrainer: @unchecked Sendable {
    public let policy: VLAPolicy
    public let optimizer: AdamW
    public let schedule: TrainingSchedule
    public let lrSchedule: WarmupStableDecay
    public let seed: UInt64
    public let dataParallel: DistributedGroup?
    /// Data-parallel: send gradients as bfloat16 (half the bytes; summed and applied in float32
    /// to the float32 parameters, which stay the master copy).
    public var bfloat16Gradients = false
    public private(set) var step = 0
    private let lossAndGrad: (FlowMatchingVLA) throws -> (loss: Tensor, grads: [String: Tensor])

    public init(policy: VLAPolicy, schedule: TrainingSchedule, seed: UInt64, dataParallel: DistributedGroup? = nil) {
        self.policy = policy
        self.schedule = schedule
        self.seed = seed
        self.dataParallel = dataParallel.flatMap { $0.size > 1 ? $0 : nil }
        optimizer = AdamW(learningRate: schedule.learningRate, beta1: 0.9, beta2: 0.95, weightDecay: schedule.weightDecay)
        lrSchedule = WarmupStableDecay(peak: schedule.learningRate, final: schedule.learningRate * 0.05,
                                       warmupSteps: schedule.warmupSteps,
                                       decaySteps: Int(Double(schedule.totalSteps) * schedule.decayFraction),
                                       totalSteps: schedule.totalSteps)
        let holder = BatchHolder()
        self.holder = holder
        lossAndGrad = valueAndGrad(model: policy.model) { m in
            let (loss, perSample) = try m.lossTerms(holder.batch!, key: holder.key, share: holder.share)
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
    /// `share` places `batch` in a data-parallel global batch (see `BatchShare`); the returned
    /// loss is then the global batch's, the per-sample losses this rank's.
    public func trainStepWithSampleLosses(_ batch: PolicyBatch, share: BatchShare? = nil) throws -> (loss: Float, perSample: [Float]) {
        holder.batch = batch
        holder.share = share
        // A fresh, reproducible key per step: the run is a function of the seed (the same key
        // on every rank; `share` picks each rank's rows of the draws).
        holder.key = RandomKey(seed: seed &* 1_000_003 &+ UInt64(step))
        optimizer.learningRate = lrSchedule(step)
        var (loss, grads) = try lossAndGrad(policy.model)
        let perSample = holder.perSample!
        if let group = dataParallel {
            (loss, grads) = try Self.averaged(loss: loss, gradients: grads, validEntries: batch.actionMask.sum(), group: group,
                                           wire: bfloat16Gradients ? .bfloat16 : .float32)
        }
        let (clipped, _) = try clipGradNorm(grads, maxNorm: schedule.gradientClip)
        try optimizer.step(model: policy.model, gradients: clipped, alsoEvaluate: [loss, perSample])
        holder.batch = nil
        holder.share = nil
        holder.perSample = nil
        step += 1
        return (try loss.item(), try perSample.toArray(Float.self))
    }

    /// Σ_r C_r·g_r / Σ_r C_r over ranks, C_r = valid entries of rank r's share: the gradient of
    /// the global masked mean (the pointing loss, when on, is weighted the same way). One
    /// collective carries the gradients, the counts and the losses.
    static func averaged(loss: Tensor, gradients: [String: Tensor], validEntries: Tensor,
                         group: DistributedGroup, wire: DType = .float32) throws -> (loss: Tensor, gradients: [String: Tensor]) {
        var packed = try gradients.mapValues { try $0 * validEntries }
        // The count and loss ride along in float32 (keys outside the parameter namespace:
        // names never start with "#"); a bfloat16 count of ~2000 entries would be off by 0.5%.
        let scalars = ["#entries": validEntries, "#loss": try loss * validEntries]
        if wire == .float32 { packed.merge(scalars) { $1 } }
        var summed = try group.allSum(packed, wire: wire)
        if wire != .float32 { summed.merge(try group.allSum(scalars)) { $1 } }
        let total = try summed.removeValue(forKey: "#entries")!.maximum(1)
        let globalLoss = try summed.removeValue(forKey: "#loss")! / total
        var averaged: [String: Tensor] = [:]
        for (k, g) in summed { averaged[k] = try (g / total).astype(gradients[k]!.dtype) }
        return (globalLoss, averaged)
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
    var share: BatchShare?
    var perSample: Tensor?
}
