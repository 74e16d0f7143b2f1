import Foundation

/// Who chose the action executed at a step.
public enum StepSource: UInt8, Sendable, Codable, CaseIterable {
    /// The policy being trained (on-policy data).
    case policy = 0
    /// A human or scripted operator who took over (an intervention).
    case `operator` = 1
    /// An offline demonstration.
    case demo = 2
}

/// A row-major `[rows, columns]` matrix of Float, the per-step arrays of an episode.
public struct StepMatrix: Sendable, Equatable {
    public var rows: Int
    public var columns: Int
    public var values: [Float]

    public init(rows: Int, columns: Int, values: [Float]) throws {
        guard values.count == rows * columns else {
            throw EpisodeError.shape("\(values.count) values for a [\(rows), \(columns)] matrix")
        }
        self.rows = rows
        self.columns = columns
        self.values = values
    }
    /// Stacks equal-length rows.
    public init(_ rows: [[Float]], columns: Int) throws {
        guard rows.allSatisfy({ $0.count == columns }) else {
            throw EpisodeError.shape("rows of unequal length (expected \(columns))")
        }
        try self.init(rows: rows.count, columns: columns, values: rows.flatMap { $0 })
    }
    public func row(_ i: Int) -> ArraySlice<Float> { values[(i * columns)..<((i + 1) * columns)] }
}

/// Frames of one camera: `[steps, height, width, 3]` RGB uint8, row-major.
public struct CameraFrames: Sendable, Equatable {
    public var height: Int
    public var width: Int
    public var pixels: [UInt8]
    public init(height: Int, width: Int, pixels: [UInt8]) {
        self.height = height
        self.width = width
        self.pixels = pixels
    }
    public var frameBytes: Int { height * width * 3 }
    public var count: Int { frameBytes == 0 ? 0 : pixels.count / frameBytes }
    public func frame(_ i: Int) -> ArraySlice<UInt8> { pixels[(i * frameBytes)..<((i + 1) * frameBytes)] }
}

/// One robot episode: what was seen, felt and done at every step, and how it ended.
///
/// Native actions are the embodiment's own command vector; unified actions are the same
/// command scattered into the 64 slots of `UnifiedActionSpace`, with `actionMask` marking the
/// slots this embodiment uses (Green-VLA). Per-step `sources` say who acted: the policy, an
/// operator who took over (an intervention), or a demonstration.
public struct Episode: Sendable, Equatable {
    public var id: UUID
    public var embodiment: String
    public var task: String
    public var instruction: String
    /// Camera name → frames (one per step).
    public var cameras: [String: CameraFrames]
    /// `[T, stateDim]` proprioceptive state (native layout).
    public var states: StepMatrix
    /// `[T, actionDim]` native actions.
    public var nativeActions: StepMatrix
    /// `[T, 64]` unified actions.
    public var unifiedActions: StepMatrix
    /// `[64]`: 1 where the embodiment has the slot.
    public var actionMask: [Float]
    public var rewards: [Float]
    public var dones: [Bool]
    public var sources: [StepSource]
    /// Seconds since the episode started, per step (stored to the microsecond).
    public var timestamps: [Double]
    public var success: Bool
    /// Policy version that acted (0 for demonstrations); with chunk-boundary swaps, the
    /// newest one that acted.
    public var policyVersion: Int
    /// Per step, the version whose chunk chose the action (nil: every step ran
    /// `policyVersion`, SOP's one-version-per-episode rule).
    public var stepPolicyVersions: [Int]?
    /// The seed the simulator scene was built from, when there was one.
    public var seed: UInt64?
    /// Mean optical-flow speed measured by RobotData (set after alignment), if known.
    public var speed: Float?
    public var createdAt: Date

    public init(id: UUID = UUID(), embodiment: String, task: String, instruction: String,
                cameras: [String: CameraFrames], states: StepMatrix, nativeActions: StepMatrix,
                unifiedActions: StepMatrix, actionMask: [Float], rewards: [Float], dones: [Bool],
                sources: [StepSource], timestamps: [Double], success: Bool, policyVersion: Int = 0,
                seed: UInt64? = nil, speed: Float? = nil, createdAt: Date = Date(), stepPolicyVersions: [Int]? = nil) {
        self.id = id; self.embodiment = embodiment; self.task = task; self.instruction = instruction
        self.cameras = cameras; self.states = states; self.nativeActions = nativeActions
        self.unifiedActions = unifiedActions; self.actionMask = actionMask; self.rewards = rewards
        self.dones = dones; self.sources = sources; self.timestamps = timestamps; self.success = success
        self.policyVersion = policyVersion; self.seed = seed; self.speed = speed; self.createdAt = createdAt
        self.stepPolicyVersions = stepPolicyVersions
    }

    public var stepCount: Int { states.rows }
    /// Seconds between steps (steps are evenly spaced; 0 for a single step).
    public var controlPeriod: Double {
        stepCount > 1 ? (timestamps[stepCount - 1] - timestamps[0]) / Double(stepCount - 1) : 0
    }
    /// Steps where an operator acted.
    public var interventionCount: Int { sources.filter { $0 == .operator }.count }
    /// The source of most steps (used to index and filter).
    public var dominantSource: StepSource {
        StepSource.allCases.max { a, b in sources.filter { $0 == a }.count < sources.filter { $0 == b }.count } ?? .demo
    }

    /// Largest timestamp magnitude the codec stores (seconds; ~31 700 years).
    public static let maxTimestamp = 1e12

    /// Whether a camera name can be stored: it becomes a tensor name on disk and a C string in
    /// the loader, so plain ASCII only, 1…64 of A–Z a–z 0–9 _ - . (a NUL truncated it on read).
    public static func isStorableCameraName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || [0x5F, 0x2D, 0x2E].contains($0) }
    }

    /// Checks that every per-step array has T rows, the unified layout is 64 wide, and all
    /// numbers are finite. Throws the first problem found.
    public func validate() throws {
        let t = stepCount
        guard t > 0 else { throw EpisodeError.shape("episode has no steps") }
        for (name, n) in [("nativeActions", nativeActions.rows), ("unifiedActions", unifiedActions.rows),
                          ("rewards", rewards.count), ("dones", dones.count), ("sources", sources.count),
                          ("timestamps", timestamps.count)] where n != t {
            throw EpisodeError.shape("\(name) has \(n) steps, states have \(t)")
        }
        // Stored as whole microseconds in an Int64 (the fuzzer found 1e300 s crashing the codec).
        if let bad = timestamps.first(where: { !($0.isFinite && abs($0) <= Self.maxTimestamp) }) {
            throw EpisodeError.shape("timestamp \(bad) s is not finite or beyond ±\(Self.maxTimestamp) s")
        }
        if let v = stepPolicyVersions {
            guard v.count == t else { throw EpisodeError.shape("stepPolicyVersions has \(v.count) steps, states have \(t)") }
            guard v.allSatisfy({ $0 >= 0 && $0 <= policyVersion }) else {
                throw EpisodeError.shape("step policy versions must lie in 0…\(policyVersion) (the episode's newest)")
            }
        }
        guard unifiedActions.columns == UnifiedActionSpace.dimension, actionMask.count == UnifiedActionSpace.dimension else {
            throw EpisodeError.shape("unified actions must be \(UnifiedActionSpace.dimension) wide")
        }
        for name in cameras.keys where !Self.isStorableCameraName(name) {
            throw EpisodeError.shape("camera name \(name.debugDescription.prefix(80)) must be 1…64 of A–Z a–z 0–9 _ - .")
        }
        for (name, frames) in cameras where frames.count != t || frames.pixels.count != t * frames.frameBytes {
            throw EpisodeError.shape("camera \(name) has \(frames.count) frames for \(t) steps")
        }
        for (name, values) in [("states", states.values), ("nativeActions", nativeActions.values),
                               ("unifiedActions", unifiedActions.values), ("rewards", rewards)] {
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw EpisodeError.nonFinite("\(name)[\(bad)] = \(values[bad])")
            }
        }
        guard embodiment.isEmpty == false, task.isEmpty == false else {
            throw EpisodeError.shape("embodiment and task must be named")
        }
    }
}

/// Problems with an episode's contents or its file.
public enum EpisodeError: Error, CustomStringConvertible, Equatable {
    case shape(String)
    case nonFinite(String)
    case corrupt(file: String, reason: String)

    public var description: String {
        switch self {
        case .shape(let m): return "EpisodeError.shape: \(m)"
        case .nonFinite(let m): return "EpisodeError.nonFinite: \(m)"
        case .corrupt(let f, let r): return "EpisodeError.corrupt(\(f)): \(r)"
        }
    }
}
