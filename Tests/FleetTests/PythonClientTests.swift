import Foundation
import RobotData
import RobotSim
import Testing
import TestSupport
import TensorKit
@testable import Fleet

/// The Python robot client (clients/python/swiftvla_client) against a real learner on
/// loopback: `clients/python/tests/run_against_learner.py` registers robots, receives the
/// published policy, streams episodes with operator takeovers (through the gymnasium-style
/// wrapper and directly), re-sends an acked one, sends a malformed one and prints a JSON
/// summary; this test checks that summary against what the learner stored and counted.
///
/// Needs `.venv/bin/python` with grpcio, protobuf and numpy (`scripts/bootstrap` installs
/// them); without them the test fails and says so.
@Suite(.serialized, .stopsLearners, .timeLimit(.minutes(5)))
struct PythonClientTests {
    struct Summary: Decodable {
        struct Layout: Decodable { var stateDim: Int; var actionSlots: [Int] }
        struct Policy: Decodable {
            var version: Int
            var totalBytes: Int
            var manifestBytes: Int
            var crc32: UInt32
            var crcOk: Bool
            var chunks: Int
            var model: String
            var tensors: [String: [Int]]
            var probeAction: [Double]
        }
        struct EpisodeInfo: Decodable {
            var id: String
            var embodiment: String
            var steps: Int
            var operatorSteps: Int
            var policyVersion: Int
            var cameras: Int
            var status: String
        }
        struct Resend: Decodable { var id: String; var status: String }
        struct Transient: Decodable { var id: String; var firstStatus: String; var queued: Int; var retries: Int; var finalStatus: String }
        struct Rejected: Decodable { var id: String; var status: String; var code: String?; var reason: String? }
        struct Heartbeat: Decodable { var latestPolicyVersion: Int; var task: String }
        struct Wire: Decodable { var header: Int; var steps: [Int] }
        struct StepVersions: Decodable { var swapped: Wire; var steady: Wire }

        var layouts: [String: Layout]
        var policy: Policy
        var episodes: [EpisodeInfo]
        var resend: Resend
        var transient: Transient
        var rejected: Rejected
        var heartbeat: Heartbeat
        var pending: Int
        var versionsReceived: [Int]
        var lazyRegistration: Int
        var forwardedAttribute: Bool
        var corruptRefused: Bool
        var stepVersions: StepVersions
    }

    @Test func pythonClientStreamsEpisodesReceivesPoliciesAndIsValidatedByTheLearner() async throws {
        let root = ChildProcess.packageRoot
        let python = root.appendingPathComponent(".venv/bin/python")
        let script = root.appendingPathComponent("clients/python/tests/run_against_learner.py")
        guard FileManager.default.isExecutableFile(atPath: python.path) else {
            Issue.record("no Python at \(python.path): run scripts/bootstrap (it creates .venv with grpcio, protobuf and numpy)")
            return
        }
        let check = try await ChildProcess.run(python, ["-c", "import grpc, google.protobuf, numpy"], timeout: 60)
        guard check.status == 0 else {
            Issue.record("grpcio / protobuf / numpy are missing from .venv: run scripts/bootstrap\n\(check.stderr)")
            return
        }

        var config = FleetLearnerConfig(storeDirectory: temporaryDirectory("python-client"))
        config.catalog = TaskCatalog([(.arm7, .reach), (.arm6, .reach), (.bimanual, .reach)])
        config.publishInitialPolicy = false
        config.publishEveryTrainSteps = .max      // v1 below stays the only version
        config.checkpointEveryTrainSteps = 0
        config.weightChunkBytes = 200             // several chunks for the client to reassemble
        let backend = try BehaviorCloningBackend(embodiment: EmbodimentKind.arm7.spec, seed: 1, batchSize: 32)
        let learner = try trackedLearner(config: config, backend: backend)
        let port = try await learner.start()
        // The backend trains only once operator steps arrive, so these are v1's weights.
        let initial = try await backend.exportTrainableWeights()
        let publication = try await learner.publish()

        let result = try await ChildProcess.run(python, [script.path, "--port", "\(port)"], timeout: 180)
        await learner.stop()   // in-flight uploads finish; the counters are final
        guard result.status == 0, let line = result.stdout.split(separator: "\n").last else {
            Issue.record("run_against_learner.py exited \(result.status)\nstdout:\n\(result.stdout)\nstderr:\n\(result.stderr)")
            return
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let summary = try decoder.decode(Summary.self, from: Data(line.utf8))

        // The client's slot table is the Swift one.
        for kind in EmbodimentKind.allCases {
            let layout = try #require(summary.layouts[kind.rawValue], "client has no layout for \(kind.rawValue)")
            #expect(layout.stateDim == kind.spec.stateDimension, "\(kind.rawValue) state width")
            #expect(layout.actionSlots == kind.spec.actionMap.slots, "\(kind.rawValue) action slots")
        }

        // The policy arrived whole: size, CRC-32 and tensors as published.
        let p = summary.policy
        #expect(summary.versionsReceived.first == publication.version && publication.version == 1)
        #expect(p.version == 1 && p.crcOk && p.crc32 == publication.manifest.crc32)
        #expect(p.totalBytes == publication.totalBytes && p.manifestBytes == publication.totalBytes)
        #expect(p.chunks == Int(publication.manifest.chunkCount) && p.chunks > 1)
        #expect(p.model == LinearPolicy.modelName)
        #expect(summary.corruptRefused, "the client accepted a copy with a flipped bit")
        let spec7 = EmbodimentKind.arm7.spec
        #expect(p.tensors == ["linear.weight": [spec7.actionDimension, spec7.stateDimension], "linear.bias": [spec7.actionDimension]])
        // The decoded weights act like the published ones: W x + b at x = linspace(-1, 1, S).
        let (w, b) = try TensorLock.run {
            (try initial["linear.weight"]!.toArray(Float.self), try initial["linear.bias"]!.toArray(Float.self))
        }
        let s = spec7.stateDimension
        let probe = (0..<s).map { -1 + 2 * Double($0) / Double(s - 1) }
        let expected = (0..<spec7.actionDimension).map { i in
            Double(b[i]) + (0..<s).reduce(0.0) { $0 + Double(w[i * s + $1]) * probe[$1] }
        }
        #expect(p.probeAction.count == expected.count)
        for (got, want) in zip(p.probeAction, expected) { #expect(abs(got - want) < 1e-9, "probe action \(got) vs \(want)") }

        // Every uploaded episode is acked and stored once, with its operator steps.
        let episodes = summary.episodes
        #expect(episodes.count == 6)
        #expect(Set(episodes.map(\.embodiment)) == ["arm7", "arm6", "bimanual"])
        #expect(episodes.contains { $0.operatorSteps > 0 } && episodes.contains { $0.operatorSteps == 0 })
        for info in episodes {
            #expect(info.status == "acked" || (info.id == summary.transient.id && info.status == "duplicate"), "\(info.id): \(info.status)")
            let id = try #require(UUID(uuidString: info.id))
            let stored = try learner.store.load(id)
            #expect(stored.embodiment == info.embodiment && stored.task == "reach")
            #expect(stored.stepCount == info.steps && stored.interventionCount == info.operatorSteps, "\(info.embodiment) \(info.id)")
            #expect(stored.policyVersion == info.policyVersion && stored.cameras.count == info.cameras)
            let spec = try #require(EmbodimentKind(rawValue: info.embodiment)).spec
            for t in 0..<stored.stepCount {
                #expect(try spec.unifiedAction(Array(stored.nativeActions.row(t))) == Array(stored.unifiedActions.row(t)))
            }
        }
        // arm7 acted with the received version; the others never loaded one.
        #expect(episodes.filter { $0.embodiment == "arm7" }.allSatisfy { $0.policyVersion == 1 })
        #expect(episodes.filter { $0.embodiment != "arm7" }.allSatisfy { $0.policyVersion == 0 })
        #expect(learner.store.count == episodes.count)

        // The deliberate re-send was acked as a duplicate; the timed-out upload stayed queued,
        // then went through (a duplicate when a timed-out attempt had already landed).
        #expect(summary.resend.status == "duplicate" && episodes.contains { $0.id == summary.resend.id })
        let transient = summary.transient
        #expect(transient.firstStatus == "pending" && transient.queued == 1 && transient.retries >= 1)
        #expect(["acked", "duplicate"].contains(transient.finalStatus))
        #expect(summary.pending == 0 && summary.lazyRegistration == 1 && summary.forwardedAttribute)

        // Per-step versions: a mid-episode swap v1 → v2 sends each step's version and the newest
        // in the header; an episode on one version sends none (0: the header's).
        #expect(summary.stepVersions.swapped.header == 2 && summary.stepVersions.swapped.steps == [1, 1, 2, 2])
        #expect(summary.stepVersions.steady.header == 1 && summary.stepVersions.steady.steps == [0, 0, 0, 0])

        // The NaN state was refused, counted and not stored.
        #expect(summary.rejected.status == "rejected" && summary.rejected.code == "INVALID_ARGUMENT")
        #expect(summary.rejected.reason == "non_finite")
        #expect(try !learner.store.contains(try #require(UUID(uuidString: summary.rejected.id))))

        let m = learner.metrics.snapshot()
        #expect(m.episodesAccepted == episodes.count)
        #expect(m.stepsAccepted == episodes.reduce(0) { $0 + $1.steps })
        #expect(m.operatorStepsAccepted == episodes.reduce(0) { $0 + $1.operatorSteps })
        #expect(m.episodesDuplicate >= 1 + (transient.finalStatus == "duplicate" ? 1 : 0))
        #expect(m.episodesRejected == 1 && m.rejections == ["non_finite": 1])
        #expect(m.actorsRegistered == 3 && m.heartbeats == 1)

        // The heartbeat carried the arm7 robot's counters (five finished episodes, the
        // malformed one included) and answered with the newest version.
        #expect(summary.heartbeat.latestPolicyVersion == 1 && summary.heartbeat.task == "reach")
        let stats = try #require(learner.actorStats()["py-arm7"])
        let arm7 = episodes.filter { $0.embodiment == "arm7" }
        #expect(stats.episodesFinished == 5 && stats.policyVersion == 1)
        #expect(stats.operatorSteps == UInt64(arm7.reduce(0) { $0 + $1.operatorSteps }))
        #expect(stats.pendingUploads == 0)
    }
}
