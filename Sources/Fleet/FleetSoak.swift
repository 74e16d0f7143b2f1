import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import RobotData
import RobotSim

/// Many actor connections against one learner for a long time (the reliability soak): each
/// connection registers, keeps a weight stream open, heartbeats, and uploads a synthetic
/// episode every `episodeInterval` seconds (no physics, so 64 of them fit on two cores next to
/// the learner, which trains and publishes throughout). Reports throughput, ack latency
/// percentiles, errors, and the process' resident memory over time.
public struct FleetSoak: Sendable {
    public var actors = 64
    public var seconds = 600.0
    /// Seconds between one actor's uploads (a 40-step episode at 10 Hz is 4 s of robot time).
    public var episodeInterval = 4.0
    /// Upload exactly this many per connection instead of until `seconds` have passed.
    public var episodesPerActor: Int?
    public var stepsPerEpisode = 40
    /// Side of the two cameras' square frames.
    public var imageSize = 32
    public var heartbeatInterval = 1.0
    /// A progress line and a memory sample this often (seconds).
    public var sampleInterval = 30.0
    public var storeDirectory: URL
    public var seed: UInt64 = 0

    public init(storeDirectory: URL) { self.storeDirectory = storeDirectory }

    public struct Sample: Codable, Sendable {
        public var seconds: Double
        public var episodesAcked: Int
        public var megabytesSent: Double
        public var residentMegabytes: Double?
        public var trainSteps: Int
    }

    public struct Result: Codable, Sendable {
        public var actors: Int
        public var seconds: Double
        public var episodesAcked: Int
        public var episodesPerSecond: Double
        public var megabytesPerSecond: Double
        public var ackMilliseconds: [String: Double]
        public var uploadErrors: Int
        public var heartbeatErrors: Int
        public var watchErrors: Int
        public var versionsReceived: Int
        public var learnerEpisodesAccepted: Int
        public var learnerRejections: [String: Int]
        public var learnerTrainSteps: Int
        public var versionsPublished: Int
        public var samples: [Sample]
    }

    /// What all connections measured, shared across their tasks.
    struct Tally {
        var acked = 0
        var bytes = 0
        var ackSeconds: [Double] = []
        var uploadErrors = 0
        var heartbeatErrors = 0
        var watchErrors = 0
        var versionsReceived = 0
    }

    public func run(log: @escaping @Sendable (String) -> Void) async throws -> Result {
        var config = FleetLearnerConfig(storeDirectory: storeDirectory)
        config.catalog = TaskCatalog([(.arm7, .reach)])
        config.publishEveryTrainSteps = 50
        config.minPublishInterval = 2
        config.trainStepPause = 0.002
        let learner = try FleetLearner(config: config, backend: try BehaviorCloningBackend(embodiment: EmbodimentKind.arm7.spec, seed: seed))
        let port = try await learner.start()
        log("soak: learner on 127.0.0.1:\(port); \(actors) connections, one \(stepsPerEpisode)-step episode each every \(episodeInterval) s, for \(Int(seconds)) s")
        let tally = Locked(Tally())
        let started = ContinuousClock.now
        let end = started + .seconds(seconds)
        @Sendable func elapsed() -> Double { let d = ContinuousClock.now - started; return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
        let samples = Locked([Sample]())
        @Sendable func sample() -> Sample {
            let t = tally.current
            return Sample(seconds: elapsed(), episodesAcked: t.acked, megabytesSent: Double(t.bytes) / 1e6,
                          residentMegabytes: Self.residentMegabytes(), trainSteps: learner.metrics.snapshot().trainSteps)
        }
        samples.withLock { $0.append(sample()) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<actors {
                group.addTask { try await self.connection(i, port: port, until: end, tally: tally) }
            }
            group.addTask {
                while ContinuousClock.now < end {
                    try await Task.sleep(until: min(ContinuousClock.now + .seconds(self.sampleInterval), end), clock: .continuous)
                    let s = sample()
                    samples.withLock { $0.append(s) }
                    log(String(format: "soak %4.0f s: %d episodes acked (%.1f MB), RSS %@ MB, %d train steps",
                               s.seconds, s.episodesAcked, s.megabytesSent, s.residentMegabytes.map { String(format: "%.0f", $0) } ?? "?", s.trainSteps))
                }
            }
            try await group.waitForAll()
        }
        let total = elapsed()
        await learner.stop()
        let t = tally.current, m = learner.metrics.snapshot()
        let sorted = t.ackSeconds.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : 1000 * sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
        }
        return Result(actors: actors, seconds: total, episodesAcked: t.acked, episodesPerSecond: Double(t.acked) / total,
                      megabytesPerSecond: Double(t.bytes) / 1e6 / total,
                      ackMilliseconds: ["p50": percentile(0.5), "p90": percentile(0.9), "p99": percentile(0.99), "max": percentile(1)],
                      uploadErrors: t.uploadErrors, heartbeatErrors: t.heartbeatErrors, watchErrors: t.watchErrors,
                      versionsReceived: t.versionsReceived, learnerEpisodesAccepted: m.episodesAccepted,
                      learnerRejections: m.rejections, learnerTrainSteps: m.trainSteps, versionsPublished: m.versionsPublished,
                      samples: samples.current)
    }

    /// One robot stand-in: its own HTTP/2 connection, registration, weight stream, heartbeats
    /// and paced uploads until `end`.
    private func connection(_ index: Int, port: Int, until end: ContinuousClock.Instant, tally: Locked<Tally>) async throws {
        let actorID = "soak-\(index)"
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        let template = try Self.episode(steps: stepsPerEpisode, imageSize: imageSize, seed: seed &+ UInt64(index))
        try await withGRPCClient(transport: transport) { grpc in
            let client = Swiftvla_Fleet_V1_Fleet.Client(wrapping: grpc)
            var request = Swiftvla_Fleet_V1_RegisterActorRequest()
            request.actorID = actorID
            request.embodiment = "arm7"
            request.tasks = ["reach"]
            _ = try await client.registerActor(request)
            let hasPolicy = Locked(false)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var watch = Swiftvla_Fleet_V1_WatchPolicyRequest()
                    watch.actorID = actorID
                    do {
                        try await client.watchPolicy(watch) { response in
                            var assembler = WeightAssembler()
                            for try await update in response.messages where try assembler.consume(update) != nil {
                                tally.withLock { $0.versionsReceived += 1 }
                                hasPolicy.withLock { $0 = true }
                            }
                        }
                    } catch where !Task.isCancelled {
                        tally.withLock { $0.watchErrors += 1 }
                    }
                }
                group.addTask {
                    var beat = Swiftvla_Fleet_V1_HeartbeatRequest()
                    beat.actorID = actorID
                    while ContinuousClock.now < end {
                        do { _ = try await client.heartbeat(beat) } catch where !Task.isCancelled { tally.withLock { $0.heartbeatErrors += 1 } }
                        try? await Task.sleep(for: .seconds(self.heartbeatInterval))
                    }
                }
                // Like a robot, act only once the published policy has arrived.
                let policyDeadline = ContinuousClock.now + .seconds(60)
                while !hasPolicy.current, ContinuousClock.now < policyDeadline { try await Task.sleep(for: .milliseconds(10)) }
                // Uploads, phase-shifted per actor so they do not arrive in lockstep.
                var next = ContinuousClock.now + .seconds(self.episodeInterval * Double(index) / Double(max(1, self.actors)))
                var uploads = 0
                while self.episodesPerActor.map({ uploads < $0 }) ?? (next < end) {
                    uploads += 1
                    try? await Task.sleep(until: next, clock: .continuous)
                    next = next + .seconds(self.episodeInterval)
                    var episode = template
                    episode.id = UUID()
                    let messages = EpisodeMessages.encode(episode, actorID: actorID, stepsPerChunk: 8)
                    let bytes = messages.reduce(0) { $0 + EpisodeMessages.approximateBytes($1) }
                    let sent = ContinuousClock.now
                    do {
                        _ = try await client.uploadEpisode { writer in try await writer.write(contentsOf: messages) }
                        let d = ContinuousClock.now - sent
                        tally.withLock {
                            $0.acked += 1
                            $0.bytes += bytes
                            $0.ackSeconds.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
                        }
                    } catch {
                        tally.withLock { $0.uploadErrors += 1 }
                    }
                }
                group.cancelAll()
            }
        }
    }

    /// A valid arm7 reach episode with deterministic values and half the steps by the operator.
    static func episode(steps: Int, imageSize: Int, seed: UInt64) throws -> Episode {
        let spec = EmbodimentKind.arm7.spec
        var g = SplitMix64(seed: seed)
        let states = (0..<steps).map { _ in (0..<spec.stateDimension).map { _ in Float(g.nextDouble() - 0.5) } }
        let actions = (0..<steps).map { _ in (0..<spec.actionDimension).map { _ in Float(g.nextDouble() - 0.5) * 0.1 } }
        let frameBytes = steps * imageSize * imageSize * 3
        let frames = { CameraFrames(height: imageSize, width: imageSize, pixels: (0..<frameBytes).map { _ in UInt8(truncatingIfNeeded: g.next()) }) }
        return Episode(
            embodiment: "arm7", task: "reach", instruction: "reach the red block",
            cameras: ["scene": frames(), "a_wrist": frames()],
            states: try StepMatrix(states, columns: spec.stateDimension),
            nativeActions: try StepMatrix(actions, columns: spec.actionDimension),
            unifiedActions: try StepMatrix(actions.map { try spec.unifiedAction($0) }, columns: UnifiedActionSpace.dimension),
            actionMask: spec.actionMask, rewards: (0..<steps).map { $0 == steps - 1 ? 1 : 0 },
            dones: (0..<steps).map { $0 == steps - 1 }, sources: (0..<steps).map { $0 % 2 == 0 ? .policy : .operator },
            timestamps: (0..<steps).map { Double($0) * 0.1 }, success: true, policyVersion: 1, seed: seed)
    }

    /// This process' resident set (Linux `/proc/self/status`), in MB.
    static func residentMegabytes() -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) else { return nil }
        return kb / 1000
    }
}
