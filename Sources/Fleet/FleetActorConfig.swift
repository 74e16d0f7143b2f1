import Foundation
import RobotSim

/// Settings of one actor process (one simulated robot).
public struct FleetActorConfig: Sendable {
    public var actorID: String
    public var learnerHost = "127.0.0.1"
    public var learnerPort: Int
    public var embodiment: EmbodimentKind
    /// Tasks this actor can run; the learner assigns one of them.
    public var tasks: [TaskKind]
    public var authToken = ""
    /// Connect over TLS, trusting the certificates in this PEM file (nil: plaintext).
    public var tlsTrustRoots: String?
    /// Episodes to run at least …
    public var episodes = 10
    /// … and, when set, keep going until an episode ran under this policy version or newer,
    /// up to `maxEpisodes`.
    public var targetPolicyVersion: Int?
    public var maxEpisodes = 100
    /// Robot-time budget (seconds from the first episode's start): no episode starts after
    /// it (the running one finishes).
    public var robotTimeBudget: Double?
    public var environment = EnvironmentConfig(imageWidth: 64, imageHeight: 64)
    public var gate = InterventionGate.Config()
    /// The scripted operator's path when it takes over (and what the gate compares against):
    /// straight at the target from where the policy is (its corrections continue the policy's
    /// motion; the demos' lift-first phase machine taught from there collapses a small policy).
    public var operatorApproach = OperatorProfile.Approach.direct
    /// Play only this split's seen scenes: the assigned seeds in order, held-out ones skipped.
    public var sceneSplit: SceneSplit?
    public var stepsPerChunk = 16
    public var inference = InferenceMode.synchronous
    /// When newer weights are loaded: between episodes (SOP's rule: one episode, one version)
    /// or also before any chunk request (each step then records the version that chose it).
    public var weightSwap = WeightSwap.episodeBoundary
    /// Ask the learner for each version as a delta against the last one received (lossless).
    public var acceptDeltaWeights = true
    /// Lock-step fleet (`LockstepRounds` on the learner): after this many episodes with one
    /// version, wait for the next version before the next episode (nil: never wait).
    public var lockstepEpisodesPerVersion: Int?
    /// How long a lock-step actor waits for a version (its first one included) before it
    /// gives up with `FleetActorError.noNewVersion`.
    public var lockstepTimeout = 600.0
    /// Control steps per second of robot time (e.g. 10 Hz); nil runs as fast as it can.
    public var controlRate: Double?
    /// Wait this long for the first published weights before acting with the initial ones.
    public var initialPolicyWait = 10.0
    public var heartbeatInterval = 1.0
    public var uploadTimeout = 30.0
    /// At the end, wait this long for unacknowledged episodes to be acked.
    public var drainTimeout = 30.0
    /// Unacknowledged episodes kept in memory at most; more go to `spillDirectory`.
    public var maxEpisodesInMemory = 16
    /// Where episodes wait while the learner is unreachable (nil: memory only). Files left
    /// there by a crashed actor are re-sent first.
    public var spillDirectory: URL?

    public init(actorID: String, learnerPort: Int, embodiment: EmbodimentKind, tasks: [TaskKind]) {
        self.actorID = actorID
        self.learnerPort = learnerPort
        self.embodiment = embodiment
        self.tasks = tasks
    }
}

public enum FleetActorError: Error, CustomStringConvertible, Equatable {
    /// A lock-step actor waited `seconds` for a version newer than `version`.
    case noNewVersion(after: Int, seconds: Double)

    public var description: String {
        switch self {
        case .noNewVersion(let version, let seconds):
            return "FleetActorError.noNewVersion: lock-step actor waited \(Int(seconds)) s for a policy version after \(version); is the learner in lock-step rounds for this many actors?"
        }
    }
}

public enum WeightSwap: String, Sendable, CaseIterable {
    case episodeBoundary = "episode"
    case chunkBoundary = "chunk"
}

/// What one actor did.
public struct FleetActorReport: Sendable {
    public struct EpisodeSummary: Sendable {
        public let id: UUID
        public let task: String
        public let policyVersion: Int
        /// Newest version the learner had announced when the episode started, minus the one
        /// acting: how far behind this episode's policy was.
        public let policyLag: Int
        public let steps: Int
        public let operatorSteps: Int
        public let success: Bool
        public let takeovers: [InterventionGate.Reason]
        /// Control steps at which the robot waited for the policy.
        public let inferenceWaits: Int
        public let finished: Date
    }

    public var episodes: [EpisodeSummary] = []
    /// Versions loaded into the policy, in order.
    public var versionsLoaded: [Int] = []
    public var acked = 0
    public var duplicates = 0
    /// Uploads the learner refused for good (invalid data), dropped.
    public var rejected = 0
    /// Failed attempts that were retried.
    public var retries = 0
    /// Episodes still unacknowledged when the actor stopped.
    public var unacked = 0
    /// Episodes that waited on disk because too many were unacknowledged.
    public var spilled = 0
    public var weightFailures = 0
    public var seconds = 0.0
}
