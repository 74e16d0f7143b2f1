import Foundation

/// A filtered dataset view: which episodes pass, with the thresholds used. No frames are copied;
/// consumers load the listed ids from the same `EpisodeStore`.
public struct FilteredView: Codable, Sendable, Equatable {
    public var dataset: String
    public var thresholds: QualityThresholds
    public var episodeIDs: [UUID]
    /// Rejected id → failed thresholds.
    public var rejected: [String: [String]]
    public var createdAt: Date

    public init(dataset: String, thresholds: QualityThresholds, table: [EpisodeQuality], createdAt: Date = Date()) {
        self.dataset = dataset
        self.thresholds = thresholds
        let failures = table.map { ($0.id, thresholds.failures($0)) }
        episodeIDs = failures.filter { $0.1.isEmpty }.map(\.0)
        rejected = Dictionary(uniqueKeysWithValues: failures.filter { !$0.1.isEmpty }.map { ($0.0.uuidString, $0.1) })
        self.createdAt = createdAt
    }

    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try encoder.encode(self).write(to: url, options: .atomic)
    }

    public static func read(from url: URL) throws -> FilteredView {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(FilteredView.self, from: Data(contentsOf: url))
    }
}
