import Foundation
import GRPCCore
import RobotData
import Testing
@testable import Fleet

/// Per-actor tokens on every call, and revocation: a robot without its own token can neither
/// upload nor download weights, and one removed from the table is cut off mid-stream.
@Suite(.stopsLearners, .timeLimit(.minutes(2)))
struct FleetAuthTests {
    static func bearer(_ token: String) -> Metadata { ["authorization": "Bearer \(token)"] }

    static func registration(_ actor: String) -> Swiftvla_Fleet_V1_RegisterActorRequest {
        var r = Swiftvla_Fleet_V1_RegisterActorRequest()
        r.actorID = actor
        r.embodiment = "arm7"
        r.tasks = ["reach"]
        return r
    }

    /// The gRPC status code `body` fails with (nil when it succeeds).
    static func code(_ body: () async throws -> Void) async -> RPCError.Code? {
        do { try await body(); return nil } catch let error as RPCError { return error.code } catch { return .unknown }
    }

    static func upload(_ client: FleetClient, actor: String, metadata: Metadata, seed: Int) async throws -> Swiftvla_Fleet_V1_UploadEpisodeAck {
        let messages = EpisodeMessages.encode(try syntheticEpisode(seed: seed), actorID: actor)
        return try await client.uploadEpisode(metadata: metadata) { writer in try await writer.write(contentsOf: messages) }
    }

    static func firstVersion(_ client: FleetClient, actor: String, metadata: Metadata) async throws -> Int {
        var request = Swiftvla_Fleet_V1_WatchPolicyRequest()
        request.actorID = actor
        return try await client.watchPolicy(request, metadata: metadata) { response in
            var assembler = WeightAssembler()
            for try await update in response.messages {
                if let w = try assembler.consume(update) { return w.version }
            }
            return -1
        }
    }

    @Test func everyCallNeedsTheActorsOwnTokenAndRevocationCutsItOff() async throws {
        let (learner, _) = try makeLearner("auth") {
            $0.credentials = FleetCredentials(actorTokens: ["robot-1": "t1-secret", "robot-2": "t2-secret"])
            $0.publishEveryTrainSteps = 1_000_000   // versions only when the test publishes
        }
        let port = try await learner.start()
        try await withFleetClient(port: port) { client in
            // Registration: own token (metadata or body) only.
            _ = try await client.registerActor(Self.registration("robot-1"), metadata: Self.bearer("t1-secret"))
            var body = Self.registration("robot-2")
            body.authToken = "t2-secret"
            _ = try await client.registerActor(body)
            #expect(await Self.code { _ = try await client.registerActor(Self.registration("robot-2"), metadata: Self.bearer("t1-secret")) } == .unauthenticated)
            #expect(await Self.code { _ = try await client.registerActor(Self.registration("robot-3"), metadata: Self.bearer("t1-secret")) } == .unauthenticated)

            // Uploads: robot-1's id without its token is refused (ids are not secrets).
            #expect(try await Self.upload(client, actor: "robot-1", metadata: Self.bearer("t1-secret"), seed: 1).duplicate == false)
            #expect(await Self.code { _ = try await Self.upload(client, actor: "robot-1", metadata: [:], seed: 2) } == .unauthenticated)
            #expect(await Self.code { _ = try await Self.upload(client, actor: "robot-1", metadata: Self.bearer("t2-secret"), seed: 3) } == .unauthenticated)
            // Weights and heartbeats likewise.
            #expect(try await Self.firstVersion(client, actor: "robot-1", metadata: Self.bearer("t1-secret")) == 1)
            #expect(await Self.code { _ = try await Self.firstVersion(client, actor: "robot-1", metadata: [:]) } == .unauthenticated)
            var beat = Swiftvla_Fleet_V1_HeartbeatRequest()
            beat.actorID = "robot-1"
            #expect(await Self.code { _ = try await client.heartbeat(beat, metadata: Self.bearer("nope")) } == .unauthenticated)
            _ = try await client.heartbeat(beat, metadata: Self.bearer("t1-secret"))

            // robot-1 watches; then it is revoked and the next version is refused, not sent.
            let watching = Task {
                var request = Swiftvla_Fleet_V1_WatchPolicyRequest()
                request.actorID = "robot-1"
                request.knownVersion = 1
                return await Self.code {
                    try await client.watchPolicy(request, metadata: Self.bearer("t1-secret")) { response in
                        for try await update in response.messages {
                            if case .manifest(let m) = update.kind { Issue.record("revoked actor received version \(m.version)") }
                        }
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            let refusedBefore = learner.metrics.snapshot().rejections["bad_token"] ?? 0
            // 2 registrations, 2 uploads, 1 watch, 1 heartbeat.
            #expect(refusedBefore == 6)
            learner.updateCredentials(FleetCredentials(actorTokens: ["robot-2": "t2-secret"]))
            try await learner.publish()
            #expect(await watching.value == .unauthenticated)
            // The open stream is refused (and so is the earlier, finished watch if the server
            // has not yet seen its cancellation).
            let refusedStreams = (learner.metrics.snapshot().rejections["bad_token"] ?? 0) - refusedBefore
            #expect((1...2).contains(refusedStreams))
            #expect(await Self.code { _ = try await Self.upload(client, actor: "robot-1", metadata: Self.bearer("t1-secret"), seed: 4) } == .unauthenticated)
            #expect(await Self.code { _ = try await client.heartbeat(beat, metadata: Self.bearer("t1-secret")) } == .unauthenticated)
            #expect(await Self.code { _ = try await client.registerActor(Self.registration("robot-1"), metadata: Self.bearer("t1-secret")) } == .unauthenticated)
            #expect(learner.metrics.snapshot().rejections["bad_token"] == refusedBefore + refusedStreams + 3)
            // robot-2 is unaffected.
            #expect(try await Self.upload(client, actor: "robot-2", metadata: Self.bearer("t2-secret"), seed: 5).duplicate == false)
        }
        let m = learner.metrics.snapshot()
        #expect(m.episodesAccepted == 2 && learner.store.count == 2 && m.actorsRegistered == 1)
        #expect(learner.actorStatuses().map(\.id) == ["robot-2"])
    }

    @Test func tokenFilesLoadAndCompareWithoutLeakingTheToken() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tokens-\(UUID().uuidString).yaml")
        try "robot-1: abc123\nrobot-2: \"0042\"\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let tokens = try FleetCredentials.actorTokens(from: file)
        #expect(tokens == ["robot-1": "abc123", "robot-2": "0042"])
        let c = FleetCredentials(sharedToken: "shared", actorTokens: tokens)
        #expect(c.allows(actor: "robot-1", token: "abc123") && !c.allows(actor: "robot-1", token: "shared"))
        #expect(c.allows(actor: "robot-9", token: "shared") && !c.allows(actor: "robot-9", token: nil))
        #expect(!FleetCredentials.constantTimeEqual("abc", "abcd") && FleetCredentials.constantTimeEqual("", ""))
        try "robot-1: \"\"\n".write(to: file, atomically: true, encoding: .utf8)
        #expect { try FleetCredentials.actorTokens(from: file) } throws: { "\($0)" == "actor robot-1 has an empty token" }
    }
}
