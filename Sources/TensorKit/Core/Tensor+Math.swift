import CMLX

// Elementwise math, comparisons and reductions. Every op is lazy and throws a
// `TensorError` (with MLX's message) on bad shapes or dtypes instead of crashing.

extension Tensor {
    @inline(__always)
    func unary(_ op: cmlx_unary_op, _ name: String) throws -> Tensor {
        try Tensor.wrap(cmlx_unary(Int32(op.rawValue), raw), name)
    }
    @inline(__always)
    func binary(_ op: cmlx_binary_op, _ other: Tensor, _ name: String) throws -> Tensor {
        try Tensor.wrap(cmlx_binary(Int32(op.rawValue), raw, other.raw), name)
    }
    /// A scalar constant in this tensor's dtype (float32 for non-float tensors only when asked).
    @inline(__always)
    func constant(_ value: Double) -> Tensor { Tensor(scalar: value, dtype: dtype) }

    // MARK: unary

    public func exp() throws -> Tensor { try FastKernels.active ? fastUnary(CMLX_FAST_EXP, "exp") : unary(CMLX_EXP, "exp") }
    public func log() throws -> Tensor { try unary(CMLX_LOG, "log") }
    public func sqrt() throws -> Tensor { try unary(CMLX_SQRT, "sqrt") }
    public func rsqrt() throws -> Tensor { try unary(CMLX_RSQRT, "rsqrt") }
    public func sin() throws -> Tensor { try unary(CMLX_SIN, "sin") }
    public func cos() throws -> Tensor { try unary(CMLX_COS, "cos") }
    public func tanh() throws -> Tensor { try FastKernels.active ? fastUnary(CMLX_FAST_TANH, "tanh") : unary(CMLX_TANH, "tanh") }
    public func sigmoid() throws -> Tensor { try FastKernels.active ? fastUnary(CMLX_FAST_SIGMOID, "sigmoid") : unary(CMLX_SIGMOID, "sigmoid") }
    public func abs() throws -> Tensor { try unary(CMLX_ABS, "abs") }
    public func square() throws -> Tensor { try unary(CMLX_SQUARE, "square") }
    public func floor() throws -> Tensor { try unary(CMLX_FLOOR, "floor") }
    public func ceil() throws -> Tensor { try unary(CMLX_CEIL, "ceil") }
    public func rounded() throws -> Tensor { try unary(CMLX_ROUND, "round") }
    public func sign() throws -> Tensor { try unary(CMLX_SIGN, "sign") }
    public func erf() throws -> Tensor { try FastKernels.active ? fastUnary(CMLX_FAST_ERF, "erf") : unary(CMLX_ERF, "erf") }
    public func erfinv() throws -> Tensor { try unary(CMLX_ERFINV, "erfinv") }
    public func log1p() throws -> Tensor { try unary(CMLX_LOG1P, "log1p") }
    public func expm1() throws -> Tensor { try unary(CMLX_EXPM1, "expm1") }
    public func reciprocal() throws -> Tensor { try unary(CMLX_RECIPROCAL, "reciprocal") }
    public func arctan() throws -> Tensor { try unary(CMLX_ARCTAN, "arctan") }
    public func arcsin() throws -> Tensor { try unary(CMLX_ARCSIN, "arcsin") }
    public func arccos() throws -> Tensor { try unary(CMLX_ARCCOS, "arccos") }
    public func logicalNot() throws -> Tensor { try unary(CMLX_LOGICAL_NOT, "logicalNot") }
    public func isNaN() throws -> Tensor { try unary(CMLX_ISNAN, "isNaN") }
    public func isInf() throws -> Tensor { try unary(CMLX_ISINF, "isInf") }
    /// The same values with no gradient flowing back through them.
    public func stopGradient() throws -> Tensor { try unary(CMLX_STOP_GRADIENT, "stopGradient") }

    public func astype(_ dtype: DType) throws -> Tensor {
        try Tensor.wrap(cmlx_astype(raw, dtype.rawValue), "astype(\(dtype))")
    }

    public func clip(min lower: Tensor? = nil, max upper: Tensor? = nil) throws -> Tensor {
        try Tensor.wrap(cmlx_clip(raw, lower?.raw, upper?.raw), "clip")
    }
    public func clip(min lower: Double, max upper: Double) throws -> Tensor {
        try clip(min: constant(lower), max: constant(upper))
    }

    // MARK: binary

    public func pow(_ e: Tensor) throws -> Tensor { try binary(CMLX_POWER, e, "pow") }
    public func pow(_ e: Double) throws -> Tensor { try binary(CMLX_POWER, constant(e), "pow") }
    public func maximum(_ o: Tensor) throws -> Tensor { try binary(CMLX_MAXIMUM, o, "maximum") }
    public func minimum(_ o: Tensor) throws -> Tensor { try binary(CMLX_MINIMUM, o, "minimum") }
    public func maximum(_ o: Double) throws -> Tensor { try binary(CMLX_MAXIMUM, constant(o), "maximum") }
    public func minimum(_ o: Double) throws -> Tensor { try binary(CMLX_MINIMUM, constant(o), "minimum") }
    public func equal(_ o: Tensor) throws -> Tensor { try binary(CMLX_EQUAL, o, "equal") }
    public func notEqual(_ o: Tensor) throws -> Tensor { try binary(CMLX_NOT_EQUAL, o, "notEqual") }
    public func less(_ o: Tensor) throws -> Tensor { try binary(CMLX_LESS, o, "less") }
    public func lessEqual(_ o: Tensor) throws -> Tensor { try binary(CMLX_LESS_EQUAL, o, "lessEqual") }
    public func greater(_ o: Tensor) throws -> Tensor { try binary(CMLX_GREATER, o, "greater") }
    public func greaterEqual(_ o: Tensor) throws -> Tensor { try binary(CMLX_GREATER_EQUAL, o, "greaterEqual") }
    public func less(_ o: Double) throws -> Tensor { try less(constant(o)) }
    public func greater(_ o: Double) throws -> Tensor { try greater(constant(o)) }
    public func logicalAnd(_ o: Tensor) throws -> Tensor { try binary(CMLX_LOGICAL_AND, o, "logicalAnd") }
    public func logicalOr(_ o: Tensor) throws -> Tensor { try binary(CMLX_LOGICAL_OR, o, "logicalOr") }
    public func floorDivide(_ o: Tensor) throws -> Tensor { try binary(CMLX_FLOOR_DIVIDE, o, "floorDivide") }
    public func remainder(_ o: Tensor) throws -> Tensor { try binary(CMLX_REMAINDER, o, "remainder") }
    public func arctan2(_ o: Tensor) throws -> Tensor { try binary(CMLX_ARCTAN2, o, "arctan2") }

    // MARK: operators (broadcasting; scalars take the tensor's dtype)

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CMLX_ADD, b, "add") }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CMLX_SUBTRACT, b, "subtract") }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CMLX_MULTIPLY, b, "multiply") }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CMLX_DIVIDE, b, "divide") }
    public static func + (a: Tensor, b: Double) throws -> Tensor { try a.binary(CMLX_ADD, a.constant(b), "add") }
    public static func - (a: Tensor, b: Double) throws -> Tensor { try a.binary(CMLX_SUBTRACT, a.constant(b), "subtract") }
    public static func * (a: Tensor, b: Double) throws -> Tensor { try a.binary(CMLX_MULTIPLY, a.constant(b), "multiply") }
    public static func / (a: Tensor, b: Double) throws -> Tensor { try a.binary(CMLX_DIVIDE, a.constant(b), "divide") }
    public static func + (a: Double, b: Tensor) throws -> Tensor { try b.constant(a).binary(CMLX_ADD, b, "add") }
    public static func - (a: Double, b: Tensor) throws -> Tensor { try b.constant(a).binary(CMLX_SUBTRACT, b, "subtract") }
    public static func * (a: Double, b: Tensor) throws -> Tensor { try b.constant(a).binary(CMLX_MULTIPLY, b, "multiply") }
    public static func / (a: Double, b: Tensor) throws -> Tensor { try b.constant(a).binary(CMLX_DIVIDE, b, "divide") }
    public static prefix func - (a: Tensor) throws -> Tensor { try a.unary(CMLX_NEG, "negative") }

    /// Matrix product with NumPy broadcasting of batch axes: `[..., M, K] @ [..., K, N]`.
    public func matmul(_ other: Tensor) throws -> Tensor {
        try Tensor.wrap(cmlx_matmul(raw, other.raw), "matmul \(shape) @ \(other.shape)")
    }
    /// `beta * self + alpha * (a @ b)` in one op.
    public func addmm(_ a: Tensor, _ b: Tensor, alpha: Float = 1, beta: Float = 1) throws -> Tensor {
        try Tensor.wrap(cmlx_addmm(raw, a.raw, b.raw, alpha, beta), "addmm")
    }

    // MARK: reductions (axes nil = all axes)

    @inline(__always)
    func reduce(_ op: cmlx_reduce_op, _ axes: [Int]?, _ keepDims: Bool, _ name: String) throws -> Tensor {
        let ax = (axes ?? []).map(Int32.init)
        return try ax.withUnsafeBufferPointer {
            try Tensor.wrap(cmlx_reduce(Int32(op.rawValue), raw, $0.baseAddress, axes == nil ? -1 : Int32(ax.count), keepDims ? 1 : 0), name)
        }
    }
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor { try reduce(CMLX_SUM, axes, keepDims, "sum") }
    public func sum(axis: Int, keepDims: Bool = false) throws -> Tensor { try reduce(CMLX_SUM, [axis], keepDims, "sum") }
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor { try reduce(CMLX_MEAN, axes, keepDims, "mean") }
    public func mean(axis: Int, keepDims: Bool = false) throws -> Tensor { try reduce(CMLX_MEAN, [axis], keepDims, "mean") }
    public func max(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor { try reduce(CMLX_MAX, axes, keepDims, "max") }
    public func max(axis: Int, keepDims: Bool = false) throws -> Tensor { try reduce(CMLX_MAX, [axis], keepDims, "max") }
    public func min(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor { try reduce(CMLX_MIN, axes, keepDims, "min") }
    public func min(axis: Int, keepDims: Bool = false) throws -> Tensor { try reduce(CMLX_MIN, [axis], keepDims, "min") }
    public func prod(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor { try reduce(CMLX_PROD, axes, keepDims, "prod") }
    public func variance(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor { try reduce(CMLX_VAR, axes, keepDims, "variance") }
    public func logSumExp(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor {
        if let axes, axes.count == 1 { return try logSumExp(axis: axes[0], keepDims: keepDims) }
        return try reduce(CMLX_LOGSUMEXP, axes, keepDims, "logSumExp")
    }
    /// Fused kernel for float32 over the last axis when `FastKernels` are on.
    public func logSumExp(axis: Int, keepDims: Bool = false) throws -> Tensor {
        if takesFusedRows(axis: axis) {
            let r = try fusedRowOp(CMLX_FUSED_LOGSUMEXP, "logSumExp")
            return keepDims ? try r.expandedDims(axis: -1) : r
        }
        return try reduce(CMLX_LOGSUMEXP, [axis], keepDims, "logSumExp")
    }
    public func all(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor { try reduce(CMLX_ALL, axes, keepDims, "all") }
    public func any(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor { try reduce(CMLX_ANY, axes, keepDims, "any") }

    public func argmax(axis: Int, keepDims: Bool = false) throws -> Tensor {
        try Tensor.wrap(cmlx_argmax(raw, Int32(axis), keepDims ? 1 : 0), "argmax")
    }
    public func argmin(axis: Int, keepDims: Bool = false) throws -> Tensor {
        try Tensor.wrap(cmlx_argmin(raw, Int32(axis), keepDims ? 1 : 0), "argmin")
    }
    public func cumsum(axis: Int, reverse: Bool = false, inclusive: Bool = true) throws -> Tensor {
        try Tensor.wrap(cmlx_cumsum(raw, Int32(axis), reverse ? 1 : 0, inclusive ? 1 : 0), "cumsum")
    }
    public func sorted(axis: Int = -1) throws -> Tensor { try Tensor.wrap(cmlx_sort(raw, Int32(axis)), "sort") }
    public func argsort(axis: Int = -1) throws -> Tensor { try Tensor.wrap(cmlx_argsort(raw, Int32(axis)), "argsort") }
}

/// `condition ? a : b` elementwise, with broadcasting.
public func which(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
    try Tensor.wrap(cmlx_where(condition.raw, a.raw, b.raw), "where")
}
