import Foundation
import Testing
@testable import RobotSim

@Suite struct EnvironmentTests {
    @Test func sameSeedGivesIdenticalStatesAndPixels() throws {
        func rollout(_ seed: UInt64) throws -> (states: [[Float]], images: [[UInt8]], instruction: String) {
            let env = try RobotEnvironment(embodiment: .arm7, task: .pickPlace, seed: seed)
            var obs = env.reset()
            var states = [obs.state], images = obs.images
            for _ in 0..<8 {
                obs = try env.step(nativeAction: env.expertAction()).observation
                states.append(obs.state)
                images += obs.images
            }
            return (states, images, env.instruction)
        }
        let a = try rollout(11), b = try rollout(11), c = try rollout(12)
        #expect(a.states == b.states)
        #expect(a.images == b.images)
        #expect(a.instruction == b.instruction)
        #expect(a.states != c.states || a.images != c.images)
        #expect(a.images.first != c.images.first)
    }

    @Test func distractorCapBoundsTheSceneAndNilKeepsTheSeedsLayout() {
        // Reach places its target plus 1–3 distractors; a cap of 0 leaves the target alone and
        // no cap reproduces the uncapped builder's layout exactly.
        var counts = Set<Int>()
        for seed in UInt64(0)..<20 {
            let free = SceneBuilder(embodiment: .arm7, task: .reach, seed: seed).layout()
            let same = SceneBuilder(embodiment: .arm7, task: .reach, seed: seed, maxDistractors: nil).layout()
            #expect(free.objects.map(\.position) == same.objects.map(\.position))
            counts.insert(free.objects.count)
            let capped = SceneBuilder(embodiment: .arm7, task: .reach, seed: seed, maxDistractors: 0).layout()
            #expect(capped.objects.count == 1)
            #expect(capped.objects[capped.target].color == free.objects[free.target].color)
            let one = SceneBuilder(embodiment: .arm7, task: .reach, seed: seed, maxDistractors: 1).layout()
            #expect(one.objects.count == min(2, free.objects.count))
        }
        #expect(counts == [2, 3, 4])
    }

    @Test func successIsFalseAtStartForEveryPair() throws {
        for (e, t) in SimRunner.pairs {
            for seed: UInt64 in 0..<3 {
                let env = try RobotEnvironment(embodiment: e, task: t, seed: seed, config: EnvironmentConfig(renderImages: false))
                env.reset()
                #expect(!env.isSuccess(), "\(e) \(t) seed \(seed)")
                #expect(!env.instruction.isEmpty && !env.instruction.contains("{"))
            }
        }
    }

    @Test func rendersAreNotBlankAndCamerasDiffer() throws {
        let env = try RobotEnvironment(embodiment: .bimanual, task: .sort, seed: 4)
        let obs = env.reset()
        #expect(obs.cameraNames == ["scene", "l_wrist", "r_wrist"])
        #expect(obs.images.count == 3)
        for img in obs.images {
            #expect(img.count == 96 * 96 * 3)
            let mean = img.reduce(0.0) { $0 + Double($1) } / Double(img.count)
            let variance = img.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(img.count)
            #expect(mean > 20 && mean < 235)
            #expect(variance.squareRoot() > 10)
        }
        func meanAbsDiff(_ a: [UInt8], _ b: [UInt8]) -> Double {
            zip(a, b).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(a.count)
        }
        #expect(meanAbsDiff(obs.images[0], obs.images[1]) > 10)
        #expect(meanAbsDiff(obs.images[1], obs.images[2]) > 5)
    }

    /// The target object's colour shows up in the scene camera: pixels whose chromaticity
    /// matches the object's RGB appear with it and (mostly) vanish when it is moved away.
    @Test func targetObjectColourIsVisibleInSceneCamera() throws {
        for seed: UInt64 in [1, 2, 3] {
            let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: seed)
            env.reset()
            let object = env.layout.objects[env.layout.target]
            func matching(_ img: [UInt8]) -> Int {
                let c = object.rgb / max(object.rgb.sum(), 1e-6)
                var n = 0
                for p in stride(from: 0, to: img.count, by: 3) {
                    let px = SIMD3(Double(img[p]), Double(img[p + 1]), Double(img[p + 2]))
                    guard px.sum() > 60 else { continue }
                    let d = px / px.sum() - c
                    if (d * d).sum().squareRoot() < 0.08 { n += 1 }
                }
                return n
            }
            let with = matching(try env.renderCameras()[0])
            // Move the object 3 m away and render again.
            var q = env.simulation.qpos
            let joint = try env.model.id(of: .joint, "\(object.name)_free")
            q[env.model.qposAddress(joint: joint)] = 3
            env.simulation.qpos = q
            env.simulation.forward()
            let without = matching(try env.renderCameras()[0])
            #expect(with >= 8, "seed \(seed): \(object.color.name) pixels \(with)")
            #expect(with >= 3 * max(without, 1) || with - without >= 8, "seed \(seed): with \(with) without \(without)")
        }
    }

    /// The projected target lands on the target's own pixels: the centroid of pixels with the
    /// target's chromaticity is within 0.08 (≈ 4 px at 96 px) of `targetImagePoint`.
    @Test func targetImagePointMatchesTheRenderedObject() throws {
        for seed: UInt64 in [1, 2, 3, 4] {
            let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: seed)
            env.reset()
            let img = try env.renderCameras()[0], w = env.config.imageWidth, h = env.config.imageHeight
            let c = env.layout.objects[env.layout.target].rgb
            let chroma = c / max(c.sum(), 1e-6)
            var sum = SIMD2<Double>(0, 0), n = 0.0
            for row in 0..<h {
                for col in 0..<w {
                    let p = 3 * (row * w + col)
                    let px = SIMD3(Double(img[p]), Double(img[p + 1]), Double(img[p + 2]))
                    guard px.sum() > 60 else { continue }
                    let d = px / px.sum() - chroma
                    if (d * d).sum().squareRoot() < 0.08 {
                        sum += SIMD2((Double(col) + 0.5) / Double(w) * 2 - 1, (Double(row) + 0.5) / Double(h) * 2 - 1)
                        n += 1
                    }
                }
            }
            let point = try #require(env.targetImagePoint)
            #expect(n >= 8)
            let centroid = sum / max(n, 1)
            #expect(((centroid - point) * (centroid - point)).sum().squareRoot() < 0.08, "seed \(seed): pixels at \(centroid), projection \(point)")
        }
    }

    /// JPM's geometry: `worldPoint` inverts `imagePoint` exactly; the rendered depth at the
    /// target's projected pixel lifts it onto the object (within its 2–3 cm half-size of the
    /// centre the simulator reports); the IK target puts the TCP (forward kinematics) at the
    /// requested point.
    @Test func depthLiftsTheTargetAndIKReachesIt() throws {
        func distance(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> Double { ((a - b) * (a - b)).sum().squareRoot() }
        for seed: UInt64 in [1, 2, 3] {
            let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: seed)
            env.reset()
            let centre = env.objectPosition(env.layout.target)
            let probe = centre + SIMD3(0.03, -0.02, 0.05)
            let image = try #require(env.imagePoint(probe, camera: "scene"))
            // The ray through the image point: depth 0 is the camera, depth 1 one metre along the axis.
            let camera = try #require(env.worldPoint(imagePoint: image, depth: 0, camera: "scene"))
            let unit = try #require(env.worldPoint(imagePoint: image, depth: 1, camera: "scene"))
            let axisDepth = ((probe - camera) * (unit - camera)).sum() / ((unit - camera) * (unit - camera)).sum()
            let exact = try #require(env.worldPoint(imagePoint: image, depth: axisDepth, camera: "scene"))
            #expect(distance(exact, probe) < 1e-9, "seed \(seed)")

            let targetPoint = try #require(env.targetImagePoint)
            let lifted = try #require(try env.liftImagePoint(targetPoint, camera: "scene"))
            #expect(distance(lifted, centre) < 0.035, "seed \(seed): lifted \(lifted), object \(centre)")
            let depth = try env.renderDepth(camera: "scene")
            #expect(depth.count == env.config.imageWidth * env.config.imageHeight && depth.allSatisfy { $0 > 0 && $0.isFinite })

            let goal = centre + SIMD3(0, 0, 0.06)
            let q = try #require(env.jointTarget(reaching: goal, offset: .zero))
            #expect(q.slots == Array(0..<7))
            #expect(distance(env.tcpPosition(joints: q.values), goal) < 0.01, "seed \(seed)")
        }
        let cartesian = try RobotEnvironment(embodiment: .arm6, task: .reach, seed: 1, config: EnvironmentConfig(renderImages: false))
        cartesian.reset()
        #expect(cartesian.jointTarget(reaching: SIMD3(0.4, 0, 0.1)) == nil)
    }

    @Test func badActionsAreTypedErrors() throws {
        let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: 0, config: EnvironmentConfig(renderImages: false))
        env.reset()
        #expect(throws: EnvironmentError.wrongActionLength(expected: 8, got: 2)) { try env.step(nativeAction: [0, 0]) }
        #expect(throws: EnvironmentError.nonFiniteAction(index: 3)) {
            try env.step(nativeAction: [0, 0, 0, .nan, 0, 0, 0, 1])
        }
        #expect(throws: EnvironmentError.self) { try RobotEnvironment(embodiment: .arm7, task: .reach, seed: 0, config: EnvironmentConfig(substeps: 25)).step(nativeAction: []) }
    }

    @Test func endEffectorDeltaMovesTheHand() throws {
        let env = try RobotEnvironment(embodiment: .arm6, task: .reach, seed: 0, config: EnvironmentConfig(renderImages: false))
        env.reset()
        let p0 = env.arms[0].tcpPosition(env.simulation)
        for _ in 0..<4 { _ = try env.step(nativeAction: [0.02, -0.01, 0, 0, 0, 0, 1]) }
        for _ in 0..<6 { _ = try env.step(nativeAction: [0, 0, 0, 0, 0, 0, 1]) }
        let p1 = env.arms[0].tcpPosition(env.simulation)
        #expect(abs(p1.x - p0.x - 0.08) < 0.01)
        #expect(abs(p1.y - p0.y + 0.04) < 0.01)
        #expect(abs(p1.z - p0.z) < 0.01)
        // The hand still points down (z axis of the TCP frame ≈ −world z).
        #expect(env.arms[0].tcpRotation(env.simulation).column(2).z < -0.99)
    }
}
