import CMLX

/// Owns one MLX array handle and frees it when the last `Tensor` copy goes away.
final class TensorHandle: @unchecked Sendable {
    let raw: OpaquePointer
    init(_ raw: OpaquePointer) { self.raw = raw }
    deinit { cmlx_free(raw) }
}

/// An n-dimensional array computed lazily by MLX.
///
/// `Tensor` has value semantics: MLX arrays are immutable, every operation returns a new
/// tensor, and the underlying buffer is freed deterministically when the last copy dies.
/// Nothing is computed until `eval` (or a read such as `toArray`) asks for it.
public struct Tensor: @unchecked Sendable {
    let handle: TensorHandle
    var raw: OpaquePointer { handle.raw }

    /// Takes ownership of a handle returned by CMLX.
    init(owning raw: OpaquePointer) { handle = TensorHandle(raw) }

    // MARK: creation

    /// A tensor holding `values` with `shape` (row-major). Throws if the counts differ.
    public init<T: TensorScalar>(_ values: [T], shape: [Int]) throws {
        let count = shape.reduce(1, *)
        guard count == values.count else {
            throw TensorError.shapeMismatch("\(values.count) values cannot fill shape \(shape)")
        }
        let dims = shape.map(Int32.init)
        let made = values.withUnsafeBytes { bytes in
            dims.withUnsafeBufferPointer { cmlx_from_data(bytes.baseAddress, $0.baseAddress, Int32(dims.count), T.dtype.rawValue) }
        }
        self = try Tensor.wrap(made, "init(values:shape:)")
    }

    /// A 1-D tensor.
    public init<T: TensorScalar>(_ values: [T]) {
        // A 1-D shape always matches its values.
        self = try! Tensor(values, shape: [values.count])
    }

    /// A 0-D tensor.
    public init(_ value: Float) { self = try! Tensor([value], shape: []) }

    /// A scalar of the given dtype (for mixing constants into expressions).
    public init(scalar value: Double, dtype: DType) {
        self = try! Tensor.full([], value: value, dtype: dtype)
    }

    public static func full(_ shape: [Int], value: Double, dtype: DType = .float32) throws -> Tensor {
        let dims = shape.map(Int32.init)
        return try wrap(dims.withUnsafeBufferPointer { cmlx_full($0.baseAddress, Int32(dims.count), value, dtype.rawValue) }, "full")
    }
    public static func zeros(_ shape: [Int], dtype: DType = .float32) throws -> Tensor {
        try full(shape, value: 0, dtype: dtype)
    }
    public static func ones(_ shape: [Int], dtype: DType = .float32) throws -> Tensor {
        try full(shape, value: 1, dtype: dtype)
    }
    public static func arange(_ start: Double, _ stop: Double, step: Double = 1, dtype: DType = .float32) throws -> Tensor {
        try wrap(cmlx_arange(start, stop, step, dtype.rawValue), "arange")
    }
    public static func eye(_ n: Int, dtype: DType = .float32) throws -> Tensor {
        try wrap(cmlx_eye(Int32(n), Int32(n), 0, dtype.rawValue), "eye")
    }

    /// Wraps a CMLX result, turning NULL into a thrown `TensorError` with MLX's message.
    @inline(__always)
    static func wrap(_ result: OpaquePointer?, _ op: String) throws -> Tensor {
        guard let result else {
            throw TensorError.mlx(op: op, message: String(cString: cmlx_last_error()))
        }
        return Tensor(owning: result)
    }

    @inline(__always)
    static func status(_ code: Int32, _ op: String) throws {
        if code != 0 { throw TensorError.mlx(op: op, message: String(cString: cmlx_last_error())) }
    }

    // MARK: properties

    public var ndim: Int { Int(cmlx_ndim(raw)) }
    /// Dimensions, outermost first.
    public var shape: [Int] {
        var dims = [Int32](repeating: 0, count: 16)
        let n = Int(cmlx_shape(raw, &dims, 16))
        if n > 16 {
            dims = [Int32](repeating: 0, count: n)
            _ = cmlx_shape(raw, &dims, Int32(n))
        }
        return dims.prefix(n).map(Int.init)
    }
    public var dtype: DType { DType(rawValue: cmlx_dtype_of(raw))! }
    public var count: Int { Int(cmlx_size(raw)) }
    public var nbytes: Int { count * dtype.size }

    /// Size of one axis (negative axes count from the end).
    public func dim(_ axis: Int) -> Int {
        let s = shape
        return s[axis < 0 ? s.count + axis : axis]
    }

    // MARK: evaluation and readback

    /// Computes this tensor now.
    public func eval() throws { try TensorKit.eval([self]) }

    /// The contents as a flat row-major Swift array (evaluates). `T` must match `dtype`.
    public func toArray<T: TensorScalar>(_ type: T.Type = T.self) throws -> [T] {
        let source = dtype == T.dtype ? self : try astype(T.dtype)
        let n = source.count
        var out = [T](unsafeUninitializedCapacity: n) { _, initialized in initialized = n }
        try out.withUnsafeMutableBytes { bytes in
            try Tensor.status(cmlx_to_buffer(source.raw, bytes.baseAddress, bytes.count), "toArray")
        }
        return out
    }

    /// Raw bytes in the tensor's own dtype, row-major (evaluates).
    public func bytes() throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: nbytes)
        try out.withUnsafeMutableBytes { b in
            try Tensor.status(cmlx_to_buffer(raw, b.baseAddress, b.count), "bytes")
        }
        return out
    }

    /// The single element as a Float (evaluates). Throws if there is not exactly one element.
    public func item() throws -> Float { Float(try itemDouble()) }
    public func itemDouble() throws -> Double {
        var value = 0.0
        try Tensor.status(cmlx_item(raw, &value), "item")
        return value
    }
}

/// Evaluates several tensors in one pass (one graph walk: batch work into one eval per step).
public func eval(_ tensors: [Tensor]) throws {
    var handles = tensors.map { Optional($0.raw) }
    try Tensor.status(cmlx_eval(&handles, Int32(handles.count)), "eval")
    withExtendedLifetime(tensors) {}
}

/// Starts evaluating in the background; a later read or `eval` waits for it.
public func asyncEval(_ tensors: [Tensor]) throws {
    var handles = tensors.map { Optional($0.raw) }
    try Tensor.status(cmlx_async_eval(&handles, Int32(handles.count)), "asyncEval")
    withExtendedLifetime(tensors) {}
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        guard let cString = cmlx_describe(raw) else {
            return "Tensor(\(shape), \(dtype), <error: \(String(cString: cmlx_last_error()))>)"
        }
        defer { cmlx_free_string(cString) }
        return String(cString: cString)
    }
}

/// Bytes held by MLX right now and at peak (for benchmarks and memory checks).
public enum TensorMemory {
    public static var active: Int { Int(cmlx_active_memory()) }
    public static var peak: Int { Int(cmlx_peak_memory()) }
    public static func clearCache() { cmlx_clear_cache() }
    public static var mlxVersion: String { String(cString: cmlx_version()) }
}
