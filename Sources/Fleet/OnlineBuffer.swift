import RobotData

/// Newly accepted episodes waiting for the training loop. Bounded: past `capacity` the
/// oldest waiting episode is dropped from the buffer (it stays durable in the store) and
/// counted, so ingest never blocks on a slow trainer.
public final class OnlineBuffer: Sendable {
    private struct State { var pending: [Episode] = []; var pushed = 0; var dropped = 0 }
    public let capacity: Int
    private let state = Locked(State())

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    public func push(_ episode: Episode) {
        state.withLock { s in
            s.pending.append(episode)
            s.pushed += 1
            if s.pending.count > capacity {
                s.pending.removeFirst(s.pending.count - capacity)
                s.dropped += 1
            }
        }
    }

    /// Everything waiting, oldest first, and empties the buffer.
    public func drain() -> [Episode] {
        state.withLock { s in defer { s.pending.removeAll() }; return s.pending }
    }

    public var pushed: Int { state.current.pushed }
    public var dropped: Int { state.current.dropped }
}
