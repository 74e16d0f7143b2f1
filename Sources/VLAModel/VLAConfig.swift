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

    public init() {}

    public var patchesPerCamera: Int { (imageSize / 16) * (imageSize / 16) }
    public static let actionDimension = 64
}
