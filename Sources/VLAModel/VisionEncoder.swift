import TensorKit

/// Conv stem → patch tokens per camera: `[N, S, S, 3]` → `[N, (S/16)², dims]`.
/// Two strided convs (4 and 2) give an S/8 grid; 2×2 average pooling halves it again.
public final class VisionEncoder: Module, @unchecked Sendable {
    public let stem: Conv2d
    public let patch: Conv2d
    public let project: Linear

    public init(dims: Int, key: RandomKey) throws {
        let k = try key.split(into: 3)
        stem = try Conv2d(3, 32, kernelSize: 4, stride: 4, key: k[0])
        patch = try Conv2d(32, dims, kernelSize: 3, stride: 2, padding: 1, key: k[1])
        project = try Linear(dims, dims, key: k[2])
        super.init()
    }

    public func callAsFunction(_ images: Tensor) throws -> Tensor {
        guard images.ndim == 4, images.dim(1) % 16 == 0, images.dim(2) == images.dim(1) else {
            throw TensorError.shapeMismatch("VisionEncoder expects [N, S, S, 3] with S a multiple of 16, got \(images.shape)")
        }
        let h = try patch(stem(images * 2 - 1).gelu()).gelu()          // [N, S/8, S/8, D]
        let n = h.dim(0), g = h.dim(1), d = h.dim(3)
        let pooled = try h.reshaped([n, g / 2, 2, g / 2, 2, d]).mean(axes: [2, 4])  // [N, S/16, S/16, D]
        return try project(pooled.reshaped([n, (g / 2) * (g / 2), d]))
    }
}
