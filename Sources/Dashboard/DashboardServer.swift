import Fleet
import Foundation
import Hummingbird
import Logging
import RobotData
import ServiceLifecycle

/// The learner's web face (Hummingbird): `/` the dashboard page, `/metrics` Prometheus text,
/// `/api/status.json` the same snapshot as JSON, `/episodes/<id>.gif` an accepted episode's
/// scene camera. Read-only; it never blocks the learner (snapshots are copies).
///
/// ```swift
/// let dashboard = DashboardServer(learner: learner, port: 8080)
/// let port = try await dashboard.start()
/// …
/// await dashboard.stop()
/// ```
public final class DashboardServer: Sendable {
    public let learner: FleetLearner
    public let host: String
    public let requestedPort: Int
    public let page: DashboardPage
    public let exporter = PrometheusExporter()
    public let clip: EpisodeClip
    /// Requests answered per route, for the learner's own logs.
    public let requests = Locked([String: Int]())

    private let running = Locked<(group: ServiceGroup?, task: Task<Void, any Error>?, port: Int?)>((nil, nil, nil))
    private let clips = Locked([UUID: Data]())
    private static let clipCacheSize = 64

    public init(learner: FleetLearner, host: String = "127.0.0.1", port: Int = 0, page: DashboardPage = DashboardPage(),
                clip: EpisodeClip = EpisodeClip()) {
        self.learner = learner; self.host = host; self.requestedPort = port; self.page = page; self.clip = clip
    }

    /// The bound port once started.
    public var port: Int? { running.current.port }

    /// Binds and serves in the background; returns the bound port (`port: 0` → ephemeral).
    @discardableResult
    public func start() async throws -> Int {
        let router = Router()
        router.get("/") { _, _ in self.count("page"); return Self.response(self.page.html(DashboardSnapshot.read(self.learner)), type: "text/html; charset=utf-8") }
        router.get("/metrics") { _, _ in
            self.count("metrics")
            return Self.response(self.exporter.render(DashboardSnapshot.read(self.learner)), type: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/api/status.json") { _, _ in
            self.count("status")
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let json = try encoder.encode(DashboardSnapshot.read(self.learner))
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: json)))
        }
        router.get("/episodes/:file") { _, context in
            self.count("episode_gif")
            let file = try context.parameters.require("file")
            guard file.hasSuffix(".gif"), let id = UUID(uuidString: String(file.dropLast(4))) else {
                throw HTTPError(.badRequest, message: "expected /episodes/<uuid>.gif")
            }
            let gif = try self.gif(id)
            return Response(status: .ok, headers: [.contentType: "image/gif", .cacheControl: "max-age=3600"],
                            body: .init(byteBuffer: ByteBuffer(bytes: gif)))
        }
        let (bound, continuation) = AsyncStream<Int?>.makeStream()
        var logger = Logger(label: "swiftvla.dashboard")
        logger.logLevel = .warning
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: requestedPort), serverName: "swiftvla-learner"),
                              onServerRunning: { channel in continuation.yield(channel.localAddress?.port); continuation.finish() },
                              logger: logger)
        // A service group, so `stop()` can shut the server down gracefully.
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task {
            defer { continuation.finish() }   // a failed bind ends the wait below
            try await group.run()
        }
        var iterator = bound.makeAsyncIterator()
        guard let maybePort = await iterator.next(), let port = maybePort else {
            await group.triggerGracefulShutdown()
            _ = await task.result
            throw DashboardError.couldNotBind(host: host, port: requestedPort)
        }
        running.withLock { $0 = (group, task, port) }
        return port
    }

    /// Starts a dashboard for `learner` and logs its address; a failure to bind is logged and
    /// the learner goes on without one (nil).
    public static func start(learner: FleetLearner, host: String = "127.0.0.1", port: Int,
                             log: @Sendable (String) -> Void) async -> DashboardServer? {
        let server = DashboardServer(learner: learner, host: host, port: port)
        do {
            let bound = try await server.start()
            log("dashboard: http://\(host):\(bound)/  (Prometheus: http://\(host):\(bound)/metrics)")
            return server
        } catch {
            log("dashboard not started: \(error)")
            return nil
        }
    }

    /// Stops serving (in-flight requests finish).
    public func stop() async {
        let (group, task) = running.withLock { r in defer { r = (nil, nil, nil) }; return (r.group, r.task) }
        await group?.triggerGracefulShutdown()
        _ = await task?.result
    }

    private func count(_ route: String) { requests.withLock { $0[route, default: 0] += 1 } }

    private func gif(_ id: UUID) throws -> Data {
        if let cached = clips.withLock({ $0[id] }) { return cached }
        let episode: Episode
        do {
            guard try learner.store.contains(id) else { throw HTTPError(.notFound, message: "no episode \(id.uuidString)") }
            episode = try TensorLock.run { try learner.store.load(id) }
        } catch let error as HTTPError { throw error } catch {
            throw HTTPError(.internalServerError, message: "could not read episode \(id.uuidString): \(error)")
        }
        let data: Data
        do { data = try clip.gif(of: episode) } catch {
            throw HTTPError(.unprocessableContent, message: "\(error)")
        }
        clips.withLock { c in
            if c.count >= Self.clipCacheSize { c.removeAll() }
            c[id] = data
        }
        return data
    }

    private static func response(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

public enum DashboardError: Error, Equatable, CustomStringConvertible {
    case couldNotBind(host: String, port: Int)

    public var description: String {
        switch self {
        case .couldNotBind(let host, let port): "dashboard could not bind \(host):\(port)"
        }
    }
}
