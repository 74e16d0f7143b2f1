import Foundation

/// How far an episode got toward its goal, from simulator state: a failed pick/place that
/// grasped the block but dropped it is not the same failure as one that never reached it.
/// `update` is called after every control step and keeps each milestone once it held.
public struct TaskMilestones: Sendable {
    public enum Milestone: String, CaseIterable, Codable, Sendable {
        /// A hand came near the target object: within 3 cm of its centre (push: 5 cm, as the
        /// hand pushes from behind the puck's rim, the operator's closest is 4 cm; reach: 10 cm,
        /// as its success is 5 cm).
        case nearObject = "near_object"
        /// The target object moved 2 cm or more (horizontally) from where the layout placed it.
        case moved
        /// A gripper held the target object (closed on it, its fingers around its centre).
        case grasped
        /// Held 3 cm or more above where the layout placed it.
        case lifted
        /// The object's centre was over the goal area: inside the push circle, over the mat,
        /// within 2 cm of the base block's axis (stack).
        case overGoal = "over_goal"
        /// The task's success predicate held.
        case succeeded
    }

    /// The milestones a task has, in the order an operator passes them (sort and the drawer
    /// have no single target object: success only).
    public static func milestones(for task: TaskKind) -> [Milestone] {
        switch task {
        case .reach: return [.nearObject, .succeeded]
        case .push: return [.nearObject, .moved, .overGoal, .succeeded]
        case .pickPlace, .stack: return [.nearObject, .grasped, .lifted, .overGoal, .succeeded]
        case .sort, .drawer: return [.succeeded]
        }
    }

    public let goal: TaskGoal
    public let milestones: [Milestone]
    /// The control step (the environment's `stepCount`) each milestone first held.
    public private(set) var firstStep: [Milestone: Int] = [:]
    /// The closest any hand (TCP) came to the target object's centre, metres (nil: no target
    /// object, or no update yet): how near a failure got, where `near_object` is yes or no.
    public private(set) var closestApproach: Double?
    let start: SIMD3<Double>?

    /// For the environment's current goal; the target object's start is where the layout
    /// places it (so this may be made before `reset()`; a chain's later goals would need theirs).
    public init(environment env: RobotEnvironment) {
        goal = env.goal
        milestones = Self.milestones(for: goal.task)
        start = env.layout.objects.indices.contains(goal.object) ? env.layout.objects[goal.object].position : nil
    }

    public var reached: Set<Milestone> { Set(firstStep.keys) }

    public mutating func update(_ env: RobotEnvironment) {
        // The nearest hand's distance, read once: `near_object` and `closestApproach` share it.
        let hand = start == nil ? Double.infinity
            : env.arms.map { norm($0.tcpPosition(env.simulation) - env.objectPosition(goal.object)) }.min() ?? .infinity
        if start != nil { closestApproach = min(closestApproach ?? .infinity, hand) }
        for m in milestones where firstStep[m] == nil && holds(m, env, handDistance: hand) { firstStep[m] = env.stepCount }
    }

    func holds(_ m: Milestone, _ env: RobotEnvironment, handDistance: Double) -> Bool {
        guard let start else { return m == .succeeded && env.isSuccess(goal) }
        let i = goal.object, o = env.objectPosition(i)
        switch m {
        case .nearObject:
            return handDistance < (goal.task == .reach ? 0.10 : goal.task == .push ? 0.05 : 0.03)
        case .moved:
            return hypot(o.x - start.x, o.y - start.y) >= 0.02
        case .grasped:
            return env.arms.indices.contains { env.isHolding(arm: $0, object: i) }
        case .lifted:
            return o.z >= start.z + 0.03 && env.arms.indices.contains { env.isHolding(arm: $0, object: i) }
        case .overGoal:
            if goal.task == .stack {
                guard let b = env.layout.second else { return false }
                let base = env.objectPosition(b)
                return hypot(o.x - base.x, o.y - base.y) < 0.02
            }
            guard let zone = goal.zone else { return false }
            if goal.task == .push { return hypot(o.x - zone.center.x, o.y - zone.center.y) < zone.radius }
            return abs(o.x - zone.center.x) < zone.radius && abs(o.y - zone.center.y) < zone.radius
        case .succeeded:
            return env.isSuccess(goal)
        }
    }
}

extension RobotEnvironment {
    /// Arm `k`'s gripper holds object `i`: its TCP within 2 cm of the object's centre
    /// horizontally and 3 cm vertically, fingers closed to about the object's width.
    public func isHolding(arm k: Int, object i: Int) -> Bool {
        let arm = arms[k]
        let tcp = arm.tcpPosition(simulation), o = objectPosition(i)
        let w = 2 * layout.objects[i].halfSize
        let width = arm.gripperWidth(simulation)
        return hypot(tcp.x - o.x, tcp.y - o.y) < 0.02 && abs(tcp.z - o.z) < 0.03 && width < w + 0.004 && width > w - 0.015
    }
}
