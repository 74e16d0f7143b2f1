import Foundation
import CMLX

/// The processes of a data-parallel job, through MLX's own distributed layer (no home-made
/// transport): the ring backend over TCP, set up by a launcher's environment (`MLX_RANK`,
/// `MLX_HOSTFILE`, as `mlx.launch --backend ring` sets them), or MPI where installed.
///
/// ```swift
/// let group = try DistributedGroup.initialize(backend: "ring")
/// let total = try group.allSum(localGradient)   // the same on every rank
/// ```
public struct DistributedGroup: Sendable {
    public let rank: Int
    public let size: Int

    /// Joins the job. `strict: false` gives a one-process group when no launcher set one up.
    public static func initialize(backend: String = "any", strict: Bool = true) throws -> DistributedGroup {
        var rank: Int32 = 0, size: Int32 = 1
        try Tensor.status(cmlx_distributed_init(strict ? 1 : 0, backend, &rank, &size), "distributed init (\(backend))")
        return DistributedGroup(rank: Int(rank), size: Int(size))
    }

    /// Whether MLX was built with `backend` ("ring", "mpi", "any").
    public static func isAvailable(backend: String) -> Bool { cmlx_distributed_is_available(backend) != 0 }

    /// Elementwise sum of `tensor` over all ranks (every rank must call it, same shape). MLX
    /// keeps one process-wide group: the one the last `initialize` joined.
    public func allSum(_ tensor: Tensor) throws -> Tensor {
        try Tensor.wrap(cmlx_distributed_all_sum(tensor.raw), "all_sum")
    }
}

extension DistributedGroup {
    /// Sums named tensors over all ranks with one collective: flattened in key order into one
    /// buffer of `wire` dtype (one ring round per step instead of one per parameter; bfloat16
    /// halves the bytes), returned as float32 in the original shapes. Lazy like any op; every
    /// rank must pass the same keys and shapes.
    public func allSum(_ tensors: [String: Tensor], wire: DType = .float32) throws -> [String: Tensor] {
        let keys = tensors.keys.sorted()
        guard !keys.isEmpty else { return [:] }
        let parts = try keys.map { try tensors[$0]!.astype(wire).flattened() }
        let summed = try allSum(concatenated(parts, axis: 0)).astype(.float32)
        var offsets: [Int] = [], offset = 0
        for part in parts.dropLast() { offset += part.dim(0); offsets.append(offset) }
        let pieces = try summed.split(at: offsets, axis: 0)
        var out: [String: Tensor] = [:]
        for (i, key) in keys.enumerated() { out[key] = try pieces[i].reshaped(tensors[key]!.shape) }
        return out
    }
}

/// A deadline on collective steps. MLX's collectives block until every rank takes part, so a
/// rank that died would hang the others forever; armed around each step, the watchdog calls
/// `onTimeout` (typically: log and exit so the job restarts from its last checkpoint) when a
/// step has not finished within `timeout` seconds.
public final class CollectiveWatchdog: @unchecked Sendable {
    public let timeout: Double
    private let onTimeout: @Sendable (_ step: Int) -> Void
    private let queue = DispatchQueue(label: "swiftvla.collective-watchdog")
    private var pending: DispatchWorkItem?
    private let lock = NSLock()

    public init(timeout: Double, onTimeout: @escaping @Sendable (_ step: Int) -> Void) {
        self.timeout = timeout
        self.onTimeout = onTimeout
    }

    /// Runs `body` (one collective step) under the deadline.
    public func guarding<R>(step: Int, _ body: () throws -> R) rethrows -> R {
        arm(step: step)
        defer { disarm() }
        return try body()
    }

    /// Starts the deadline for `step` (replacing any armed one); `disarm` when it finished.
    public func arm(step: Int) {
        let item = DispatchWorkItem { [onTimeout] in onTimeout(step) }
        lock.withLock { pending?.cancel(); pending = item }
        queue.asyncAfter(deadline: .now() + timeout, execute: item)
    }

    public func disarm() {
        lock.withLock { pending?.cancel(); pending = nil }
    }
}
