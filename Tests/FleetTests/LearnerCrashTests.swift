import Foundation
import GRPCCore
import RobotData
import Testing
import TestSupport
@testable import Fleet

/// `kill -9` of a real `vla learner` process, 20 times at random moments while an uploader
/// streams episodes and the learner trains and checkpoints every 5 steps: no acknowledged
/// episode is lost, no half episode is ever visible, and each restart resumes training from
/// its newest checkpoint.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct LearnerCrashTests {
    /// A learner process whose stdout goes to `log`.
    final class LearnerProcess {
        let process = Process()
        let log: URL

        init(binary: URL, store: URL, log: URL) throws {
            self.log = log
            try Data().write(to: log)
            process.executableURL = binary
            process.arguments = ["learner", "--port", "0", "--store", store.path, "--publish-every", "10",
                                 "--checkpoint-every", "5", "--seed", "3"]
            process.standardOutput = try FileHandle(forWritingTo: log)
            process.standardError = FileHandle.nullDevice
            try process.run()
        }

        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        /// The port from "learner listening on 127.0.0.1:PORT", once printed.
        func port(timeout: Double) async throws -> Int {
            let deadline = ContinuousClock.now + .seconds(timeout)
            while ContinuousClock.now < deadline {
                if let line = output.split(separator: "\n").first(where: { $0.hasPrefix("learner listening on") }),
                   let port = line.split(separator: ",").first?.split(separator: ":").last.flatMap({ Int($0) }) {
                    return port
                }
                guard process.isRunning else { throw CancellationError() }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw CancellationError()
        }

        /// The train step it resumed from (nil: started fresh).
        var resumedStep: Int? {
            output.split(separator: "\n").first { $0.hasPrefix("resumed from checkpoint at train step ") }
                .flatMap { Int($0.split(separator: " ").last!) }
        }

        func kill9() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    @Test func killNineAtRandomMomentsLosesNoAckedEpisodeAndResumesFromCheckpoints() async throws {
        let binary = try #require(ChildProcess.vlaBinary(), "no vla binary beside the tests: build it (swift build) first")
        let root = temporaryDirectory("kill9")
        let store = root.appendingPathComponent("store")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        var generator = SplitMix64(seed: 2026)
        var acked: [UUID] = []
        var resumed: [Int] = []
        var seed = 0
        for round in 0..<20 {
            let learner = try LearnerProcess(binary: binary, store: store, log: root.appendingPathComponent("learner-\(round).log"))
            let port = try await learner.port(timeout: 60)
            if let step = learner.resumedStep { resumed.append(step) }
            // Upload until the kill lands, 0.3–1.5 s after the learner came up.
            let killAfter = 0.3 + 1.2 * generator.nextDouble()
            let killer = Task {
                try? await Task.sleep(for: .seconds(killAfter))
                learner.kill9()
            }
            do {
                try await withFleetClient(port: port) { client in
                    _ = try await register(client, actorID: "crash-actor")
                    while true {
                        seed += 1
                        // 12 steps, alternating policy/operator: the learner trains on the operator steps.
                        let episode = try syntheticEpisode(steps: 12, seed: seed)
                        let ack = try await upload(client, EpisodeMessages.encode(episode, actorID: "crash-actor"))
                        acked.append(episode.id)
                        #expect(ack.episodeID == episode.id.uuidString)
                    }
                }
            } catch {
                // The kill: the upload in flight was never acked.
            }
            await killer.value
            #expect(!learner.process.isRunning)
        }

        // Every acknowledged episode is in the store, whole; nothing half-written shows.
        let reopened = try EpisodeStore(root: store)
        #expect(reopened.corruptFiles.isEmpty, "quarantined: \(reopened.corruptFiles)")
        for id in acked { #expect(try reopened.contains(id), "acked episode \(id) lost") }
        let (episodes, skipped) = try TensorLock.run { try reopened.loadAll() }
        #expect(skipped.isEmpty)
        #expect(episodes.count >= acked.count && episodes.allSatisfy { $0.stepCount == 12 })
        // Restarts resumed from checkpoints, never going back in training.
        #expect(resumed.count >= 10, "resumed steps \(resumed)")
        #expect(resumed == resumed.sorted(), "resumed steps \(resumed)")
        print("kill -9 × 20: \(acked.count) acked episodes (\(episodes.count) stored), resumed at train steps \(resumed)")
    }
}
