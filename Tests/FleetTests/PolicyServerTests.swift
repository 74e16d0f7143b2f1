import Foundation
import GRPCCore
import Testing
import TestSupport
import RobotData
import RobotSim
import TensorKit
@testable import Fleet
import Training
import VLAModel

@Suite("Policy server (vla serve)", .timeLimit(.minutes(5)))
struct PolicyServerTests {
    func fixture() throws -> (VLAPolicy, PolicyObservation) { try tinyPolicyFixture() }

    @Test func servedChunkIsTheInProcessChunkForTheSameSeed() async throws {
        let (policy, observation) = try fixture()
        let reference = try TensorLock.run { try policy.actionChunk(observation, key: RandomKey(seed: 42)) }
        let server = PolicyServer(policy: policy, checkpointStep: 7)
        let port = try await server.start()
        let (served, info) = try await PolicyClient.with(port: port) { client in
            let response = try await client.predictChunk(PolicyClient.request(observation, imageSize: 16, seed: 42))
            return (response, try await client.getServerInfo(Swiftvla_Fleet_V1_ServerInfoRequest()))
        }
        await server.stop()
        #expect(PolicyClient.chunk(served) == reference)
        #expect(served.horizon == 4 && served.actionDim == 8 && served.executeSteps == 2 && served.checkpointStep == 7)
        #expect(info.embodiments == ["arm7"] && info.imageSize == 16 && info.requests == 1 && info.rejected == 0)
    }

    @Test func badObservationsAreRejectedCountedAndServingGoesOn() async throws {
        let (policy, observation) = try fixture()
        let server = PolicyServer(policy: policy)
        let port = try await server.start()
        let good = PolicyClient.request(observation, imageSize: 16, seed: 1)
        var unknown = good; unknown.embodiment = "arm9"
        var small = good; small.cameras[0].height = 8
        var short = good; short.cameras[0].rgb = Data(count: 10)
        var unnamed = good; unnamed.cameras[0].name = "ceiling"
        var noCameras = good; noCameras.cameras = []
        var width = good; width.state = [0, 1]
        var nan = good; nan.state[0] = .nan
        let bad = [unknown, small, short, unnamed, noCameras, width, nan]
        let codes: [RPCError.Code?] = try await PolicyClient.with(port: port) { client in
            var codes: [RPCError.Code?] = []
            for request in bad {
                do { _ = try await client.predictChunk(request); codes.append(nil) }
                catch let error as RPCError { codes.append(error.code) }
            }
            // Still serving.
            _ = try await client.predictChunk(good)
            return codes
        }
        let summary = server.summary
        await server.stop()
        #expect(codes == Array(repeating: .invalidArgument, count: bad.count))
        #expect(summary.requests == bad.count + 1 && summary.rejected == bad.count)
        #expect(summary.rejectedByReason == ["unknown_embodiment": 1, "bad_camera": 4, "bad_state": 2])
    }

    /// `clients/python/tests/predict_against_server.py` asks for the same chunk through
    /// `swiftvla_client.PolicyClient` and must get the in-process chunk back.
    @Test func pythonPolicyClientGetsTheInProcessChunk() async throws {
        let root = ChildProcess.packageRoot
        let python = root.appendingPathComponent(".venv/bin/python")
        guard FileManager.default.isExecutableFile(atPath: python.path) else {
            Issue.record("no Python at \(python.path): run scripts/bootstrap")
            return
        }
        let (policy, observation) = try fixture()
        let reference = try TensorLock.run { try policy.actionChunk(observation, key: RandomKey(seed: 42)) }
        let dir = temporaryDirectory("python-policy")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("observation.json")
        try writeObservationFile(observation, imageSize: 16, seed: 42, to: file)
        let server = PolicyServer(policy: policy)
        let port = try await server.start()
        let result = try await ChildProcess.run(python, [root.appendingPathComponent("clients/python/tests/predict_against_server.py").path,
                                                              "--port", "\(port)", "--observation", file.path], timeout: 120)
        await server.stop()
        guard result.status == 0, let line = result.stdout.split(separator: "\n").last,
              let summary = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            Issue.record("predict_against_server.py exited \(result.status)\n\(result.stdout)\n\(result.stderr)")
            return
        }
        let chunk = (summary["chunk"] as? [[Double]]) ?? []
        #expect(chunk.map { $0.map(Float.init) } == reference)
        #expect(summary["shape"] as? [Int] == [4, 8] && summary["horizon"] as? Int == 4 && summary["execute_steps"] as? Int == 2)
        #expect(summary["embodiments"] as? [String] == ["arm7"] && summary["image_size"] as? Int == 16)
        #expect(summary["refused"] as? String == "INVALID_ARGUMENT" && summary["repeatable"] as? Bool == true)
        #expect(server.summary.rejectedByReason == ["bad_state": 1])
    }

    @Test func percentilesAreNearestRank() {
        // Nearest rank on 1…100: p50 = 50, p90 = 90, p99 = 99.
        let p = LatencySummary.Percentiles((1...100).map(Double.init).shuffled())
        #expect(p.p50 == 50 && p.p90 == 90 && p.p99 == 99 && p.max == 100)
    }
}
