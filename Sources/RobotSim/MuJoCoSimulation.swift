import CMuJoCo

/// Owns one `mjData` for a `MuJoCoModel`: state, stepping, kinematic queries.
/// Not thread-safe: use one simulation per thread.
public final class MuJoCoSimulation: @unchecked Sendable {
    public let model: MuJoCoModel
    public let raw: UnsafeMutablePointer<mjData>

    public init(model: MuJoCoModel) {
        self.model = model
        raw = mj_makeData(model.raw)
        mj_forward(model.raw, raw)
    }

    deinit { mj_deleteData(raw) }

    public var time: Double { raw.pointee.time }

    /// Advance physics by `count` steps of the model's timestep.
    public func step(_ count: Int = 1) {
        for _ in 0..<count { mj_step(model.raw, raw) }
    }

    /// Recompute derived quantities (positions, contacts) from qpos/qvel.
    public func forward() { mj_forward(model.raw, raw) }

    /// Positions, orientations and com-based quantities only (enough for Jacobians):
    /// `mj_kinematics` + `mj_comPos`, no dynamics. Used by IK on a scratch copy.
    public func kinematics() {
        mj_kinematics(model.raw, raw)
        mj_comPos(model.raw, raw)
    }

    public func reset() {
        mj_resetData(model.raw, raw)
        mj_forward(model.raw, raw)
    }

    public var qpos: [Double] {
        get { Array(UnsafeBufferPointer(start: raw.pointee.qpos, count: model.nq)) }
        set {
            precondition(newValue.count == model.nq, "qpos needs \(model.nq) values")
            for i in 0..<model.nq { raw.pointee.qpos[i] = newValue[i] }
        }
    }

    public var qvel: [Double] {
        get { Array(UnsafeBufferPointer(start: raw.pointee.qvel, count: model.nv)) }
        set {
            precondition(newValue.count == model.nv, "qvel needs \(model.nv) values")
            for i in 0..<model.nv { raw.pointee.qvel[i] = newValue[i] }
        }
    }

    public var ctrl: [Double] {
        get { Array(UnsafeBufferPointer(start: raw.pointee.ctrl, count: model.nu)) }
        set {
            precondition(newValue.count == model.nu, "ctrl needs \(model.nu) values")
            for i in 0..<model.nu { raw.pointee.ctrl[i] = newValue[i] }
        }
    }

    public func setControl(_ actuator: Int, _ value: Double) { raw.pointee.ctrl[actuator] = value }
    public func jointPosition(_ joint: Int) -> Double { raw.pointee.qpos[model.qposAddress(joint: joint)] }
    public func setJointPosition(_ joint: Int, _ value: Double) { raw.pointee.qpos[model.qposAddress(joint: joint)] = value }
    public func jointVelocity(_ joint: Int) -> Double { raw.pointee.qvel[model.dofAddress(joint: joint)] }

    /// World position of body `id`.
    public func bodyPosition(_ id: Int) -> SIMD3<Double> { vec3(raw.pointee.xpos, id) }
    /// World rotation (row-major 3x3, columns are the body axes) of body `id`.
    public func bodyRotation(_ id: Int) -> Mat3 { mat3(raw.pointee.xmat, id) }
    public func sitePosition(_ id: Int) -> SIMD3<Double> { vec3(raw.pointee.site_xpos, id) }
    /// World position and rotation (columns: right, up, backward — the camera looks along −z) of camera `id`.
    public func cameraPosition(_ id: Int) -> SIMD3<Double> { vec3(raw.pointee.cam_xpos, id) }
    public func cameraRotation(_ id: Int) -> Mat3 { mat3(raw.pointee.cam_xmat, id) }
    public func siteRotation(_ id: Int) -> Mat3 { mat3(raw.pointee.site_xmat, id) }
    public func geomPosition(_ id: Int) -> SIMD3<Double> { vec3(raw.pointee.geom_xpos, id) }

    /// Site quaternion (w, x, y, z) from its rotation matrix.
    public func siteQuaternion(_ id: Int) -> SIMD4<Double> {
        var q = [Double](repeating: 0, count: 4)
        mju_mat2Quat(&q, raw.pointee.site_xmat + 9 * id)
        return SIMD4(q[0], q[1], q[2], q[3])
    }

    /// Translational and rotational Jacobians of site `id`, each [3, nv] row-major
    /// (`mj_jacSite`; valid after `forward()` or `step()`).
    public func siteJacobian(_ id: Int) -> (position: [Double], rotation: [Double]) {
        var jacp = [Double](repeating: 0, count: 3 * model.nv)
        var jacr = [Double](repeating: 0, count: 3 * model.nv)
        mj_jacSite(model.raw, raw, &jacp, &jacr, Int32(id))
        return (jacp, jacr)
    }

    /// Number of active contacts.
    public var contactCount: Int { Int(raw.pointee.ncon) }

    /// Whether geoms `a` and `b` are currently in contact.
    public func inContact(geom a: Int, geom b: Int) -> Bool {
        for i in 0..<contactCount {
            let c = raw.pointee.contact[i]
            let g1 = Int(c.geom.0), g2 = Int(c.geom.1)
            if (g1 == a && g2 == b) || (g1 == b && g2 == a) { return true }
        }
        return false
    }

    /// Full physics state (time, qpos, qvel, act, ...) for exact save/restore.
    public func state() -> [Double] {
        let sig = Int32(mjSTATE_INTEGRATION.rawValue)
        var s = [Double](repeating: 0, count: Int(mj_stateSize(model.raw, sig)))
        mj_getState(model.raw, raw, &s, sig)
        return s
    }

    public func setState(_ s: [Double]) {
        let sig = Int32(mjSTATE_INTEGRATION.rawValue)
        precondition(s.count == Int(mj_stateSize(model.raw, sig)), "state size mismatch")
        mj_setState(model.raw, raw, s, sig)
        mj_forward(model.raw, raw)
    }

    private func vec3(_ p: UnsafeMutablePointer<Double>, _ id: Int) -> SIMD3<Double> {
        SIMD3(p[3 * id], p[3 * id + 1], p[3 * id + 2])
    }

    private func mat3(_ p: UnsafeMutablePointer<Double>, _ id: Int) -> Mat3 {
        let b = 9 * id
        return Mat3(rows: (SIMD3(p[b], p[b + 1], p[b + 2]), SIMD3(p[b + 3], p[b + 4], p[b + 5]), SIMD3(p[b + 6], p[b + 7], p[b + 8])))
    }
}
