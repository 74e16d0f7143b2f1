import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
@testable import Training
import VLAModel

@Suite("Place pointing fit")
struct PlacePointingFitTests {
    /// Fitting the place head on a frozen tiny model: every other weight stays bit-exact; each
    /// label lifted back to 3D with the rendered depth lands on its mat's centre (the inverse
    /// camera path, so the label is the mat's projection); the fitted head points closer to the
    /// mats it trained on than the fresh head it started from, its reported error recomputed
    /// here from its own points; JPM with the predicted point then takes the carry's place
    /// point from this head.
    @Test func fittedHeadPointsAtTheMatAndLeavesTheRestUnchanged() throws {
        var c = smallConfig()
        c.pointingWeight = 1
        c.imageSize = 64   // 4 × 4 scene patches to choose from (32 px leaves 4)
        let (policy, scene, observation) = try untrainedPolicyAndScene(c, task: .pickPlace)
        var fit = PlacePointingFit(embodiment: .arm7)
        fit.scenes = 24
        fit.heldOutScenes = 6
        fit.steps = 600
        let (fitted, report) = try fit.run(policy: policy) { _ in }

        let original = policy.model.parameters(), now = fitted.model.parameters()
        #expect(Set(now.keys).subtracting(original.keys).allSatisfy { $0.hasPrefix("placePointingHead") })
        for (name, value) in original {
            #expect(try now[name]!.toArray(Float.self) == value.toArray(Float.self), "\(name)")
        }
        #expect(fitted.model.config.placePointing && policy.model.placePointingHead == nil)

        let scenes = try (0..<24).compactMap { try fit.render(100_000 + UInt64($0), imageSize: c.imageSize) }
        #expect(scenes.count == report.scenes)
        let env = try RobotEnvironment(embodiment: .arm7, task: .pickPlace, seed: 100_000,
                                       config: EnvironmentConfig(imageWidth: 96, imageHeight: 96))
        env.reset()
        let label = try #require(try fit.render(100_000, imageSize: 96))
        let lifted = try #require(try env.liftImagePoint(SIMD2(Double(label.place.x), Double(label.place.y))))
        let mat = try #require(env.goal.zone)
        #expect(hypot(lifted.x - mat.center.x, lifted.y - mat.center.y) < 0.015)

        let (prefix, _) = try fitted.model.encodePrefix(fitted.inputs(scenes.map(\.observation)))
        let points = try fitted.model.pointPlace(prefix: prefix).toArray(Float.self)
        let trainError = PlacePointingFit.meanError(points, scenes)
        #expect(Swift.abs(trainError - report.trainErrorAfter) < 1e-4)
        // The same fresh head the fit starts from (its seed), on the same scenes: fitting must
        // bring the points closer to the mats. (A random tiny backbone does not see the mat
        // well enough to beat the labels' mean; a trained one does — README, place pointing.)
        let fresh = try policy.withPlacePointingHead(seed: fit.seed &+ 31)
        let (freshPrefix, _) = try fresh.model.encodePrefix(fresh.inputs(scenes.map(\.observation)))
        let before = PlacePointingFit.meanError(try fresh.model.pointPlace(prefix: freshPrefix).toArray(Float.self), scenes)
        #expect(trainError < before - 0.02, "fitted \(trainError) vs fresh \(before)")

        let jpm = JointPredictionModule(strength: 1, pointSource: .predicted)
        jpm.carry = CarryGuidance()
        try jpm.prepare(policy: fitted, observation: observation, environment: scene)
        let expected = try fitted.model.pointPlace(prefix: fitted.model.encodePrefix(fitted.inputs([observation])).tokens).toArray(Float.self)
        let used = try #require(jpm.placeImagePoint)
        #expect(Swift.abs(used.x - Double(expected[0])) < 1e-6 && Swift.abs(used.y - Double(expected[1])) < 1e-6)
        // The oracle object with the predicted place (the two heads' errors apart): the same place point.
        let mixed = JointPredictionModule(strength: 1, pointSource: .oracle)
        mixed.carry = CarryGuidance()
        mixed.placeSource = .predicted
        try mixed.prepare(policy: fitted, observation: observation, environment: scene)
        #expect(mixed.placeImagePoint == used && mixed.imagePoint == scene.targetImagePoint)
        // Without a place head the predicted carry has no place to go: approach only.
        try jpm.prepare(policy: policy, observation: observation, environment: scene)
        #expect(jpm.placeImagePoint == nil && jpm.carryWaypoints.isEmpty && jpm.jointTarget != nil)
    }
}
