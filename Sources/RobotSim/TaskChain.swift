/// CALVIN-style instruction chains: several goals in a row in one chain scene
/// (`SceneBuilder(chainSceneFor:seed:)`), with no reset between them.
public struct TaskChain: Sendable, Equatable {
    /// Tasks a chain draws from (what a chain scene holds objects for).
    public static let supportedTasks: [TaskKind] = [.reach, .push, .pickPlace]

    public let length: Int
    /// The pool each goal's task is drawn from (in `supportedTasks` order).
    public let tasks: [TaskKind]

    public init(length: Int, tasks: [TaskKind] = TaskChain.supportedTasks) throws(TaskChainError) {
        guard length > 0 else { throw .nonPositiveLength(length) }
        guard !tasks.isEmpty else { throw .noTasks }
        if let bad = tasks.first(where: { !Self.supportedTasks.contains($0) }) { throw .unsupportedTask(bad.rawValue) }
        self.length = length
        self.tasks = Self.supportedTasks.filter { tasks.contains($0) }
        // Without reach every goal is a once-only push or pick_place.
        if !self.tasks.contains(.reach) && length > self.tasks.count { throw .tooLong(length: length, feasible: self.tasks.count) }
    }

    /// Seed `seed`'s goals in chain scene `layout`, drawn so each is feasible from the state the
    /// previous one leaves: the puck is pushed and a block put on the mat at most once (a second
    /// time would already be done), and a reach never names the object the previous goal ended
    /// at (the hand is already there). Same seed and layout → same goals.
    public func goals(in layout: SceneLayout, seed: UInt64) throws(TaskChainError) -> [TaskGoal] {
        // Its own stream: the scene is the same whatever the chain's length or task pool.
        var rng = SeededGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ 0xC4A1_7C4A)
        let pucks = layout.objects.indices.filter { layout.objects[$0].shape == .cylinder }
        let blocks = layout.objects.indices.filter { layout.objects[$0].shape == .box }
        var goals: [TaskGoal] = [], pushed = false, placed = false
        for k in 0..<length {
            let previous = goals.last?.object
            var options: [(task: TaskKind, objects: [Int])] = []
            for task in tasks {
                switch task {
                case .reach:
                    let named = layout.objects.indices.filter { $0 != previous }
                    if !named.isEmpty { options.append((.reach, named)) }
                case .push where !pushed && layout.zone != nil && !pucks.isEmpty:
                    options.append((.push, [pucks[0]]))
                case .pickPlace where !placed && layout.mat != nil && !blocks.isEmpty:
                    options.append((.pickPlace, blocks))
                default: break
                }
            }
            guard !options.isEmpty else { throw .tooLong(length: length, feasible: k) }
            let (task, objects) = options[rng.int(0..<options.count)]
            let object = objects[rng.int(0..<objects.count)]
            let zone = task == .push ? layout.zone : task == .pickPlace ? layout.mat : nil
            let family = task.instructionFamily
            var text = family[rng.int(0..<family.count)].replacingOccurrences(of: "{obj}", with: layout.objects[object].phrase)
            if let zone { text = text.replacingOccurrences(of: "{zone}", with: zone.color.name) }
            if task == .push { pushed = true }
            if task == .pickPlace { placed = true }
            goals.append(TaskGoal(task: task, object: object, zone: zone, instruction: text))
        }
        return goals
    }
}

/// Why a chain cannot be built.
public enum TaskChainError: Error, Equatable, CustomStringConvertible {
    case nonPositiveLength(Int)
    case noTasks
    case unsupportedTask(String)
    /// The pool runs out of feasible goals (e.g. push only, which can happen once).
    case tooLong(length: Int, feasible: Int)

    public var description: String {
        switch self {
        case let .nonPositiveLength(n): "a chain needs at least one instruction, got \(n)"
        case .noTasks: "a chain needs at least one task to draw from"
        case let .unsupportedTask(t): "task \(t) cannot be chained (chains draw from \(TaskChain.supportedTasks.map(\.rawValue).joined(separator: ", ")))"
        case let .tooLong(n, k): "only \(k) of \(n) instructions are feasible in a row with this task pool (push and pick_place can each happen once)"
        }
    }
}
