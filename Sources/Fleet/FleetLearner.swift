import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import RobotData
import TensorKit

/// The SOP learner: a gRPC server that ingests episodes from actors (validate → persist →
/// ack → online buffer), a training loop that calls the `LearnerBackend` continuously, and
/// weight publication to every watching actor every K train steps.
///
/// ```swift
/// let learner = try FleetLearner(config: config, backend: backend)
/// let port = try await learner.start()   // config.port 0 → an ephemeral port
/// …
/// await learner.stop()
/// ```
public final class FleetLearner: Sendable {
    public let config: FleetLearnerConfig
    public let metrics = FleetMetrics()
    public let store: EpisodeStore
    public let broadcaster = PolicyBroadcaster()
    public let buffer: OnlineBuffer
    /// Accepted episodes and train steps over time (the dashboard's curves).
    public let history: LearnerHistory
    let backend: any LearnerBackend

    struct ActorRecord {
        var embodiment: String
        var assignment: Swiftvla_Fleet_V1_TaskAssignment
        var stats = Swiftvla_Fleet_V1_ActorStats()
        var registeredAt = Date()
        var lastSeen = Date()
        /// The rank its episodes go to (data-parallel learners).
        var ingestRank = 0
    }

    /// One registered actor as the learner sees it.
    public struct ActorStatus: Sendable, Equatable {
        public var id: String
        public var embodiment: String
        public var task: String
        /// From the actor's last heartbeat (zero until the first one).
        public var episodesFinished: Int
        public var episodesAcked: Int
        public var steps: Int
        public var operatorSteps: Int
        public var successes: Int
        public var policyVersion: Int
        public var registeredAt: Date
        public var lastSeen: Date
    }

    private struct Running {
        var server: GRPCServer<HTTP2ServerTransport.Posix>?
        var serverTask: Task<Void, any Error>?
        var trainer: Task<Void, Never>?
        var port: Int?
    }

    private let actors = Locked([String: ActorRecord]())
    private let credentials: Locked<FleetCredentials>
    private let running = Locked(Running())
    private let publishing = Locked((version: 0, trainSteps: 0))
    /// Data-parallel: peers' shards read so far, and whether a rank asked the job to stop.
    private let peerShards = EpisodeShardReader()
    private let peerEpisodeIDs = Locked(Set<UUID>())
    private let stopVote = Locked(false)
    private let trainingPaused = Locked(false)
    /// Set by the training loop once it has seen the pause (no step in flight any more).
    private let pauseReached = Locked(false)
    /// `trainUntil(step:)`'s goal: the loop pauses itself on reaching it.
    private let pauseAtStep = Locked<Int?>(nil)
    private let trainingEnded = Locked(false)
    /// Lock-step: the episodes of the round being collected (handed over when it is complete).
    private let lockstepHeld = Locked([Episode]())

    public init(config: FleetLearnerConfig, backend: any LearnerBackend) throws {
        self.config = config
        self.backend = backend
        credentials = Locked(config.credentials)
        if let ranks = config.ranks, !(backend is any DataParallelLearnerBackend) || ranks.ingestEndpoints.count != ranks.size {
            throw RPCError(code: .failedPrecondition, message: "a data-parallel learner needs a data-parallel backend (the VLA) and one ingest endpoint per rank")
        }
        if let lockstep = config.lockstep {
            guard config.ranks == nil else {
                throw RPCError(code: .failedPrecondition, message: "lock-step rounds run on a single learner, not a data-parallel one")
            }
            guard lockstep.actors >= 1, lockstep.episodesPerRound >= 1, config.publishEveryTrainSteps >= 1 else {
                throw RPCError(code: .invalidArgument, message: "lock-step rounds need at least 1 actor, 1 episode per round and 1 train step per version")
            }
        }
        store = try EpisodeStore(root: config.ranks.map { LearnerRanks.shard($0.rank, of: config.storeDirectory) } ?? config.storeDirectory)
        buffer = OnlineBuffer(capacity: config.onlineBufferCapacity)
        // One set of curves per learner: the publishing rank's.
        history = try LearnerHistory(tensorBoard: config.ranks.map { $0.isPublisher } ?? true ? config.tensorBoardDirectory : nil)
        // After a restart, number versions above every version that acted in a stored
        // episode, so actors (which only take newer versions) accept the next publication.
        let stored = try store.records().map(\.policyVersion).max() ?? 0
        publishing.withLock { $0.version = stored }
    }

    /// The bound port once started.
    public var port: Int? { running.current.port }

    /// Binds, optionally publishes the initial policy, starts serving and training.
    /// Returns the bound port.
    @discardableResult
    public func start() async throws -> Int {
        try await resume()
        let limits = config.limits
        let transport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: config.host, port: config.port), transportSecurity: FleetTLS.server(config.tls),
            config: .defaults {
                // The transport's hard cap sits above the service's own (counted) limit.
                $0.rpc.maxRequestPayloadSize = limits.maxMessageBytes * 2
            })
        let server = GRPCServer(transport: transport, services: [FleetService(learner: self)])
        if config.publishInitialPolicy, config.ranks?.isPublisher ?? true { try await publish() }
        let serverTask = Task { try await server.serve() }
        let port: Int
        do {
            guard let ipv4 = try await transport.listeningAddress.ipv4 else {
                throw RPCError(code: .internalError, message: "learner bound to a non-IPv4 address")
            }
            port = ipv4.port
        } catch {
            serverTask.cancel()
            throw error
        }
        // The loop (and the backend actor's steps) run on their own thread, never on the
        // cooperative pool that serves gRPC (see `WorkerThread`).
        let trainingThread = WorkerThread(name: "fleet-learner-train")
        let trainer = Task(executorPreference: trainingThread) {
            if let ranks = self.config.ranks, let backend = self.backend as? any DataParallelLearnerBackend {
                await self.dataParallelLoop(ranks: ranks, backend: backend)
            } else if let rounds = self.config.lockstep {
                await self.lockstepLoop(rounds)
            } else {
                await self.trainingLoop()
            }
            self.trainingEnded.withLock { $0 = true }
            trainingThread.stop()
        }
        running.withLock { $0 = Running(server: server, serverTask: serverTask, trainer: trainer, port: port) }
        return port
    }

    /// Stops training, closes watch streams, shuts the server down (in-flight uploads
    /// finish, up to a 5 s grace period), passes the last buffered episodes to the backend
    /// and saves a checkpoint.
    public func stop() async {
        let r = running.withLock { r in defer { r = Running() }; return r }
        r.trainer?.cancel()
        await r.trainer?.value
        broadcaster.finish()
        r.server?.beginGracefulShutdown()
        if let serverTask = r.serverTask {
            let watchdog = Task {
                try await Task.sleep(for: .seconds(5))
                serverTask.cancel()
            }
            _ = await serverTask.result
            watchdog.cancel()
        }
        // Hand the backend what landed since the loop's last drain (and a lock-step round cut
        // short), so on return it has ingested every accepted episode.
        let held = lockstepHeld.withLock { h in defer { h = [] }; return h } + buffer.drain()
        await ingest(config.lockstep == nil ? held : Self.lockstepOrder(held))
        if r.trainer != nil, config.checkpointEveryTrainSteps > 0, config.ranks?.isPublisher ?? true {
            await saveCheckpointCounted()
        }
    }

    // MARK: checkpoints

    /// Where the backend's training state lives (replaced atomically at each save).
    public var checkpointDirectory: URL { config.storeDirectory.appendingPathComponent("learner-checkpoint") }

    /// Restores the newest checkpoint, if any, then feeds the backend every stored episode,
    /// so a restarted learner continues with its optimizer, sampler and online data.
    private func resume() async throws {
        // Killed between `saveCheckpoint`'s two renames: the previous checkpoint is whole in
        // `.old`; put it back.
        let fm = FileManager.default, old = config.storeDirectory.appendingPathComponent("learner-checkpoint.old")
        if !fm.fileExists(atPath: checkpointDirectory.path), fm.fileExists(atPath: old.path) {
            try fm.moveItem(at: old, to: checkpointDirectory)
        }
        if fm.fileExists(atPath: checkpointDirectory.path) {
            try await backend.restoreCheckpoint(from: checkpointDirectory)
            let steps = await backend.stepsTrained
            publishing.withLock { $0.trainSteps = steps }
            metrics.update { $0.trainSteps = steps; $0.restoredFromCheckpoint = true }
        }
        let (episodes, _) = try TensorLock.run { try store.loadAll() }
        await ingest(episodes)
        if let ranks = config.ranks, let backend = backend as? any DataParallelLearnerBackend {
            await ingest(peerEpisodes(ranks))
            // Same starting point on every rank, whatever each loaded.
            let watchdog = CollectiveWatchdog(timeout: ranks.collectiveTimeout) {
            ranks.onCollectiveFailure(ranks.rank, $0, "collectives did not finish within \(ranks.collectiveTimeout) s")
            }
            watchdog.arm(step: 0)
            defer { watchdog.disarm() }
            try await backend.synchronizeParameters()
        }
    }

    /// Pauses (or resumes) train steps; uploads are still validated, stored and buffered. Offline
    /// post-training rounds (collect with a fixed policy, then retrain) are built on it.
    public func pauseTraining(_ paused: Bool) {
        pauseReached.withLock { $0 = false }
        trainingPaused.withLock { $0 = paused }
    }

    /// Trains from a pause until exactly `step` train steps, then pauses again and returns
    /// (offline rounds retrain to a fixed budget; polling from outside would overshoot it).
    public func trainUntil(step: Int) async {
        pauseAtStep.withLock { $0 = step }
        pauseTraining(false)
        while !(trainingPaused.current && pauseReached.current) && !Task.isCancelled && !trainingEnded.current {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// After `pauseTraining(true)`: returns once the step that was in flight (and the version
    /// it published) is done, so nothing new is published while paused.
    public func waitUntilTrainingPaused() async {
        while trainingPaused.current && !pauseReached.current && !Task.isCancelled && !trainingEnded.current {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Returns once `version` is published (or training ended): a lock-step fleet's last round
    /// trains after its actors are done.
    public func waitUntilPublished(version: Int) async {
        while latestVersion < version && !Task.isCancelled && !trainingEnded.current {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Whether training stopped (a data-parallel job stops when any rank asks it to).
    public var hasStoppedTraining: Bool { trainingEnded.current }

    /// Data-parallel: asks every rank to stop after the current step (this rank's `stop()`
    /// does too). The other ranks' `hasStoppedTraining` turns true.
    public func requestStop() { stopVote.withLock { $0 = true } }

    /// Episodes the other ranks stored since the last look: the one-process store this job may
    /// have started from, and every other rank's shard (whatever rank count wrote them).
    private func peerEpisodes(_ ranks: LearnerRanks) -> [Episode] {
        let shardsRoot = config.storeDirectory.appendingPathComponent("ranks")
        let shards = ((try? FileManager.default.contentsOfDirectory(atPath: shardsRoot.path)) ?? [])
            .filter { $0 != "\(ranks.rank)" }.sorted().map { shardsRoot.appendingPathComponent($0) }
        let episodes = peerShards.newEpisodes(in: [config.storeDirectory] + shards) { id in
            peerEpisodeIDs.current.contains(id) || ((try? self.store.contains(id)) ?? false)
        }
        peerEpisodeIDs.withLock { $0.formUnion(episodes.map(\.id)) }
        metrics.update { $0.peerEpisodesIngested += episodes.count }
        return episodes
    }

    /// Feeds episodes to the backend; a refused one is counted, the rest go on.
    private func ingest(_ episodes: [Episode]) async {
        for episode in episodes {
            do { try await backend.ingest(episode) } catch {
                metrics.update { $0.rejections["backend_ingest", default: 0] += 1 }
            }
        }
    }

    /// `saveCheckpoint` for the loop and shutdown: a failure is counted, training goes on.
    private func saveCheckpointCounted() async {
        do { try await saveCheckpoint() } catch {
            metrics.update { $0.rejections["checkpoint", default: 0] += 1 }
        }
    }

    /// Writes the backend's state to a fresh directory and swaps it in, so a crash mid-save
    /// leaves the previous checkpoint whole.
    public func saveCheckpoint() async throws {
        let fm = FileManager.default
        let fresh = config.storeDirectory.appendingPathComponent("learner-checkpoint.partial")
        try? fm.removeItem(at: fresh)
        try fm.createDirectory(at: fresh, withIntermediateDirectories: true)
        try await backend.saveCheckpoint(to: fresh)
        let old = config.storeDirectory.appendingPathComponent("learner-checkpoint.old")
        try? fm.removeItem(at: old)
        if fm.fileExists(atPath: checkpointDirectory.path) { try fm.moveItem(at: checkpointDirectory, to: old) }
        try fm.moveItem(at: fresh, to: checkpointDirectory)
        try? fm.removeItem(at: old)
        metrics.update { $0.checkpointsSaved += 1 }
    }

    // MARK: actors

    /// Replaces who may call (e.g. a reloaded token file). Actors no longer allowed are
    /// forgotten; each of their calls from now on is refused.
    public func updateCredentials(_ new: FleetCredentials) {
        credentials.withLock { $0 = new }
        actors.withLock { actors in
            let onlyListedActors = new.sharedToken == nil && !new.actorTokens.isEmpty
            for id in actors.keys where onlyListedActors && new.actorTokens[id] == nil { actors[id] = nil }
            metrics.update { $0.actorsRegistered = actors.count }
        }
    }

    /// Throws `badToken` unless `token` lets `actor` call.
    func authorize(actor: String, token: String?) throws {
        guard credentials.current.allows(actor: actor, token: token) else { throw IngestError.badToken }
    }

    func register(_ request: Swiftvla_Fleet_V1_RegisterActorRequest, token: String?) throws -> Swiftvla_Fleet_V1_TaskAssignment {
        try authorize(actor: request.actorID, token: token ?? (request.authToken.isEmpty ? nil : request.authToken))
        guard !request.actorID.isEmpty, request.actorID.utf8.count <= config.limits.maxTextLength else {
            throw IngestError.badHeader("actor id must be 1…\(config.limits.maxTextLength) bytes")
        }
        _ = try config.catalog.spec(for: request.embodiment)
        let served = config.catalog.tasks[request.embodiment] ?? []
        let candidates = request.tasks.isEmpty ? served : request.tasks.filter { served.contains($0) }
        guard !candidates.isEmpty else {
            throw IngestError.unknownTask(embodiment: request.embodiment, task: request.tasks.joined(separator: ","))
        }
        return actors.withLock { actors in
            if let existing = actors[request.actorID], existing.embodiment == request.embodiment,
               candidates.contains(existing.assignment.task) {
                actors[request.actorID]!.lastSeen = Date()
                return existing.assignment
            }
            // Spread actors over tasks: the candidate with the fewest actors so far.
            let load = Dictionary(grouping: actors.values.filter { $0.embodiment == request.embodiment }, by: \.assignment.task)
            let task = candidates.min { (load[$0]?.count ?? 0, $0) < (load[$1]?.count ?? 0, $1) }!
            var assignment = Swiftvla_Fleet_V1_TaskAssignment()
            assignment.embodiment = request.embodiment
            assignment.task = task
            assignment.seedBase = config.seedBase + UInt64(actors.count) * 100_000
            // Round robin over the ranks, in registration order: balanced whatever the ids.
            let ingestRank = config.ranks.map { actors.count % $0.size } ?? 0
            actors[request.actorID] = ActorRecord(embodiment: request.embodiment, assignment: assignment, ingestRank: ingestRank)
            metrics.update { $0.actorsRegistered = actors.count }
            return assignment
        }
    }

    func isRegistered(_ actorID: String) -> Bool { actors.withLock { $0[actorID] != nil } }

    /// Where a registered actor uploads when that is another rank ("host:port"), else nil.
    func ingestEndpoint(for actorID: String) -> String? {
        guard let ranks = config.ranks, ranks.isPublisher, let rank = actors.withLock({ $0[actorID]?.ingestRank }),
              rank != ranks.rank else { return nil }
        return ranks.ingestEndpoints[rank]
    }

    /// Records stats; nil for an unknown actor.
    func heartbeat(_ request: Swiftvla_Fleet_V1_HeartbeatRequest) -> Swiftvla_Fleet_V1_TaskAssignment? {
        actors.withLock { actors in
            guard actors[request.actorID] != nil else { return nil }
            actors[request.actorID]!.stats = request.stats
            actors[request.actorID]!.lastSeen = Date()
            return actors[request.actorID]!.assignment
        }
    }

    /// Every registered actor with its assignment and last reported stats, sorted by id.
    public func actorStatuses() -> [ActorStatus] {
        actors.withLock { actors in
            actors.sorted { $0.key < $1.key }.map { id, r in
                ActorStatus(id: id, embodiment: r.embodiment, task: r.assignment.task,
                            episodesFinished: Int(r.stats.episodesFinished), episodesAcked: Int(r.stats.episodesAcked),
                            steps: Int(r.stats.steps), operatorSteps: Int(r.stats.operatorSteps),
                            successes: Int(r.stats.successes), policyVersion: Int(r.stats.policyVersion),
                            registeredAt: r.registeredAt, lastSeen: r.lastSeen)
            }
        }
    }

    /// The newest published version.
    public var latestVersion: Int { publishing.current.version }

    /// Latest stats each actor reported in its heartbeats.
    public func actorStats() -> [String: Swiftvla_Fleet_V1_ActorStats] {
        actors.withLock { $0.mapValues(\.stats) }
    }

    // MARK: ingest and training

    /// Durably stores an accepted episode; false if the id was already stored.
    func persist(_ episode: Episode) throws -> Bool {
        do {
            return try TensorLock.run { try store.insert(episode) }
        } catch {
            metrics.update { $0.rejections["store_failure", default: 0] += 1 }
            throw RPCError(code: .unavailable, message: "learner could not persist the episode: \(error)")
        }
    }

    private func trainingLoop() async {
        var publication = PublicationClock()
        var lastStepStart: ContinuousClock.Instant?
        while !Task.isCancelled {
            if config.trainStepInterval > 0, let last = lastStepStart {
                let next = last + .seconds(config.trainStepInterval)
                if next > .now { try? await Task.sleep(until: next, clock: .continuous) }
            }
            await ingest(buffer.drain())
            if let goal = pauseAtStep.current, metrics.snapshot().trainSteps >= goal {
                pauseAtStep.withLock { $0 = nil }
                trainingPaused.withLock { $0 = true }
            }
            if trainingPaused.current {
                pauseReached.withLock { $0 = true }
                try? await Task.sleep(for: .seconds(config.idlePause))
                continue
            }
            lastStepStart = .now
            guard let loss = await attemptTrainStep() else { continue }
            await finishTrainStep(loss: loss, publishes: true, publication: &publication)
            if config.trainStepPause > 0 { try? await Task.sleep(for: .seconds(config.trainStepPause)) }
        }
    }

    /// One backend train step; a failure is counted. nil, after an idle pause, when the step
    /// failed or there was nothing to train on.
    private func attemptTrainStep() async -> Float? {
        do {
            if let loss = try await backend.trainStep() { return loss }
        } catch {
            metrics.update { $0.rejections["train_step", default: 0] += 1 }
        }
        try? await Task.sleep(for: .seconds(config.idlePause))
        return nil
    }

    /// Lock-step rounds: wait for the round's episodes (acted by the newest version), ingest
    /// them in `lockstepOrder`, train exactly `publishEveryTrainSteps` steps, publish. Pauses
    /// and the publication interval do not apply.
    private func lockstepLoop(_ rounds: LockstepRounds) async {
        while !Task.isCancelled {
            let version = publishing.current.version
            let ready = lockstepHeld.withLock { held in
                held += buffer.drain()
                return held.filter { $0.policyVersion >= version }.count >= rounds.episodesPerVersion
            }
            guard ready else {
                try? await Task.sleep(for: .seconds(config.idlePause))
                continue
            }
            let round = lockstepHeld.withLock { h in defer { h = [] }; return h }
            await ingest(Self.lockstepOrder(round))
            var trained = 0
            while trained < config.publishEveryTrainSteps, !Task.isCancelled {
                guard let loss = await attemptTrainStep() else { continue }
                trained += 1
                let steps = await recordTrainStep(loss: loss)
                await checkpointIfDue(steps)
            }
            if Task.isCancelled { return }
            do { try await publish() } catch {
                metrics.update { $0.rejections["publish", default: 0] += 1 }
            }
        }
    }

    /// The order a lock-step round reaches the backend: by scene seed (each actor plays its own
    /// range), then by id, whatever order the uploads arrived in.
    static func lockstepOrder(_ episodes: [Episode]) -> [Episode] {
        episodes.sorted { ($0.seed ?? .max, $0.id.uuidString) < ($1.seed ?? .max, $1.id.uuidString) }
    }

    /// The training loop of one data-parallel rank. Each round every rank votes (one small
    /// all_sum) whether it has data and whether it wants to stop; all step only when all have
    /// data, and all leave together when any asks to. Collectives run under a watchdog, so a
    /// dead peer ends the process instead of hanging it. Rank 0 publishes and checkpoints.
    private func dataParallelLoop(ranks: LearnerRanks, backend: any DataParallelLearnerBackend) async {
        let watchdog = CollectiveWatchdog(timeout: ranks.collectiveTimeout) {
            ranks.onCollectiveFailure(ranks.rank, $0, "collectives did not finish within \(ranks.collectiveTimeout) s")
            }
        var publication = PublicationClock(), lastScan = ContinuousClock.now
        var lastStepStart: ContinuousClock.Instant?
        while true {
            if config.trainStepInterval > 0, let last = lastStepStart {
                let next = last + .seconds(config.trainStepInterval)
                if next > .now { try? await Task.sleep(until: next, clock: .continuous) }
            }
            await ingest(buffer.drain())
            if ContinuousClock.now - lastScan >= .seconds(ranks.peerScanInterval) {
                await ingest(peerEpisodes(ranks))
                lastScan = .now
            }
            let ready = await backend.hasTrainingData(), leaving = Task.isCancelled || stopVote.current
            let round = publishing.current.trainSteps
            watchdog.arm(step: round)
            let votes: [Float]
            do {
                votes = try TensorLock.run {
                    try ranks.group.allSum(Tensor([ready ? 1 : 0, leaving ? 1 : 0] as [Float])).toArray(Float.self)
                }
            } catch {
                watchdog.disarm()
                metrics.update { $0.rejections["collective", default: 0] += 1 }
                ranks.onCollectiveFailure(ranks.rank, round, "the vote all_sum failed: \(error)")
                return
            }
            if votes[1] > 0 { watchdog.disarm(); return }
            guard Int(votes[0]) == ranks.size else {
                watchdog.disarm()
                try? await Task.sleep(for: .seconds(config.idlePause))
                continue
            }
            lastStepStart = .now
            let loss: Float?
            do { loss = try await backend.trainStep() } catch {
                // The peers are inside (or past) the step's all_sum: the ranks can no longer
                // agree on the parameters, so the job ends and restarts from the checkpoint.
                watchdog.disarm()
                metrics.update { $0.rejections["train_step", default: 0] += 1 }
                ranks.onCollectiveFailure(ranks.rank, round, "the train step failed: \(error)")
                return
            }
            watchdog.disarm()
            guard let loss else { continue }
            await finishTrainStep(loss: loss, publishes: ranks.isPublisher, publication: &publication)
        }
    }

    /// When the last version went out: train steps since, and the time.
    struct PublicationClock {
        var stepsSince = 0
        var at = ContinuousClock.now
    }

    /// Counts a finished train step; the publishing learner (rank 0 of a data-parallel one)
    /// also checkpoints and publishes when they are due.
    private func finishTrainStep(loss: Float, publishes: Bool, publication: inout PublicationClock) async {
        let steps = await recordTrainStep(loss: loss)
        guard publishes else { return }
        await checkpointIfDue(steps)
        publication.stepsSince += 1
        if publication.stepsSince >= config.publishEveryTrainSteps,
           ContinuousClock.now - publication.at >= .seconds(config.minPublishInterval) {
            do {
                try await publish()
                publication = PublicationClock()
            } catch {
                metrics.update { $0.rejections["publish", default: 0] += 1 }
            }
        }
    }

    /// Counts a finished train step in the metrics and curves; returns the step count.
    private func recordTrainStep(loss: Float) async -> Int {
        let steps = publishing.withLock { p in p.trainSteps += 1; return p.trainSteps }
        metrics.update { $0.trainSteps = steps; $0.lastLoss = loss }
        history.record(LearnerHistory.TrainPoint(step: steps, seconds: history.seconds, loss: Double(loss),
                                                 sampler: await backend.samplerStatus()))
        return steps
    }

    private func checkpointIfDue(_ steps: Int) async {
        if config.checkpointEveryTrainSteps > 0, steps % config.checkpointEveryTrainSteps == 0 {
            await saveCheckpointCounted()
        }
    }

    /// Exports the backend's trainable weights as the next version and sends it to every
    /// watcher. Safe to call from outside the loop (e.g. at shutdown).
    @discardableResult
    public func publish() async throws -> PolicyPublication {
        let started = ContinuousClock.now
        let tensors = try await backend.exportTrainableWeights()
        let (version, trainSteps) = publishing.withLock { p in p.version += 1; return (p.version, p.trainSteps) }
        let publication = try PolicyPublication(
            PolicyWeights(version: version, trainStep: trainSteps, model: backend.modelName, tensors: tensors),
            chunkBytes: config.weightChunkBytes, deltaBase: config.deltaWeights ? broadcaster.latest : nil)
        let elapsed = ContinuousClock.now - started
        broadcaster.publish(publication)
        metrics.update {
            $0.versionsPublished += 1
            $0.latestVersion = version
            $0.lastPublicationBytes = publication.totalBytes
            $0.lastPublicationDeltaBytes = publication.deltaBytes
            $0.lastPublicationSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        }
        return publication
    }
}
