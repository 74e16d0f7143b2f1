/// What a policy sees at one step.
public struct Observation: Sendable {
    /// Camera names in a fixed order: "scene", then one wrist camera per arm.
    public let cameraNames: [String]
    /// One image per camera, [height, width, 3] uint8 row-major, rows top-down
    /// (empty when rendering is off).
    public let images: [[UInt8]]
    public let imageWidth: Int
    public let imageHeight: Int
    /// Native proprio state (see the embodiment spec's `stateNames`).
    public let state: [Float]
    public let instruction: String
    public let step: Int

    public func image(_ camera: String) -> [UInt8]? {
        cameraNames.firstIndex(of: camera).flatMap { images.indices.contains($0) ? images[$0] : nil }
    }
}

/// Result of one control step.
public struct StepResult: Sendable {
    public let observation: Observation
    /// Sparse reward: 1 when the task is solved at this step, else 0.
    public let reward: Float
    /// Success or step limit reached.
    public let done: Bool
    public let success: Bool
    /// The step limit (not success) ended the episode.
    public let truncated: Bool
}

/// Environment settings.
public struct EnvironmentConfig: Sendable {
    public var imageWidth = 96
    public var imageHeight = 96
    /// Render camera images into observations (off for fast expert rollouts).
    public var renderImages = true
    /// Shadows, reflections and skybox off.
    public var fastRender = true
    /// Physics steps of 2 ms per control step (25 → 20 Hz control).
    public var substeps = 25
    /// Off-screen multisampling (MSAA) samples; 0 is ~fastest on software GL.
    public var multisamples = 0
    /// Override of the task's step limit (e.g. longer for a half-speed operator).
    public var stepLimit: Int? = nil
    /// Caps the scene's random distractor objects (nil: the task's own range).
    public var maxDistractors: Int? = nil

    public init(imageWidth: Int = 96, imageHeight: Int = 96, renderImages: Bool = true, fastRender: Bool = true, substeps: Int = 25, multisamples: Int = 0) {
        self.multisamples = multisamples
        self.imageWidth = imageWidth
        self.imageHeight = imageHeight
        self.renderImages = renderImages
        self.fastRender = fastRender
        self.substeps = substeps
    }
}

/// Errors from the environment.
public enum EnvironmentError: Error, Equatable, CustomStringConvertible {
    case unsupported(embodiment: String, task: String)
    case wrongActionLength(expected: Int, got: Int)
    case nonFiniteAction(index: Int)
    case unknownName(String)

    public var description: String {
        switch self {
        case let .unsupported(e, t): "task \(t) does not run on embodiment \(e)"
        case let .wrongActionLength(e, g): "native action needs \(e) values, got \(g)"
        case let .nonFiniteAction(i): "native action value \(i) is NaN or infinite"
        case let .unknownName(n): "unknown name \(n)"
        }
    }
}
