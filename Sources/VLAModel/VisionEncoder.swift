import TensorKit

/// Conv stem → tokens per camera: `[N, S, S, 3]` → `[N, (S/16)² (+1), dims]`.
/// Two strided convs (4 and 2) give an S/8 grid; 2×2 average pooling halves it again. With
/// `keypoints` > 0 one more token carries spatial-softmax keypoints of the stride-4 features
/// (Levine et al. 2016, robomimic's encoders): the expected image (x, y) of each of K learned
/// feature maps — coordinates a policy reads directly instead of inferring them from coarse
/// patches, which matters when a few dozen demos must teach where things are.
public final class VisionEncoder: Module, @unchecked Sendable {
    public let stem: Conv2d
    public let patch: Conv2d
    public let project: Linear
    public let keypointMaps: Linear?
    public let keypointProject: Linear?
    public let keypoints: Int

    public init(dims: Int, keypoints: Int = 0, key: RandomKey) throws {
        let k = try key.split(into: 5)
        stem = try Conv2d(3, 32, kernelSize: 4, stride: 4, key: k[0])
        patch = try Conv2d(32, dims, kernelSize: 3, stride: 2, padding: 1, key: k[1])
        project = try Linear(dims, dims, key: k[2])
        self.keypoints = keypoints
        keypointMaps = keypoints > 0 ? try Linear(32, keypoints, key: k[3]) : nil
        keypointProject = keypoints > 0 ? try Linear(2 * keypoints, dims, key: k[4]) : nil
        super.init()
    }

    /// Tokens per camera for images of side `imageSize`.
    public static func tokens(imageSize: Int, keypoints: Int) -> Int {
        (imageSize / 16) * (imageSize / 16) + (keypoints > 0 ? 1 : 0)
    }

    public func callAsFunction(_ images: Tensor) throws -> Tensor {
        guard images.ndim == 4, images.dim(1) % 16 == 0, images.dim(2) == images.dim(1) else {
            throw TensorError.shapeMismatch("VisionEncoder expects [N, S, S, 3] with S a multiple of 16, got \(images.shape)")
        }
        let features = try stem(images * 2 - 1).gelu()                   // [N, S/4, S/4, 32]
        let h = try patch(features).gelu()                                // [N, S/8, S/8, D]
        let n = h.dim(0), g = h.dim(1), d = h.dim(3)
        let pooled = try h.reshaped([n, g / 2, 2, g / 2, 2, d]).mean(axes: [2, 4])  // [N, S/16, S/16, D]
        let patches = try project(pooled.reshaped([n, (g / 2) * (g / 2), d]))
        guard let keypointMaps, let keypointProject else { return patches }
        return try concatenated([patches, keypointProject(spatialSoftmax(keypointMaps(features))).reshaped([n, 1, d])], axis: 1)
    }

    /// Expected (x, y) ∈ [−1, 1]² under a softmax over positions, per channel:
    /// `[N, G, G, K]` → `[N, 2K]` (x of every channel, then y).
    func spatialSoftmax(_ maps: Tensor) throws -> Tensor {
        let n = maps.dim(0), g = maps.dim(1), k = maps.dim(3)
        let weights = try maps.reshaped([n, g * g, k]).softmax(axis: 1)
        let ticks = (0..<g).map { Float(2 * $0 + 1) / Float(g) - 1 }      // pixel centres
        let xs = try Tensor((0..<(g * g)).map { ticks[$0 % g] }, shape: [1, g * g, 1])
        let ys = try Tensor((0..<(g * g)).map { ticks[$0 / g] }, shape: [1, g * g, 1])
        return try concatenated([(weights * xs).sum(axis: 1), (weights * ys).sum(axis: 1)], axis: 1)
    }
}
