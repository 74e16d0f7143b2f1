import Foundation
import Fleet
import HummingbirdWSClient
import Logging
import NIOCore
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
            struct Msgpack: Decodable { var image_size: Int; var chunk: [[Double]]; var dtype: String; var refused: String?; var repeatable: Bool }
            var websocket: WebSocket
            var msgpack: Msgpack
        }
        let summary = try JSONDecoder().decode(Summary.self, from: Data(result.stdout.split(separator: "\n").last!.utf8))
        #expect(summary.websocket.chunk.map { $0.map(Float.init) } == reference)
        #expect(summary.websocket.image_size == 16 && summary.websocket.refused == "invalid_argument" && summary.websocket.repeatable)
        // MessagePack (openpi's format, Python's msgpack): float32 arrays back, the same chunk.
        #expect(summary.msgpack.chunk.map { $0.map(Float.init) } == reference && summary.msgpack.dtype == "<f4")
        #expect(summary.msgpack.image_size == 16 && summary.msgpack.refused == "invalid_argument" && summary.msgpack.repeatable)
    }

    /// The MessagePack reply names the version that answered (`policy_version`), like the gRPC
    /// reply's field: 0 for the checkpoint's own weights, then v1 once the server follows a
    /// learner (which publishes the checkpoint as v1 at start).
    @Test func messagePackReplyNamesTheServedVersion() async throws {
        let (policy, observation) = try Self.fixture()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ws-version-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let checkpoint = root.appendingPathComponent("checkpoint")
        try policy.save(to: checkpoint, optimizer: nil, step: 0)
        let backend = try PostTrainingSetup().learnerBackend(checkpoint: checkpoint, offline: [], log: { _ in }).backend
        let learner = try FleetLearner(config: FleetLearnerConfig(storeDirectory: root.appendingPathComponent("store")), backend: backend)
        let learnerPort = try await learner.start()
        let policyServer = PolicyServer(policy: try VLAPolicy.load(from: checkpoint).policy)
        _ = try await policyServer.start()
        let server = PolicyWebSocketServer(policyServer: policyServer)
        let images = observation.cameras.mapValues { NumPyArray(dtype: "|u1", shape: [16, 16, 3], data: $0).messagePack }
        let request = MessagePack.map([
            (.string("embodiment"), .string("arm7")), (.string("prompt"), .string(observation.instruction)),
            (.string("state"), .array(observation.nativeState.map { .double(Double($0)) })),
            (.string("images"), .map(images.map { (.string($0.key), $0.value) })), (.string("seed"), .int(42)),
        ])
        func reply() async -> MessagePack { await server.answerMessagePack(.binary(ByteBuffer(bytes: request.encoded()))) }
        let unfollowed = await reply()
        policyServer.follow(FollowLearnerConfig(host: "127.0.0.1", port: learnerPort, actorID: "ws-version", embodiment: "arm7"))
        let deadline = Date().addingTimeInterval(60)
        while policyServer.newestReceivedVersion < 1 && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let followed = await reply()
        await policyServer.stop()
        await learner.stop()
        #expect(unfollowed["error"] == nil && unfollowed["actions"] != nil, "\(unfollowed)")
        #expect(unfollowed["policy_version"]?.integer == 0 && followed["policy_version"]?.integer == 1, "\(followed)")
        #expect(policyServer.servedVersion == 1)
    }

    /// The codec against byte strings Python's msgpack 1.1.2 produced (`msgpack.packb`, shown
    /// next to each), and its refusals of damaged input.
    @Test func messagePackMatchesPythonsEncoding() throws {
        // packb({'a': [1, -1, -33, 200, 70000, -70000, 2**40, 1.5, None, True, False], b'b': b'xy', 'c': 'é'*20})
        let python = "83a1619b01ffd0dfccc8ce00011170d2fffeee90cf0000010000000000cb3ff8000000000000c0c3c2c40162c4027879a163d928"
            + String(repeating: "c3a9", count: 20)
        let value = MessagePack.map([
            (.string("a"), .array([.int(1), .int(-1), .int(-33), .int(200), .int(70000), .int(-70000), .int(1 << 40),
                                   .double(1.5), .null, .bool(true), .bool(false)])),
            (.binary(Array("b".utf8)), .binary(Array("xy".utf8))),
            (.string("c"), .string(String(repeating: "é", count: 20))),
        ])
        #expect(hex(value.encoded()) == python)
        #expect(try MessagePack.decode(bytes(python)) == value)
        // packb([2**64-1, -2**63, 3.25]); packb(float32 0.1, use_single_float=True)
        let big = MessagePack.array([.uint(UInt64.max), .int(Int64.min), .double(3.25)])
        #expect(hex(big.encoded()) == "93cfffffffffffffffffd38000000000000000cb400a000000000000")
        #expect(try MessagePack.decode(bytes("93cfffffffffffffffffd38000000000000000cb400a000000000000")) == big)
        #expect(hex(MessagePack.float(0.1).encoded()) == "ca3dcccccd")
        // Damaged input: a clear error, never a crash.
        #expect(throws: MessagePackError.truncated(at: 1)) { try MessagePack.decode([0xa5, 0x61]) }
        #expect(throws: MessagePackError.reservedByte(0xc1, at: 0)) { try MessagePack.decode([0xc1]) }
        #expect(throws: MessagePackError.trailingBytes(1)) { try MessagePack.decode([0xc0, 0xc0]) }
        #expect(throws: MessagePackError.truncated(at: 5)) { try MessagePack.decode([0xdd, 0xff, 0xff, 0xff, 0xff]) }
        #expect(throws: MessagePackError.tooDeep(MessagePack.maxDepth)) { try MessagePack.decode([UInt8](repeating: 0x91, count: 100) + [0xc0]) }
        // An openpi-style array map round-trips to the same floats.
        let array = NumPyArray(float32: [1, -2.5, 3], shape: [3])
        #expect(NumPyArray(try MessagePack.decode(array.messagePack.encoded()))?.floats == [1, -2.5, 3])
    }

    func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = [], chars = Array(hex)
        while chars.count >= 2 { out.append(UInt8(String(chars[0..<2]), radix: 16)!); chars.removeFirst(2) }
        return out
    }
}
