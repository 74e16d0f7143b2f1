import Foundation
import GRPCCore
import Testing
import GRPCNIOTransportHTTP2
import RobotData
import RobotSim
import TensorKit
import TestSupport
@testable import Fleet

typealias FleetClient = Swiftvla_Fleet_V1_Fleet.Client<HTTP2ClientTransport.Posix>

func temporaryDirectory(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("fleet-tests-\(name)-\(UUID().uuidString)")
}

/// `vla demo` at test size: a tiny VLA pretrained 4 steps on 2 demos, 1 held-out seed,
/// post-training batches of 4.
func tinyFleetDemo(_ name: String) -> FleetDemo {
    var demo = FleetDemo(output: temporaryDirectory(name))
    demo.model = tinyVLAConfig()
    demo.pretrainDemos = 2
    demo.pretrainSteps = 4
    demo.pretrainBatchSize = 8
    demo.evaluationSeeds = 1
    demo.setup.schedule.batchSize = 4
    return demo
}

/// A learner on an ephemeral loopback port serving arm7 / reach.
func makeLearner(_ name: String, configure: (inout FleetLearnerConfig) -> Void = { _ in }) throws -> (FleetLearner, BehaviorCloningBackend) {
    var config = FleetLearnerConfig(storeDirectory: temporaryDirectory(name))
    config.catalog = TaskCatalog([(.arm7, .reach)])
    configure(&config)
    let backend = try BehaviorCloningBackend(embodiment: EmbodimentKind.arm7.spec, seed: 1, batchSize: 32)
    return (try trackedLearner(config: config, backend: backend), backend)
}

/// Runs `body` with a raw client of the learner on `port` (`window`: HTTP/2 receive window).
func withFleetClient<R: Sendable>(port: Int, window: Int? = nil, _ body: (FleetClient) async throws -> R) async throws -> R {
    let transport = try HTTP2ClientTransport.Posix(
        target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext,
        config: .defaults { if let window { $0.http2.targetWindowSize = window } })
    return try await withGRPCClient(transport: transport) { client in
        try await body(Swiftvla_Fleet_V1_Fleet.Client(wrapping: client))
    }
}

/// An arm7 reach actor on 16-pixel cameras with episodes of at most `stepLimit` steps.
func smallActorConfig(_ id: String, port: Int, episodes: Int, maxEpisodes: Int? = nil, stepLimit: Int = 20) -> FleetActorConfig {
    var c = FleetActorConfig(actorID: id, learnerPort: port, embodiment: .arm7, tasks: [.reach])
    c.episodes = episodes
    if let maxEpisodes { c.maxEpisodes = maxEpisodes }
    var env = EnvironmentConfig(imageWidth: 16, imageHeight: 16)
    env.stepLimit = stepLimit
    c.environment = env
    return c
}

func register(_ client: FleetClient, actorID: String, token: String = "") async throws -> Swiftvla_Fleet_V1_RegisterActorResponse {
    var request = Swiftvla_Fleet_V1_RegisterActorRequest()
    request.actorID = actorID
    request.embodiment = "arm7"
    request.tasks = ["reach"]
    request.authToken = token
    return try await client.registerActor(request)
}

func upload(_ client: FleetClient, _ messages: [Swiftvla_Fleet_V1_UploadEpisodeRequest]) async throws -> Swiftvla_Fleet_V1_UploadEpisodeAck {
    try await client.uploadEpisode { writer in try await writer.write(contentsOf: messages) }
}

/// A synthetic, valid arm7 reach episode: `steps` steps, two 4×6 cameras, deterministic
/// values from `seed`, alternating policy / operator steps.
func syntheticEpisode(steps: Int = 20, seed: Int = 0) throws -> Episode {
    let spec = EmbodimentKind.arm7.spec
    func value(_ t: Int, _ i: Int) -> Float { Float(((t * 31 + i * 7 + seed * 13) % 97)) / 97 - 0.5 }
    let states = (0..<steps).map { t in (0..<spec.stateDimension).map { value(t, $0) } }
    let actions = (0..<steps).map { t in (0..<spec.actionDimension).map { value(t + 1, $0) } }
    let frames = { (k: Int) in CameraFrames(height: 4, width: 6, pixels: (0..<(steps * 4 * 6 * 3)).map { UInt8(($0 * (k + 3) + seed) % 251) }) }
    return Episode(
        embodiment: "arm7", task: "reach", instruction: "reach the red block",
        cameras: ["scene": frames(0), "a_wrist": frames(1)],
        states: try StepMatrix(states, columns: spec.stateDimension),
        nativeActions: try StepMatrix(actions, columns: spec.actionDimension),
        unifiedActions: try StepMatrix(actions.map { try spec.unifiedAction($0) }, columns: UnifiedActionSpace.dimension),
        actionMask: spec.actionMask, rewards: (0..<steps).map { $0 == steps - 1 ? 1 : 0 },
        dones: (0..<steps).map { $0 == steps - 1 }, sources: (0..<steps).map { $0 % 2 == 0 ? .policy : .operator },
        timestamps: (0..<steps).map { Double($0) * 0.05 }, success: true, policyVersion: 1, seed: UInt64(seed))
}

/// Bit patterns of every tensor (float32), for exact comparisons.
func bitPatterns(_ tensors: [String: Tensor]) throws -> [String: [UInt32]] {
    try TensorLock.run { try tensors.mapValues { try $0.toArray(Float.self).map(\.bitPattern) } }
}

/// Stops every learner a test created, on every path out of the test. A learner left
/// running keeps training on MLX's threads, and the test process then never exits.
final class LearnerJanitor: @unchecked Sendable {
    @TaskLocal static var current: LearnerJanitor?
    private let lock = NSLock()
    private var learners: [FleetLearner] = []

    func track(_ learner: FleetLearner) { lock.withLock { learners.append(learner) } }

    func stopAll() async {
        for learner in lock.withLock({ learners }) { await learner.stop() }
    }
}

/// Suite trait: each test runs with a `LearnerJanitor` that stops its learners afterwards.
struct StopsLearners: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard testCase != nil || !test.isSuite else { return try await function() }
        let janitor = LearnerJanitor()
        do {
            try await LearnerJanitor.$current.withValue(janitor) { try await function() }
        } catch {
            await janitor.stopAll()
            throw error
        }
        await janitor.stopAll()
    }
}

extension Trait where Self == StopsLearners {
    static var stopsLearners: StopsLearners { StopsLearners() }
}

/// A learner that the running test's janitor stops when the test ends.
func trackedLearner(config: FleetLearnerConfig, backend: any LearnerBackend) throws -> FleetLearner {
    let learner = try FleetLearner(config: config, backend: backend)
    LearnerJanitor.current?.track(learner)
    return learner
}
