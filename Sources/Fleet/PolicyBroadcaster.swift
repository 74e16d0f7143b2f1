import Foundation

/// Fans published policy versions out to `WatchPolicy` streams. Each subscriber holds at
/// most one pending version (the newest), so a slow or stuck actor only ever skips versions
/// and never delays the learner or other actors.
public final class PolicyBroadcaster: Sendable {
    private struct State {
        var latest: PolicyPublication?
        var subscribers: [UUID: AsyncStream<PolicyPublication>.Continuation] = [:]
    }

    private let state = Locked(State())

    public init() {}

    public var latest: PolicyPublication? { state.current.latest }
    public var subscriberCount: Int { state.current.subscribers.count }

    /// A stream of versions newer than `knownVersion`, starting with the current one if newer.
    public func subscribe(knownVersion: Int) -> AsyncStream<PolicyPublication> {
        let id = UUID()
        let (stream, continuation) = AsyncStream.makeStream(of: PolicyPublication.self, bufferingPolicy: .bufferingNewest(1))
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.subscribers.removeValue(forKey: id) }
        }
        state.withLock { s in
            s.subscribers[id] = continuation
            if let latest = s.latest, latest.version > knownVersion { continuation.yield(latest) }
        }
        return stream
    }

    /// Sends a version to every subscriber; older than the current one is ignored (two
    /// concurrent publishers can finish encoding out of order).
    public func publish(_ publication: PolicyPublication) {
        let subscribers = state.withLock { s -> [AsyncStream<PolicyPublication>.Continuation] in
            if let latest = s.latest, latest.version >= publication.version { return [] }
            s.latest = publication
            return Array(s.subscribers.values)
        }
        for c in subscribers { c.yield(publication) }
    }

    /// Ends every stream (learner shutdown).
    public func finish() {
        let subscribers = state.withLock { s in
            defer { s.subscribers.removeAll() }
            return Array(s.subscribers.values)
        }
        for c in subscribers { c.finish() }
    }
}
