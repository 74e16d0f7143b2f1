import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2

/// Where `vla serve --follow-learner` gets its policy versions: the learner it registers with
/// (as an actor that never uploads) and whose `WatchPolicy` stream it keeps open.
public struct FollowLearnerConfig: Sendable {
    public var host: String
    public var port: Int
    public var actorID: String
    /// The body registered with (the learner refuses bodies outside its catalog).
    public var embodiment: String
    /// Tasks registered for (empty: whatever the learner serves for the body).
    public var tasks: [String] = []
    public var authToken = ""
    /// Connect over TLS, trusting the certificates in this PEM file (nil: plaintext).
    public var tlsTrustRoots: String?
    public var acceptDeltaWeights = true
    /// Longest pause between reconnection attempts (seconds).
    public var maxBackoff = 5.0

    public init(host: String, port: Int, actorID: String, embodiment: String) {
        self.host = host
        self.port = port
        self.actorID = actorID
        self.embodiment = embodiment
    }
}

/// Streams a learner's published versions to `deliver` until cancelled: registers, watches,
/// and when the learner goes away (or refuses, or sends a damaged version) reconnects with
/// back-off. The caller keeps serving what it has meanwhile.
enum LearnerFollower {
    static func run(_ config: FollowLearnerConfig, knownVersion: @escaping @Sendable () -> Int,
                    deliver: @escaping @Sendable (PolicyWeights) -> Void, log: @escaping @Sendable (String) -> Void) async {
        let metadata: Metadata = config.authToken.isEmpty ? [:] : ["authorization": "Bearer \(config.authToken)"]
        var registration = Swiftvla_Fleet_V1_RegisterActorRequest()
        registration.actorID = config.actorID
        registration.embodiment = config.embodiment
        registration.tasks = config.tasks
        registration.authToken = config.authToken
        var delay = 0.1
        var failing = false
        while !Task.isCancelled {
            do {
                let transport = try ActorSession.transport(host: config.host, port: config.port, trustRoots: config.tlsTrustRoots)
                let registered = Locked(false)
                defer {
                    // Registered: the learner is back; start the back-off over.
                    if registered.current {
                        if failing { log("following \(config.host):\(config.port) again") }
                        failing = false
                        delay = 0.1
                    }
                }
                try await withGRPCClient(transport: transport) { grpc in
                    let client = Swiftvla_Fleet_V1_Fleet.Client(wrapping: grpc)
                    _ = try await client.registerActor(registration, metadata: metadata, options: ActorSession.options(timeout: 10))
                    registered.withLock { $0 = true }
                    var request = Swiftvla_Fleet_V1_WatchPolicyRequest()
                    request.actorID = config.actorID
                    // The stream's first version is whole: a fresh assembler holds no delta base.
                    request.knownVersion = Int64(knownVersion())
                    request.acceptDelta = config.acceptDeltaWeights
                    try await client.watchPolicy(request, metadata: metadata) { response in
                        var assembler = WeightAssembler()
                        for try await update in response.messages {
                            if let weights = try assembler.consume(update) { deliver(weights) }
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                if !failing { log("lost learner \(config.host):\(config.port) (\(error)); serving the current version, reconnecting") }
                failing = true
            }
            // Also after a stream that ended cleanly (the learner stopped): back off before re-registering.
            try? await Task.sleep(for: .seconds(delay))
            delay = min(delay * 2, config.maxBackoff)
        }
    }
}
