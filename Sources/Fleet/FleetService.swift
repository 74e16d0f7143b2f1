import Foundation
import GRPCCore
import RobotData

/// The gRPC face of a `FleetLearner`: validates, persists and acknowledges uploads, streams
/// policy versions, registers actors. Every call is authorized by the token in its metadata
/// (`FleetCredentials`). Every refusal is an `IngestError` → a gRPC status, counted in
/// `FleetMetrics`; the service keeps serving everyone else.
struct FleetService: Swiftvla_Fleet_V1_Fleet.ServiceProtocol {
    let learner: FleetLearner

    private var metrics: FleetMetrics { learner.metrics }

    /// The metadata key and scheme actors send their token in.
    static let authorizationKey = "authorization"

    static func token(in metadata: Metadata) -> String? {
        for value in metadata[stringValues: authorizationKey] where value.hasPrefix("Bearer ") {
            return String(value.dropFirst("Bearer ".count))
        }
        return nil
    }

    /// Refuses (and counts) a call whose token does not let `actor` in.
    private func authorize(_ actor: String, token: String?) throws {
        do { try learner.authorize(actor: actor, token: token) } catch let error as IngestError {
            metrics.reject(error, episode: false)
            throw error.rpcError
        }
    }

    func registerActor(request: ServerRequest<Swiftvla_Fleet_V1_RegisterActorRequest>, context: ServerContext) async throws
        -> ServerResponse<Swiftvla_Fleet_V1_RegisterActorResponse> {
        ServerResponse(message: try registerActor(request.message, token: Self.token(in: request.metadata)))
    }

    func uploadEpisode(request: StreamingServerRequest<Swiftvla_Fleet_V1_UploadEpisodeRequest>, context: ServerContext) async throws
        -> ServerResponse<Swiftvla_Fleet_V1_UploadEpisodeAck> {
        ServerResponse(message: try await uploadEpisode(request.messages, token: Self.token(in: request.metadata)))
    }

    func watchPolicy(request: ServerRequest<Swiftvla_Fleet_V1_WatchPolicyRequest>, context: ServerContext) async throws
        -> StreamingServerResponse<Swiftvla_Fleet_V1_PolicyUpdate> {
        let token = Self.token(in: request.metadata)
        try authorize(request.message.actorID, token: token)
        return StreamingServerResponse { writer in
            try await watchPolicy(request.message, token: token, response: writer)
            return [:]
        }
    }

    func heartbeat(request: ServerRequest<Swiftvla_Fleet_V1_HeartbeatRequest>, context: ServerContext) async throws
        -> ServerResponse<Swiftvla_Fleet_V1_HeartbeatResponse> {
        try authorize(request.message.actorID, token: Self.token(in: request.metadata))
        return ServerResponse(message: try heartbeat(request.message))
    }

    func registerActor(_ request: Swiftvla_Fleet_V1_RegisterActorRequest, token: String?) throws
        -> Swiftvla_Fleet_V1_RegisterActorResponse {
        do {
            let assignment = try learner.register(request, token: token)
            var response = Swiftvla_Fleet_V1_RegisterActorResponse()
            response.assignment = assignment
            response.policyVersion = Int64(learner.broadcaster.latest?.version ?? 0)
            response.maxMessageBytes = UInt32(clamping: learner.config.limits.maxMessageBytes)
            response.maxStepsPerChunk = UInt32(clamping: learner.config.limits.maxStepsPerChunk)
            response.ingestEndpoint = learner.ingestEndpoint(for: request.actorID) ?? ""
            return response
        } catch let error as IngestError {
            metrics.reject(error, episode: false)
            throw error.rpcError
        }
    }

    func uploadEpisode(_ request: RPCAsyncSequence<Swiftvla_Fleet_V1_UploadEpisodeRequest, any Error>, token: String?) async throws
        -> Swiftvla_Fleet_V1_UploadEpisodeAck {
        let limits = learner.config.limits
        var assembler: EpisodeAssembler?
        var duplicateID: UUID?
        var episode: Episode?
        var actorID = ""
        do {
            for try await message in request {
                let size = EpisodeMessages.approximateBytes(message)
                metrics.update { $0.bytesReceived += size }
                guard size <= limits.maxMessageBytes else {
                    throw IngestError.tooLarge("message of ~\(size) bytes (limit \(limits.maxMessageBytes))")
                }
                guard episode == nil else { throw IngestError.protocolViolation("message after the episode end") }
                switch message.kind {
                case .header(let header):
                    guard assembler == nil, duplicateID == nil else { throw IngestError.protocolViolation("second header") }
                    try learner.authorize(actor: header.actorID, token: token)
                    guard learner.isRegistered(header.actorID) else { throw IngestError.unregisteredActor(header.actorID) }
                    actorID = header.actorID
                    // A re-sent episode that is already durable: skip validation, just ack.
                    if let id = UUID(uuidString: header.episodeID), (try? learner.store.contains(id)) == true {
                        duplicateID = id
                    } else {
                        assembler = try EpisodeAssembler(header: header, catalog: learner.config.catalog, limits: limits)
                    }
                case .chunk(let chunk):
                    if duplicateID != nil { continue }
                    guard assembler != nil else { throw IngestError.protocolViolation("step chunk before the header") }
                    try assembler!.append(chunk)
                case .end(let end):
                    if let id = duplicateID {
                        metrics.update { $0.episodesDuplicate += 1 }
                        return Self.ack(id, duplicate: true, steps: Int(end.stepCount))
                    }
                    guard let a = assembler else { throw IngestError.protocolViolation("end before the header") }
                    episode = try a.finish(end)
                case nil:
                    throw IngestError.protocolViolation("empty message")
                }
            }
            guard let episode else { throw IngestError.protocolViolation("stream closed before the episode end") }
            let inserted = try learner.persist(episode)
            guard inserted else {
                // Lost a race with a concurrent upload of the same id: stored once either way.
                metrics.update { $0.episodesDuplicate += 1 }
                return Self.ack(episode.id, duplicate: true, steps: episode.stepCount)
            }
            metrics.update {
                $0.episodesAccepted += 1
                $0.stepsAccepted += episode.stepCount
                $0.operatorStepsAccepted += episode.interventionCount
                $0.episodesPerVersion[episode.policyVersion, default: 0] += 1
            }
            learner.history.record(LearnerHistory.Episode(
                id: episode.id, actor: actorID, embodiment: episode.embodiment, task: episode.task,
                policyVersion: episode.policyVersion, policyLag: max(0, learner.latestVersion - episode.policyVersion),
                steps: episode.stepCount, operatorSteps: episode.interventionCount, success: episode.success,
                receivedAt: learner.history.seconds))
            learner.buffer.push(episode)
            return Self.ack(episode.id, duplicate: false, steps: episode.stepCount)
        } catch let error as IngestError {
            metrics.reject(error, episode: true)
            throw error.rpcError
        }
    }

    func watchPolicy(_ request: Swiftvla_Fleet_V1_WatchPolicyRequest, token: String?,
                     response: RPCWriter<Swiftvla_Fleet_V1_PolicyUpdate>) async throws {
        guard learner.isRegistered(request.actorID) else {
            let error = IngestError.unregisteredActor(request.actorID)
            metrics.reject(error, episode: false)
            throw error.rpcError
        }
        // Ends when the actor cancels (task cancellation ends the stream) or the learner stops.
        // A delta goes only against the version this stream delivered last, so the actor holds
        // the file it was taken against; a stream's first version is always whole.
        var lastDelivered: Int?
        for await publication in learner.broadcaster.subscribe(knownVersion: Int(request.knownVersion)) {
            try authorize(request.actorID, token: token)   // a revoked actor gets no further weights
            let (updates, isDelta) = publication.updates(lastDelivered: lastDelivered, acceptsDelta: request.acceptDelta)
            try await response.write(contentsOf: updates)
            lastDelivered = publication.version
            metrics.update {
                $0.versionsSent += 1
                if isDelta { $0.deltaVersionsSent += 1 }
                $0.weightBytesSent += PolicyPublication.payloadBytes(updates)
            }
        }
    }

    func heartbeat(_ request: Swiftvla_Fleet_V1_HeartbeatRequest) throws -> Swiftvla_Fleet_V1_HeartbeatResponse {
        guard let assignment = learner.heartbeat(request) else {
            let error = IngestError.unregisteredActor(request.actorID)
            metrics.reject(error, episode: false)
            throw error.rpcError
        }
        metrics.update { $0.heartbeats += 1 }
        var response = Swiftvla_Fleet_V1_HeartbeatResponse()
        response.latestPolicyVersion = Int64(learner.broadcaster.latest?.version ?? 0)
        response.assignment = assignment
        return response
    }

    private static func ack(_ id: UUID, duplicate: Bool, steps: Int) -> Swiftvla_Fleet_V1_UploadEpisodeAck {
        var ack = Swiftvla_Fleet_V1_UploadEpisodeAck()
        ack.episodeID = id.uuidString
        ack.duplicate = duplicate
        ack.steps = UInt32(clamping: steps)
        return ack
    }
}
