import CMLX

/// Carries a Swift function through a C callback and keeps the error it threw.
final class CallbackContext {
    let body: ([Tensor]) throws -> [Tensor]
    var error: Error?
    init(_ body: @escaping ([Tensor]) throws -> [Tensor]) { self.body = body }

    /// Rethrows the Swift error when the callback failed, else MLX's own error.
    func rethrow(_ code: Int32, _ op: String) throws {
        guard code != 0 else { return }
        if let error {
            self.error = nil
            throw error
        }
        throw TensorError.mlx(op: op, message: String(cString: cmlx_last_error()))
    }
}

/// The C entry point MLX calls while tracing: runs the Swift body on the traced inputs.
let callbackTrampoline: cmlx_function = { context, inputs, outputs in
    let box = Unmanaged<CallbackContext>.fromOpaque(context!).takeUnretainedValue()
    do {
        let ins = TensorList(borrowing: inputs!).tensors
        let outs = try box.body(ins)
        let out = TensorList(borrowing: outputs!)
        for t in outs { out.append(t) }
        return 0
    } catch {
        box.error = error
        return 1
    }
}

/// Runs `f` with its value and the gradient of its first output (a scalar) with respect to
/// the inputs at `argnums`.
public func valueAndGrad(
    _ f: @escaping ([Tensor]) throws -> [Tensor], argnums: [Int] = [0]
) -> ([Tensor]) throws -> (values: [Tensor], grads: [Tensor]) {
    return { inputs in
        let context = CallbackContext(f)
        let ins = TensorList(inputs), values = TensorList(), grads = TensorList()
        let argnums32 = argnums.map(Int32.init)
        let code = withExtendedLifetime(context) {
            cmlx_value_and_grad(callbackTrampoline, Unmanaged.passUnretained(context).toOpaque(), ins.raw,
                                argnums32, Int32(argnums32.count), values.raw, grads.raw)
        }
        try context.rethrow(code, "valueAndGrad")
        return (values.tensors, grads.tensors)
    }
}

/// Gradient of a scalar function of one tensor.
public func grad(_ f: @escaping (Tensor) throws -> Tensor) -> (Tensor) throws -> Tensor {
    let vg = valueAndGrad({ [try f($0[0])] })
    return { x in try vg([x]).grads[0] }
}

/// Outputs of `f` at `primals` and the cotangents pulled back to the inputs.
public func vjp(
    _ f: @escaping ([Tensor]) throws -> [Tensor], primals: [Tensor], cotangents: [Tensor]
) throws -> (outputs: [Tensor], vjps: [Tensor]) {
    let context = CallbackContext(f)
    let p = TensorList(primals), c = TensorList(cotangents), outs = TensorList(), vjps = TensorList()
    let code = withExtendedLifetime(context) {
        cmlx_vjp(callbackTrampoline, Unmanaged.passUnretained(context).toOpaque(), p.raw, c.raw, outs.raw, vjps.raw)
    }
    try context.rethrow(code, "vjp")
    return (outs.tensors, vjps.tensors)
}

/// Outputs of `f` at `primals` and the tangents pushed forward to the outputs.
public func jvp(
    _ f: @escaping ([Tensor]) throws -> [Tensor], primals: [Tensor], tangents: [Tensor]
) throws -> (outputs: [Tensor], jvps: [Tensor]) {
    let context = CallbackContext(f)
    let p = TensorList(primals), t = TensorList(tangents), outs = TensorList(), jvps = TensorList()
    let code = withExtendedLifetime(context) {
        cmlx_jvp(callbackTrampoline, Unmanaged.passUnretained(context).toOpaque(), p.raw, t.raw, outs.raw, jvps.raw)
    }
    try context.rethrow(code, "jvp")
    return (outs.tensors, jvps.tensors)
}

/// A function traced once per input shape and replayed as one fused MLX graph.
///
/// The body must be pure: it sees placeholder tensors while tracing, and anything it reads
/// besides its inputs is frozen into the trace.
public final class CompiledFunction: @unchecked Sendable {
    private let context: CallbackContext
    private let handle: OpaquePointer

    public init(shapeless: Bool = false, _ body: @escaping ([Tensor]) throws -> [Tensor]) throws {
        context = CallbackContext(body)
        guard let h = cmlx_compile(callbackTrampoline, Unmanaged.passUnretained(context).toOpaque(), shapeless ? 1 : 0) else {
            throw TensorError.mlx(op: "compile", message: String(cString: cmlx_last_error()))
        }
        handle = h
    }
    deinit { cmlx_compiled_free(handle) }

    public func callAsFunction(_ inputs: [Tensor]) throws -> [Tensor] {
        let ins = TensorList(inputs), outs = TensorList()
        try context.rethrow(cmlx_compiled_call(handle, ins.raw, outs.raw), "compiled call")
        return outs.tensors
    }

    /// Turns compilation off (or back on) globally, e.g. to compare against eager execution.
    public static func setEnabled(_ enabled: Bool) { cmlx_set_compile_enabled(enabled ? 1 : 0) }
}
