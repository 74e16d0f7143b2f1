/// Sizes and flow-matching settings of a `FlowMatchingVLA`. The default trains on a 2-core CPU.
public struct VLAConfig: Codable, Sendable, Equatable {
    /// Square camera images, pixels per side (a multiple of 16).
    public var imageSize = 64
    /// Camera slots: 0 scene, 1 left/only wrist, 2 right wrist (missing cameras are masked).
    public var cameraSlots = 3
    public var maxTextLength = 64
    public var dims = 128
    public var heads = 4
    public var backboneLayers = 2
    public var expertLayers = 2
    /// Action chunk length H.
    public var horizon = 10
    /// Actions the actor executes from each chunk (k = H/2 by default).
    public var executeSteps = 5
    /// Euler steps from t = 1 (noise) to t = 0 (action) when sampling.
    public var samplingSteps = 10
    /// Noise draws per observation in training; they share one backbone pass.
    public var noiseDraws = 4
    /// Gaussian noise added to the (standardized) state during training.
    public var stateNoise: Float = 0.1
    /// Block the action expert's gradient into the backbone (Green-VLA's knowledge insulation).
    public var insulateBackbone = false
    /// Spatial-softmax keypoints per camera, carried by one extra vision token (0: none).
    public var keypoints = 0
    /// Weight of the auxiliary pointing loss (Green-VLA's L1 pointing: the backbone locates the
    /// task's target in the scene camera); > 0 adds the pointing head.
    public var pointingWeight: Double = 0
    /// A second pointing head (with the pointing head) locating where the object goes: the
    /// pick/place mat, JPM's carry target.
    public var placePointing = false
    /// Joint-position actions as offsets from the chunk's starting joint state
    /// (`NormalizationStats.relativeHorizon`) instead of absolute targets.
    public var relativeActions = false
    /// One extra prefix token carrying RECAP's advantage indicator (masked out on rows
    /// without one, which then compute exactly what the model without the token computes).
    public var advantageConditioning = false
    /// Green-VLA's speed conditioning: every RMSNorm of the action expert is modulated by the
    /// episode's measured speed v (relative to the training data's reference speed),
    /// ĥ = (1 + γ(v))·RMSNorm(h) + β(v); at inference v is a knob (default 1, the reference).
    public var speedConditioning = false
    /// Weight of the episode-progress loss; > 0 adds a head predicting the fraction of the task
    /// done from the observation (trained on successful episodes: step t of T is t/(T − 1)).
    public var progressWeight: Double = 0
    /// How the prompt reaches the backbone: learned byte embeddings, or the frozen pretrained
    /// MiniLM's per-token features through a learned projection.
    public var textEncoder = TextEncoderChoice.bytes
    /// Weight of the answer cross-entropy (Green-VLA's L1 VQA, co-trained with actions in R0);
    /// > 0 adds the byte-level answer head that makes the backbone a VLM answering in tokens.
    public var answerWeight: Double = 0
    /// Answer tokens the answer head can read: the size of its own position table, whose
    /// positions continue after the prompt's `maxTextLength`.
    public var maxAnswerLength = 96
    /// Where the instruction sits in the prompt: after the body's line (Green-VLA's order, the
    /// default) or first, so that it starts at the same token position for every body and is
    /// never cut at `maxTextLength`. With byte tokens a body line 4 bytes longer ("cartesian"
    /// for "joint") shifts the instruction and cuts more of it, and L1's pointing learned at
    /// one offset fails at another (README, JPM on arm6).
    public var promptLayout = PromptLayout.bodyFirst

    public init() {}

    /// Missing keys keep their defaults (`keypoints` explicitly 0: a config written before
    /// keypoint tokens existed describes weights without them, whatever the default becomes).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func read<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T { try c.decodeIfPresent(T.self, forKey: key) ?? fallback }
        imageSize = try read(.imageSize, imageSize)
        cameraSlots = try read(.cameraSlots, cameraSlots)
        maxTextLength = try read(.maxTextLength, maxTextLength)
        dims = try read(.dims, dims)
        heads = try read(.heads, heads)
        backboneLayers = try read(.backboneLayers, backboneLayers)
        expertLayers = try read(.expertLayers, expertLayers)
        horizon = try read(.horizon, horizon)
        executeSteps = try read(.executeSteps, executeSteps)
        samplingSteps = try read(.samplingSteps, samplingSteps)
        noiseDraws = try read(.noiseDraws, noiseDraws)
        stateNoise = try read(.stateNoise, stateNoise)
        insulateBackbone = try read(.insulateBackbone, insulateBackbone)
        keypoints = try read(.keypoints, 0)
        pointingWeight = try read(.pointingWeight, 0)
        placePointing = try read(.placePointing, false)
        relativeActions = try read(.relativeActions, false)
        advantageConditioning = try read(.advantageConditioning, false)
        speedConditioning = try read(.speedConditioning, false)
        progressWeight = try read(.progressWeight, 0)
        textEncoder = try read(.textEncoder, .bytes)
        answerWeight = try read(.answerWeight, 0)
        maxAnswerLength = try read(.maxAnswerLength, maxAnswerLength)
        promptLayout = try read(.promptLayout, .bodyFirst)
    }

    /// Vision tokens per camera: the (S/16)² patches plus the keypoint token.
    public var tokensPerCamera: Int { VisionEncoder.tokens(imageSize: imageSize, keypoints: keypoints) }
    public static let actionDimension = 64
}

/// The order of the prompt's two parts (`ObservationEncoder.prompt`).
public enum PromptLayout: String, Codable, Sendable, CaseIterable {
    /// "Num hands: 1. Control mode: joint. reach the red block"
    case bodyFirst = "body-first"
    /// "reach the red block. Num hands: 1. Control mode: joint."
    case instructionFirst = "instruction-first"
}

/// The VLA's text encoder. A checkpoint records the choice, never MiniLM's weights.
public enum TextEncoderChoice: String, Codable, Sendable, CaseIterable {
    /// `ByteTokenizer` ids through a learned embedding (the default).
    case bytes
    /// WordPiece ids through the frozen all-MiniLM-L6-v2 (`MiniLMFeatureCache`), its
    /// `[B, L, 384]` hidden states projected to the model width by a learned `Linear`.
    case miniLM = "minilm"
}
