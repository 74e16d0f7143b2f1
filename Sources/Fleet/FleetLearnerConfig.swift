import Foundation
import TensorKit

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
    /// Also encode each version as a `WeightDelta` against the previous one, sent to watchers
    /// that hold it and accept deltas (lossless; the full file goes to everyone else).
    public var deltaWeights = true
    public var onlineBufferCapacity = 1_024
    /// Scene seeds of the n-th registered actor start at seedBase + n · 100 000. The default
    /// keeps fleet scenes apart from the evaluation seeds (0…), the demos' (10 000…) and L1's
    /// scenes (100 000…): an actor at seed 0 would post-train on the held-out scenes.
    public var seedBase: UInt64 = FleetLearnerConfig.defaultSeedBase
    public static let defaultSeedBase: UInt64 = 1_000_000
    /// Save the backend's training state every this many train steps (and at stop) under
    /// `<storeDirectory>/learner-checkpoint`; a restarted learner resumes from it. 0: never.
    public var checkpointEveryTrainSteps = 200
    /// One rank of a data-parallel learner (nil: a learner on its own).
    public var ranks: LearnerRanks?
    /// Write the learner's curves (loss, ω_on, per-task success and operator share) as
    /// TensorBoard event files here (nil: none).
    public var tensorBoardDirectory: URL?
    /// Lock-step rounds instead of SOP's asynchronous loop (nil). Not with `ranks`.
    public var lockstep: LockstepRounds?

    public init(storeDirectory: URL) { self.storeDirectory = storeDirectory }
}

/// A fleet in lock-step rounds: the learner waits until each of `actors` actors has uploaded
/// `episodesPerRound` episodes acted by the newest version, hands them to the backend in a
/// fixed order (scene seed, then id) rather than in arrival order, trains
/// `publishEveryTrainSteps` steps and publishes the next version, which the actors wait for
/// (`FleetActorConfig.lockstepEpisodesPerVersion`). Slower than the asynchronous loop (actors
/// and learner take turns), but what the learner trains on, and when, no longer depends on
/// timing, so a run is a function of its seeds.
public struct LockstepRounds: Sendable, Equatable {
    public var actors: Int
    public var episodesPerRound: Int

    public init(actors: Int, episodesPerRound: Int = 1) {
        self.actors = actors
        self.episodesPerRound = episodesPerRound
    }

    public var episodesPerVersion: Int { actors * episodesPerRound }
}

/// This process's place in a data-parallel learner (`mlx.launch … vla learner --data-parallel`).
/// Every rank holds the model and trains on its share of each batch (gradients meet in MLX's
/// `all_sum`); actors register with rank 0, which spreads their uploads over the ranks; each
/// rank stores what it receives in its own shard of the shared store and reads its peers'
/// shards, so every rank samples from the whole store. Only rank 0 publishes policy versions
/// and writes checkpoints.
public struct LearnerRanks: Sendable {
    public var group: DistributedGroup
    /// Where each rank's actors upload ("host:port", index = rank).
    public var ingestEndpoints: [String]
    /// A train step (its collectives) failing, or taking longer than `collectiveTimeout`, means a
    /// rank died or hung: `onCollectiveFailure` runs (default: log and exit with status 75, so
    /// a supervisor restarts the job from the last checkpoint).
    public var collectiveTimeout = 120.0
    public var onCollectiveFailure: @Sendable (_ rank: Int, _ step: Int, _ reason: String) -> Void = { rank, step, reason in
        FileHandle.standardError.write(Data("rank \(rank): train step \(step): \(reason) (a peer rank died or hung); exiting with status 75 for a restart from the last checkpoint\n".utf8))
        exit(75)
    }
    /// How often a rank looks for new episodes in its peers' shards (seconds).
    public var peerScanInterval = 0.5

    public init(group: DistributedGroup, ingestEndpoints: [String]) {
        self.group = group
        self.ingestEndpoints = ingestEndpoints
    }

    public var rank: Int { group.rank }
    public var size: Int { group.size }
    public var isPublisher: Bool { group.rank == 0 }

    /// Rank r's shard of the store rooted at `directory`.
    public static func shard(_ rank: Int, of directory: URL) -> URL {
        directory.appendingPathComponent("ranks").appendingPathComponent("\(rank)")
    }
}
