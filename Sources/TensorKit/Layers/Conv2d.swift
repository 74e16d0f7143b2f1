/// 2-D convolution over channels-last images: `[N, H, W, Cin]` → `[N, H', W', Cout]`.
/// weight `[Cout, kH, kW, Cin]`, bias `[Cout]`.
public final class Conv2d: Module, @unchecked Sendable {
    @Param public var weight: Tensor
    @OptionalParam public var bias: Tensor?
    public let stride: (Int, Int)
    public let padding: (Int, Int)

    /// Uniform in ±1/√(Cin·kH·kW), as for `Linear`.
    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, key: RandomKey) throws {
        let (wk, bk) = try key.split()
        let bound = 1 / Double(inChannels * kernelSize * kernelSize).squareRoot()
        weight = try wk.uniform([outChannels, kernelSize, kernelSize, inChannels], low: -bound, high: bound)
        self.bias = bias ? try bk.uniform([outChannels], low: -bound, high: bound) : nil
        self.stride = (stride, stride)
        self.padding = (padding, padding)
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.ndim == 4, x.dim(3) == weight.dim(3) else {
            throw TensorError.shapeMismatch("Conv2d expects [N, H, W, \(weight.dim(3))], got \(x.shape)")
        }
        let y = try conv2d(x, weight, stride: stride, padding: padding)
        if let bias { return try y + bias }
        return y
    }
}
