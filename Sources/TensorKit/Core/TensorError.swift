/// Errors raised by TensorKit. MLX failures carry MLX's own message.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    /// MLX rejected an operation (bad shapes, dtypes, arguments): `op` names the call.
    case mlx(op: String, message: String)
    /// A shape precondition checked on the Swift side failed.
    case shapeMismatch(String)
    /// A parameter key was not found in a module or checkpoint.
    case unknownParameter(String)
    /// A file could not be read or written.
    case io(String)
    /// A user callback inside a transform threw; the original error is rethrown instead
    /// where possible, this case carries its description otherwise.
    case callback(String)

    public var description: String {
        switch self {
        case .mlx(let op, let message): return "TensorError.mlx(\(op)): \(message)"
        case .shapeMismatch(let m): return "TensorError.shapeMismatch: \(m)"
        case .unknownParameter(let k): return "TensorError.unknownParameter: \(k)"
        case .io(let m): return "TensorError.io: \(m)"
        case .callback(let m): return "TensorError.callback: \(m)"
        }
    }
}
