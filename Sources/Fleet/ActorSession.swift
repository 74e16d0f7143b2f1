import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import RobotData

/// The network side of an actor, shared by its background tasks: registration, the upload
/// queue (kept until acked, re-sent after failures), the newest received policy, heartbeats.
final class ActorSession: Sendable {
    typealias Client = Swiftvla_Fleet_V1_Fleet.Client<HTTP2ClientTransport.Posix>

    struct Queue {
        var pending: UploadQueue
        var report = FleetActorReport()
    }

    /// The learner (rank 0 of a data-parallel one): registration, policy versions, heartbeats.
    let client: Client
    /// Where episodes go when the learner named another rank at registration (nil: `client`).
    let ingestClient = Locked<Client?>(nil)
    let config: FleetActorConfig
    let queue: Locked<Queue>
    /// Newest verified weights not yet loaded by the episode loop.
    let inbox = Locked<PolicyWeights?>(nil)
    let stats = Locked(Swiftvla_Fleet_V1_ActorStats())
    let assignment = Locked<Swiftvla_Fleet_V1_TaskAssignment?>(nil)
    let latestOffered = Locked(0)

    /// The actor's token on every call (see `FleetCredentials`).
    let metadata: Metadata

    init(client: Client, config: FleetActorConfig) throws {
        self.client = client
        self.config = config
        queue = Locked(Queue(pending: try UploadQueue(memoryLimit: config.maxEpisodesInMemory, spillDirectory: config.spillDirectory)))
        metadata = config.authToken.isEmpty ? [:] : ["authorization": "Bearer \(config.authToken)"]
    }

    /// Registers (retrying with back-off while the learner is unreachable).
    func register() async throws -> Swiftvla_Fleet_V1_RegisterActorResponse {
        try await register(on: client, adopt: true)
    }

    private var uploadClient: Client { ingestClient.current ?? client }

    /// Registers with the rank that takes this actor's uploads (the learner itself unless it
    /// named another), so that rank accepts them.
    func registerForUploads() async throws {
        if ingestClient.current == nil { _ = try await register() } else { _ = try await register(on: uploadClient, adopt: false) }
    }

    /// `adopt`: take the task assignment and newest version from the answer (the learner's,
    /// not an ingest rank's).
    private func register(on client: Client, adopt: Bool) async throws -> Swiftvla_Fleet_V1_RegisterActorResponse {
        var request = Swiftvla_Fleet_V1_RegisterActorRequest()
        request.actorID = config.actorID
        request.embodiment = config.embodiment.rawValue
        request.tasks = config.tasks.map(\.rawValue)
        request.authToken = config.authToken
        var delay = 0.1
        while true {
            do {
                let response = try await client.registerActor(request, metadata: metadata, options: Self.options(timeout: 10))
                if adopt {
                    assignment.withLock { $0 = response.assignment }
                    latestOffered.withLock { $0 = max($0, Int(response.policyVersion)) }
                }
                return response
            } catch let error as RPCError where error.code == .unavailable || error.code == .deadlineExceeded {
                try await Task.sleep(for: .seconds(delay))
                delay = min(delay * 2, 2)
            }
        }
    }

    /// A client transport to a learner: a dotted-quad host as IPv4, anything else through DNS.
    static func transport(host: String, port: Int, trustRoots: String?) throws -> HTTP2ClientTransport.Posix {
        let target: any ResolvableTarget = host.split(separator: ".").count == 4 && host.allSatisfy({ $0.isNumber || $0 == "." })
            ? .ipv4(address: host, port: port) : .dns(host: host, port: port)
        return try HTTP2ClientTransport.Posix(target: target, transportSecurity: FleetTLS.client(trustRoots: trustRoots))
    }

    static func options(timeout: Double) -> CallOptions {
        var options = CallOptions.defaults
        options.timeout = .milliseconds(Int64(timeout * 1000))
        return options
    }

    // MARK: uploads

    func enqueue(_ episode: Episode) {
        queue.withLock { $0.pending.append(episode) }
        stats.withLock { $0.pendingUploads += 1 }
    }

    var pendingCount: Int { queue.current.pending.count }

    /// Uploads queued episodes oldest first until cancelled. Transient failures are retried
    /// with back-off; refusals for invalid data drop the episode (re-sending cannot help).
    func uploadLoop() async {
        var delay = 0.05
        while !Task.isCancelled {
            guard let entry = queue.withLock({ $0.pending.first }) else {
                try? await Task.sleep(for: .milliseconds(20))
                continue
            }
            let episode: Episode
            do { episode = try UploadQueue.load(entry) } catch {
                // A damaged spill file: nothing to re-send; drop it from the queue, counted.
                finish(entry.id) { $0.rejected += 1 }
                continue
            }
            do {
                let messages = EpisodeMessages.encode(episode, actorID: config.actorID, stepsPerChunk: config.stepsPerChunk)
                let ack = try await uploadClient.uploadEpisode(metadata: metadata, options: Self.options(timeout: config.uploadTimeout)) { writer in
                    try await writer.write(contentsOf: messages)
                }
                finish(episode.id) { $0.acked += 1; if ack.duplicate { $0.duplicates += 1 } }
                delay = 0.05
            } catch let error as RPCError where [.invalidArgument, .failedPrecondition, .resourceExhausted].contains(error.code) {
                finish(episode.id) { $0.rejected += 1 }
            } catch let error as RPCError where error.code == .unauthenticated {
                // The learner forgot us (restarted): register again, then re-send. A revoked
                // token fails again, so back off; the episode stays queued, never acked.
                queue.withLock { $0.report.retries += 1 }
                if (try? await registerForUploads()) == nil {
                    try? await Task.sleep(for: .seconds(delay))
                    delay = min(delay * 2, 2)
                }
            } catch {
                if Task.isCancelled { return }
                queue.withLock { $0.report.retries += 1 }
                try? await Task.sleep(for: .seconds(delay))
                delay = min(delay * 2, 2)
            }
        }
    }

    private func finish(_ id: UUID, _ update: (inout FleetActorReport) -> Void) {
        queue.withLock { q in
            q.pending.remove(id)
            update(&q.report)
        }
        stats.withLock {
            $0.pendingUploads = UInt32(pendingCount)
            $0.episodesAcked += 1
        }
    }

    /// Waits until every queued episode is acked or `timeout` passes.
    func drain(timeout: Double) async {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while pendingCount > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: policy updates

    /// Streams policy versions into `inbox` until cancelled, reconnecting with back-off.
    func watchLoop() async {
        var delay = 0.1
        while !Task.isCancelled {
            var request = Swiftvla_Fleet_V1_WatchPolicyRequest()
            request.actorID = config.actorID
            request.knownVersion = Int64(inbox.current?.version ?? Int(stats.current.policyVersion))
            request.acceptDelta = config.acceptDeltaWeights
            do {
                try await client.watchPolicy(request, metadata: metadata) { [self] response in
                    // Keeps the stream's last file: the next version may come as a delta against it.
                    var assembler = WeightAssembler()
                    for try await update in response.messages {
                        if case .manifest(let m) = update.kind { latestOffered.withLock { $0 = max($0, Int(m.version)) } }
                        if let weights = try assembler.consume(update) {
                            inbox.withLock { current in
                                if (current?.version ?? 0) < weights.version { current = weights }
                            }
                        }
                    }
                }
                delay = 0.1
            } catch is WeightTransferError {
                // A damaged or inconsistent version: keep the current weights, re-subscribe
                // (a new stream starts with a whole file).
                queue.withLock { $0.report.weightFailures += 1 }
            } catch let error as RPCError where error.code == .unauthenticated {
                _ = try? await register()
            } catch {
                if Task.isCancelled { return }
            }
            try? await Task.sleep(for: .seconds(delay))
            delay = min(delay * 2, 2)
        }
    }

    // MARK: heartbeats

    func heartbeatLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(config.heartbeatInterval))
            var request = Swiftvla_Fleet_V1_HeartbeatRequest()
            request.actorID = config.actorID
            request.stats = stats.current
            if let response = try? await client.heartbeat(request, metadata: metadata, options: Self.options(timeout: 5)) {
                latestOffered.withLock { $0 = max($0, Int(response.latestPolicyVersion)) }
            }
        }
    }
}
