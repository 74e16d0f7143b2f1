import RobotData
import RobotSim

/// The embodiment/task pairs a learner serves, with each embodiment's native layout.
/// Uploads for anything else are rejected as unknown.
public struct TaskCatalog: Sendable {
    /// Embodiment name → task names.
    public let tasks: [String: [String]]
    public let specs: [String: EmbodimentSpec]
    /// Embodiment name → the camera names its episodes must carry (an embodiment file's
    /// `cameras:`); embodiments not listed may upload any cameras.
    public var cameras: [String: [String]] = [:]
    /// When set (a learner training a VLA), every uploaded camera must be this square side.
    public var imageSide: Int?

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

    /// Refuses cameras that do not match the embodiment's declaration or the image side.
    public func checkCameras(_ cameras: [(name: String, height: Int, width: Int)], embodiment: String) throws {
        if let declared = self.cameras[embodiment], Set(declared) != Set(cameras.map(\.name)) {
            throw IngestError.shape("cameras [\(cameras.map(\.name).sorted().joined(separator: ", "))], \(embodiment) declares [\(declared.sorted().joined(separator: ", "))]")
        }
        if let side = imageSide, let c = cameras.first(where: { $0.height != side || $0.width != side }) {
            throw IngestError.shape("camera \(c.name) is \(c.height)×\(c.width), the learner's model reads \(side)×\(side)")
        }
    }

    public func contains(embodiment: String, task: String) -> Bool {
        tasks[embodiment]?.contains(task) == true
    }
}
