import ArgumentParser
import Fleet
import Foundation

/// `vla bench soak`: many actor connections against one learner for minutes; see `FleetSoak`.
struct BenchSoak: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "Soak the learner: N actor connections (register, weight stream, heartbeats, paced uploads) for M minutes; throughput, ack latency, errors, memory.")

    @Option(help: "Actor connections.") var actors = 64
    @Option(help: "Duration (minutes).") var minutes = 10.0
    @Option(help: "Seconds between one actor's uploads.") var episodeInterval = 4.0
    @Option(help: "Steps per episode.") var steps = 40
    @Option(help: "Camera side (two cameras).") var imageSize = 32
    @Option(help: "Output directory (soak.json and the learner's store).") var out = "runs/soak"
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func run() async throws {
        let dir = URL(fileURLWithPath: out)
        try? FileManager.default.removeItem(at: dir.appendingPathComponent("store"))
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var soak = FleetSoak(storeDirectory: dir.appendingPathComponent("store"))
        soak.actors = actors
        soak.seconds = minutes * 60
        soak.episodeInterval = episodeInterval
        soak.stepsPerEpisode = steps
        soak.imageSize = imageSize
        soak.seed = seed
        let r = try await soak.run { line in FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(r).write(to: dir.appendingPathComponent("soak.json"))
        let rss = r.samples.compactMap(\.residentMegabytes)
        print(String(format: "soak: %d connections, %.0f s: %d episodes acked (%.2f/s, %.2f MB/s), ack p50 %.1f / p99 %.1f / max %.1f ms",
                     r.actors, r.seconds, r.episodesAcked, r.episodesPerSecond, r.megabytesPerSecond,
                     r.ackMilliseconds["p50"] ?? 0, r.ackMilliseconds["p99"] ?? 0, r.ackMilliseconds["max"] ?? 0))
        print("errors: uploads \(r.uploadErrors), heartbeats \(r.heartbeatErrors), weight streams \(r.watchErrors); learner accepted \(r.learnerEpisodesAccepted), refused \(r.learnerRejections)")
        print("learner: \(r.learnerTrainSteps) train steps, \(r.versionsPublished) versions; \(r.versionsReceived) version downloads by the actors")
        if let first = rss.first, let last = rss.last {
            print(String(format: "resident memory: %.0f MB at start, %.0f MB at the end (samples: %@)", first, last,
                         rss.map { String(format: "%.0f", $0) }.joined(separator: ", ")))
        }
        print("written: \(out)/soak.json")
    }
}
