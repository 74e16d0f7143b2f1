import Foundation
import GRDB

/// One row of the episode index: what queries filter on, without loading the episode.
public struct EpisodeRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "episode"
    public var id: String
    public var embodiment: String
    public var task: String
    public var instruction: String
    public var source: String
    public var success: Bool
    public var steps: Int
    public var interventionSteps: Int
    public var policyVersion: Int
    public var qualityScore: Double?
    public var speed: Double?
    public var createdAt: Double
    public var file: String
    /// CRC-32 (`zlib.crc32`) of the episode file's bytes when it was stored; nil for rows
    /// written before checksums existed (those files are checked structurally only).
    public var checksum: Int64?

    public var uuid: UUID { UUID(uuidString: id)! }
}

/// Filters for `EpisodeStore.records(matching:)`; nil fields match everything.
public struct EpisodeQuery: Sendable {
    public var task: String?
    public var embodiment: String?
    public var source: StepSource?
    public var success: Bool?
    public var minimumQuality: Double?
    public var limit: Int?
    public init(task: String? = nil, embodiment: String? = nil, source: StepSource? = nil, success: Bool? = nil,
                minimumQuality: Double? = nil, limit: Int? = nil) {
        self.task = task; self.embodiment = embodiment; self.source = source; self.success = success
        self.minimumQuality = minimumQuality; self.limit = limit
    }
}

/// Episodes on disk: one safetensors file per episode under `episodes/`, plus a SQLite index.
///
/// Durability: the file is written to a temporary name, fsynced and renamed before the index
/// row is committed, so a crash never leaves a half episode visible; on open, files that
/// made it to disk but not to the index are re-indexed (or quarantined if damaged).
/// Inserting an id that is already stored is a no-op.
public final class EpisodeStore: @unchecked Sendable {
    public let root: URL
    public var episodesDirectory: URL { root.appendingPathComponent("episodes") }
    public var quarantineDirectory: URL { root.appendingPathComponent("quarantine") }
    private let database: DatabaseQueue
    private let lock = NSLock()
    /// Damaged files seen since opening (each quarantined, never loaded).
    public private(set) var corruptFiles: [String] = []

    public init(root: URL) throws {
        self.root = root
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("episodes"), withIntermediateDirectories: true)
        database = try DatabaseQueue(path: root.appendingPathComponent("index.sqlite").path)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: EpisodeRecord.databaseTableName) { t in
                t.primaryKey("id", .text)
                t.column("embodiment", .text).notNull().indexed()
                t.column("task", .text).notNull().indexed()
                t.column("instruction", .text).notNull()
                t.column("source", .text).notNull()
                t.column("success", .boolean).notNull()
                t.column("steps", .integer).notNull()
                t.column("interventionSteps", .integer).notNull()
                t.column("policyVersion", .integer).notNull()
                t.column("qualityScore", .double)
                t.column("speed", .double)
                t.column("createdAt", .double).notNull()
                t.column("file", .text).notNull()
            }
        }
        // Silent damage (a flipped bit inside a float) passes every structural check; the
        // checksum catches it.
        migrator.registerMigration("v2-checksum") { db in
            try db.alter(table: EpisodeRecord.databaseTableName) { t in t.add(column: "checksum", .integer) }
        }
        try migrator.migrate(database)
        try reconcile()
    }

    /// Number of indexed episodes.
    public var count: Int { (try? database.read { try EpisodeRecord.fetchCount($0) }) ?? 0 }

    public func contains(_ id: UUID) throws -> Bool {
        try database.read { try EpisodeRecord.exists($0, key: id.uuidString) }
    }

    /// Validates, persists durably and indexes. Returns false when the id was already stored.
    @discardableResult
    public func insert(_ episode: Episode) throws -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if try contains(episode.id) { return false }
        let file = "\(episode.id.uuidString).safetensors"
        let url = episodesDirectory.appendingPathComponent(file)
        try EpisodeCodec.write(episode, to: url)
        var record = Self.record(for: episode, file: file)
        record.checksum = Int64(CRC32.checksum(try Data(contentsOf: url)))
        try database.write { try record.insert($0) }
        return true
    }

    public func load(_ id: UUID) throws -> Episode {
        guard let record = try database.read({ try EpisodeRecord.fetchOne($0, key: id.uuidString) }) else {
            throw EpisodeError.corrupt(file: id.uuidString, reason: "no such episode in the index")
        }
        do { return try read(record) } catch let error as EpisodeError {
            try quarantine(record)
            throw error
        }
    }

    /// The record's episode, checked against its checksum before it is decoded.
    func read(_ record: EpisodeRecord) throws -> Episode {
        let url = episodesDirectory.appendingPathComponent(record.file)
        if let expected = record.checksum {
            let bytes: Data
            do { bytes = try Data(contentsOf: url) } catch { throw EpisodeError.corrupt(file: record.file, reason: "\(error)") }
            let actual = Int64(CRC32.checksum(bytes))
            guard actual == expected else {
                throw EpisodeError.corrupt(file: record.file, reason: String(format: "checksum %08x, stored %08x", actual, expected))
            }
        }
        return try EpisodeCodec.read(url)
    }

    /// Loads every matching episode, skipping (and quarantining) damaged files instead of failing.
    public func loadAll(matching query: EpisodeQuery = EpisodeQuery()) throws -> (episodes: [Episode], skipped: [EpisodeError]) {
        var episodes: [Episode] = [], skipped: [EpisodeError] = []
        for record in try records(matching: query) {
            do { episodes.append(try read(record)) }
            catch let error as EpisodeError {
                skipped.append(error)
                try quarantine(record)
            }
        }
        return (episodes, skipped)
    }

    public func records(matching query: EpisodeQuery = EpisodeQuery()) throws -> [EpisodeRecord] {
        try database.read { db in
            var request = EpisodeRecord.order(Column("createdAt"), Column("id"))
            if let task = query.task { request = request.filter(Column("task") == task) }
            if let e = query.embodiment { request = request.filter(Column("embodiment") == e) }
            if let s = query.source { request = request.filter(Column("source") == "\(s)") }
            if let s = query.success { request = request.filter(Column("success") == s) }
            if let q = query.minimumQuality { request = request.filter(Column("qualityScore") >= q) }
            if let l = query.limit { request = request.limit(l) }
            return try request.fetchAll(db)
        }
    }

    /// Records a DataQA score for filtering and weighting.
    public func setQualityScore(_ score: Double, for id: UUID) throws {
        try database.write { db in
            try db.execute(sql: "UPDATE episode SET qualityScore = ? WHERE id = ?", arguments: [score, id.uuidString])
        }
    }

    // MARK: recovery

    static func record(for episode: Episode, file: String) -> EpisodeRecord {
        EpisodeRecord(id: episode.id.uuidString, embodiment: episode.embodiment, task: episode.task,
                      instruction: episode.instruction, source: "\(episode.dominantSource)", success: episode.success,
                      steps: episode.stepCount, interventionSteps: episode.interventionCount,
                      policyVersion: episode.policyVersion, qualityScore: nil, speed: episode.speed.map(Double.init),
                      createdAt: episode.createdAt.timeIntervalSinceReferenceDate, file: file)
    }

    /// Indexes episode files that reached disk but not the index (a crash between the two),
    /// quarantines damaged ones, and drops leftovers of interrupted writes.
    private func reconcile() throws {
        let fm = FileManager.default
        let names = try fm.contentsOfDirectory(atPath: episodesDirectory.path)
        let indexed = Set(try database.read { try String.fetchAll($0, sql: "SELECT file FROM episode") })
        for name in names.sorted() {
            let url = episodesDirectory.appendingPathComponent(name)
            if name.hasPrefix(".") && name.contains(".tmp") {
                try? fm.removeItem(at: url)
                continue
            }
            guard name.hasSuffix(".safetensors"), !indexed.contains(name) else { continue }
            do {
                let episode = try EpisodeCodec.read(url)
                var record = Self.record(for: episode, file: name)
                record.checksum = Int64(CRC32.checksum(try Data(contentsOf: url)))
                try database.write { try record.insert($0) }
            } catch {
                try moveToQuarantine(name)
            }
        }
    }

    private func quarantine(_ record: EpisodeRecord) throws {
        try database.write { _ = try EpisodeRecord.deleteOne($0, key: record.id) }
        try moveToQuarantine(record.file)
    }

    private func moveToQuarantine(_ file: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: quarantineDirectory, withIntermediateDirectories: true)
        let target = quarantineDirectory.appendingPathComponent(file)
        try? fm.removeItem(at: target)
        try? fm.moveItem(at: episodesDirectory.appendingPathComponent(file), to: target)
        corruptFiles.append(file)
    }
}
