import CMLX

// Shape manipulation and indexing.

extension Tensor {
    @inline(__always)
    func withInt32<R>(_ values: [Int], _ body: (UnsafePointer<Int32>?, Int32) throws -> R) rethrows -> R {
        let v = values.map(Int32.init)
        return try v.withUnsafeBufferPointer { try body($0.baseAddress, Int32(v.count)) }
    }

    /// One dimension may be -1 (inferred).
    public func reshaped(_ shape: [Int]) throws -> Tensor {
        try withInt32(shape) { try Tensor.wrap(cmlx_reshape(raw, $0, $1), "reshape \(self.shape) -> \(shape)") }
    }
    /// Reverses the axes when `axes` is empty.
    public func transposed(_ axes: [Int] = []) throws -> Tensor {
        try withInt32(axes) { try Tensor.wrap(cmlx_transpose(raw, $0, $1), "transpose \(shape) by \(axes)") }
    }
    /// Swaps the last two axes (`[..., M, N] -> [..., N, M]`).
    public var T: Tensor {
        get throws {
            let n = ndim
            guard n >= 2 else { return self }
            var axes = Array(0..<n)
            axes.swapAt(n - 1, n - 2)
            return try transposed(axes)
        }
    }
    public func broadcast(to shape: [Int]) throws -> Tensor {
        try withInt32(shape) { try Tensor.wrap(cmlx_broadcast_to(raw, $0, $1), "broadcast \(self.shape) -> \(shape)") }
    }
    public func expandedDims(_ axes: [Int]) throws -> Tensor {
        try withInt32(axes) { try Tensor.wrap(cmlx_expand_dims(raw, $0, $1), "expandDims") }
    }
    public func expandedDims(axis: Int) throws -> Tensor { try expandedDims([axis]) }
    /// Removes all size-1 axes when `axes` is empty.
    public func squeezed(_ axes: [Int] = []) throws -> Tensor {
        try withInt32(axes) { try Tensor.wrap(cmlx_squeeze(raw, $0, $1), "squeeze") }
    }
    public func flattened() throws -> Tensor { try reshaped([-1]) }

    /// Elements `start ..< stop` by `strides` along each axis (all axes given).
    public func slice(start: [Int], stop: [Int], strides: [Int]? = nil) throws -> Tensor {
        let n = start.count
        guard stop.count == n, (strides?.count ?? n) == n, n == ndim else {
            throw TensorError.shapeMismatch("slice of a \(ndim)-D tensor needs \(ndim) starts/stops, got \(start.count)/\(stop.count)")
        }
        let st = (strides ?? Array(repeating: 1, count: n)).map(Int32.init)
        let a = start.map(Int32.init), b = stop.map(Int32.init)
        return try Tensor.wrap(cmlx_slice(raw, a, b, st, Int32(n)), "slice")
    }
    /// Elements `range` along one axis.
    public func slice(axis: Int, _ range: Range<Int>) throws -> Tensor {
        let s = shape
        let ax = axis < 0 ? s.count + axis : axis
        guard ax >= 0, ax < s.count, range.lowerBound >= 0, range.upperBound <= s[ax] else {
            throw TensorError.shapeMismatch("slice \(range) on axis \(axis) of shape \(s)")
        }
        var start = Array(repeating: 0, count: s.count), stop = s
        start[ax] = range.lowerBound
        stop[ax] = range.upperBound
        return try slice(start: start, stop: stop)
    }
    /// A copy of self with `update` written into the box `start ..< stop`.
    public func sliceUpdate(_ update: Tensor, start: [Int], stop: [Int], strides: [Int]? = nil) throws -> Tensor {
        let n = start.count
        let st = (strides ?? Array(repeating: 1, count: n)).map(Int32.init)
        return try Tensor.wrap(cmlx_slice_update(raw, update.raw, start.map(Int32.init), stop.map(Int32.init), st, Int32(n)), "sliceUpdate")
    }
    /// Gathers `indices` (integer tensor) along `axis`.
    public func take(_ indices: Tensor, axis: Int) throws -> Tensor {
        try Tensor.wrap(cmlx_take(raw, indices.raw, Int32(axis)), "take")
    }
    public func takeAlongAxis(_ indices: Tensor, axis: Int) throws -> Tensor {
        try Tensor.wrap(cmlx_take_along_axis(raw, indices.raw, Int32(axis)), "takeAlongAxis")
    }
    public func putAlongAxis(_ indices: Tensor, values: Tensor, axis: Int) throws -> Tensor {
        try Tensor.wrap(cmlx_put_along_axis(raw, indices.raw, values.raw, Int32(axis)), "putAlongAxis")
    }
    /// Constant padding: `widths[i] = (before, after)` for each axis.
    public func padded(_ widths: [(Int, Int)], value: Double = 0) throws -> Tensor {
        guard widths.count == ndim else {
            throw TensorError.shapeMismatch("pad needs \(ndim) widths, got \(widths.count)")
        }
        let lo = widths.map { Int32($0.0) }, hi = widths.map { Int32($0.1) }
        return try Tensor.wrap(cmlx_pad(raw, lo, hi, Int32(ndim), value), "pad")
    }
    public func tril(_ k: Int = 0) throws -> Tensor { try Tensor.wrap(cmlx_tril(raw, Int32(k)), "tril") }
    public func triu(_ k: Int = 0) throws -> Tensor { try Tensor.wrap(cmlx_triu(raw, Int32(k)), "triu") }

    /// Splits into `parts` equal pieces along `axis`.
    public func split(parts: Int, axis: Int = 0) throws -> [Tensor] {
        let vec = TensorList()
        try Tensor.status(cmlx_split_equal(raw, Int32(parts), Int32(axis), vec.raw), "split")
        return vec.tensors
    }
    /// Splits before each of `indices` along `axis`.
    public func split(at indices: [Int], axis: Int = 0) throws -> [Tensor] {
        let vec = TensorList()
        try withInt32(indices) { try Tensor.status(cmlx_split_at(raw, $0, $1, Int32(axis), vec.raw), "split") }
        return vec.tensors
    }
}

public func concatenated(_ tensors: [Tensor], axis: Int = 0) throws -> Tensor {
    var handles = tensors.map { Optional($0.raw) }
    let result = try Tensor.wrap(cmlx_concatenate(&handles, Int32(handles.count), Int32(axis)), "concatenate")
    withExtendedLifetime(tensors) {}
    return result
}

public func stacked(_ tensors: [Tensor], axis: Int = 0) throws -> Tensor {
    var handles = tensors.map { Optional($0.raw) }
    let result = try Tensor.wrap(cmlx_stack(&handles, Int32(handles.count), Int32(axis)), "stack")
    withExtendedLifetime(tensors) {}
    return result
}

/// A CMLX array list (used to pass many tensors across the C boundary).
final class TensorList {
    let raw: OpaquePointer
    init() { raw = cmlx_vec_new() }
    init(_ tensors: [Tensor]) {
        raw = cmlx_vec_new()
        for t in tensors { cmlx_vec_push(raw, t.raw) }
    }
    /// Borrows a list owned by CMLX (inside a callback): not freed here.
    init(borrowing raw: OpaquePointer) { self.raw = raw; owned = false }
    private var owned = true
    deinit { if owned { cmlx_vec_free(raw) } }

    var count: Int { Int(cmlx_vec_size(raw)) }
    var tensors: [Tensor] {
        (0..<count).map { Tensor(owning: cmlx_vec_get(raw, Int32($0))!) }
    }
    func append(_ t: Tensor) { cmlx_vec_push(raw, t.raw) }
}
