import Foundation

/// Settings of a learner process.
public struct FleetLearnerConfig: Sendable {
    /// Address to bind; loopback by default.
    public var host = "127.0.0.1"
    /// 0 picks a free port (read it back from `FleetLearner.start()`).
    public var port = 0
    /// Root of the learner's `EpisodeStore`.
    public var storeDirectory: URL
    public var catalog = TaskCatalog.all
    public var limits = IngestLimits()
    /// Tokens actors must present on every call (default: none).
    public var credentials = FleetCredentials()
    /// The shared token of `credentials` (nil: none).
    public var authToken: String? {
        get { credentials.sharedToken }
        set { credentials.sharedToken = newValue }
    }
    /// Serve over TLS with this certificate and key (nil: plaintext).
    public var tls: FleetTLS?
    /// Publish a new version after this many successful train steps …
    public var publishEveryTrainSteps = 50
    /// … but not more often than this (seconds).
    public var minPublishInterval = 0.0
    /// Publish the backend's initial weights as version 1 at start, so actors act from the
    /// start policy rather than waiting for the first training round.
    public var publishInitialPolicy = true
    /// Pause between train steps (seconds), to leave CPU to co-located actors.
    public var trainStepPause = 0.0
    /// Start train steps at most this often (seconds; 0: back to back). A fixed learner pace
    /// makes runs with different fleet sizes differ in their data, not in the CPU the learner got.
    public var trainStepInterval = 0.0
    /// Wait when the backend has nothing to train on (seconds).
    public var idlePause = 0.02
    public var weightChunkBytes = 1 << 20
    public var onlineBufferCapacity = 1_024
    /// Scene seeds of the n-th registered actor start at seedBase + n · 100 000.
    public var seedBase: UInt64 = 0
    /// Save the backend's training state every this many train steps (and at stop) under
    /// `<storeDirectory>/learner-checkpoint`; a restarted learner resumes from it. 0: never.
    public var checkpointEveryTrainSteps = 200

    public init(storeDirectory: URL) { self.storeDirectory = storeDirectory }
}
