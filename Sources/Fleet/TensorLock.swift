import Foundation

/// Serializes the Fleet's MLX work (training steps, inference, safetensors encode/decode,
/// episode persistence) within one process. MLX does not promise that graphs built and
/// evaluated from several threads at once are safe, and a learner and in-process actors
/// share it. Waiters are served first come, first served (a ticket lock): a plain mutex let
/// the learner, which re-locks right after every step, starve the actors' inference.
public enum TensorLock {
    private static let condition = NSCondition()
    nonisolated(unsafe) private static var nextTicket = 0
    nonisolated(unsafe) private static var serving = 0

    public static func run<R>(_ body: () throws -> R) rethrows -> R {
        condition.lock()
        let ticket = nextTicket
        nextTicket += 1
        while serving != ticket { condition.wait() }
        condition.unlock()
        defer {
            condition.lock()
            serving += 1
            condition.broadcast()
            condition.unlock()
        }
        return try body()
    }
}
