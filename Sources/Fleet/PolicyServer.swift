import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import RobotData
import TensorKit
import Training
import VLAModel

/// A refused observation: each case becomes INVALID_ARGUMENT with its message, and is counted.
public enum PolicyServerError: Error, CustomStringConvertible, Equatable {
    case unknownEmbodiment(String)
    case badCamera(String)
    case badState(String)

    public var reason: String {
        switch self {
        case .unknownEmbodiment: return "unknown_embodiment"
        case .badCamera: return "bad_camera"
        case .badState: return "bad_state"
        }
    }

    public var description: String {
        switch self {
        case .unknownEmbodiment(let m): return "PolicyServerError.unknownEmbodiment: \(m)"
        case .badCamera(let m): return "PolicyServerError.badCamera: \(m)"
        case .badState(let m): return "PolicyServerError.badState: \(m)"
        }
    }
}

/// Latency figures over the server's recent requests (milliseconds).
public struct LatencySummary: Sendable, CustomStringConvertible {
    public var requests = 0
    public var rejected = 0
    public var rejectedByReason: [String: Int] = [:]
    /// Handling time (decode, validate, sample, encode) and model time alone.
    public var handling = Percentiles()
    public var inference = Percentiles()
    /// With `--follow-learner`: the learner's version answering requests now (0: the
    /// checkpoint's weights) and how many versions were loaded.
    public var policyVersion = 0
    public var versionsLoaded = 0

    public struct Percentiles: Sendable {
        public var p50 = 0.0, p90 = 0.0, p99 = 0.0, max = 0.0
        /// Nearest-rank percentiles of `values`.
        public init(_ values: [Double] = []) {
            guard !values.isEmpty else { return }
            let s = values.sorted()
            func rank(_ q: Double) -> Double { s[min(s.count - 1, Int((q * Double(s.count)).rounded(.up)) - 1)] }
            p50 = rank(0.5); p90 = rank(0.9); p99 = rank(0.99); self.max = s.last!
        }
    }

    public var description: String {
        String(format: "%d requests (%d rejected); handling p50 %.1f ms, p90 %.1f, p99 %.1f, max %.1f; model p50 %.1f ms, p99 %.1f",
               requests, rejected, handling.p50, handling.p90, handling.p99, handling.max, inference.p50, inference.p99)
            + (versionsLoaded > 0 ? "; serving v\(policyVersion) (\(versionsLoaded) versions loaded)" : "")
    }
}

/// `vla serve`: answers "observation → native action chunk" over gRPC (`PolicyServer`
/// service of fleet.proto) for robots and simulators that run the policy remotely. Requests
/// are validated (known embodiment, camera names and sizes, state width, finite values) and
/// sampled one at a time on a dedicated thread, never on the pool that serves gRPC.
public final class PolicyServer: @unchecked Sendable {
    public let policy: VLAPolicy
    public let checkpointStep: Int
    public let host: String
    public let requestedPort: Int
    /// Called with a latency line every `logEvery` requests (0: never).
    public var logEvery = 0
    public var log: @Sendable (String) -> Void = { _ in }

    private struct Stats {
        var requests = 0
        var rejected: [String: Int] = [:]
        var handling: [Double] = []
        var inference: [Double] = []
        var next = 0
    }
    private let stats = Locked(Stats())
    private static let window = 2000
    private let worker = WorkerThread(name: "policy-server")
    private let running = Locked<(server: GRPCServer<HTTP2ServerTransport.Posix>?, task: Task<Void, any Error>?, port: Int?)>((nil, nil, nil))
    private let sampling = Locked(RandomKey(seed: 0))
    /// Newest version received from a followed learner and not loaded yet; the worker thread
    /// loads it before its next request, so one request is answered by one version.
    private let inbox = Locked<PolicyWeights?>(nil)
    private let loaded = Locked((version: 0, count: 0))
    private let following = Locked<Task<Void, Never>?>(nil)

    /// Serve over TLS (nil: plaintext).
    public let tls: FleetTLS?
    /// Bodies from embodiment files (e.g. MetaWorld's sawyer) served next to RobotSim's.
    public let declared: [String: EmbodimentSpec]

    public init(policy: VLAPolicy, checkpointStep: Int = 0, host: String = "127.0.0.1", port: Int = 0, seed: UInt64 = 0,
                tls: FleetTLS? = nil, declared: [EmbodimentSpec] = []) {
        self.policy = policy
        self.declared = Dictionary(declared.map { ($0.name, $0) }) { first, _ in first }
        self.tls = tls
        self.checkpointStep = checkpointStep
        self.host = host
        requestedPort = port
        sampling.withLock { $0 = RandomKey(seed: seed) }
    }

    public var port: Int? { running.current.port }

    /// Binds and serves; returns the bound port.
    @discardableResult
    public func start() async throws -> Int {
        // MLX streams are per thread: a parameter still lazy from the thread that built it
        // could not be evaluated on the server's thread. Materialize them here.
        let parameters = Array(policy.model.parameters().values)
        try TensorLock.run { try eval(parameters) }
        let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: host, port: requestedPort), transportSecurity: FleetTLS.server(tls))
        let server = GRPCServer(transport: transport, services: [PolicyServerService(server: self)])
        let task = Task { try await server.serve() }
        guard let port = try await transport.listeningAddress.ipv4?.port else {
            task.cancel()
            throw RPCError(code: .internalError, message: "policy server bound to a non-IPv4 address")
        }
        running.withLock { $0 = (server, task, port) }
        return port
    }

    public func stop() async {
        following.withLock { $0?.cancel(); $0 = nil }
        let r = running.withLock { r in defer { r = (nil, nil, nil) }; return r }
        r.server?.beginGracefulShutdown()
        _ = await r.task?.result
        worker.stop()
    }

    /// Runs until the server stops (for `vla serve`).
    public func wait() async {
        _ = await running.current.task?.result
    }

    /// Follows a learner: its published versions replace the served weights between requests
    /// (the checkpoint's until the first arrives; the last one loaded while it is unreachable).
    public func follow(_ config: FollowLearnerConfig) {
        let task = Task { [self] in
            await LearnerFollower.run(config, knownVersion: { [self] in newestReceivedVersion },
                                      deliver: { [self] weights in
                                          guard weights.model == VLAActorPolicy.modelName else {
                                              log("ignoring v\(weights.version): model \(weights.model), serving \(VLAActorPolicy.modelName)")
                                              return
                                          }
                                          inbox.withLock { if ($0?.version ?? 0) < weights.version { $0 = weights } }
                                      }, log: { [self] line in log(line) })
        }
        following.withLock { $0?.cancel(); $0 = task }
    }

    /// The learner's version answering requests now (0: the checkpoint's weights).
    public var servedVersion: Int { loaded.current.version }
    /// The newest version received from the followed learner (loaded before the next request).
    public var newestReceivedVersion: Int { max(inbox.current?.version ?? 0, loaded.current.version) }

    /// Loads the newest received version (on the worker thread, between requests). A version
    /// that does not fit the model is logged and skipped; the served weights stay.
    private func loadNewestVersion() {
        guard let weights = inbox.withLock({ w in defer { w = nil }; return w }), weights.version > loaded.current.version else { return }
        do {
            try TensorLock.run {
                try policy.model.update(parameters: weights.tensors)
                // Evaluated here, so the first request on the new version does not pay for it.
                try eval(Array(policy.model.parameters().values))
            }
            loaded.withLock { $0 = (weights.version, $0.count + 1) }
            log("swapped in policy v\(weights.version) (learner train step \(weights.trainStep), \(weights.tensors.count) tensors)")
        } catch {
            log("could not load policy v\(weights.version): \(error); still serving v\(loaded.current.version)")
        }
    }

    /// Validates a request and samples its chunk (blocking; `handle` runs it on the server's thread).
    public func predict(_ request: Swiftvla_Fleet_V1_PredictChunkRequest) throws -> Swiftvla_Fleet_V1_PredictChunkResponse {
        loadNewestVersion()
        let observation = try observation(from: request)
        let key: RandomKey = request.seedKnown ? RandomKey(seed: request.seed)
            : try sampling.withLock { k in let (now, next) = try k.split(); k = next; return now }
        let start = DispatchTime.now()
        let chunk = try TensorLock.run { try policy.actionChunk(observation, key: key) }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
        var response = Swiftvla_Fleet_V1_PredictChunkResponse()
        response.horizon = UInt32(chunk.count)
        response.actionDim = UInt32(observation.embodiment.actionDimension)
        response.actions = chunk.flatMap { $0 }
        response.executeSteps = UInt32(policy.model.config.executeSteps)
        response.checkpointStep = Int64(checkpointStep)
        response.inferenceMs = elapsed
        // `handle` runs requests one at a time, so the loaded version is the one that answered.
        response.policyVersion = Int64(loaded.current.version)
        return response
    }

    /// The request as a policy observation, or the reason it is not one.
    func observation(from request: Swiftvla_Fleet_V1_PredictChunkRequest) throws -> PolicyObservation {
        guard let kind = DemoCollector.specs[request.embodiment] ?? declared[request.embodiment], policy.stats.actions[request.embodiment] != nil else {
            throw PolicyServerError.unknownEmbodiment("\"\(request.embodiment)\" (this checkpoint serves \(policy.stats.actions.keys.sorted().joined(separator: ", ")))")
        }
        let size = policy.model.config.imageSize
        var cameras: [String: [UInt8]] = [:]
        for frame in request.cameras {
            guard CameraSlots.isKnown(frame.name) else { throw PolicyServerError.badCamera("unknown camera \"\(frame.name)\"") }
            guard frame.height == size, frame.width == size else {
                throw PolicyServerError.badCamera("\(frame.name) is \(frame.width)×\(frame.height), the model takes \(size)×\(size)")
            }
            guard frame.rgb.count == size * size * 3 else {
                throw PolicyServerError.badCamera("\(frame.name) has \(frame.rgb.count) bytes, expected \(size * size * 3)")
            }
            guard cameras[frame.name] == nil else { throw PolicyServerError.badCamera("camera \(frame.name) sent twice") }
            cameras[frame.name] = Array(frame.rgb)
        }
        guard !cameras.isEmpty else { throw PolicyServerError.badCamera("no camera frames") }
        guard request.state.count == kind.stateDimension else {
            throw PolicyServerError.badState("\(request.state.count) values, \(kind.name) has \(kind.stateDimension)")
        }
        guard request.state.allSatisfy(\.isFinite) else { throw PolicyServerError.badState("non-finite value") }
        return PolicyObservation(embodiment: kind, instruction: request.instruction, cameras: cameras, nativeState: request.state)
    }

    /// One request end to end: on the server's thread, timed and counted. Bad input throws
    /// an `RPCError` with code INVALID_ARGUMENT (gRPC and the WebSocket endpoint share this).
    public func handle(_ request: Swiftvla_Fleet_V1_PredictChunkRequest) async throws -> Swiftvla_Fleet_V1_PredictChunkResponse {
        let start = DispatchTime.now()
        do {
            let response = try await worker.run { try self.predict(request) }
            let handling = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
            let count = stats.withLock { s in
                s.requests += 1
                if s.handling.count < Self.window { s.handling.append(handling); s.inference.append(response.inferenceMs) }
                else { s.handling[s.next] = handling; s.inference[s.next] = response.inferenceMs; s.next = (s.next + 1) % Self.window }
                return s.requests
            }
            if logEvery > 0, count % logEvery == 0 { log("served \(summary)") }
            return response
        } catch let error as PolicyServerError {
            stats.withLock { $0.requests += 1; $0.rejected[error.reason, default: 0] += 1 }
            throw RPCError(code: .invalidArgument, message: error.description)
        } catch let error as RPCError {
            throw error
        } catch {
            stats.withLock { $0.requests += 1; $0.rejected["internal", default: 0] += 1 }
            throw RPCError(code: .internalError, message: "\(error)")
        }
    }

    /// Requests, rejections and latency percentiles over the last 2000 answered requests.
    public var summary: LatencySummary {
        let s = stats.current
        var out = LatencySummary()
        out.requests = s.requests
        out.rejectedByReason = s.rejected
        out.rejected = s.rejected.values.reduce(0, +)
        out.handling = .init(s.handling)
        out.inference = .init(s.inference)
        let l = loaded.current
        out.policyVersion = l.version
        out.versionsLoaded = l.count
        return out
    }
}

struct PolicyServerService: Swiftvla_Fleet_V1_PolicyServer.SimpleServiceProtocol {
    let server: PolicyServer

    func predictChunk(request: Swiftvla_Fleet_V1_PredictChunkRequest, context: ServerContext) async throws
        -> Swiftvla_Fleet_V1_PredictChunkResponse {
        try await server.handle(request)
    }

    func getServerInfo(request: Swiftvla_Fleet_V1_ServerInfoRequest, context: ServerContext) async throws -> Swiftvla_Fleet_V1_ServerInfo {
        server.info
    }
}

extension PolicyServer {
    /// What the server serves and has served.
    public var info: Swiftvla_Fleet_V1_ServerInfo {
        let c = policy.model.config, s = summary
        var info = Swiftvla_Fleet_V1_ServerInfo()
        info.model = VLAActorPolicy.modelName
        info.checkpointStep = Int64(checkpointStep)
        info.embodiments = policy.stats.actions.keys.sorted()
        info.imageSize = UInt32(c.imageSize)
        info.horizon = UInt32(c.horizon)
        info.executeSteps = UInt32(c.executeSteps)
        info.requests = UInt64(s.requests)
        info.rejected = UInt64(s.rejected)
        return info
    }
}
