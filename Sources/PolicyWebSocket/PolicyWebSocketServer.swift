import Fleet
import Foundation
import GRPCCore
import Hummingbird
import HummingbirdWebSocket
import Logging
import ServiceLifecycle
import SwiftProtobuf

/// The policy server over a WebSocket with JSON messages, for clients without gRPC (openpi's
/// policy servers speak WebSocket too). Connect to `ws://host:port/policy`: the server first
/// sends its `ServerInfo`; then every text frame is a `PredictChunkRequest` and is answered by
/// a `PredictChunkResponse`, both in the proto3 JSON mapping of fleet.proto (camera `rgb` bytes
/// as base64). A bad request is answered `{"error": {"code": …, "message": …}}`, counted by the
/// wrapped `PolicyServer` like a gRPC one, and the connection stays open. Requests share the
/// `PolicyServer`'s thread, validation and latency figures, so both endpoints behave alike.
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

    static func error(_ code: String, _ message: String) -> String {
        let body = ["error": ["code": code, "message": message]]
        return String(decoding: (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data("{}".utf8), as: UTF8.self)
    }
}
