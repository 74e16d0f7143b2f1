import Foundation
import Training

/// What a running learner has seen, for its dashboard: every accepted episode (who ran it,
/// under which policy version, success, operator share) and every train step's loss with the
/// sampler's per-task state. Bounded: the oldest entries go first.
public final class LearnerHistory: Sendable {
    /// One accepted episode.
    public struct Episode: Codable, Sendable, Equatable {
        public var id: UUID
        public var actor: String
        public var embodiment: String
        public var task: String
        public var policyVersion: Int
        /// Versions published after the one that acted, when the episode arrived.
        public var policyLag: Int
        public var steps: Int
        public var operatorSteps: Int
        public var success: Bool
        /// Seconds since the learner started.
        public var receivedAt: Double

        /// "embodiment/task", the sampler's key.
        public var taskKey: String { "\(embodiment)/\(task)" }
    }

    /// One train step.
    public struct TrainPoint: Codable, Sendable, Equatable {
        public var step: Int
        public var seconds: Double
        public var loss: Double
        /// Per task key: ω_on and the windowed online/offline losses (empty for backends
        /// without an adaptive sampler).
        public var sampler: [String: TaskSamplerStatus]
    }

    public struct Snapshot: Sendable {
        public var episodes: [Episode]
        public var trainPoints: [TrainPoint]
        /// Seconds since the learner started, when the snapshot was taken.
        public var seconds: Double
    }

    public let episodeCapacity: Int
    public let trainPointCapacity: Int
    private let started = ContinuousClock.now
    private let state = Locked((episodes: [Episode](), trainPoints: [TrainPoint]()))
    /// The same curves for TensorBoard, and per task the recent outcomes they average.
    private let board: Locked<(writer: TensorBoardWriter, recent: [String: [(success: Bool, operatorShare: Double)]])>?
    /// Episodes per task the TensorBoard success and operator-share curves average over.
    public static let tensorBoardWindow = 50

    public init(episodeCapacity: Int = 20_000, trainPointCapacity: Int = 20_000, tensorBoard: URL? = nil) throws {
        precondition(episodeCapacity > 0 && trainPointCapacity > 0)
        self.episodeCapacity = episodeCapacity
        self.trainPointCapacity = trainPointCapacity
        board = try tensorBoard.map { Locked((writer: try TensorBoardWriter(directory: $0), recent: [:])) }
    }

    /// Seconds since the learner started.
    public var seconds: Double {
        let d = ContinuousClock.now - started
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    func record(_ episode: Episode) {
        state.withLock { s in
            s.episodes.append(episode)
            // Trim in batches so appends stay amortized O(1).
            if s.episodes.count > episodeCapacity + episodeCapacity / 8 { s.episodes.removeFirst(s.episodes.count - episodeCapacity) }
        }
        board?.withLock { b in
            var recent = b.recent[episode.taskKey, default: []]
            recent.append((episode.success, Double(episode.operatorSteps) / Double(max(episode.steps, 1))))
            if recent.count > Self.tensorBoardWindow { recent.removeFirst() }
            b.recent[episode.taskKey] = recent
            let n = Double(recent.count)
            // Plotted against the learner's train step, like the loss.
            let step = state.withLock { $0.trainPoints.last?.step ?? 0 }
            try? b.writer.add(scalars: [
                ("fleet/success \(episode.taskKey)", Float(Double(recent.filter(\.success).count) / n)),
                ("fleet/operator_share \(episode.taskKey)", Float(recent.map(\.operatorShare).reduce(0, +) / n)),
                ("fleet/policy_lag", Float(episode.policyLag)),
            ], step: step)
        }
    }

    func record(_ point: TrainPoint) {
        state.withLock { s in
            s.trainPoints.append(point)
            if s.trainPoints.count > trainPointCapacity + trainPointCapacity / 8 {
                s.trainPoints.removeFirst(s.trainPoints.count - trainPointCapacity)
            }
        }
        board?.withLock { b in
            try? b.writer.add(scalars: [("learner/loss", Float(point.loss))]
                + point.sampler.keys.sorted().map { ("sampler/omega_on \($0)", Float(point.sampler[$0]!.onlineShare)) }, step: point.step)
        }
    }

    public func snapshot() -> Snapshot {
        let (episodes, points) = state.withLock { ($0.episodes.suffix(episodeCapacity), $0.trainPoints.suffix(trainPointCapacity)) }
        return Snapshot(episodes: Array(episodes), trainPoints: Array(points), seconds: seconds)
    }
}

/// The adaptive sampler's state for one task: SOP's ω_on and the two sources' windowed mean
/// training losses (nil until that source has been trained on).
public struct TaskSamplerStatus: Codable, Sendable, Equatable {
    public var onlineShare: Double
    public var onlineLoss: Double?
    public var offlineLoss: Double?

    public init(onlineShare: Double, onlineLoss: Double?, offlineLoss: Double?) {
        self.onlineShare = onlineShare; self.onlineLoss = onlineLoss; self.offlineLoss = offlineLoss
    }
}
