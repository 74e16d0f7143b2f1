import GRPCCore

/// Why the learner refused an upload. Each case maps to one gRPC status and one metrics
/// counter (`reason`), so operators see what actors get wrong.
public enum IngestError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The stream did not follow header → chunks → end.
    case protocolViolation(String)
    case badHeader(String)
    case unknownEmbodiment(String)
    case unknownTask(embodiment: String, task: String)
    /// A step or chunk has the wrong count of values, frames or bytes.
    case shape(String)
    /// NaN or infinity in a numeric field.
    case nonFinite(String)
    /// A value outside its allowed set (e.g. an unspecified step source).
    case badValue(String)
    /// A message or episode above the configured limits.
    case tooLarge(String)
    /// The actor never registered (or the learner restarted since): register again.
    case unregisteredActor(String)
    case badToken

    /// Short stable key for counters.
    public var reason: String {
        switch self {
        case .protocolViolation: "protocol"
        case .badHeader: "bad_header"
        case .unknownEmbodiment: "unknown_embodiment"
        case .unknownTask: "unknown_task"
        case .shape: "shape"
        case .nonFinite: "non_finite"
        case .badValue: "bad_value"
        case .tooLarge: "too_large"
        case .unregisteredActor: "unregistered_actor"
        case .badToken: "bad_token"
        }
    }

    public var code: RPCError.Code {
        switch self {
        case .protocolViolation: .failedPrecondition
        case .badHeader, .unknownEmbodiment, .unknownTask, .shape, .nonFinite, .badValue: .invalidArgument
        case .tooLarge: .resourceExhausted
        case .unregisteredActor, .badToken: .unauthenticated
        }
    }

    public var description: String {
        switch self {
        case .protocolViolation(let m): "protocol violation: \(m)"
        case .badHeader(let m): "bad episode header: \(m)"
        case .unknownEmbodiment(let e): "unknown embodiment \(e)"
        case .unknownTask(let e, let t): "task \(t) is not served for embodiment \(e)"
        case .shape(let m): "wrong shape: \(m)"
        case .nonFinite(let m): "non-finite value: \(m)"
        case .badValue(let m): "bad value: \(m)"
        case .tooLarge(let m): "too large: \(m)"
        case .unregisteredActor(let a): "actor \(a) is not registered; call RegisterActor first"
        case .badToken: "bad auth token"
        }
    }

    public var rpcError: RPCError { RPCError(code: code, message: "[\(reason)] \(description)") }
}
