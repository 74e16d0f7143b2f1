import Foundation
import Fleet
import HummingbirdWSClient
import Logging
import RobotData
import RobotSim
import TensorKit
import Testing
import TestSupport
import Training
import VLAModel
@testable import PolicyWebSocket

/// The WebSocket JSON endpoint answers like the gRPC one: the same chunk for the same seed,
/// bad frames answered with an error object (counted) while the connection keeps serving.
@Suite(.timeLimit(.minutes(3)))
struct PolicyWebSocketTests {
    static func fixture() throws -> (VLAPolicy, PolicyObservation) { try tinyPolicyFixture() }

    @Test func jsonOverWebSocketGivesTheInProcessChunkAndSurvivesBadFrames() async throws {
        let (policy, observation) = try Self.fixture()
        let reference = try TensorLock.run { try policy.actionChunk(observation, key: RandomKey(seed: 42)) }
        let policyServer = PolicyServer(policy: policy, checkpointStep: 7)
        try await policyServer.start()
        let server = PolicyWebSocketServer(policyServer: policyServer)
        let port = try await server.start()

        let good = try PolicyClient.request(observation, imageSize: 16, seed: 42).jsonString()
        var unknown = PolicyClient.request(observation, imageSize: 16, seed: 42)
        unknown.embodiment = "arm9"
        let frames = [good, "hello", try unknown.jsonString(), good]
        let replies = Locked([String]())
        try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/policy", logger: Logger(label: "test")) { inbound, outbound, _ in
            var messages = inbound.messages(maxSize: 1 << 24).makeAsyncIterator()
            if case .text(let info) = try await messages.next() { replies.withLock { $0.append(info) } }
            for frame in frames {
                try await outbound.write(.text(frame))
                if case .text(let reply) = try await messages.next() { replies.withLock { $0.append(reply) } }
            }
            try await outbound.close(.normalClosure, reason: nil)
        }
        await server.stop()
        let summary = policyServer.summary
        await policyServer.stop()

        let r = replies.current
        try #require(r.count == 5, "\(r)")
        let info = try Swiftvla_Fleet_V1_ServerInfo(jsonString: r[0])
        #expect(info.embodiments == ["arm7"] && info.imageSize == 16 && info.checkpointStep == 7)
        for i in [1, 4] {
            #expect(PolicyClient.chunk(try Swiftvla_Fleet_V1_PredictChunkResponse(jsonString: r[i])) == reference)
        }
        struct Failure: Decodable { struct Body: Decodable { var code: String; var message: String }; var error: Body }
        let notJSON = try JSONDecoder().decode(Failure.self, from: Data(r[2].utf8))
        let badEmbodiment = try JSONDecoder().decode(Failure.self, from: Data(r[3].utf8))
        #expect(notJSON.error.code == "invalid_argument" && badEmbodiment.error.code == "invalid_argument")
        #expect(badEmbodiment.error.message.contains("arm9"))
        #expect(server.malformedFrames.current == 1)
        #expect(summary.requests == 3 && summary.rejectedByReason == ["unknown_embodiment": 1])
    }

    /// `swiftvla_client.WebSocketPolicyClient` (Python, `websockets`) gets the in-process chunk.
    @Test func pythonWebSocketClientGetsTheInProcessChunk() async throws {
        let (policy, observation) = try Self.fixture()
        let reference = try TensorLock.run { try policy.actionChunk(observation, key: RandomKey(seed: 42)) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ws-observation-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try writeObservationFile(observation, imageSize: 16, seed: 42, to: file)
        let policyServer = PolicyServer(policy: policy)
        let grpcPort = try await policyServer.start()
        let server = PolicyWebSocketServer(policyServer: policyServer)
        let port = try await server.start()
        let script = ChildProcess.packageRoot.appendingPathComponent("clients/python/tests/predict_against_server.py")
        let result = try await ChildProcess.run(ChildProcess.python, [script.path, "--port", "\(grpcPort)", "--observation", file.path,
                                                                       "--websocket-port", "\(port)"], timeout: 120)
        await server.stop()
        await policyServer.stop()
        try #require(result.status == 0, "predict_against_server.py exited \(result.status) (run scripts/bootstrap for websockets)\n\(result.stderr)")
        struct Summary: Decodable {
            struct WebSocket: Decodable { var image_size: Int; var chunk: [[Double]]; var refused: String?; var repeatable: Bool }
            var websocket: WebSocket
        }
        let summary = try JSONDecoder().decode(Summary.self, from: Data(result.stdout.split(separator: "\n").last!.utf8))
        #expect(summary.websocket.chunk.map { $0.map(Float.init) } == reference)
        #expect(summary.websocket.image_size == 16 && summary.websocket.refused == "invalid_argument" && summary.websocket.repeatable)
    }
}
