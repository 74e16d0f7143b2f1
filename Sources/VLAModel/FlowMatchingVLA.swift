import Foundation
import TensorKit

/// A vision-language-action policy with a flow-matching action expert (π0 / Green-VLA shape).
///
/// Prefix = [image tokens of every camera slot, instruction tokens] through a transformer
/// backbone; suffix = [state token, H noisy-action tokens + time embedding] through the action
/// expert, which cross-attends to the prefix. The prefix is computed once per observation and
/// shared by all noise draws in training and all Euler steps in sampling.
///
/// Flow matching (Green-VLA's convention): t ~ Beta(1.5, 1)·0.999 + 0.001,
/// x_t = t·ε + (1 − t)·a, the expert predicts v ≈ ε − a, and sampling integrates
/// dx/dt = v from t = 1 (noise) to t = 0 (action) with Euler steps.
public final class FlowMatchingVLA: Module, @unchecked Sendable {
    public let config: VLAConfig
    public let vision: VisionEncoder
    public let cameraEmbedding: Embedding
    public let patchPosition: Embedding
    /// Byte token embedding (`TextEncoderChoice.bytes`).
    public let tokenEmbedding: Embedding?
    /// MiniLM features `[B, L, 384]` → `[B, L, D]` (`TextEncoderChoice.miniLM`); MiniLM itself
    /// stays outside the model.
    public let textProjection: Linear?
    public let textPosition: Embedding
    public let backbone: [TransformerBlock]
    public let backboneNorm: LayerNorm
    public let stateProjection: Linear
    public let actionProjection: Linear
    public let timeMLP: MLP
    public let suffixPosition: Embedding
    public let expert: [ActionExpertBlock]
    public let expertNorm: RMSNorm
    public let velocityHead: Linear
    /// Per scene-camera patch: a logit and an (x, y) offset (present when `pointingWeight` > 0).
    public let pointingHead: Linear?
    /// The same per-patch logit and offset for where the object goes (with `placePointing`).
    public let placePointingHead: Linear?
    /// RECAP's advantage token: one embedding per `AdvantageIndicator` (with `advantageConditioning`).
    public let advantageEmbedding: Embedding?
    /// Scale and shift of every expert RMSNorm from the episode's speed (with `speedConditioning`).
    public let speedModulation: SpeedModulation?
    /// Fraction of the task done, from the pooled prefix and the state (with `progressWeight` > 0).
    public let progressHead: MLP?
    /// Byte logits at answer positions (with `answerWeight` > 0): the backbone as a VLM.
    public let answerHead: Linear?
    /// Positions of answer tokens, continuing after the prompt's (with `answerWeight` > 0).
    public let answerPosition: Embedding?

    public init(config: VLAConfig = VLAConfig(), key: RandomKey) throws {
        self.config = config
        let d = config.dims, a = VLAConfig.actionDimension
        let k = try key.split(into: 12 + config.backboneLayers + config.expertLayers)
        vision = try VisionEncoder(dims: d, keypoints: config.keypoints, key: k[0])
        cameraEmbedding = try Embedding(count: config.cameraSlots, dims: d, key: k[1])
        patchPosition = try Embedding(count: config.tokensPerCamera, dims: d, key: k[2])
        // Either text input takes key 3, so a byte model's parameters are what they always were.
        switch config.textEncoder {
        case .bytes:
            tokenEmbedding = try Embedding(count: ByteTokenizer.vocabularySize, dims: d, key: k[3])
            textProjection = nil
        case .miniLM:
            tokenEmbedding = nil
            textProjection = try Linear(MiniLMTextEncoder.featureWidth, d, key: k[3])
        }
        textPosition = try Embedding(count: config.maxTextLength, dims: d, key: k[4])
        backbone = try (0..<config.backboneLayers).map { try TransformerBlock(dims: d, heads: config.heads, key: k[12 + $0]) }
        backboneNorm = try LayerNorm(d)
        stateProjection = try Linear(2 * a, d, key: k[5])
        actionProjection = try Linear(a, d, key: k[6])
        timeMLP = try MLP(dims: d, hidden: d, activation: .silu, key: k[7])
        suffixPosition = try Embedding(count: config.horizon + 1, dims: d, key: k[8])
        expert = try (0..<config.expertLayers).map {
            try ActionExpertBlock(dims: d, heads: config.heads, key: k[12 + config.backboneLayers + $0])
        }
        expertNorm = try RMSNorm(d)
        velocityHead = try Linear(d, a, key: k[9])
        pointingHead = config.pointingWeight > 0 ? try Linear(d, 3, key: k[10]) : nil
        // A child of k[9]: no earlier parameter's draw changes.
        placePointingHead = config.pointingWeight > 0 && config.placePointing ? try Linear(d, 3, key: k[9].split(into: 1)[0]) : nil
        advantageEmbedding = config.advantageConditioning ? try Embedding(count: 2, dims: d, key: k[11]) : nil
        // Keys derived from k[11]'s children leave every earlier parameter's draw unchanged.
        let extra = try k[11].split(into: 2)
        speedModulation = config.speedConditioning
            ? try SpeedModulation(dims: d, norms: ActionExpertBlock.modulatedNorms * config.expertLayers + 1, key: extra[0]) : nil
        progressHead = config.progressWeight > 0 ? try MLP(dims: d + a, hidden: d, outDims: 1, activation: .gelu, key: extra[1]) : nil
        // Children of k[10] (as of k[11] above): no earlier parameter's draw changes.
        let answerKeys = try k[10].split(into: 2)
        answerHead = config.answerWeight > 0 ? try Linear(d, ByteTokenizer.vocabularySize, key: answerKeys[0]) : nil
        answerPosition = config.answerWeight > 0 ? try Embedding(count: config.maxAnswerLength, dims: d, key: answerKeys[1]) : nil
        super.init()
    }

    /// Backbone output and its key mask: `[B, Lp, D]`, `[B, 1, 1, Lp]` bool.
    public func encodePrefix(_ inputs: PolicyInputs) throws -> (tokens: Tensor, mask: Tensor) {
        var (h, mask) = try prefixEmbeddings(inputs)
        for block in backbone { h = try block(h, mask: .tensor(mask)) }
        return (try backboneNorm(h), mask)
    }

    /// The prefix tokens before the backbone and their key mask: `[B, Lp, D]`, `[B, 1, 1, Lp]` bool.
    func prefixEmbeddings(_ inputs: PolicyInputs) throws -> (tokens: Tensor, mask: Tensor) {
        let b = inputs.batchSize, slots = config.cameraSlots, s = config.imageSize, p = config.tokensPerCamera
        guard inputs.images.shape == [b, slots, s, s, 3] else {
            throw TensorError.shapeMismatch("images must be [\(b), \(slots), \(s), \(s), 3], got \(inputs.images.shape)")
        }
        let patches = try vision(inputs.images.reshaped([b * slots, s, s, 3])).reshaped([b, slots, p, config.dims])
        let slotIDs = try Tensor.arange(0, Double(slots), dtype: .int32)
        let patchIDs = try Tensor.arange(0, Double(p), dtype: .int32)
        let visual = try (patches + cameraEmbedding(slotIDs).reshaped([1, slots, 1, config.dims])
                          + patchPosition(patchIDs).reshaped([1, 1, p, config.dims])).reshaped([b, slots * p, config.dims])
        let textLength = inputs.tokens.dim(1)
        let text = try textTokens(inputs) + textPosition(Tensor.arange(0, Double(textLength), dtype: .int32))
        var h = try concatenated([visual, text], axis: 1)
        let visualMask = try inputs.cameraMask.reshaped([b, slots, 1]).broadcast(to: [b, slots, p]).reshaped([b, slots * p])
        var maskParts = [visualMask, inputs.tokenMask]
        if let advantageEmbedding {
            h = try concatenated([h, advantageEmbedding(inputs.advantage).reshaped([b, 1, config.dims])], axis: 1)
            maskParts.append(try inputs.advantageMask.reshaped([b, 1]))
        }
        return (h, try concatenated(maskParts, axis: 1).reshaped([b, 1, 1, h.dim(1)]))
    }

    /// The prompt's tokens in the model width `[B, L, D]`, before the position embedding.
    func textTokens(_ inputs: PolicyInputs) throws -> Tensor {
        if let tokenEmbedding { return try tokenEmbedding(inputs.tokens) }
        guard let textProjection, let features = inputs.textFeatures else {
            throw TensorError.shapeMismatch("a MiniLM-text model needs PolicyInputs.textFeatures [B, L, \(MiniLMTextEncoder.featureWidth)]")
        }
        let b = inputs.batchSize, l = inputs.tokens.dim(1)
        guard features.shape == [b, l, MiniLMTextEncoder.featureWidth] else {
            throw TensorError.shapeMismatch("text features must be [\(b), \(l), \(MiniLMTextEncoder.featureWidth)], got \(features.shape)")
        }
        return try textProjection(features)
    }

    /// Where the backbone points for the task's target in the scene camera `[B, 2]`, (x, y) ∈
    /// [−1, 1]², x right, y down: a softmax over the scene camera's patch tokens picks a patch,
    /// each patch adds an offset of at most half its size to its centre.
    public func pointTarget(prefix: Tensor) throws -> Tensor {
        guard let pointingHead else { throw TensorError.unknownParameter("pointingHead (the config's pointingWeight is 0)") }
        return try point(with: pointingHead, prefix: prefix)
    }

    /// Where the object goes (pick/place: the mat) in the scene camera `[B, 2]`, as `pointTarget`.
    public func pointPlace(prefix: Tensor) throws -> Tensor {
        guard let placePointingHead else { throw TensorError.unknownParameter("placePointingHead (the config's placePointing is false)") }
        return try point(with: placePointingHead, prefix: prefix)
    }

    /// The pointing computation with `head` (either head, or one being fitted).
    public func point(with head: Linear, prefix: Tensor) throws -> Tensor {
        let g = config.imageSize / 16, b = prefix.dim(0)
        let out = try head(prefix.slice(axis: 1, 0..<(g * g)))         // [B, P, 3]
        let weights = try out.slice(axis: 2, 0..<1).reshaped([b, g * g]).softmax(axis: 1)
        let offsets = try out.slice(axis: 2, 1..<3).tanh() * (1 / Double(g))
        let ticks = (0..<g).map { Float(2 * $0 + 1) / Float(g) - 1 }
        let centres = try Tensor((0..<(g * g)).flatMap { [ticks[$0 % g], ticks[$0 / g]] }, shape: [1, g * g, 2])
        return try ((centres + offsets) * weights.reshaped([b, g * g, 1])).sum(axis: 1)
    }

    /// Mean squared pointing error over the batch rows that have a label.
    public func pointingLoss(prefix: Tensor, targets: Tensor, mask: Tensor) throws -> Tensor {
        let squared = try (pointTarget(prefix: prefix) - targets).square().sum(axis: 1)
        return try (squared * mask).sum() / mask.sum().maximum(1)
    }

    /// Mean of the backbone's valid prefix tokens `[B, D]`: a fixed-size summary of the
    /// observation (R2's critic and source-noise policy read it).
    public func pooledPrefix(_ inputs: PolicyInputs) throws -> Tensor {
        try pooledPrefix(encoded: encodePrefix(inputs))
    }

    /// As `pooledPrefix(_:)`, from an `encodePrefix` result the caller already has.
    public func pooledPrefix(encoded prefix: (tokens: Tensor, mask: Tensor)) throws -> Tensor {
        let weights = try prefix.mask.reshaped([prefix.tokens.dim(0), -1, 1]).astype(.float32)
        return try (prefix.tokens * weights).sum(axis: 1) / weights.sum(axis: 1).maximum(1)
    }

    /// Predicted fraction of the task done `[B]` ∈ (0, 1), from an `encodePrefix` result and the
    /// standardized state.
    public func predictProgress(encoded prefix: (tokens: Tensor, mask: Tensor), state: Tensor, stateMask: Tensor) throws -> Tensor {
        guard let progressHead else { throw TensorError.unknownParameter("progressHead (the config's progressWeight is 0)") }
        let features = try concatenated([pooledPrefix(encoded: prefix), state * stateMask], axis: 1)
        return try progressHead(features).reshaped([-1]).sigmoid()
    }

    /// Mean squared progress error over the rows that have a label.
    public func progressLoss(encoded prefix: (tokens: Tensor, mask: Tensor), inputs: PolicyInputs, targets: Tensor, mask: Tensor) throws -> Tensor {
        let predicted = try predictProgress(encoded: prefix, state: inputs.state, stateMask: inputs.stateMask)
        return try ((predicted - targets).square() * mask).sum() / mask.sum().maximum(1)
    }

    /// Sinusoidal features of t ∈ [0, 1]: `[N]` → `[N, D]`.
    func timeFeatures(_ t: Tensor) throws -> Tensor {
        let half = config.dims / 2
        let frequencies = try (Tensor.arange(0, Double(half)) * (-Foundation.log(10_000.0) / Double(half))).exp()
        let angles = try (t * 1000).reshaped([-1, 1]) * frequencies.reshaped([1, half])
        return try concatenated([angles.sin(), angles.cos()], axis: 1)
    }

    /// Per expert layer, the prefix's keys and values (`[B, heads, Lp, D/heads]` each).
    public typealias PrefixMemory = [(keys: Tensor, values: Tensor)]

    public func prefixMemory(_ prefix: Tensor) throws -> PrefixMemory {
        try expert.map { try $0.prefixMemory(prefix) }
    }

    /// Velocity field v(x_t, t | prefix): noisy actions `[N, H, 64]`, t `[N]` → `[N, H, 64]`;
    /// `logSpeed` `[N]` is read only with speed conditioning (nil: the reference speed).
    public func velocity(noisyActions x: Tensor, time t: Tensor, state: Tensor, stateMask: Tensor,
                         memory: PrefixMemory, prefixMask: Tensor, logSpeed: Tensor? = nil) throws -> Tensor {
        let n = x.dim(0), horizon = x.dim(1), d = config.dims
        let stateToken = try stateProjection(concatenated([state * stateMask, stateMask], axis: 1)).reshaped([n, 1, d])
        let actionTokens = try actionProjection(x) + timeMLP(timeFeatures(t)).reshaped([n, 1, d])
        var h = try concatenated([stateToken, actionTokens], axis: 1)
            + suffixPosition(Tensor.arange(0, Double(horizon + 1), dtype: .int32))
        let modulation = try speedModulation.map { try $0(logSpeed ?? Tensor.zeros([n])) }
        let per = ActionExpertBlock.modulatedNorms
        for (i, (block, kv)) in zip(expert, memory).enumerated() {
            h = try block(h, memory: kv, prefixMask: prefixMask, speed: modulation?[(i * per)..<((i + 1) * per)])
        }
        let normalized = try expertNorm(h)
        return try velocityHead((modulation?.last?.apply(normalized) ?? normalized).slice(axis: 1, 1..<(horizon + 1)))
    }

    /// Masked flow-matching loss: ‖m ⊙ (v̂ − (ε − a))‖² / Σm, averaged over `noiseDraws`
    /// draws of (t, ε) per observation that share one backbone pass.
    public func loss(_ batch: PolicyBatch, key: RandomKey) throws -> Tensor {
        try lossTerms(batch, key: key).loss
    }

    /// The batch loss and, per observation, the same masked mean over its own entries `[B]`
    /// (what a sampler needs to compare data sources; the batch loss weights observations by
    /// their number of valid entries).
    public func lossTerms(_ batch: PolicyBatch, key: RandomKey, share: BatchShare? = nil) throws -> (loss: Tensor, perSample: Tensor) {
        let b = batch.inputs.batchSize, draws = config.noiseDraws, horizon = config.horizon
        if let share, share.offset < 0 || share.offset + b > share.globalSize {
            throw TensorError.shapeMismatch("batch share rows \(share.offset)..<\(share.offset + b) outside a global batch of \(share.globalSize)")
        }
        var (prefix, prefixMask) = try encodePrefix(batch.inputs)
        // Pointing (L1 co-training) reads the backbone before any insulation.
        var auxiliary: Tensor? = nil   // losses read from the backbone: pointing, progress
        if config.pointingWeight > 0, let targets = batch.targetPoints, let mask = batch.targetPointMask {
            auxiliary = try pointingLoss(prefix: prefix, targets: targets, mask: mask) * config.pointingWeight
        }
        if config.progressWeight > 0, let targets = batch.progress, let mask = batch.progressMask {
            let progress = try progressLoss(encoded: (prefix, prefixMask), inputs: batch.inputs, targets: targets, mask: mask) * config.progressWeight
            auxiliary = try auxiliary.map { try $0 + progress } ?? progress
        }
        // VQA rows ride along on their own prefix pass, untouched by the insulation below.
        if config.answerWeight > 0, let questions = batch.questions {
            let answers = try answerLoss(questions) * config.answerWeight
            auxiliary = try auxiliary.map { try $0 + answers } ?? answers
        }
        if config.insulateBackbone { prefix = try prefix.stopGradient() }
        let keys = try key.split(into: 3)
        let n = b * draws
        let tile = { (x: Tensor) throws -> Tensor in
            try concatenated(Array(repeating: x, count: draws), axis: 0)
        }
        // Draws are made for the whole global batch and this share's rows taken, so data-parallel
        // ranks see exactly the noise one process would on the concatenated batch.
        let global = share?.globalSize ?? b
        let rows: Tensor? = global == b ? nil : try Tensor((0..<draws).flatMap { d in
            (0..<b).map { Int32(d * global + share!.offset + $0) } })
        let mine = { (x: Tensor) throws -> Tensor in try rows.map { try x.take($0, axis: 0) } ?? x }
        let t = try mine(keys[0].beta([global * draws], alpha: 1.5, beta: 1)) * 0.999 + 0.001
        let noise = try mine(keys[1].normal([global * draws, horizon, VLAConfig.actionDimension]))
        // Zero the padded entries before they enter x_t: otherwise their values would reach
        // valid positions through the expert's self-attention (caught by a test).
        let actions = try tile(batch.actions * batch.actionMask), mask = try tile(batch.actionMask)
        let tt = try t.reshaped([n, 1, 1])
        let xt = try tt * noise + (1 - tt) * actions
        let noisyState = try tile(batch.inputs.state)
            + mine(keys[2].normal([global * draws, VLAConfig.actionDimension])) * Double(config.stateNoise)
        // Keys/values are projected once per observation, then shared by the noise draws.
        let memory = try prefixMemory(prefix).map { (keys: try tile($0.keys), values: try tile($0.values)) }
        let v = try velocity(noisyActions: xt, time: t, state: noisyState, stateMask: tile(batch.inputs.stateMask),
                             memory: memory, prefixMask: tile(prefixMask), logSpeed: tile(batch.inputs.logSpeed))
        let squared = try (v - (noise - actions)).square() * mask
        // Rows are draw-major (tiling concatenates whole copies): row d·B + i is observation i.
        let perSample = try squared.reshaped([draws, b, -1]).sum(axes: [0, 2])
            / mask.reshaped([draws, b, -1]).sum(axes: [0, 2]).maximum(1)
        let flow = try squared.sum() / mask.sum().maximum(1)
        return (try auxiliary.map { try flow + $0 } ?? flow, perSample)
    }

    /// Samples standardized unified action chunks `[B, H, 64]` by Euler integration from noise:
    /// N(0, I) drawn from `key`, or `initialNoise` `[B, H, 64]` (R2's learned source distribution).
    /// `encoded` reuses an `encodePrefix(inputs)` result instead of running the backbone again;
    /// `guidance` pulls chosen entries toward known values (JPM); `classifierFree` mixes in the
    /// velocity of unconditioned inputs, v = v_u + w·(v − v_u) (RECAP's advantage guidance).
    public func sampleActions(_ inputs: PolicyInputs, key: RandomKey, steps: Int? = nil,
                              initialNoise: Tensor? = nil, encoded: (tokens: Tensor, mask: Tensor)? = nil,
                              guidance: FlowGuidance? = nil, classifierFree: ClassifierFreeGuidance? = nil) throws -> Tensor {
        let b = inputs.batchSize, horizon = config.horizon
        let (prefix, prefixMask) = try encoded ?? encodePrefix(inputs)
        let memory = try prefixMemory(prefix)
        // Weight 1 is the conditioned velocity itself: no second pass.
        let free = try classifierFree.flatMap { $0.weight == 1 ? nil : $0 }.map { cfg in
            let (tokens, mask) = try encodePrefix(cfg.unconditioned)
            return (memory: try prefixMemory(tokens), mask: mask, weight: cfg.weight)
        }
        let x = try initialNoise ?? key.normal([b, horizon, VLAConfig.actionDimension])
        guard x.shape == [b, horizon, VLAConfig.actionDimension] else {
            throw TensorError.shapeMismatch("initial noise must be [\(b), \(horizon), \(VLAConfig.actionDimension)], got \(x.shape)")
        }
        return try Self.integrate(from: x, steps: steps ?? config.samplingSteps, guidance: guidance) { x, t in
            let time = try Tensor.full([b], value: t)
            let v = try velocity(noisyActions: x, time: time, state: inputs.state, stateMask: inputs.stateMask,
                                 memory: memory, prefixMask: prefixMask, logSpeed: inputs.logSpeed)
            guard let free else { return v }
            let vu = try velocity(noisyActions: x, time: time, state: inputs.state, stateMask: inputs.stateMask,
                                  memory: free.memory, prefixMask: free.mask, logSpeed: inputs.logSpeed)
            return try vu + (v - vu) * free.weight
        }
    }

    /// Euler integration of dx/dt = v(x, t) from t = 1 to 0 in `steps` steps. With guidance,
    /// each step also moves x by strength·dt·w ⊙ (y − x̂₀), where x̂₀ = x − t·v is the flow's
    /// current estimate of the clean chunk (x_t = t·ε + (1 − t)·a and v ≈ ε − a give a = x_t − t·v):
    /// the pseudo-inverse guidance of ΠGDM for a masking observation, with ∂x̂₀/∂x taken as I.
    public static func integrate(from x1: Tensor, steps: Int, guidance: FlowGuidance?,
                                 velocity: (Tensor, Double) throws -> Tensor) throws -> Tensor {
        var x = x1
        let dt = 1.0 / Double(steps)
        for i in 0..<steps {
            let t = 1 - Double(i) * dt
            let v = try velocity(x, t)
            var next = try x - v * dt
            if let guidance {
                let estimate = try x - v * t
                next = try next + guidance.weights * (guidance.target - estimate) * (guidance.strength * dt)
            }
            x = next
        }
        return x
    }
}

/// Classifier-free guidance: the same observations without the conditioning, and the weight w
/// of v = v_u + w·(v_c − v_u) (w = 1: conditioned only; w > 1 pushes further from unconditioned).
public struct ClassifierFreeGuidance {
    public var unconditioned: PolicyInputs
    public var weight: Double
    public init(unconditioned: PolicyInputs, weight: Double) { self.unconditioned = unconditioned; self.weight = weight }
}

/// Sampling-time guidance toward known action values (standardized, `[B, H, 64]` each):
/// entries with weight 0 are free, the others are pulled toward `target` at `strength`.
public struct FlowGuidance {
    public var target: Tensor
    public var weights: Tensor
    public var strength: Double
    public init(target: Tensor, weights: Tensor, strength: Double) {
        self.target = target; self.weights = weights; self.strength = strength
    }
}
