import Foundation
import RobotData

/// Demonstrations of one body read from an episode store, e.g. the store of a learner that a
/// bridge (`bridges/metaworld`) filled: the successful episodes in which every step came from
/// the operator or a demo (no policy step), with camera frames at the model's image size.
public enum StoredDemos {
    public enum LoadError: Error, Equatable, CustomStringConvertible {
        /// The store has no usable demo of the body's `tasks` (nil: any task; `found`: the
        /// store's episodes of that body at all).
        case noDemos(embodiment: String, tasks: [String]?, found: Int, imageSize: Int)

        public var description: String {
            switch self {
            case .noDemos(let e, let tasks, let found, let side):
                let of = tasks.map { " of tasks \($0.joined(separator: ","))" } ?? ""
                return "StoredDemos.LoadError.noDemos: none of the store's \(found) \(e) episodes is a successful all-operator episode\(of) with \(side)×\(side) camera frames"
            }
        }
    }

    /// Whether `episode` is a demonstration the VLA can learn from at `imageSize`.
    public static func isDemo(_ episode: Episode, imageSize: Int) -> Bool {
        episode.success && episode.stepCount > 0 && !episode.sources.contains(.policy) && !episode.cameras.isEmpty
            && episode.cameras.values.allSatisfy { $0.height == imageSize && $0.width == imageSize }
    }

    /// At most `perTask` demos per task of `embodiment` (all its tasks when `tasks` is nil),
    /// oldest first; throws `noDemos` when there are none.
    public static func load(store url: URL, embodiment: String, tasks: [String]? = nil, imageSize: Int,
                            perTask: Int = .max) throws -> [Episode] {
        let store = try EpisodeStore(root: url)
        let all = try store.loadAll(matching: EpisodeQuery(embodiment: embodiment, success: true)).episodes
        let found = try store.records(matching: EpisodeQuery(embodiment: embodiment)).count
        var demos: [Episode] = []
        let byTask = Dictionary(grouping: all.filter { isDemo($0, imageSize: imageSize) }, by: \.task)
        for task in (tasks ?? byTask.keys.sorted()) { demos += (byTask[task] ?? []).prefix(perTask) }
        guard !demos.isEmpty else { throw LoadError.noDemos(embodiment: embodiment, tasks: tasks, found: found, imageSize: imageSize) }
        return demos
    }
}
