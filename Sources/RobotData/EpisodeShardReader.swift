import Foundation

/// A read-only view of episode stores that other processes write: each rank of a
/// data-parallel learner owns one shard of a shared store and reads its peers' shards
/// through this. Only whole files are visible (`EpisodeStore` writes to a hidden temp file
/// and renames), so listing the directory is enough; the peers' SQLite indexes are never
/// opened, and nothing is ever written or moved.
public final class EpisodeShardReader: @unchecked Sendable {
    private var seen: Set<String> = []
    /// Files that could not be decoded (each counted once, then skipped).
    public private(set) var unreadable: [String] = []

    public init() {}

    /// Episodes that appeared in the stores at `roots` (each with an `episodes/` folder, possibly
    /// not made yet) since the last call, by file name per store, except those `known` says
    /// this process already has.
    public func newEpisodes(in roots: [URL], excluding known: (UUID) -> Bool = { _ in false }) -> [Episode] {
        var found: [Episode] = []
        for root in roots {
            let dir = root.appendingPathComponent("episodes")
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { continue }
            for name in names.sorted() where name.hasSuffix(".safetensors") && !name.hasPrefix(".") {
                let key = dir.appendingPathComponent(name).path
                guard !seen.contains(key) else { continue }
                seen.insert(key)
                if let id = UUID(uuidString: String(name.dropLast(".safetensors".count))), known(id) { continue }
                do { found.append(try EpisodeCodec.read(dir.appendingPathComponent(name))) } catch { unreadable.append(key) }
            }
        }
        return found
    }
}
