import Foundation
import RobotData

/// Rebuilds one uploaded episode from its messages, validating as it goes: every error is an
/// `IngestError` naming the step and field, thrown before anything reaches the store.
public struct EpisodeAssembler {
    public let id: UUID
    public let actorID: String
    public let header: Swiftvla_Fleet_V1_EpisodeHeader
    private let spec: EmbodimentSpec
    private let limits: IngestLimits
    private var states: [Float] = []
    private var native: [Float] = []
    private var unified: [Float] = []
    private var rewards: [Float] = []
    private var dones: [Bool] = []
    private var sources: [StepSource] = []
    private var timestamps: [Double] = []
    private var stepVersions: [Int] = []
    private var frames: [[UInt8]]
    public private(set) var stepCount = 0

    /// Checks the header against the catalog (known embodiment and task, its native widths)
    /// and the limits.
    public init(header h: Swiftvla_Fleet_V1_EpisodeHeader, catalog: TaskCatalog, limits: IngestLimits) throws {
        guard let id = UUID(uuidString: h.episodeID) else { throw IngestError.badHeader("episode id \"\(h.episodeID.prefix(64))\" is not a UUID") }
        guard !h.actorID.isEmpty else { throw IngestError.badHeader("actor id is empty") }
        for (name, text) in [("instruction", h.instruction), ("embodiment", h.embodiment), ("task", h.task), ("actor id", h.actorID)]
        where text.utf8.count > limits.maxTextLength {
            throw IngestError.tooLarge("\(name) has \(text.utf8.count) bytes (limit \(limits.maxTextLength))")
        }
        let spec = try catalog.spec(for: h.embodiment)
        guard catalog.contains(embodiment: h.embodiment, task: h.task) else {
            throw IngestError.unknownTask(embodiment: h.embodiment, task: h.task)
        }
        guard Int(h.stateDim) == spec.stateDimension else {
            throw IngestError.shape("state_dim \(h.stateDim), \(h.embodiment) has \(spec.stateDimension)")
        }
        guard Int(h.actionDim) == spec.actionDimension else {
            throw IngestError.shape("action_dim \(h.actionDim), \(h.embodiment) has \(spec.actionDimension)")
        }
        guard h.policyVersion >= 0 else { throw IngestError.badHeader("negative policy version \(h.policyVersion)") }
        guard h.cameras.count <= limits.maxCameras else { throw IngestError.tooLarge("\(h.cameras.count) cameras (limit \(limits.maxCameras))") }
        guard Set(h.cameras.map(\.name)).count == h.cameras.count else {
            throw IngestError.badHeader("camera names must be unique")
        }
        // Refused here, before any step arrives, by the rule `Episode.validate` applies.
        for c in h.cameras where !Episode.isStorableCameraName(c.name) {
            throw IngestError.badHeader("camera name \(c.name.debugDescription.prefix(80)) must be 1…64 of A–Z a–z 0–9 _ - .")
        }
        for c in h.cameras where c.height == 0 || c.width == 0 || c.height > limits.maxImageSide || c.width > limits.maxImageSide {
            throw IngestError.shape("camera \(c.name) is \(c.height)×\(c.width) (sides 1…\(limits.maxImageSide))")
        }
        try catalog.checkCameras(h.cameras.map { ($0.name, Int($0.height), Int($0.width)) }, embodiment: h.embodiment)
        self.id = id
        actorID = h.actorID
        header = h
        self.spec = spec
        self.limits = limits
        frames = Array(repeating: [], count: h.cameras.count)
    }

    /// Appends one chunk; steps must continue exactly where the last chunk ended.
    public mutating func append(_ chunk: Swiftvla_Fleet_V1_StepChunk) throws {
        guard Int(chunk.firstStep) == stepCount else {
            throw IngestError.protocolViolation("chunk starts at step \(chunk.firstStep), expected \(stepCount)")
        }
        guard !chunk.steps.isEmpty else { throw IngestError.protocolViolation("empty step chunk at step \(stepCount)") }
        guard chunk.steps.count <= limits.maxStepsPerChunk else {
            throw IngestError.tooLarge("\(chunk.steps.count) steps in one chunk (limit \(limits.maxStepsPerChunk))")
        }
        guard stepCount + chunk.steps.count <= limits.maxStepsPerEpisode else {
            throw IngestError.tooLarge("more than \(limits.maxStepsPerEpisode) steps")
        }
        // Validate the whole chunk before keeping any of it.
        for (k, s) in chunk.steps.enumerated() { try validate(s, at: stepCount + k) }
        for s in chunk.steps {
            states += s.state
            native += s.nativeAction
            unified += s.unifiedAction
            rewards.append(s.reward)
            dones.append(s.done)
            sources.append(EpisodeMessages.source(s.source)!)
            timestamps.append(s.timestamp)
            stepVersions.append(Int(s.policyVersion))
            for (c, f) in s.frames.enumerated() { frames[c] += f }
        }
        stepCount += chunk.steps.count
    }

    private func validate(_ s: Swiftvla_Fleet_V1_Step, at t: Int) throws {
        let d = UnifiedActionSpace.dimension
        for (name, values, width) in [("state", s.state, spec.stateDimension), ("native_action", s.nativeAction, spec.actionDimension),
                                      ("unified_action", s.unifiedAction, d)] {
            guard values.count == width else { throw IngestError.shape("step \(t): \(name) has \(values.count) values, expected \(width)") }
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw IngestError.nonFinite("step \(t): \(name)[\(bad)] = \(values[bad])")
            }
        }
        guard s.policyVersion >= 0, s.policyVersion <= header.policyVersion else {
            throw IngestError.badValue("step \(t): policy version \(s.policyVersion) outside 0…\(header.policyVersion) (the header's)")
        }
        guard s.reward.isFinite else { throw IngestError.nonFinite("step \(t): reward = \(s.reward)") }
        guard s.timestamp.isFinite, s.timestamp >= 0 else { throw IngestError.nonFinite("step \(t): timestamp = \(s.timestamp)") }
        guard EpisodeMessages.source(s.source) != nil else { throw IngestError.badValue("step \(t): source \(s.source) is not policy/operator/demo") }
        // The unified action is the native one scattered into its slots: they must agree,
        // or the learner would train on a different command than the robot executed.
        for (i, slot) in spec.actionMap.slots.enumerated() where s.unifiedAction[slot] != s.nativeAction[i] {
            throw IngestError.shape("step \(t): unified_action[\(slot)] = \(s.unifiedAction[slot]) but native_action[\(i)] = \(s.nativeAction[i])")
        }
        guard s.frames.count == header.cameras.count else {
            throw IngestError.shape("step \(t): \(s.frames.count) frames for \(header.cameras.count) cameras")
        }
        for (c, f) in s.frames.enumerated() {
            let camera = header.cameras[c]
            let expected = Int(camera.height) * Int(camera.width) * 3
            guard f.count == expected else {
                throw IngestError.shape("step \(t): camera \(camera.name) frame has \(f.count) bytes, expected \(expected)")
            }
        }
    }

    /// The finished episode; `end.step_count` must match what was sent.
    public func finish(_ end: Swiftvla_Fleet_V1_EpisodeEnd) throws -> Episode {
        guard stepCount > 0 else { throw IngestError.protocolViolation("episode ended with no steps") }
        guard Int(end.stepCount) == stepCount else {
            throw IngestError.protocolViolation("end says \(end.stepCount) steps, \(stepCount) were sent")
        }
        var cameras: [String: CameraFrames] = [:]
        for (c, camera) in header.cameras.enumerated() {
            cameras[camera.name] = CameraFrames(height: Int(camera.height), width: Int(camera.width), pixels: frames[c])
        }
        let episode = Episode(
            id: id, embodiment: header.embodiment, task: header.task, instruction: header.instruction,
            cameras: cameras,
            states: try StepMatrix(rows: stepCount, columns: spec.stateDimension, values: states),
            nativeActions: try StepMatrix(rows: stepCount, columns: spec.actionDimension, values: native),
            unifiedActions: try StepMatrix(rows: stepCount, columns: UnifiedActionSpace.dimension, values: unified),
            actionMask: spec.actionMask, rewards: rewards, dones: dones, sources: sources, timestamps: timestamps,
            success: end.success, policyVersion: Int(header.policyVersion), seed: header.seedKnown ? header.seed : nil,
            // 0 on a step means "the header's version"; all zero: one version for the episode.
            stepPolicyVersions: stepVersions.allSatisfy { $0 == 0 } ? nil
                : stepVersions.map { $0 == 0 ? Int(header.policyVersion) : $0 })
        do { try episode.validate() } catch { throw IngestError.shape("\(error)") }
        return episode
    }
}
