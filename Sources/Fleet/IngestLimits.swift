/// Upper bounds the learner enforces on uploads, so one bad or hostile actor cannot exhaust
/// its memory.
public struct IngestLimits: Sendable {
    /// Largest upload message (header or step chunk), in approximate wire bytes.
    public var maxMessageBytes = 8 << 20
    public var maxStepsPerChunk = 64
    public var maxStepsPerEpisode = 2_000
    public var maxCameras = 4
    public var maxImageSide = 512
    public var maxTextLength = 1_000

    public init() {}
}
