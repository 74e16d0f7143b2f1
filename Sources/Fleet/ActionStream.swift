import Foundation
import RobotSim

/// How an actor gets action chunks from its policy.
public enum InferenceMode: Sendable, Equatable {
    /// Ask the policy when the chunk runs out; the robot waits for every chunk.
    case synchronous
    /// Ask for the next chunk on a separate thread once `prefetchFraction` of the current
    /// one remains, keep executing meanwhile, then drop the actions whose time has passed and
    /// crossfade the overlap with the old chunk: the robot does not wait when inference is
    /// faster than the remaining actions.
    case asynchronous(prefetchFraction: Double)
}

/// One action per control step from policy chunks (synchronous or asynchronous inference).
/// Used from the actor's episode thread; in asynchronous mode the policy runs only on the
/// inference thread.
final class ActionStream {
    let policy: any ActorPolicy
    let mode: InferenceMode
    private let inferenceThread: WorkerThread?
    private var queue: [[Float]] = []
    /// Per queued action, the policy version whose chunk it came from.
    private var queueVersions: [Int] = []
    private var chunkLength = 1
    private var pending: PendingChunk?
    /// Called on the episode thread right before a chunk is requested, when no request is in
    /// flight: a chunk-boundary swap loads newer weights here. Returns the version that will
    /// produce the chunk (nil hook: `version`).
    var beforeRequest: (() -> Int)?
    var version = 0
    /// The version of the action `next` or `proposal` returned last.
    private(set) var lastVersion = 0
    /// Control steps at which no action was ready and the robot waited for the policy.
    private(set) var waits = 0
    /// Chunks merged into a running queue (asynchronous mode).
    private(set) var merges = 0

    init(policy: any ActorPolicy, mode: InferenceMode, inferenceThread: WorkerThread?) {
        precondition(mode == .synchronous || inferenceThread != nil, "asynchronous inference needs a thread")
        self.policy = policy
        self.mode = mode
        self.inferenceThread = inferenceThread
    }

    /// The action for control step `step` (nil: the policy failed to produce one).
    func next(observation: Observation, instruction: String, step: Int) -> [Float]? {
        if let p = pending, p.isReady { consume(p, at: step) }
        if queue.isEmpty {
            waits += 1
            if let p = pending { consume(p, at: step) }
            // Nothing in flight, or it failed or arrived too late to use: ask now.
            if queue.isEmpty {
                let v = beforeRequest?() ?? version
                guard let chunk = try? policy.actionChunk(observation: observation, instruction: instruction), !chunk.isEmpty else {
                    return nil
                }
                queue = chunk
                queueVersions = Array(repeating: v, count: chunk.count)
                chunkLength = chunk.count
            }
        }
        if case .asynchronous(let fraction) = mode, pending == nil,
           Double(queue.count) <= fraction * Double(chunkLength) {
            pending = request(observation: observation, instruction: instruction, step: step)
        }
        lastVersion = queueVersions.removeFirst()
        return queue.removeFirst()
    }

    /// A fresh proposal for the current observation, outside the queue (the operator's
    /// hand-back check during a takeover). Drops anything queued or in flight.
    func proposal(observation: Observation, instruction: String) -> [Float]? {
        reset()
        let v = beforeRequest?() ?? version
        guard let chunk = try? policy.actionChunk(observation: observation, instruction: instruction), !chunk.isEmpty else {
            return nil
        }
        // If the policy gets control back, it goes on with the rest of this chunk.
        queue = Array(chunk.dropFirst())
        queueVersions = Array(repeating: v, count: queue.count)
        chunkLength = chunk.count
        lastVersion = v
        return chunk[0]
    }

    /// Forgets queued actions and waits out any request in flight (the operator took over).
    func reset() {
        if let p = pending { _ = p.wait() }
        pending = nil
        queue = []
        queueVersions = []
    }

    private func request(observation: Observation, instruction: String, step: Int) -> PendingChunk {
        let pending = PendingChunk(step: step, version: beforeRequest?() ?? version)
        let job = UncheckedBox((policy, observation, instruction))
        inferenceThread!.submit {
            let (policy, observation, instruction) = job.value
            pending.fulfill(Result { try policy.actionChunk(observation: observation, instruction: instruction) })
        }
        return pending
    }

    private func consume(_ p: PendingChunk, at step: Int) {
        pending = nil
        guard case .success(let chunk) = p.wait(), !chunk.isEmpty else { return }
        chunkLength = chunk.count
        let elapsed = step - p.step
        queue = Self.merge(queued: queue, fresh: chunk, elapsed: elapsed)
        // Crossfaded actions count as the fresh chunk's (a chunk that came too late changed nothing).
        if elapsed < chunk.count { queueVersions = Array(repeating: p.version, count: queue.count) }
        merges += 1
    }

    /// The queue for steps s, s+1, … given the actions still `queued` for them and a `fresh`
    /// chunk computed for steps s − elapsed, s − elapsed + 1, …: the fresh chunk's first
    /// `elapsed` actions are in the past and dropped; over the overlap with the old queue the
    /// weight of the fresh action ramps up linearly, w_i = (i + 1) / (overlap + 1).
    static func merge(queued: [[Float]], fresh: [[Float]], elapsed: Int) -> [[Float]] {
        guard elapsed < fresh.count else { return queued }
        let upcoming = Array(fresh[max(0, elapsed)...])
        let overlap = min(queued.count, upcoming.count)
        var merged = upcoming
        for i in 0..<overlap where queued[i].count == upcoming[i].count {
            let w = Float(i + 1) / Float(overlap + 1)
            merged[i] = zip(queued[i], upcoming[i]).map { (1 - w) * $0 + w * $1 }
        }
        return merged
    }
}

/// A chunk being computed on the inference thread.
final class PendingChunk: @unchecked Sendable {
    /// Control step whose observation the chunk is computed from.
    let step: Int
    /// Policy version computing it.
    let version: Int
    private let condition = NSCondition()
    private var result: Result<[[Float]], any Error>?

    init(step: Int, version: Int = 0) { self.step = step; self.version = version }

    var isReady: Bool { condition.withLock { result != nil } }

    func fulfill(_ r: Result<[[Float]], any Error>) {
        condition.withLock {
            result = r
            condition.broadcast()
        }
    }

    func wait() -> Result<[[Float]], any Error> {
        condition.withLock {
            while result == nil { condition.wait() }
            return result!
        }
    }
}
