import Foundation
import RobotData
import TensorKit
import Testing
import TestSupport
import Training
import VLAModel
@testable import Fleet

/// `vla serve --follow-learner`: the policy server loads the versions a learner publishes.
@Suite(.stopsLearners, .timeLimit(.minutes(1)))
struct ServeFollowTests {
    /// Waits (bounded by a count, not asserted on time) until `server` received `version`.
    func waitForVersion(_ version: Int, on server: PolicyServer) async throws {
        for _ in 0..<600 where server.newestReceivedVersion < version {
            try await Task.sleep(for: .milliseconds(50))
        }
        try #require(server.newestReceivedVersion >= version, "server received v\(server.newestReceivedVersion), waited for v\(version)")
    }

    /// Moves every trainable parameter of the learner's policy by `delta` (new weights to publish).
    func moveWeights(of backend: PostTrainingBackend, by delta: Double) async throws {
        let trainer = await backend.trainer
        try TensorLock.run {
            let moved = try trainer.policy.model.trainableParameters().mapValues { try $0 + delta }
            try eval(Array(moved.values))   // not left lazy for the thread that publishes them
            try trainer.policy.model.update(parameters: moved)
        }
    }

    /// Reference: the chunk of the checkpoint's policy loaded directly with the learner's
    /// newest weights, for the same observation and seed.
    func expectedChunk(checkpoint: URL, backend: PostTrainingBackend, observation: PolicyObservation, seed: UInt64) async throws -> [[Float]] {
        let reference = try VLAPolicy.load(from: checkpoint).policy
        let newest = try await backend.exportTrainableWeights()
        return try TensorLock.run {
            try reference.model.update(parameters: newest)
            return try reference.actionChunk(observation, key: RandomKey(seed: seed))
        }
    }

    /// Item: a served VLA follows the learner. After the learner publishes changed weights the
    /// server's chunk (fixed observation and seed) is the chunk of a policy loaded directly
    /// with the learner's newest weights, and differs from the chunk served before.
    @Test func servedPolicySwapsInTheLearnersNewestVersion() async throws {
        let (policy, observation) = try tinyPolicyFixture()
        let checkpoint = temporaryDirectory("serve-follow-checkpoint")
        try policy.save(to: checkpoint, optimizer: nil, step: 0)
        // No offline demos and no actors: the learner never trains, it publishes only when told.
        let backend = try PostTrainingSetup().learnerBackend(checkpoint: checkpoint, offline: [], log: { _ in }).backend
        let learner = try trackedLearner(config: FleetLearnerConfig(storeDirectory: temporaryDirectory("serve-follow-store")), backend: backend)
        let learnerPort = try await learner.start()   // publishes v1: the checkpoint's weights

        let served = try VLAPolicy.load(from: checkpoint).policy
        let server = PolicyServer(policy: served)
        let swaps = Locked<[String]>([])
        server.log = { line in swaps.withLock { $0.append(line) } }
        let port = try await server.start()
        let request = PolicyClient.request(observation, imageSize: 16, seed: 42)
        func answer() async throws -> Swiftvla_Fleet_V1_PredictChunkResponse {
            try await PolicyClient.with(port: port) { try await $0.predictChunk(request) }
        }
        // Not following yet: the checkpoint's own weights answer, version 0.
        let unfollowed = try await answer()
        #expect(unfollowed.policyVersion == 0)
        server.follow(FollowLearnerConfig(host: "127.0.0.1", port: learnerPort, actorID: "server-under-test", embodiment: "arm7"))

        try await waitForVersion(1, on: server)
        let first = try await answer()
        let before = PolicyClient.chunk(first)
        #expect(server.servedVersion == 1 && first.policyVersion == 1)

        // Changed weights: every trainable parameter moved, published as v2.
        try await moveWeights(of: backend, by: 0.05)
        let published = try await learner.publish()
        #expect(published.version == 2)
        try await waitForVersion(2, on: server)
        let second = try await answer()
        let after = PolicyClient.chunk(second)
        // Each answer names the version that produced it.
        #expect(second.policyVersion == 2)

        let expected = try await expectedChunk(checkpoint: checkpoint, backend: backend, observation: observation, seed: 42)
        let summary = server.summary
        await server.stop()
        await learner.stop()

        #expect(after == expected)
        #expect(after != before)
        #expect(server.servedVersion == 2 && summary.policyVersion == 2 && summary.versionsLoaded == 2)
        #expect(swaps.current.filter { $0.hasPrefix("swapped in policy") }.count == 2, "\(swaps.current)")
    }

    /// Item: the learner goes away and comes back. The server keeps serving the version it has
    /// while the learner is down, logs the loss, reconnects to the restarted learner on the same
    /// port and swaps in what that one publishes (reference: a policy loaded with its weights).
    @Test func serverKeepsServingAndReconnectsWhenTheLearnerRestarts() async throws {
        let (policy, observation) = try tinyPolicyFixture()
        let checkpoint = temporaryDirectory("serve-reconnect-checkpoint")
        try policy.save(to: checkpoint, optimizer: nil, step: 0)
        let store = temporaryDirectory("serve-reconnect-store")
        func startLearner(port: Int) async throws -> (FleetLearner, Int, PostTrainingBackend) {
            let backend = try PostTrainingSetup().learnerBackend(checkpoint: checkpoint, offline: [], log: { _ in }).backend
            var config = FleetLearnerConfig(storeDirectory: store)
            config.port = port
            let learner = try trackedLearner(config: config, backend: backend)
            return (learner, try await learner.start(), backend)
        }
        let (first, learnerPort, _) = try await startLearner(port: 0)

        let server = PolicyServer(policy: try VLAPolicy.load(from: checkpoint).policy)
        let lines = Locked<[String]>([])
        server.log = { line in lines.withLock { $0.append(line) } }
        let port = try await server.start()
        var follow = FollowLearnerConfig(host: "127.0.0.1", port: learnerPort, actorID: "server-reconnecting", embodiment: "arm7")
        follow.maxBackoff = 0.2
        server.follow(follow)
        let request = PolicyClient.request(observation, imageSize: 16, seed: 7)
        func chunk() async throws -> [[Float]] {
            try await PolicyClient.with(port: port) { PolicyClient.chunk(try await $0.predictChunk(request)) }
        }
        try await waitForVersion(1, on: server)
        let before = try await chunk()

        await first.stop()
        for _ in 0..<200 where !lines.current.contains(where: { $0.hasPrefix("lost learner") }) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(lines.current.contains { $0.hasPrefix("lost learner") }, "\(lines.current)")
        // Down: still answering, with the same weights.
        #expect(try await chunk() == before)

        let (second, secondPort, backend) = try await startLearner(port: learnerPort)
        #expect(secondPort == learnerPort)
        try await moveWeights(of: backend, by: -0.05)
        let published = try await second.publish()
        try await waitForVersion(published.version, on: server)
        let after = try await chunk()
        let expected = try await expectedChunk(checkpoint: checkpoint, backend: backend, observation: observation, seed: 7)
        await server.stop()
        await second.stop()
        #expect(after == expected && after != before)
        #expect(lines.current.contains { $0.hasPrefix("following 127.0.0.1:\(learnerPort) again") }, "\(lines.current)")
    }
}
