import Foundation
import Testing
@testable import RobotSim

@Suite struct MuJoCoTests {
    @Test func siteJacobianMatchesFiniteDifferences() throws {
        let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: 3, config: EnvironmentConfig(renderImages: false))
        let sim = MuJoCoSimulation(model: env.model)
        let arm = env.arms[0]
        var q = sim.qpos
        let perturb: [Double] = [0.3, 0.5, -0.4, 1.6, 0.2, 0.9, -0.5]
        for (i, a) in arm.qposAddress.enumerated() { q[a] = perturb[i] }
        sim.qpos = q
        sim.forward()
        let (jp, jr) = sim.siteJacobian(arm.tcpSite)
        let nv = env.model.nv
        let h = 1e-6
        for (i, a) in arm.qposAddress.enumerated() {
            var qp = q, qm = q
            qp[a] += h; qm[a] -= h
            sim.qpos = qp; sim.kinematics()
            let pp = sim.sitePosition(arm.tcpSite), rp = sim.siteRotation(arm.tcpSite)
            sim.qpos = qm; sim.kinematics()
            let pm = sim.sitePosition(arm.tcpSite), rm = sim.siteRotation(arm.tcpSite)
            let fd = (pp - pm) / (2 * h)
            // Angular velocity from the rotation difference: w = log(Rp Rmᵀ) / 2h.
            let fw = (rp * rm.transposed).rotationVector / (2 * h)
            let d = arm.dofAddress[i]
            for r in 0..<3 {
                #expect(abs(jp[r * nv + d] - fd[r]) < 1e-6, "jacp[\(r), joint \(i)]")
                #expect(abs(jr[r * nv + d] - fw[r]) < 1e-6, "jacr[\(r), joint \(i)]")
            }
        }
        // A column is not trivially zero: the shoulder yaw moves the TCP sideways.
        #expect(abs(jp[1 * nv + arm.dofAddress[0]]) > 0.1)
    }

    @Test func compileErrorIsTyped() {
        #expect(throws: MuJoCoError.self) { try MuJoCoModel(xml: "<mujoco><worldbody><geom type='box'/></worldbody></mujoco>") }
        #expect(throws: MuJoCoError.self) { try MuJoCoModel(xml: "not xml") }
    }

    @Test func freeBoxFallsUnderGravity() throws {
        let model = try MuJoCoModel(xml: """
        <mujoco><option timestep="0.001"/><worldbody>
          <body name="b" pos="0 0 1"><freejoint/><geom type="box" size=".1 .1 .1"/></body>
        </worldbody></mujoco>
        """)
        let sim = MuJoCoSimulation(model: model)
        sim.step(200)   // 0.2 s of free fall: z = 1 − g t²/2 (semi-implicit Euler: within 1 cm)
        let z = sim.bodyPosition(try model.id(of: .body, "b")).z
        #expect(abs(z - (1 - 0.5 * 9.81 * 0.04)) < 0.01)
        #expect(abs(sim.time - 0.2) < 1e-9)
    }

    @Test func stateSaveRestoreIsExact() throws {
        for e in [EmbodimentKind.arm7, .arm6] {
            let env = try RobotEnvironment(embodiment: e, task: .push, seed: 2, config: EnvironmentConfig(renderImages: false))
            env.reset()
            for _ in 0..<5 { _ = try env.step(nativeAction: env.expertAction()) }
            let saved = env.snapshot()
            let a = env.expertAction()
            _ = try env.step(nativeAction: a)
            _ = try env.step(nativeAction: a)
            let after = env.simulation.qpos
            env.restore(saved)
            #expect(env.stepCount == 5)
            _ = try env.step(nativeAction: a)
            _ = try env.step(nativeAction: a)
            #expect(env.simulation.qpos == after, "\(e)")
            #expect(env.simulation.qpos != MuJoCoSimulation(model: env.model).qpos)
        }
    }
}
