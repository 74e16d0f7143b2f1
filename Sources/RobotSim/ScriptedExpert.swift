import Foundation

/// The simulated human operator: per task a phase machine over end-effector goals, turned
/// into native actions by IK from MuJoCo Jacobians (damped least squares).
///
/// Phases are re-derived from the simulator state at every call (where is the object, is it
/// held, is the drawer hooked), so the operator can take over from *any* state (HG-DAgger),
/// e.g. after a policy drove the robot somewhere; only tiny settle counters are remembered.
public final class ScriptedExpert {
    public var profile: OperatorProfile
    private var rng: SeededGenerator
    private var heldSteps = 0
    private var slowLeft = 0
    private var pauseLeft = 0
    private var tick = 0
    private var queue: [[Float]] = []

    public init(profile: OperatorProfile = .clean) {
        self.profile = profile
        rng = SeededGenerator(seed: profile.seed ^ 0xA5A5_5A5A)
    }

    public func reset() {
        heldSteps = 0; slowLeft = 0; pauseLeft = 0; tick = 0; queue = []
        rng = SeededGenerator(seed: profile.seed ^ 0xA5A5_5A5A)
    }

    /// One arm's goal for this step.
    struct ArmGoal {
        var position: SIMD3<Double>
        var yaw: Double
        var gripper: Double
        /// Max hand travel this step, metres.
        var maxStep: Double = 0.025
    }

    /// The native action for the environment's current state.
    public func action(for env: RobotEnvironment) -> [Float] {
        tick += 1
        var goals = goals(env)
        // Imperfections act on the hand goals.
        var speed = profile.speedScale
        if pauseLeft > 0 { pauseLeft -= 1 } else if profile.hesitationProbability > 0, rng.chance(profile.hesitationProbability) {
            pauseLeft = profile.hesitationSteps
        }
        if slowLeft > 0 { slowLeft -= 1; speed *= profile.slowFactor } else if profile.slowProbability > 0, rng.chance(profile.slowProbability) {
            slowLeft = profile.slowSteps
        }
        for k in goals.indices {
            guard var g = goals[k] else { continue }
            let tcp = env.arms[k].tcpPosition(env.simulation)
            if pauseLeft > 0 {
                g.position = tcp
                g.gripper = env.arms[k].gripperOpening(env.simulation) > 0.5 ? 1 : 0
            }
            g.maxStep *= speed
            var offset = SIMD3<Double>(0, 0, 0)
            if profile.noise > 0 { offset += SIMD3(rng.gaussian(), rng.gaussian(), 0.5 * rng.gaussian()) * profile.noise }
            if profile.tremorAmplitude > 0 {
                let t = Double(tick) * 0.05 * 2 * .pi * profile.tremorHz
                offset += SIMD3(sin(t), cos(1.3 * t), 0.3 * sin(0.7 * t)) * profile.tremorAmplitude
            }
            g.position += offset
            goals[k] = g
        }
        let a = nativeAction(env, goals)
        guard profile.delaySteps > 0 else { return a }
        queue.append(a)
        if queue.count > profile.delaySteps { return queue.removeFirst() }
        return queue.first!
    }

    // MARK: goals → native actions

    func nativeAction(_ env: RobotEnvironment, _ goals: [ArmGoal?]) -> [Float] {
        let sim = env.simulation
        var out: [Double] = []
        switch env.embodiment {
        case .arm7, .bimanual:
            if env.embodiment == .bimanual { out.append(0) }
            for (k, arm) in env.arms.enumerated() {
                let tcp = arm.tcpPosition(sim)
                let g: ArmGoal
                if let goal = goals[k] {
                    g = goal
                } else if tcp.z > 0.15 {
                    // An idle arm eases home; one left low among the objects (e.g. by a chain's
                    // previous goal) first lifts clear: a jump home from there would fling them.
                    out += zip(arm.joints(sim), arm.layout.home).map { q, home in q + min(max(home - q, -0.1), 0.1) } + [1]
                    continue
                } else {
                    g = ArmGoal(position: SIMD3(tcp.x, tcp.y, 0.2), yaw: arm.handYaw(sim), gripper: 1, maxStep: 0.02)
                }
                let target = tcp + clampNorm(g.position - tcp, g.maxStep)
                let rot = limitedRotation(from: arm.tcpRotation(sim), to: topDownRotation(yaw: g.yaw), maxAngle: 0.2)
                let q = arm.solveIK(scratch: env.scratch, qpos: sim.qpos, position: target, rotation: rot)
                out += q + [g.gripper]
            }
        case .arm6:
            let arm = env.arms[0]
            let g = goals[0] ?? ArmGoal(position: SIMD3(0.5, 0, 0.25), yaw: 0, gripper: 1)
            // Desired pose one step ahead of the measured hand, expressed as a delta on the
            // environment's commanded end-effector target (what deltas accumulate on).
            let tcp = arm.tcpPosition(sim)
            let cur = arm.tcpRotation(sim)
            let desired = tcp + clampNorm(g.position - tcp, g.maxStep)
            let desiredRotation = limitedRotation(from: cur, to: topDownRotation(yaw: g.yaw), maxAngle: 0.2)
            var commanded = env.endEffectorTarget ?? (tcp, cur)
            if norm(commanded.position - tcp) > 0.05 || norm(commanded.rotation.orientationError(to: cur)) > 0.3 { commanded = (tcp, cur) }
            let dp = clampNorm(desired - commanded.position, EmbodimentKind.maxDeltaPosition)
            let rpy = (desiredRotation * commanded.rotation.transposed).rpy
            out = [dp.x, dp.y, dp.z, rpy.x, rpy.y, rpy.z, g.gripper]
        }
        return out.map(Float.init)
    }

    /// Rotation at most `maxAngle` from `from` toward `to`.
    func limitedRotation(from: Mat3, to: Mat3, maxAngle: Double) -> Mat3 {
        let w = from.orientationError(to: to)
        return Mat3.exp(clampNorm(w, maxAngle)) * from
    }

    // MARK: task phase machines

    func goals(_ env: RobotEnvironment) -> [ArmGoal?] {
        var goals = [ArmGoal?](repeating: nil, count: env.arms.count)
        let layout = env.layout
        func armFor(y: Double) -> Int { env.arms.count == 1 ? 0 : (y >= 0 ? 0 : 1) }
        // The arm already holding object i keeps it; otherwise the arm on the side of `y`.
        func armFor(object i: Int, y: Double) -> Int {
            env.arms.indices.first { isHeld(env, $0, i) } ?? armFor(y: y)
        }
        let target = env.goal.object
        switch env.task {
        case .reach:
            let o = env.objectPosition(target)
            let k = armFor(y: o.y)
            goals[k] = reach(env, k, object: target)
        case .push:
            // Fixed per goal (from the layout) so the pushing arm never flip-flops.
            let zone = env.goal.zone!
            let k = armFor(y: (layout.objects[target].position.y + zone.center.y) / 2)
            goals[k] = push(env, k, object: target, goal: zone.center)
        case .pickPlace:
            let o = env.objectPosition(target), z = env.goal.zone!.center
            let k = armFor(object: target, y: (o.y + z.y) / 2)
            goals[k] = pickAndPlace(env, k, object: target, goal: SIMD3(z.x, z.y, 0.022), done: env.isSuccess())
        case .stack:
            let base = env.objectPosition(layout.second!)
            let o = env.objectPosition(target)
            let k = armFor(object: target, y: (o.y + base.y) / 2)
            goals[k] = pickAndPlace(env, k, object: target, goal: base + SIMD3(0, 0, 0.042), done: env.isSuccess())
        case .sort:
            // First block not yet in its bin (a held block first).
            var pending: (Int, SceneBin)? = nil
            for (i, o) in layout.objects.enumerated() {
                guard let bin = layout.bins.first(where: { $0.color == o.color }) else { continue }
                if !(env.inBin(i, bin) && env.released(i)) {
                    if pending == nil || isHeld(env, armFor(y: bin.center.y), i) { pending = (i, bin) }
                }
            }
            if let (i, bin) = pending {
                let k = armFor(object: i, y: bin.center.y)
                goals[k] = pickAndPlace(env, k, object: i, goal: SIMD3(bin.center.x, bin.center.y, 0.045), done: false)
            } else {
                let k = 0
                let tcp = env.arms[k].tcpPosition(env.simulation)
                goals[k] = ArmGoal(position: SIMD3(tcp.x, tcp.y, 0.2), yaw: 0, gripper: 1)
            }
        case .drawer:
            let h = env.hookPosition
            let k = armFor(y: h.y)
            goals[k] = drawer(env, k)
        }
        return goals
    }

    /// Box yaw folded into (-π/4, π/4] so the fingers close on a pair of faces.
    func graspYaw(_ env: RobotEnvironment, _ i: Int) -> Double {
        guard env.layout.objects[i].shape == .box else { return 0 }
        var y = env.objectYaw(i)
        while y > .pi / 4 { y -= .pi / 2 }
        while y <= -.pi / 4 { y += .pi / 2 }
        return y
    }

    func isHeld(_ env: RobotEnvironment, _ k: Int, _ i: Int) -> Bool { env.isHolding(arm: k, object: i) }

    func reach(_ env: RobotEnvironment, _ k: Int, object i: Int) -> ArmGoal {
        let tcp = env.arms[k].tcpPosition(env.simulation)
        let o = env.objectPosition(i)
        let yaw = graspYaw(env, i)
        let xy = hypot(tcp.x - o.x, tcp.y - o.y)
        if profile.approach == .direct {
            return directApproach(tcp: tcp, goal: o + SIMD3(0, 0, 0.025), aligned: 0.012,
                                  top: o.z + env.layout.objects[i].halfSize, clear: 0.03,
                                  yaw: yaw, gripper: 1, maxStep: xy > 0.012 ? 0.025 : 0.02)
        }
        if xy > 0.03 && tcp.z < o.z + 0.06 { return ArmGoal(position: SIMD3(tcp.x, tcp.y, o.z + 0.1), yaw: yaw, gripper: 1) }
        if xy > 0.012 { return ArmGoal(position: SIMD3(o.x, o.y, max(o.z + 0.08, min(tcp.z, o.z + 0.15))), yaw: yaw, gripper: 1) }
        return ArmGoal(position: o + SIMD3(0, 0, 0.025), yaw: yaw, gripper: 1, maxStep: 0.02)
    }

    func pickAndPlace(_ env: RobotEnvironment, _ k: Int, object i: Int, goal: SIMD3<Double>, done: Bool) -> ArmGoal {
        let arm = env.arms[k], sim = env.simulation
        let tcp = arm.tcpPosition(sim), o = env.objectPosition(i)
        let w = 2 * env.layout.objects[i].halfSize
        let width = arm.gripperWidth(sim)
        let held = isHeld(env, k, i)
        let carryZ = max(goal.z, 0.02) + 0.11
        if done {
            heldSteps = 0
            return ArmGoal(position: SIMD3(tcp.x, tcp.y, 0.2), yaw: arm.handYaw(sim), gripper: 1)
        }
        if held {
            heldSteps += 1
            let yaw = arm.handYaw(sim)
            let offset = tcp - o
            let dxy = hypot(o.x - goal.x, o.y - goal.y)
            if heldSteps < 3 { return ArmGoal(position: tcp, yaw: yaw, gripper: 0) }
            if dxy < 0.008 && o.z < goal.z + 0.008 {
                // At the goal: release.
                return ArmGoal(position: tcp, yaw: yaw, gripper: 1)
            }
            if dxy > 0.008 {
                if o.z < carryZ - 0.03 && dxy > 0.03 {
                    return ArmGoal(position: SIMD3(tcp.x, tcp.y, carryZ + offset.z), yaw: yaw, gripper: 0, maxStep: 0.02)
                }
                return ArmGoal(position: SIMD3(goal.x + offset.x, goal.y + offset.y, max(o.z, goal.z + 0.03) + offset.z), yaw: yaw, gripper: 0)
            }
            return ArmGoal(position: goal + offset, yaw: yaw, gripper: 0, maxStep: 0.012)
        }
        heldSteps = 0
        let yaw = graspYaw(env, i)
        let dxy = hypot(tcp.x - o.x, tcp.y - o.y)
        let objectPlaced = hypot(o.x - goal.x, o.y - goal.y) < 0.015 && o.z < goal.z + 0.01
        if objectPlaced {
            return ArmGoal(position: SIMD3(tcp.x, tcp.y, 0.2), yaw: arm.handYaw(sim), gripper: 1)
        }
        if width < w - 0.012 && dxy < 0.03 {
            // Closed on nothing: open and back off.
            return ArmGoal(position: SIMD3(tcp.x, tcp.y, o.z + 0.1), yaw: yaw, gripper: 1)
        }
        if dxy > 0.01, profile.approach == .direct {
            // A wider mound than reach's: the open fingers must come down around the block.
            return directApproach(tcp: tcp, goal: SIMD3(o.x, o.y, o.z + 0.004), aligned: 0.01,
                                  top: o.z + env.layout.objects[i].halfSize, clear: 0.06,
                                  yaw: yaw, gripper: 1, maxStep: 0.025)
        }
        if dxy > 0.01 {
            if tcp.z < o.z + 0.05 && dxy > 0.025 {
                return ArmGoal(position: SIMD3(tcp.x, tcp.y, o.z + 0.1), yaw: yaw, gripper: 1)
            }
            return ArmGoal(position: SIMD3(o.x, o.y, max(o.z + 0.08, min(tcp.z, o.z + 0.15))), yaw: yaw, gripper: 1)
        }
        let yawErr = abs(wrapAngle(arm.handYaw(sim) - yaw))
        if tcp.z > o.z + 0.008 || yawErr > 0.08 {
            return ArmGoal(position: SIMD3(o.x, o.y, o.z - 0.002), yaw: yaw, gripper: 1, maxStep: 0.02)
        }
        return ArmGoal(position: SIMD3(o.x, o.y, o.z - 0.002), yaw: yaw, gripper: 0)
    }

    /// One step straight toward `goal`. Until the hand is within `aligned` of it horizontally it
    /// stays above a mound over the object: 1 cm over its `top` within `clear`, falling at
    /// slope 1 outside. A hand stalled low and far comes in low; one stalled close rises only
    /// as far as the fingers need (the phase machine lifts 10 cm and comes down from above).
    func directApproach(tcp: SIMD3<Double>, goal: SIMD3<Double>, aligned: Double, top: Double, clear: Double,
                        yaw: Double, gripper: Double, maxStep: Double) -> ArmGoal {
        var next = tcp + clampNorm(goal - tcp, maxStep)
        let d = hypot(next.x - goal.x, next.y - goal.y)
        if d > aligned { next.z = max(next.z, top + 0.01 - max(0, d - clear)) }
        return ArmGoal(position: next, yaw: yaw, gripper: gripper, maxStep: maxStep)
    }

    func push(_ env: RobotEnvironment, _ k: Int, object i: Int, goal: SIMD3<Double>) -> ArmGoal {
        let arm = env.arms[k]
        let tcp = arm.tcpPosition(env.simulation), o = env.objectPosition(i)
        let r = env.layout.objects[i].halfSize
        var d = SIMD3(goal.x - o.x, goal.y - o.y, 0)
        let dist = norm(d)
        let pushZ = 0.02
        if dist < 0.012 || env.isSuccess() && dist < 0.02 {
            return ArmGoal(position: SIMD3(tcp.x, tcp.y, 0.12), yaw: arm.handYaw(env.simulation), gripper: 0)
        }
        // Fingers still around another object (the block a previous instruction of a chain just
        // placed): lift with the gripper open first, or closing it for the push would pick it up.
        let straddled = env.layout.objects.indices.contains { j in
            let p = env.objectPosition(j)
            return j != i && hypot(tcp.x - p.x, tcp.y - p.y) < 0.03 && tcp.z < p.z + 0.05
        }
        if straddled { return ArmGoal(position: SIMD3(tcp.x, tcp.y, 0.12), yaw: arm.handYaw(env.simulation), gripper: 1, maxStep: 0.02) }
        d /= dist
        // Push with the fingers' broad faces: hand x axis along the push direction, so the
        // contact never loads the finger slide joints.
        var pushYaw = atan2(d.y, d.x)
        while pushYaw > .pi / 2 { pushYaw -= .pi }
        while pushYaw <= -.pi / 2 { pushYaw += .pi }
        let rel = SIMD3(tcp.x - o.x, tcp.y - o.y, 0)
        let along = dot(rel, d)
        let lat = norm(rel - d * along)
        let contact = r + 0.013
        let aligned = along < -(r + 0.004) && along > -(r + 0.06) && lat < 0.015 && tcp.z < pushZ + 0.015
        if aligned {
            let p = SIMD3(o.x, o.y, 0) + d * (-contact + min(0.03, dist))
            return ArmGoal(position: SIMD3(p.x, p.y, pushZ), yaw: pushYaw, gripper: 0, maxStep: 0.012)
        }
        let pre = SIMD3(o.x, o.y, 0) - d * (contact + 0.025)
        let off = hypot(tcp.x - pre.x, tcp.y - pre.y)
        if off > 0.01, profile.approach == .direct {
            // Straight at the push start from wherever the hand is, passing over a mound around
            // the puck (3 cm over its top, where the closed fingers clear it, out to 3 cm past
            // its rim, slope 1 beyond) instead of the phase machine's lift to 10 cm first.
            let top = o.z + env.layout.objects[i].halfHeight
            var next = tcp + clampNorm(SIMD3(pre.x, pre.y, pushZ) - tcp, 0.025)
            let rim = hypot(next.x - o.x, next.y - o.y) - r
            next.z = max(next.z, top + 0.03 - max(0, rim - 0.03))
            return ArmGoal(position: next, yaw: pushYaw, gripper: 0, maxStep: 0.025)
        }
        if off > 0.01 {
            if tcp.z < 0.07 && off > 0.03 { return ArmGoal(position: SIMD3(tcp.x, tcp.y, 0.1), yaw: pushYaw, gripper: 0) }
            return ArmGoal(position: SIMD3(pre.x, pre.y, max(0.09, min(tcp.z, 0.14))), yaw: pushYaw, gripper: 0)
        }
        return ArmGoal(position: SIMD3(pre.x, pre.y, pushZ), yaw: pushYaw, gripper: 0, maxStep: 0.02)
    }

    func drawer(_ env: RobotEnvironment, _ k: Int) -> ArmGoal {
        let arm = env.arms[k]
        let tcp = arm.tcpPosition(env.simulation), h = env.hookPosition
        if env.drawerOpening >= SceneDrawer.openThreshold + 0.03 {
            return ArmGoal(position: tcp, yaw: 0, gripper: 0)
        }
        let slot = SIMD3(h.x + 0.004, h.y, h.z)
        let engaged = abs(tcp.y - h.y) < 0.03 && abs(tcp.z - h.z) < 0.025 && tcp.x > h.x - 0.03 && tcp.x < h.x + 0.025
        if engaged {
            return ArmGoal(position: SIMD3(slot.x - 0.05, slot.y, slot.z), yaw: 0, gripper: 0, maxStep: 0.015)
        }
        let off = hypot(tcp.x - slot.x, tcp.y - slot.y)
        if off > 0.008 {
            if tcp.z < h.z + 0.07 && off > 0.02 { return ArmGoal(position: SIMD3(tcp.x, tcp.y, h.z + 0.1), yaw: 0, gripper: 0) }
            return ArmGoal(position: SIMD3(slot.x, slot.y, h.z + 0.1), yaw: 0, gripper: 0)
        }
        return ArmGoal(position: slot, yaw: 0, gripper: 0, maxStep: 0.015)
    }
}
