import Foundation
import RobotData

/// A seeded MuJoCo scene with one embodiment and one language task: the loop a policy (or the
/// scripted operator) runs in.
///
/// ```swift
/// let env = try RobotEnvironment(embodiment: .arm7, task: .pickPlace, seed: 3)
/// var obs = env.reset()
/// while true {
///     let r = try env.step(nativeAction: env.expertAction())
///     obs = r.observation
///     if r.done { break }
/// }
/// ```
/// Same seed → same scene, same states, same pixels. Not thread-safe (owns an OSMesa context,
/// see `OffscreenRenderer`): use one environment per thread.
public final class RobotEnvironment {
    public let embodiment: EmbodimentKind
    /// The current goal's task (the only one, outside a chain).
    public var task: TaskKind { goal.task }
    /// The goals in order: one for a single task, a chain's several (`TaskChain`).
    public let goals: [TaskGoal]
    /// The chain this environment runs (nil: a single task).
    public let chain: TaskChain?
    /// Which goal is current; `beginNextGoal()` moves on without a reset.
    public private(set) var goalIndex = 0
    public var goal: TaskGoal { goals[goalIndex] }
    /// `stepCount` when the current goal began (its step limit counts from here).
    public private(set) var goalStartStep = 0
    public let seed: UInt64
    public let config: EnvironmentConfig
    public let spec: EmbodimentSpec
    public let layout: SceneLayout
    public let model: MuJoCoModel
    public let simulation: MuJoCoSimulation
    let scratch: MuJoCoSimulation
    let arms: [ArmKinematics]
    let objectBodies: [Int]
    let objectGeoms: [Int]
    let drawerJoint: Int?
    let hookSite: Int?
    let torsoActuator: Int?
    let torsoQpos: Int?
    public let cameraNames: [String]
    let cameraIDs: [Int]
    private var renderer: OffscreenRenderer?
    private var initialState: [Double] = []
    public private(set) var stepCount = 0
    /// `.arm6` only: the commanded end-effector pose that deltas accumulate on (reset to the
    /// measured pose at `reset()`, and re-anchored to it if tracking falls > 5 cm behind).
    public private(set) var endEffectorTarget: (position: SIMD3<Double>, rotation: Mat3)? = nil
    /// The built-in clean operator used by `expertAction()`.
    public let expert: ScriptedExpert

    /// The current goal's instruction.
    public var instruction: String { goal.instruction }
    /// Control steps the current goal may take (`config.stepLimit` or the goal's).
    public var stepLimit: Int { config.stepLimit ?? goal.stepLimit }
    /// "Num hands: 1. Control mode: joint. <instruction>"
    public var prompt: String { "\(spec.promptPrefix) \(instruction)" }

    public convenience init(embodiment: EmbodimentKind, task: TaskKind, seed: UInt64, config: EnvironmentConfig = EnvironmentConfig()) throws {
        guard task.embodiments.contains(embodiment) else {
            throw EnvironmentError.unsupported(embodiment: embodiment.rawValue, task: task.rawValue)
        }
        try self.init(embodiment: embodiment, builder: SceneBuilder(embodiment: embodiment, task: task, seed: seed, maxDistractors: config.maxDistractors),
                      chain: nil, seed: seed, config: config)
    }

    /// Seed `seed`'s chain scene with `chain`'s goals (same seed → same scene and goals).
    public convenience init(embodiment: EmbodimentKind, chain: TaskChain, seed: UInt64, config: EnvironmentConfig = EnvironmentConfig()) throws {
        try self.init(embodiment: embodiment, builder: SceneBuilder(chainSceneFor: embodiment, seed: seed), chain: chain, seed: seed, config: config)
    }

    private init(embodiment: EmbodimentKind, builder: SceneBuilder, chain: TaskChain?, seed: UInt64, config: EnvironmentConfig) throws {
        self.embodiment = embodiment
        self.seed = seed
        self.config = config
        self.chain = chain
        spec = embodiment.spec
        let layout = builder.layout()
        self.layout = layout
        goals = try chain.map { try $0.goals(in: layout, seed: seed) }
            ?? [TaskGoal(task: builder.task, object: layout.target, zone: layout.zone, instruction: layout.instruction)]
        let model = try MuJoCoModel(xml: builder.xml(for: layout, imageSize: (config.imageWidth, config.imageHeight),
                                                     samples: config.multisamples))
        self.model = model
        simulation = MuJoCoSimulation(model: model)
        scratch = MuJoCoSimulation(model: model)
        arms = try embodiment.arms.map { try ArmKinematics(model: model, layout: $0) }
        objectBodies = try layout.objects.map { try model.id(of: .body, $0.name) }
        objectGeoms = try layout.objects.map { try model.id(of: .geom, "\($0.name)_geom") }
        drawerJoint = model.optionalID(of: .joint, "drawer_slide")
        hookSite = model.optionalID(of: .site, "hook")
        torsoActuator = model.optionalID(of: .actuator, "torso_yaw")
        torsoQpos = model.optionalID(of: .joint, "torso_yaw").map { model.qposAddress(joint: $0) }
        let cameraNames = ["scene"] + embodiment.arms.map { $0.wristCamera }
        self.cameraNames = cameraNames
        cameraIDs = try cameraNames.map { try model.id(of: .camera, $0) }
        expert = ScriptedExpert()
        // Initial state: arms at home, grippers open, let objects settle.
        for arm in arms {
            for (i, a) in arm.qposAddress.enumerated() { simulation.raw.pointee.qpos[a] = arm.layout.home[i] }
            for a in arm.fingerQpos { simulation.raw.pointee.qpos[a] = ArmLayout.fingerTravel }
            arm.command(simulation, joints: arm.layout.home, gripper: 1)
        }
        simulation.forward()
        simulation.step(50)
        simulation.raw.pointee.time = 0
        initialState = simulation.state()
    }

    /// The renderer, created on first use (on the calling thread's GL).
    func sceneRenderer() throws -> OffscreenRenderer {
        if let renderer { return renderer }
        let r = try OffscreenRenderer(model: model, maxWidth: config.imageWidth, maxHeight: config.imageHeight, fastFlags: config.fastRender)
        renderer = r
        return r
    }

    /// Restore the seed's initial state and return the first observation.
    @discardableResult
    public func reset() -> Observation {
        simulation.setState(initialState)
        for arm in arms { arm.command(simulation, joints: arm.layout.home, gripper: 1) }
        if let torsoActuator { simulation.setControl(torsoActuator, 0) }
        stepCount = 0
        goalIndex = 0
        goalStartStep = 0
        expert.reset()
        if embodiment == .arm6 {
            endEffectorTarget = (arms[0].tcpPosition(simulation), arms[0].tcpRotation(simulation))
        }
        return observe()
    }

    /// Apply a native action for one control step (`config.substeps` physics steps).
    public func step(nativeAction a: [Float]) throws -> StepResult {
        guard a.count == spec.actionDimension else {
            throw EnvironmentError.wrongActionLength(expected: spec.actionDimension, got: a.count)
        }
        if let bad = a.firstIndex(where: { !$0.isFinite }) { throw EnvironmentError.nonFiniteAction(index: bad) }
        let d = a.map(Double.init)
        switch embodiment {
        case .arm7:
            arms[0].command(simulation, joints: Array(d[0..<7]), gripper: d[7])
        case .arm6:
            let arm = arms[0]
            let dp = clampNorm(SIMD3(d[0], d[1], d[2]), EmbodimentKind.maxDeltaPosition)
            let dr = clampNorm(SIMD3(d[3], d[4], d[5]), EmbodimentKind.maxDeltaRotation)
            let measured = (arm.tcpPosition(simulation), arm.tcpRotation(simulation))
            var base = endEffectorTarget ?? measured
            if norm(base.0 - measured.0) > 0.05 || norm(base.1.orientationError(to: measured.1)) > 0.3 { base = measured }
            let target = base.0 + dp
            let rotation = Mat3.fromRPY(dr) * base.1
            endEffectorTarget = (target, rotation)
            let q = arm.solveIK(scratch: scratch, qpos: simulation.qpos, position: target, rotation: rotation, iterations: 10)
            arm.command(simulation, joints: q, gripper: d[6])
        case .bimanual:
            if let torsoActuator { simulation.setControl(torsoActuator, min(max(d[0], -0.6), 0.6)) }
            arms[0].command(simulation, joints: Array(d[1..<8]), gripper: d[8])
            arms[1].command(simulation, joints: Array(d[9..<16]), gripper: d[16])
        }
        simulation.step(config.substeps)
        // mj_step leaves positions computed *before* its integration: refresh them so the
        // observation (and any later query) matches qpos.
        simulation.forward()
        stepCount += 1
        let success = isSuccess()
        let truncated = !success && stepCount - goalStartStep >= stepLimit
        return StepResult(observation: observe(), reward: success ? 1 : 0, done: success || truncated,
                          success: success, truncated: truncated)
    }

    /// Everything needed to resume exactly from this moment (physics state, step count and
    /// the commanded end-effector pose of delta-controlled arms).
    public struct Snapshot: Sendable {
        public let physics: [Double]
        public let stepCount: Int
        let endEffectorTarget: (position: SIMD3<Double>, rotation: Mat3)?
        let goalIndex: Int
        let goalStartStep: Int
    }

    public func snapshot() -> Snapshot {
        Snapshot(physics: simulation.state(), stepCount: stepCount, endEffectorTarget: endEffectorTarget,
                 goalIndex: goalIndex, goalStartStep: goalStartStep)
    }

    public func restore(_ s: Snapshot) {
        simulation.setState(s.physics)
        stepCount = s.stepCount
        endEffectorTarget = s.endEffectorTarget
        goalIndex = s.goalIndex
        goalStartStep = s.goalStartStep
    }

    /// Moves a chain on to its next goal from the current state (no reset) and returns the
    /// observation with the new instruction; nil after the last goal.
    public func beginNextGoal() -> Observation? {
        guard goalIndex + 1 < goals.count else { return nil }
        goalIndex += 1
        goalStartStep = stepCount
        // The operator's settle counters belong to the previous goal.
        expert.reset()
        return observe()
    }

    /// The clean scripted operator's action for the current state (HG-DAgger: callable from
    /// any state, e.g. after a policy drove the robot somewhere).
    public func expertAction() -> [Float] { expert.action(for: self) }

    /// Native proprio state.
    public func state() -> [Float] {
        var s: [Double] = []
        switch embodiment {
        case .arm7, .arm6:
            let arm = arms[0]
            let q = arm.tcpPosition(simulation)
            let quat = simulation.siteQuaternion(arm.tcpSite)
            s = arm.joints(simulation) + [arm.gripperOpening(simulation), q.x, q.y, q.z, quat[0], quat[1], quat[2], quat[3]]
            if embodiment == .arm6 {
                let rpy = arm.tcpRotation(simulation).rpy
                s += [rpy.x, rpy.y, rpy.z]
            }
        case .bimanual:
            s = [torsoQpos.map { simulation.raw.pointee.qpos[$0] } ?? 0]
            for arm in arms { s += arm.joints(simulation) + [arm.gripperOpening(simulation)] }
        }
        return s.map(Float.init)
    }

    /// Render every camera ([H, W, 3] uint8 each).
    public func renderCameras() throws -> [[UInt8]] {
        let r = try sceneRenderer()
        return try cameraIDs.map { try r.render(simulation, camera: $0, width: config.imageWidth, height: config.imageHeight) }
    }

    public func observe() -> Observation {
        let images = config.renderImages ? ((try? renderCameras()) ?? []) : []
        return Observation(cameraNames: cameraNames, images: images, imageWidth: config.imageWidth,
                           imageHeight: config.imageHeight, state: state(), instruction: instruction, step: stepCount)
    }

    // MARK: unified space

    public func nativeToUnified(_ native: [Float]) throws -> [Float] { try spec.unifiedAction(native) }
    public func unifiedToNative(_ unified: [Float]) throws -> [Float] { try spec.nativeAction(unified) }
    public var actionMask: [Float] { spec.actionMask }

    // MARK: task state

    public func objectPosition(_ i: Int) -> SIMD3<Double> { simulation.bodyPosition(objectBodies[i]) }

    /// Each arm's tool centre point (between the fingers), world frame.
    public var gripperPositions: [SIMD3<Double>] { arms.map { $0.tcpPosition(simulation) } }

    /// Where world point `p` appears in camera `name`'s image (pinhole, the camera's fovy):
    /// (x, y) ∈ [−1, 1]² at the image edges, x to the right, y down like the image rows; nil
    /// when the point is behind the camera or the camera is unknown.
    public func imagePoint(_ p: SIMD3<Double>, camera name: String) -> SIMD2<Double>? {
        guard let k = cameraNames.firstIndex(of: name) else { return nil }
        let id = cameraIDs[k]
        let r = simulation.cameraRotation(id), v = p - simulation.cameraPosition(id)
        // Camera-frame coordinates: the rotation's columns dotted with v.
        let right = r.r0.x * v.x + r.r1.x * v.y + r.r2.x * v.z
        let up = r.r0.y * v.x + r.r1.y * v.y + r.r2.y * v.z
        let depth = -(r.r0.z * v.x + r.r1.z * v.y + r.r2.z * v.z)
        guard depth > 1e-6 else { return nil }
        let focal = 1 / tan(model.raw.pointee.cam_fovy[id] * .pi / 360)
        let aspect = Double(config.imageHeight) / Double(config.imageWidth)
        return SIMD2(focal * aspect * right / depth, -focal * up / depth)
    }

    /// The task's target object in the scene camera (what Green-VLA's JPM points at).
    public var targetImagePoint: SIMD2<Double>? {
        layout.objects.indices.contains(goal.object) ? imagePoint(objectPosition(goal.object), camera: "scene") : nil
    }
    /// The goal zone's centre in the scene camera (pick/place: where the object goes; push:
    /// the circle), nil without a zone or off camera.
    public var zoneImagePoint: SIMD2<Double>? { goal.zone.flatMap { imagePoint($0.center, camera: "scene") } }
    func objectYaw(_ i: Int) -> Double {
        let r = simulation.bodyRotation(objectBodies[i])
        return atan2(r.r1.x, r.r0.x)
    }
    public var drawerOpening: Double { drawerJoint.map { simulation.jointPosition($0) } ?? 0 }
    var hookPosition: SIMD3<Double> { hookSite.map { simulation.sitePosition($0) } ?? .zero }

    /// No gripper is holding object `i` (every TCP is away from it or its gripper is open).
    func released(_ i: Int) -> Bool {
        let o = objectPosition(i)
        let w = 2 * layout.objects[i].halfSize
        return arms.allSatisfy { arm in
            norm(arm.tcpPosition(simulation) - o) > 0.05 || arm.gripperWidth(simulation) > w + 0.012
        }
    }

    func inBin(_ i: Int, _ bin: SceneBin) -> Bool {
        let o = objectPosition(i)
        return abs(o.x - bin.center.x) < bin.innerHalf && abs(o.y - bin.center.y) < bin.innerHalf && o.z < 0.05
    }

    /// The current goal's success predicate, from simulator state only.
    public func isSuccess() -> Bool { isSuccess(goal) }

    /// Whether `goal` holds in the current simulator state (its object and area; sort, stack
    /// and the drawer read theirs from the layout).
    public func isSuccess(_ goal: TaskGoal) -> Bool {
        switch goal.task {
        case .reach:
            let o = objectPosition(goal.object)
            return arms.contains { norm($0.tcpPosition(simulation) - o) < 0.05 }
        case .push:
            guard let zone = goal.zone else { return false }
            let o = objectPosition(goal.object)
            return hypot(o.x - zone.center.x, o.y - zone.center.y) < zone.radius - 0.01 && o.z < 0.04
        case .pickPlace:
            guard let zone = goal.zone else { return false }
            let o = objectPosition(goal.object)
            return abs(o.x - zone.center.x) < zone.radius && abs(o.y - zone.center.y) < zone.radius && o.z < 0.03
                && released(goal.object)
        case .sort:
            return layout.bins.enumerated().allSatisfy { k, bin in
                layout.objects.indices.filter { layout.objects[$0].color == bin.color }.allSatisfy { inBin($0, bin) && released($0) }
            }
        case .stack:
            guard let b = layout.second else { return false }
            let top = objectPosition(goal.object), base = objectPosition(b)
            let dz = top.z - base.z
            return hypot(top.x - base.x, top.y - base.y) < 0.02 && dz > 0.032 && dz < 0.048 && base.z < 0.03
                && released(goal.object)
        case .drawer:
            return drawerOpening >= SceneDrawer.openThreshold
        }
    }
}

func clampNorm(_ x: SIMD3<Double>, _ limit: Double) -> SIMD3<Double> {
    let n = norm(x)
    return n > limit ? x * (limit / n) : x
}

extension RobotEnvironment {
    /// One line of task-relevant state for logs: objects, TCPs, gripper widths.
    public func debugSummary() -> String {
        func p(_ x: SIMD3<Double>) -> String { String(format: "(%.3f %.3f %.3f)", x.x, x.y, x.z) }
        var parts = layout.objects.indices.map { "o\($0)=\(p(objectPosition($0)))" }
        for (k, arm) in arms.enumerated() {
            parts.append("tcp\(k)=\(p(arm.tcpPosition(simulation))) w=\(String(format: "%.3f", arm.gripperWidth(simulation))) yaw=\(String(format: "%.2f", arm.handYaw(simulation)))")
        }
        if drawerJoint != nil { parts.append(String(format: "drawer=%.3f", drawerOpening)) }
        return parts.joined(separator: " ")
    }
}
