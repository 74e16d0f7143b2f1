import Foundation

/// Learner counters, safe to bump from any RPC handler. `snapshot()` is what a dashboard or
/// a test reads.
public final class FleetMetrics: Sendable {
    public struct Snapshot: Sendable, Codable, Equatable {
        public var actorsRegistered = 0
        public var episodesAccepted = 0
        /// Uploads of an id that was already stored (acked with duplicate = true).
        public var episodesDuplicate = 0
        public var episodesRejected = 0
        /// Refused calls (uploads, registrations, watches, heartbeats) by `IngestError.reason`.
        public var rejections: [String: Int] = [:]
        public var stepsAccepted = 0
        public var operatorStepsAccepted = 0
        /// Payload bytes of accepted and rejected upload messages (approximate wire size).
        public var bytesReceived = 0
        public var heartbeats = 0
        public var trainSteps = 0
        public var lastLoss: Float?
        public var versionsPublished = 0
        public var latestVersion = 0
        /// Size of the last published weight file and the time to export + encode it.
        public var lastPublicationBytes = 0
        public var lastPublicationSeconds = 0.0
        /// Bytes of the last version's delta against the one before (0: none or not smaller).
        public var lastPublicationDeltaBytes = 0
        /// Versions written to watch streams, how many of them as deltas, and their payload bytes.
        public var versionsSent = 0
        public var deltaVersionsSent = 0
        public var weightBytesSent = 0
        /// Episodes accepted per policy version that acted in them.
        public var episodesPerVersion: [Int: Int] = [:]
        public var checkpointsSaved = 0
        /// This learner resumed from a checkpoint at start.
        public var restoredFromCheckpoint = false
        /// Data-parallel: episodes other ranks stored, read from their shards.
        public var peerEpisodesIngested = 0
    }

    private let state = Locked(Snapshot())

    public init() {}

    public func snapshot() -> Snapshot { state.current }

    func update(_ body: (inout Snapshot) -> Void) { state.withLock { body(&$0) } }

    /// Counts a refusal by reason; `episode` when it was an upload.
    func reject(_ error: IngestError, episode: Bool) {
        update {
            if episode { $0.episodesRejected += 1 }
            $0.rejections[error.reason, default: 0] += 1
        }
    }
}
