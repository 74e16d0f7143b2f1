import Foundation
import Yams

/// Who may write episodes to a learner and read its weights. Every RPC carries the actor's
/// token as gRPC metadata (`authorization: Bearer <token>`; registration may also carry it in
/// its body), checked against the actor's own token if it has one, else the shared token.
/// With per-actor tokens, an actor missing from the table is refused, so removing it revokes
/// it: its next upload, heartbeat or weight download fails with UNAUTHENTICATED.
public struct FleetCredentials: Sendable, Equatable {
    /// One token for every actor (nil: none).
    public var sharedToken: String?
    /// Actor id → that actor's own token.
    public var actorTokens: [String: String]

    public init(sharedToken: String? = nil, actorTokens: [String: String] = [:]) {
        self.sharedToken = sharedToken
        self.actorTokens = actorTokens
    }

    /// No token needed at all.
    public var isOpen: Bool { sharedToken == nil && actorTokens.isEmpty }

    public func allows(actor: String, token: String?) -> Bool {
        if isOpen { return true }
        guard let token else { return false }
        if let own = actorTokens[actor] { return Self.constantTimeEqual(own, token) }
        if let shared = sharedToken { return Self.constantTimeEqual(shared, token) }
        return false
    }

    /// Compares without an early exit, so response timing does not leak a token's prefix.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }

    public enum LoadError: Error, CustomStringConvertible {
        case notAMap(URL)
        case emptyToken(actor: String)

        public var description: String {
            switch self {
            case .notAMap(let url): "\(url.path): expected a YAML map of actor id → token"
            case .emptyToken(let actor): "actor \(actor) has an empty token"
            }
        }
    }

    /// Reads a YAML (or JSON) map `actor-id: token`. Errors never include the tokens.
    public static func actorTokens(from url: URL) throws -> [String: String] {
        let text = try String(contentsOf: url, encoding: .utf8)
        guard let map = try Yams.load(yaml: text) as? [String: Any] else { throw LoadError.notAMap(url) }
        var tokens: [String: String] = [:]
        for (actor, value) in map {
            let token = "\(value)"
            guard !token.isEmpty else { throw LoadError.emptyToken(actor: actor) }
            tokens[actor] = token
        }
        return tokens
    }
}
