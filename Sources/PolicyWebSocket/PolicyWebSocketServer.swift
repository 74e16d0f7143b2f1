import Fleet
import Foundation
import GRPCCore
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle
import SwiftProtobuf

/// The policy server over a WebSocket with JSON messages, for clients without gRPC (openpi's
/// policy servers speak WebSocket too). Connect to `ws://host:port/policy`: the server first
/// sends its `ServerInfo`; then every text frame is a `PredictChunkRequest` and is answered by
/// a `PredictChunkResponse`, both in the proto3 JSON mapping of fleet.proto (camera `rgb` bytes
/// as base64). A bad request is answered `{"error": {"code": …, "message": …}}`, counted by the
/// wrapped `PolicyServer` like a gRPC one, and the connection stays open. Requests share the
/// `PolicyServer`'s thread, validation and latency figures, so both endpoints behave alike.
///
/// `ws://host:port/` speaks MessagePack in binary frames, openpi's wire format (NumPy arrays as
/// maps with `__ndarray__`, `data`, `dtype`, `shape`): on connect a map of the server's facts;
/// then each request map — `embodiment`, `prompt` (or `instruction`), `state` (array), `images`
/// (camera name → uint8 [H, W, 3] array), optional `seed` — is answered by a map with
/// `actions` (float32 [horizon, action_dim]), `execute_steps`, `checkpoint_step` and
/// `policy_timing.infer_ms`, or by `{"error": {code, message}}` with the connection kept.
public final class PolicyWebSocketServer: Sendable {
    public let policyServer: PolicyServer
    public let host: String
    public let requestedPort: Int
    /// Largest frame accepted (a request with four 224² cameras is ~0.8 MB of base64).
    public static let maxFrameBytes = 16 << 20

    /// Frames that were not a PredictChunkRequest (the policy server counts invalid requests).
    public let malformedFrames = Locked(0)

    private let running = Locked<(group: ServiceGroup?, task: Task<Void, any Error>?, port: Int?)>((nil, nil, nil))

    /// `policyServer` must be started (it owns the model's thread).
    public init(policyServer: PolicyServer, host: String = "127.0.0.1", port: Int = 0) {
        self.policyServer = policyServer; self.host = host; self.requestedPort = port
    }

    public var port: Int? { running.current.port }

    /// Binds and serves in the background; returns the bound port.
    @discardableResult
    public func start() async throws -> Int {
        let router = Router(context: BasicWebSocketRequestContext.self)
        router.ws("/policy") { _, _ in .upgrade() } onUpgrade: { inbound, outbound, _ in
            try await outbound.write(.text(try self.policyServer.info.jsonString()))
            for try await message in inbound.messages(maxSize: Self.maxFrameBytes) {
                try await outbound.write(.text(await self.answer(message)))
            }
        }
        router.ws("/") { _, _ in .upgrade() } onUpgrade: { inbound, outbound, _ in
            try await outbound.write(.binary(ByteBuffer(bytes: Self.metadata(self.policyServer.info).encoded())))
            for try await message in inbound.messages(maxSize: Self.maxFrameBytes) {
                try await outbound.write(.binary(ByteBuffer(bytes: await self.answerMessagePack(message).encoded())))
            }
        }
        var logger = Logger(label: "swiftvla.policy-websocket")
        logger.logLevel = .warning
        let (bound, continuation) = AsyncStream<Int?>.makeStream()
        let app = Application(router: Router(), server: .http1WebSocketUpgrade(webSocketRouter: router),
                              configuration: .init(address: .hostname(host, port: requestedPort), serverName: "swiftvla-policy"),
                              onServerRunning: { channel in continuation.yield(channel.localAddress?.port); continuation.finish() },
                              logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        var iterator = bound.makeAsyncIterator()
        guard let maybePort = await iterator.next(), let port = maybePort else {
            await group.triggerGracefulShutdown()
            _ = await task.result
            throw RPCError(code: .unavailable, message: "policy WebSocket could not bind \(host):\(requestedPort)")
        }
        running.withLock { $0 = (group, task, port) }
        return port
    }

    public func stop() async {
        let (group, task) = running.withLock { r in defer { r = (nil, nil, nil) }; return (r.group, r.task) }
        await group?.triggerGracefulShutdown()
        _ = await task?.result
    }

    /// The reply to one frame: a response, or an error object (never a dropped connection).
    func answer(_ message: WebSocketMessage) async -> String {
        guard case .text(let text) = message else {
            malformedFrames.withLock { $0 += 1 }
            return Self.error("invalid_argument", "send PredictChunkRequest as a JSON text frame")
        }
        let request: Swiftvla_Fleet_V1_PredictChunkRequest
        do { request = try Swiftvla_Fleet_V1_PredictChunkRequest(jsonString: text) } catch {
            malformedFrames.withLock { $0 += 1 }
            return Self.error("invalid_argument", "not a PredictChunkRequest in proto3 JSON: \(error)")
        }
        do {
            return try await policyServer.handle(request).jsonString()
        } catch let error as RPCError {
            return Self.error(error.code == .invalidArgument ? "invalid_argument" : "internal", error.message)
        } catch {
            return Self.error("internal", "\(error)")
        }
    }

    // MARK: MessagePack (openpi's format)

    static func metadata(_ info: Swiftvla_Fleet_V1_ServerInfo) -> MessagePack {
        .map([(.string("model"), .string(info.model)), (.string("checkpoint_step"), .int(info.checkpointStep)),
              (.string("embodiments"), .array(info.embodiments.map { .string($0) })),
              (.string("image_size"), .int(Int64(info.imageSize))), (.string("horizon"), .int(Int64(info.horizon))),
              (.string("execute_steps"), .int(Int64(info.executeSteps)))])
    }

    /// The reply to one binary frame.
    func answerMessagePack(_ message: WebSocketMessage) async -> MessagePack {
        let request: Swiftvla_Fleet_V1_PredictChunkRequest
        do {
            guard case .binary(let buffer) = message else { throw RequestError("send a MessagePack map as a binary frame") }
            request = try Self.predictRequest(MessagePack.decode(Array(buffer.readableBytesView)))
        } catch {
            malformedFrames.withLock { $0 += 1 }
            return Self.errorMap("invalid_argument", "\(error)")
        }
        do {
            let r = try await policyServer.handle(request)
            let actions = NumPyArray(float32: r.actions, shape: [Int(r.horizon), Int(r.actionDim)])
            return .map([(.string("actions"), actions.messagePack), (.string("execute_steps"), .int(Int64(r.executeSteps))),
                         (.string("checkpoint_step"), .int(r.checkpointStep)), (.string("policy_version"), .int(r.policyVersion)),
                         (.string("policy_timing"), .map([(.string("infer_ms"), .double(r.inferenceMs))]))])
        } catch let error as RPCError {
            return Self.errorMap(error.code == .invalidArgument ? "invalid_argument" : "internal", error.message)
        } catch {
            return Self.errorMap("internal", "\(error)")
        }
    }

    struct RequestError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// A `PredictChunkRequest` from a request map (shapes and values are then checked by the
    /// `PolicyServer` like any request).
    static func predictRequest(_ value: MessagePack) throws -> Swiftvla_Fleet_V1_PredictChunkRequest {
        guard case .map = value else { throw RequestError("the request must be a map") }
        var request = Swiftvla_Fleet_V1_PredictChunkRequest()
        guard let embodiment = value["embodiment"]?.string else { throw RequestError("missing \"embodiment\" (a string)") }
        request.embodiment = embodiment
        request.instruction = value["prompt"]?.string ?? value["instruction"]?.string ?? ""
        switch value["state"] {
        case .array(let items)?:
            let numbers = items.compactMap(\.number)
            guard numbers.count == items.count else { throw RequestError("\"state\" must hold numbers") }
            request.state = numbers.map(Float.init)
        case let v? where NumPyArray(v) != nil:
            guard let floats = NumPyArray(v)!.floats else { throw RequestError("\"state\" must be a numeric array") }
            request.state = floats
        default: throw RequestError("missing \"state\" (an array of numbers)")
        }
        if case .map(let images)? = value["images"] {
            for (key, image) in images {
                guard let name = key.string, let array = NumPyArray(image), array.dtype == "|u1",
                      array.shape.count == 3, array.shape[2] == 3 else {
                    throw RequestError("each of \"images\" must be a uint8 [H, W, 3] array under a camera name")
                }
                var frame = Swiftvla_Fleet_V1_CameraFrame()
                frame.name = name
                frame.height = UInt32(array.shape[0])
                frame.width = UInt32(array.shape[1])
                frame.rgb = Data(array.data)
                request.cameras.append(frame)
            }
        } else if value["images"] != nil {
            throw RequestError("\"images\" must be a map of camera name → array")
        }
        if let seed = value["seed"] {
            guard let s = seed.integer, s >= 0 else { throw RequestError("\"seed\" must be a non-negative integer") }
            request.seedKnown = true
            request.seed = UInt64(s)
        }
        return request
    }

    static func errorMap(_ code: String, _ message: String) -> MessagePack {
        .map([(.string("error"), .map([(.string("code"), .string(code)), (.string("message"), .string(message))]))])
    }

    static func error(_ code: String, _ message: String) -> String {
        let body = ["error": ["code": code, "message": message]]
        return String(decoding: (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data("{}".utf8), as: UTF8.self)
    }
}
