import Foundation
import RobotData
import RobotSim
import Testing
@testable import Fleet

/// Bounded memory while the learner is away: episodes beyond the in-memory limit wait on disk,
/// come back in order, and files left by a crashed actor are re-sent by the next one.
@Suite(.stopsLearners, .timeLimit(.minutes(2)))
struct UploadQueueTests {
    @Test func episodesBeyondTheLimitSpillToDiskAndComeBackInOrder() throws {
        let dir = temporaryDirectory("spill")
        defer { try? FileManager.default.removeItem(at: dir) }
        var queue = try UploadQueue(memoryLimit: 2, spillDirectory: dir)
        let episodes = try (0..<5).map { try syntheticEpisode(steps: 4, seed: $0) }
        for e in episodes { queue.append(e) }
        #expect(queue.count == 5 && queue.inMemory == 2 && queue.spilled == 3 && queue.peakInMemory == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).count == 3)
        // FIFO: what is uploaded next is always the oldest, wherever it waits.
        var order: [UUID] = []
        while let next = queue.first {
            let e = try UploadQueue.load(next)
            #expect(e == episodes[order.count] || e.id == episodes[order.count].id)
            order.append(e.id)
            queue.remove(e.id)
        }
        #expect(order == episodes.map(\.id))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)   // acked files are deleted
        // Without a spill directory everything stays in memory (the old behaviour).
        var plain = try UploadQueue(memoryLimit: 2, spillDirectory: nil)
        for e in episodes { plain.append(e) }
        #expect(plain.inMemory == 5 && plain.spilled == 0)
    }

    @Test func aNewActorResendsWhatACrashedOneLeftOnDisk() async throws {
        let dir = temporaryDirectory("spill-crash")
        defer { try? FileManager.default.removeItem(at: dir) }
        // The crashed actor's queue: 3 episodes over a 1-episode memory limit → 2 files.
        var crashed = try UploadQueue(memoryLimit: 1, spillDirectory: dir)
        let leftovers = try (10..<13).map { try syntheticEpisode(steps: 6, seed: $0) }
        for e in leftovers { crashed.append(e) }
        #expect(crashed.spilled == 2)

        let (learner, _) = try makeLearner("spill-resend")
        let port = try await learner.start()
        var c = smallActorConfig("actor-1", port: port, episodes: 2, maxEpisodes: 2)
        c.spillDirectory = dir
        c.maxEpisodesInMemory = 1
        let report = try await FleetActor(config: c, policy: try LinearPolicy(embodiment: EmbodimentKind.arm7.spec, seed: 9)).run()
        await learner.stop()
        #expect(report.unacked == 0 && report.rejected == 0)
        // The two spilled leftovers were re-sent (the in-memory one died with its actor).
        for e in leftovers.dropFirst() { #expect(try learner.store.contains(e.id)) }
        #expect(try !learner.store.contains(leftovers[0].id))
        #expect(learner.metrics.snapshot().episodesAccepted == 2 + report.episodes.count)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }
}
