import Foundation

/// Serializes the Fleet's MLX work (training steps, safetensors encode/decode, episode
/// persistence) within one process. MLX does not promise that graphs built and evaluated
/// from several threads at once are safe, and a learner and in-process actors share it.
public enum TensorLock {
    private static let lock = NSLock()

    public static func run<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
