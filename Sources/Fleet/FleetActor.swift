import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import RobotData
import RobotSim

/// One SOP actor: registers with the learner, runs RobotSim episodes with its `ActorPolicy`
/// under HG-DAgger operator gating, uploads every finished episode (kept until acked), and
/// swaps in newer published weights at episode boundaries, so each episode is acted by
/// exactly one policy version (recorded in the episode) — or, with `weightSwap =
/// .chunkBoundary`, also before any chunk request, each step recording its chunk's version.
///
/// Episodes run on a dedicated simulation thread (environment and policy never cross
/// threads mid-episode); uploads, policy watching and heartbeats run as child tasks.
public final class FleetActor {
    public let config: FleetActorConfig
    public let policy: any ActorPolicy

    public init(config: FleetActorConfig, policy: any ActorPolicy) {
        self.config = config
        self.policy = policy
    }

    public func run() async throws -> FleetActorReport {
        let started = ContinuousClock.now
        let transport = { (host: String, port: Int) throws -> HTTP2ClientTransport.Posix in
            try ActorSession.transport(host: host, port: port, trustRoots: self.config.tlsTrustRoots)
        }
        var report = try await withGRPCClient(transport: transport(config.learnerHost, config.learnerPort)) { client in
            let session = try ActorSession(client: Swiftvla_Fleet_V1_Fleet.Client(wrapping: client), config: config)
            let registration = try await session.register()
            // A data-parallel learner spreads uploads over its ranks: a second connection.
            let endpoint = registration.ingestEndpoint
            guard !endpoint.isEmpty else { return try await serve(session: session, registration: registration) }
            guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]) else {
                throw RPCError(code: .invalidArgument, message: "learner named an ingest endpoint that is not HOST:PORT: \(endpoint)")
            }
            return try await withGRPCClient(transport: transport(String(endpoint[..<colon]), port)) { ingest in
                session.ingestClient.withLock { $0 = Swiftvla_Fleet_V1_Fleet.Client(wrapping: ingest) }
                try await session.registerForUploads()
                return try await serve(session: session, registration: registration)
            }
        }
        let elapsed = ContinuousClock.now - started
        report.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return report
    }

    /// The actor's background loops and its episodes, until the last episode is acked (or
    /// the drain timeout passes).
    private func serve(session: ActorSession, registration: Swiftvla_Fleet_V1_RegisterActorResponse) async throws -> FleetActorReport {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await session.uploadLoop() }
            group.addTask { await session.watchLoop() }
            group.addTask { await session.heartbeatLoop() }
            defer { group.cancelAll() }
            var report = try await episodeLoop(session: session, registration: registration)
            await session.drain(timeout: config.drainTimeout)
            let network = session.queue.current
            report.acked = network.report.acked
            report.duplicates = network.report.duplicates
            report.rejected = network.report.rejected
            report.retries = network.report.retries
            report.weightFailures = network.report.weightFailures
            report.unacked = network.pending.count
            report.spilled = network.pending.spilled
            return report
        }
    }

    private func episodeLoop(session: ActorSession, registration: Swiftvla_Fleet_V1_RegisterActorResponse) async throws
        -> FleetActorReport {
        var report = FleetActorReport()
        let assignment = registration.assignment
        guard let task = TaskKind(rawValue: assignment.task) else {
            throw EnvironmentError.unknownName(assignment.task)
        }
        let loaded = Locked(LoadedVersions())
        // Act from the published start policy, not from whatever the policy was built with.
        if registration.policyVersion > 0 {
            let wait = config.lockstepEpisodesPerVersion == nil ? config.initialPolicyWait : config.lockstepTimeout
            let deadline = ContinuousClock.now + .seconds(wait)
            while session.inbox.current == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        }
        let thread = WorkerThread(name: "fleet-actor-\(config.actorID)")
        defer { thread.stop() }
        let inferenceThread = config.inference == .synchronous ? nil : WorkerThread(name: "fleet-actor-\(config.actorID)-inference")
        defer { inferenceThread?.stop() }
        var index = 0
        var nextSeed = assignment.seedBase
        var firstEpisode: ContinuousClock.Instant?
        while index < config.maxEpisodes {
            let reachedTarget = config.targetPolicyVersion.map { target in report.episodes.contains { $0.policyVersion >= target } } ?? true
            if index >= config.episodes, reachedTarget { break }
            if let budget = config.robotTimeBudget {
                if firstEpisode == nil { firstEpisode = .now } else if ContinuousClock.now >= firstEpisode! + .seconds(budget) { break }
            }
            try Task.checkCancellation()
            if let perVersion = config.lockstepEpisodesPerVersion, index > 0, index % perVersion == 0 {
                try await waitForNewerVersion(than: loaded.current.current, session: session)
            }
            // Episode boundary: weights change here (and, in chunk-boundary mode, before chunks).
            let version = swapIn(session: session, loaded: loaded)
            let seed = config.sceneSplit?.seeds(.seen, embodiment: config.embodiment, task: task, from: nextSeed, count: 1).first ?? nextSeed
            nextSeed = seed + 1
            let episodeVersion = version
            let lag = max(0, session.latestOffered.current - version)
            let summary = try await thread.run { [self] in
                try runEpisode(task: task, seed: seed, version: episodeVersion, lag: lag, session: session,
                               inferenceThread: inferenceThread, loaded: loaded)
            }
            report.episodes.append(summary)
            index += 1
        }
        report.versionsLoaded = loaded.current.history
        return report
    }

    /// Lock-step: blocks until the inbox holds a version newer than `version` (the learner
    /// publishes it once every actor's round is in).
    private func waitForNewerVersion(than version: Int, session: ActorSession) async throws {
        let started = ContinuousClock.now, deadline = started + .seconds(config.lockstepTimeout)
        while (session.inbox.current?.version ?? 0) <= version {
            guard ContinuousClock.now < deadline else {
                throw FleetActorError.noNewVersion(after: version, seconds: config.lockstepTimeout)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Versions this actor has loaded (the current one last).
    struct LoadedVersions { var current = 0; var history: [Int] = [] }

    /// Loads the newest weights waiting in the inbox, if newer than the current ones; returns
    /// the version in effect. Called only when no chunk is being computed.
    private func swapIn(session: ActorSession, loaded: Locked<LoadedVersions>) -> Int {
        let current = loaded.current.current
        guard let weights = session.inbox.withLock({ w in defer { w = nil }; return w }), weights.version > current else { return current }
        do {
            try policy.load(weights: weights.tensors, version: weights.version)
            loaded.withLock { $0.current = weights.version; $0.history.append(weights.version) }
            session.stats.withLock { $0.policyVersion = Int64(weights.version) }
            return weights.version
        } catch {
            session.queue.withLock { $0.report.weightFailures += 1 }
            return current
        }
    }

    /// One episode, start to finish, on the actor's simulation thread.
    private func runEpisode(task: TaskKind, seed: UInt64, version: Int, lag: Int, session: ActorSession,
                            inferenceThread: WorkerThread?, loaded: Locked<LoadedVersions>) throws -> FleetActorReport.EpisodeSummary {
        let env = try RobotEnvironment(embodiment: config.embodiment, task: task, seed: seed, config: config.environment)
        env.expert.profile.approach = config.operatorApproach
        let recorder = EpisodeRecorder(environment: env)
        var gate = InterventionGate(config: config.gate)
        var observation = env.reset()
        recorder.record(observation: observation)
        try policy.beginEpisode(environment: env, observation: observation)
        let stream = ActionStream(policy: policy, mode: config.inference, inferenceThread: inferenceThread)
        stream.version = version
        // Chunk-boundary swaps only from a published version on: on the wire a step's version 0
        // means "the header's", so an episode begun with unpublished weights keeps them.
        let swapsMidEpisode = config.weightSwap == .chunkBoundary && version > 0
        if swapsMidEpisode {
            stream.beforeRequest = { [self] in swapIn(session: session, loaded: loaded) }
        }
        defer { stream.reset() }
        var stepVersions: [Int] = []
        let began = Date()
        var step = 0
        while true {
            // Robot time: step k happens k / rate seconds into the episode.
            if let rate = config.controlRate, rate > 0 {
                let wait = began.addingTimeInterval(Double(step) / rate).timeIntervalSinceNow
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            }
            let operatorAction = env.expertAction()
            let policyAction: [Float]?
            if gate.operatorActive {
                // A fresh proposal only when the gate could hand back (the operator acts anyway).
                policyAction = gate.needsPolicyProposal ? stream.proposal(observation: observation, instruction: env.instruction) : nil
            } else {
                policyAction = stream.next(observation: observation, instruction: env.instruction, step: step)
            }
            let operatorActs = gate.operatorShouldAct(state: observation.state, policyAction: policyAction, operatorAction: operatorAction,
                                                      progress: config.gate.progressStallWindow > 0 ? policy.progressEstimate : nil)
            let action: [Float]
            if operatorActs {
                action = operatorAction
                stream.reset()
            } else {
                action = policyAction!
            }
            // An operator step belongs to the version in effect; a policy step to its chunk's.
            stepVersions.append(operatorActs ? loaded.current.current : stream.lastVersion)
            step += 1
            let result = try env.step(nativeAction: action)
            recorder.record(action: action, result: result, source: operatorActs ? .operator : .policy)
            observation = result.observation
            if result.done { break }
        }
        var episode = try recorder.episode(policyVersion: version)
        if swapsMidEpisode {
            episode.stepPolicyVersions = stepVersions
            episode.policyVersion = stepVersions.max() ?? version
        }
        session.enqueue(episode)
        session.stats.withLock { s in
            s.episodesFinished += 1
            s.steps += UInt64(episode.stepCount)
            s.operatorSteps += UInt64(episode.interventionCount)
            if episode.success { s.successes += 1 }
        }
        return .init(id: episode.id, task: task.rawValue, policyVersion: episode.policyVersion, policyLag: lag, steps: episode.stepCount,
                     operatorSteps: episode.interventionCount, success: episode.success, takeovers: gate.takeovers,
                     inferenceWaits: stream.waits, finished: Date())
    }
}
