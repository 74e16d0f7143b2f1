import Foundation
import RobotData

/// An actor's unacknowledged episodes, oldest first. At most `memoryLimit` are held in
/// memory; with a spill directory, the rest wait there as episode files, so a learner outage
/// costs disk, not RAM — and files left by an actor that crashed are picked up (and re-sent)
/// by the next one with the same directory. The learner deduplicates by episode id.
struct UploadQueue {
    enum Entry {
        case memory(Episode)
        case disk(UUID, URL)

        var id: UUID {
            switch self {
            case .memory(let e): e.id
            case .disk(let id, _): id
            }
        }
    }

    let memoryLimit: Int
    let spillDirectory: URL?
    private(set) var entries: [Entry] = []
    /// Episodes written to disk so far, and spill writes that failed (kept in memory then).
    private(set) var spilled = 0
    private(set) var spillFailures = 0
    /// Most episodes ever held in memory at once.
    private(set) var peakInMemory = 0

    /// Opens the queue; leftover spill files come first, oldest first.
    init(memoryLimit: Int, spillDirectory: URL?) throws {
        precondition(memoryLimit > 0)
        self.memoryLimit = memoryLimit
        self.spillDirectory = spillDirectory
        guard let dir = spillDirectory else { return }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let files = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: [.creationDateKey])
            .filter { $0.pathExtension == "safetensors" }
        for file in files.sorted(by: { $0.lastPathComponent < $1.lastPathComponent }) {
            // Names are "<sequence>-<uuid>.safetensors"; an unreadable one is left for a human.
            guard let id = UUID(uuidString: String(file.deletingPathExtension().lastPathComponent.split(separator: "-", maxSplits: 1).last ?? "")) else { continue }
            entries.append(.disk(id, file))
        }
    }

    var count: Int { entries.count }
    var inMemory: Int { entries.reduce(0) { if case .memory = $1 { $0 + 1 } else { $0 } } }

    mutating func append(_ episode: Episode) {
        if let dir = spillDirectory, inMemory >= memoryLimit {
            let file = dir.appendingPathComponent(String(format: "%020.0f-", Date().timeIntervalSince1970 * 1e6) + episode.id.uuidString + ".safetensors")
            do {
                try TensorLock.run { try EpisodeCodec.write(episode, to: file) }
                entries.append(.disk(episode.id, file))
                spilled += 1
                return
            } catch {
                spillFailures += 1
            }
        }
        entries.append(.memory(episode))
        peakInMemory = max(peakInMemory, inMemory)
    }

    var first: Entry? { entries.first }

    /// The episode of an entry (read back from disk for a spilled one).
    static func load(_ entry: Entry) throws -> Episode {
        switch entry {
        case .memory(let e): return e
        case .disk(_, let url): return try TensorLock.run { try EpisodeCodec.read(url) }
        }
    }

    /// Drops an acked (or refused) episode, deleting its spill file.
    mutating func remove(_ id: UUID) {
        for case .disk(let eid, let url) in entries where eid == id { try? FileManager.default.removeItem(at: url) }
        entries.removeAll { $0.id == id }
    }
}
