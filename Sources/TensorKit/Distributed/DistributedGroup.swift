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
