import Foundation
import RobotData

/// A joint-space goal for one arm: unified action slots and the joint positions for them.
public struct JointTarget: Sendable, Equatable {
    public var slots: [Int]
    public var values: [Float]
    public init(slots: [Int], values: [Float]) { self.slots = slots; self.values = values }
}

/// What Green-VLA's Joint Prediction Module needs from the robot and its cameras: metric depth,
/// lifting an image point to 3D, and inverse kinematics to a joint-space target.
extension RobotEnvironment {
    /// Depth image of camera `name`: metres along its optical axis, [H · W], rows top-down.
    public func renderDepth(camera name: String) throws -> [Float] {
        guard let k = cameraNames.firstIndex(of: name) else { throw MuJoCoError.renderer("no camera \(name)") }
        return try sceneRenderer().renderDepth(simulation, camera: cameraIDs[k], width: config.imageWidth, height: config.imageHeight)
    }

    /// The world point seen at image point `p` ((x, y) ∈ [−1, 1]², x right, y down) of camera
    /// `name`, `depth` metres along the optical axis: the inverse of `imagePoint`.
    public func worldPoint(imagePoint p: SIMD2<Double>, depth: Double, camera name: String) -> SIMD3<Double>? {
        guard let k = cameraNames.firstIndex(of: name) else { return nil }
        let id = cameraIDs[k]
        let r = simulation.cameraRotation(id)
        let focal = 1 / tan(model.raw.pointee.cam_fovy[id] * .pi / 360)
        let aspect = Double(config.imageHeight) / Double(config.imageWidth)
        let right = p.x * depth / (focal * aspect), up = -p.y * depth / focal
        // Camera axes are the rotation's columns; the camera looks along −z.
        let column = { (j: Int) in SIMD3(r.r0[j], r.r1[j], r.r2[j]) }
        return simulation.cameraPosition(id) + right * column(0) + up * column(1) - depth * column(2)
    }

    /// Lifts image point `p` of camera `name` to 3D with the rendered depth at its pixel.
    public func liftImagePoint(_ p: SIMD2<Double>, camera name: String = "scene") throws -> SIMD3<Double>? {
        let depth = try renderDepth(camera: name)
        let w = config.imageWidth, h = config.imageHeight
        let column = min(max(Int(((p.x + 1) / 2 * Double(w)).rounded(.down)), 0), w - 1)
        let row = min(max(Int(((p.y + 1) / 2 * Double(h)).rounded(.down)), 0), h - 1)
        return worldPoint(imagePoint: p, depth: Double(depth[row * w + column]), camera: name)
    }

    /// Joint positions that bring the nearer arm's TCP to `point` + `offset` with a top-down hand
    /// (its current yaw), by damped least squares from the current posture: the joint-space target
    /// q* of JPM. nil for an embodiment not commanded in joint positions.
    /// `start`: solve from these joints instead of the current posture (an earlier target of
    /// the same arm, so a chain of targets stays on one IK branch); it also picks the arm.
    public func jointTarget(reaching point: SIMD3<Double>, offset: SIMD3<Double> = SIMD3(0, 0, 0.025),
                            from start: JointTarget? = nil) -> JointTarget? {
        guard spec.controlMode == .jointPosition else { return nil }
        let k = arms.count == 1 ? 0 : start.map { $0.slots.first == UnifiedActionSpace.leftArm.lowerBound ? 0 : 1 } ?? (point.y >= 0 ? 0 : 1)
        let arm = arms[k]
        var qpos = simulation.qpos
        if let start { for (a, v) in zip(arm.qposAddress, start.values) { qpos[a] = Double(v) } }
        let rotation = topDownRotation(yaw: arm.handYaw(simulation))
        let q = arm.solveIK(scratch: scratch, qpos: qpos, position: point + offset, rotation: rotation, iterations: 60)
        let slots = Array(k == 0 ? UnifiedActionSpace.leftArm : UnifiedActionSpace.rightArm)
        return JointTarget(slots: slots, values: q.map(Float.init))
    }

    /// Where arm `k`'s TCP would be at joint positions `q` (forward kinematics on the scratch copy).
    public func tcpPosition(arm k: Int = 0, joints q: [Float]) -> SIMD3<Double> {
        let arm = arms[k], s = scratch.raw
        let qpos = simulation.qpos
        for i in 0..<qpos.count { s.pointee.qpos[i] = qpos[i] }
        for (i, a) in arm.qposAddress.enumerated() { s.pointee.qpos[a] = Double(q[i]) }
        scratch.kinematics()
        return arm.tcpPosition(scratch)
    }
}
