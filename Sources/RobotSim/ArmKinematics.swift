/// Indices of one arm inside a compiled scene, plus damped-least-squares IK.
struct ArmKinematics {
    let layout: ArmLayout
    let qposAddress: [Int]
    let dofAddress: [Int]
    let lower: [Double]
    let upper: [Double]
    let actuators: [Int]
    let fingerQpos: [Int]
    let fingerActuators: [Int]
    let tcpSite: Int
    let wristCamera: Int

    init(model: MuJoCoModel, layout: ArmLayout) throws {
        self.layout = layout
        var qa: [Int] = [], da: [Int] = [], lo: [Double] = [], hi: [Double] = [], act: [Int] = []
        for name in layout.jointNames {
            let j = try model.id(of: .joint, name)
            qa.append(model.qposAddress(joint: j))
            da.append(model.dofAddress(joint: j))
            lo.append(model.raw.pointee.jnt_range[2 * j])
            hi.append(model.raw.pointee.jnt_range[2 * j + 1])
            act.append(try model.id(of: .actuator, name))
        }
        qposAddress = qa; dofAddress = da; lower = lo; upper = hi; actuators = act
        fingerQpos = try layout.fingerJoints.map { model.qposAddress(joint: try model.id(of: .joint, $0)) }
        fingerActuators = try layout.fingerJoints.map { try model.id(of: .actuator, $0) }
        tcpSite = try model.id(of: .site, layout.tcpSite)
        wristCamera = try model.id(of: .camera, layout.wristCamera)
    }

    var dof: Int { layout.dof }

    func joints(_ sim: MuJoCoSimulation) -> [Double] { qposAddress.map { sim.raw.pointee.qpos[$0] } }

    /// Gripper opening as a fraction of full travel (1 = open).
    func gripperOpening(_ sim: MuJoCoSimulation) -> Double {
        (sim.raw.pointee.qpos[fingerQpos[0]] + sim.raw.pointee.qpos[fingerQpos[1]]) / (2 * ArmLayout.fingerTravel)
    }

    /// Distance between the finger pads (metres).
    func gripperWidth(_ sim: MuJoCoSimulation) -> Double {
        sim.raw.pointee.qpos[fingerQpos[0]] + sim.raw.pointee.qpos[fingerQpos[1]]
    }

    func tcpPosition(_ sim: MuJoCoSimulation) -> SIMD3<Double> { sim.sitePosition(tcpSite) }
    func tcpRotation(_ sim: MuJoCoSimulation) -> Mat3 { sim.siteRotation(tcpSite) }

    /// Yaw ψ of a top-down hand, R = Rz(ψ) Ry(π).
    func handYaw(_ sim: MuJoCoSimulation) -> Double {
        let x = tcpRotation(sim).column(0)
        return atan2(-x.y, -x.x)
    }

    /// Write arm joint targets and gripper fraction into ctrl (clamped to limits).
    func command(_ sim: MuJoCoSimulation, joints q: [Double], gripper g: Double) {
        for i in 0..<dof { sim.setControl(actuators[i], min(max(q[i], lower[i]), upper[i])) }
        let w = min(max(g, 0), 1) * ArmLayout.fingerTravel
        for a in fingerActuators { sim.setControl(a, w) }
    }

    /// Joint positions that put the TCP at `position` with rotation `rotation`, found by
    /// damped least squares on `scratch` (a second mjData of the same model) starting from
    /// `qpos` (the full current qpos). A null-space term pulls toward the home posture.
    func solveIK(scratch: MuJoCoSimulation, qpos: [Double], position: SIMD3<Double>, rotation: Mat3,
                 iterations: Int = 12, rotationWeight: Double = 1) -> [Double] {
        let s = scratch.raw
        for i in 0..<qpos.count { s.pointee.qpos[i] = qpos[i] }
        var q = qposAddress.map { qpos[$0] }
        let home = layout.home
        let nv = scratch.model.nv
        for _ in 0..<iterations {
            scratch.kinematics()
            let p = scratch.sitePosition(tcpSite)
            let r = scratch.siteRotation(tcpSite)
            let ep = position - p
            let er = r.orientationError(to: rotation) * rotationWeight
            if norm(ep) < 2e-4 && norm(er) < 2e-3 { break }
            let (jp, jr) = scratch.siteJacobian(tcpSite)
            var j = [Double](repeating: 0, count: 6 * dof)
            for c in 0..<dof {
                let d = dofAddress[c]
                for r in 0..<3 {
                    j[r * dof + c] = jp[r * nv + d]
                    j[(r + 3) * dof + c] = jr[r * nv + d] * rotationWeight
                }
            }
            let e = [ep.x, ep.y, ep.z, er.x, er.y, er.z]
            let z = (0..<dof).map { 0.05 * (home[$0] - q[$0]) }
            let dq = dampedLeastSquares(jacobian: j, rows: 6, cols: dof, error: e, damping: 0.03, nullspace: z)
            for c in 0..<dof {
                q[c] = min(max(q[c] + max(-0.3, min(0.3, dq[c])), lower[c]), upper[c])
                s.pointee.qpos[qposAddress[c]] = q[c]
            }
        }
        return q
    }
}

/// Top-down hand orientation with yaw ψ: R = Rz(ψ) Ry(π) (hand z points down).
func topDownRotation(yaw: Double) -> Mat3 { Mat3.rotationZ(yaw) * Mat3.rotationY(.pi) }

import Foundation
