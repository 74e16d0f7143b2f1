import RobotData
import RobotSim

/// The embodiment/task pairs a learner serves, with each embodiment's native layout.
/// Uploads for anything else are rejected as unknown.
public struct TaskCatalog: Sendable {
    /// Embodiment name → task names.
    public let tasks: [String: [String]]
    public let specs: [String: EmbodimentSpec]

    /// Only the given RobotSim pairs.
    public init(_ pairs: [(EmbodimentKind, TaskKind)]) {
        var tasks: [String: [String]] = [:]
        var specs: [String: EmbodimentSpec] = [:]
        for (e, t) in pairs where t.embodiments.contains(e) {
            if tasks[e.rawValue]?.contains(t.rawValue) != true { tasks[e.rawValue, default: []].append(t.rawValue) }
            specs[e.rawValue] = e.spec
        }
        self.tasks = tasks
        self.specs = specs
    }

    /// Bodies declared by embodiment files (`EmbodimentSpec(yaml:)`), e.g. a real robot or an
    /// outside simulator streaming through the Python client: spec name → its task names.
    public init(specs: [EmbodimentSpec], tasks: [String: [String]]) {
        let byName = Dictionary(specs.map { ($0.name, $0) }) { first, _ in first }
        self.specs = byName
        self.tasks = tasks.filter { byName[$0.key] != nil }
    }

    /// Every pair RobotSim has.
    public static var all: TaskCatalog {
        TaskCatalog(TaskKind.allCases.flatMap { t in t.embodiments.map { ($0, t) } })
    }

    public func spec(for embodiment: String) throws -> EmbodimentSpec {
        guard let spec = specs[embodiment] else { throw IngestError.unknownEmbodiment(embodiment) }
        return spec
    }

    public func contains(embodiment: String, task: String) -> Bool {
        tasks[embodiment]?.contains(task) == true
    }
}
