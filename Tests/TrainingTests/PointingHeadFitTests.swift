import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
@testable import Training
import VLAModel

@Suite("Pointing head fit")
struct PointingHeadFitTests {
    /// Fitting the place head on a frozen tiny model: every other weight stays bit-exact; each
    /// label lifted back to 3D with the rendered depth lands on its mat's centre (the inverse
    /// camera path, so the label is the mat's projection); the fitted head points closer to the
    /// mats it trained on than the fresh head it started from, its reported error recomputed
    /// here from its own points; JPM with the predicted point then takes the carry's place
    /// point from this head.
    @Test func fittedHeadPointsAtTheMatAndLeavesTheRestUnchanged() throws {
        let (c, policy, scene, observation, fit) = try smallFit(.place)
        let (fitted, report) = try fit.run(policy: policy) { _ in }

        let original = policy.model.parameters(), now = fitted.model.parameters()
        #expect(Set(now.keys).subtracting(original.keys).allSatisfy { $0.hasPrefix("placePointingHead") })
        for (name, value) in original {
            #expect(try now[name]!.toArray(Float.self) == value.toArray(Float.self), "\(name)")
        }
        #expect(fitted.model.config.placePointing && policy.model.placePointingHead == nil)
        #expect(report.head == .place && report.task == .pickPlace)
        // Refitting the fitted head starts from its weights and leaves its input policy as it was.
        var again = fit
        again.steps = 1
        let (refitted, _) = try again.run(policy: fitted) { _ in }
        #expect(refitted !== fitted)
        let before = try fitted.model.placePointingHead!.weight.toArray(Float.self)
        #expect(try fitted.model.parameters()["placePointingHead.weight"]!.toArray(Float.self) == before)
        #expect(try refitted.model.placePointingHead!.weight.toArray(Float.self) != before)

        let scenes = try (0..<24).compactMap { try fit.render(100_000 + UInt64($0), imageSize: c.imageSize) }
        #expect(scenes.count == report.scenes)
        let env = try RobotEnvironment(embodiment: .arm7, task: .pickPlace, seed: 100_000,
                                       config: EnvironmentConfig(imageWidth: 96, imageHeight: 96))
        env.reset()
        let label = try #require(try fit.render(100_000, imageSize: 96))
        let lifted = try #require(try env.liftImagePoint(SIMD2(Double(label.label.x), Double(label.label.y))))
        let mat = try #require(env.goal.zone)
        #expect(hypot(lifted.x - mat.center.x, lifted.y - mat.center.y) < 0.015)

        let (prefix, _) = try fitted.model.encodePrefix(fitted.inputs(scenes.map(\.observation)))
        let points = try fitted.model.pointPlace(prefix: prefix).toArray(Float.self)
        let trainError = PointingHeadFit.meanError(points, scenes)
        #expect(Swift.abs(trainError - report.trainErrorAfter) < 1e-4)
        // The same fresh head the fit starts from (its seed), on the same scenes: fitting must
        // bring the points closer to the mats. (A random tiny backbone does not see the mat
        // well enough to beat the labels' mean; a trained one does — README, place pointing.)
        let fresh = try policy.withPlacePointingHead(seed: fit.seed &+ 31)
        let (freshPrefix, _) = try fresh.model.encodePrefix(fresh.inputs(scenes.map(\.observation)))
        let freshError = PointingHeadFit.meanError(try fresh.model.pointPlace(prefix: freshPrefix).toArray(Float.self), scenes)
        #expect(trainError < freshError - 0.02, "fitted \(trainError) vs fresh \(freshError)")

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

    /// Refitting the object head alone: its labels are the target object's projection (lifted
    /// back with the rendered depth they land on the block); it starts from the checkpoint's
    /// own head (the reported error before equals that head's error recomputed here); fitting
    /// lowers the error on the scenes it trained on; nothing but the object head changes and
    /// the input policy keeps its head; JPM's predicted point then comes from the refitted head.
    @Test func objectHeadRefitStartsFromTheCheckpointsHeadAndChangesOnlyIt() throws {
        let (c, policy, scene, observation, fit) = try smallFit(.object)
        let (fitted, report) = try fit.run(policy: policy) { _ in }
        #expect(report.head == .object && !fitted.model.config.placePointing)

        let original = policy.model.parameters(), now = fitted.model.parameters()
        #expect(Set(now.keys) == Set(original.keys))
        var changed: [String] = []
        for (name, value) in original where try now[name]!.toArray(Float.self) != value.toArray(Float.self) { changed.append(name) }
        #expect(Set(changed) == ["pointingHead.weight", "pointingHead.bias"])

        let all = try (0..<30).compactMap { try fit.render(100_000 + UInt64($0), imageSize: c.imageSize) }
        let train = Array(all.prefix(report.scenes)), heldOut = Array(all.dropFirst(report.scenes))
        #expect(train.count == report.scenes && heldOut.count == report.heldOutScenes)
        func error(_ p: VLAPolicy, _ scenes: [PointingHeadFit.Scene]) throws -> Double {
            let (prefix, _) = try p.model.encodePrefix(p.inputs(scenes.map(\.observation)))
            return PointingHeadFit.meanError(try p.model.pointTarget(prefix: prefix).toArray(Float.self), scenes)
        }
        #expect(Swift.abs(try error(policy, heldOut) - report.heldOutErrorBefore) < 1e-4)
        #expect(Swift.abs(try error(fitted, train) - report.trainErrorAfter) < 1e-4)
        #expect(report.trainErrorAfter < (try error(policy, train)) - 0.02)

        let env = try RobotEnvironment(embodiment: .arm7, task: .pickPlace, seed: 100_000,
                                       config: EnvironmentConfig(imageWidth: 96, imageHeight: 96))
        env.reset()
        let label = try #require(try fit.render(100_000, imageSize: 96))
        let lifted = try #require(try env.liftImagePoint(SIMD2(Double(label.label.x), Double(label.label.y))))
        let block = env.objectPosition(env.goal.object)
        // The depth image sees the block's top face; its centre is within the block's half size.
        #expect(hypot(lifted.x - block.x, lifted.y - block.y) < 0.02)

        let jpm = JointPredictionModule(strength: 1, pointSource: .predicted)
        try jpm.prepare(policy: fitted, observation: observation, environment: scene)
        let expected = try fitted.model.pointTarget(prefix: fitted.model.encodePrefix(fitted.inputs([observation])).tokens).toArray(Float.self)
        let used = try #require(jpm.imagePoint)
        #expect(Swift.abs(used.x - Double(expected[0])) < 1e-6 && Swift.abs(used.y - Double(expected[1])) < 1e-6)
    }

    /// Bad requests are typed errors: a model trained without a pointing loss has no grounded
    /// tokens to fit on, and reach scenes have no mat for a place head to point at.
    @Test func badRequestsAreTypedErrors() throws {
        let (c, policy, _, _, fit) = try smallFit(.place)
        var bare = c
        bare.pointingWeight = 0
        let (unpointed, _, _) = try untrainedPolicyAndScene(bare, task: .pickPlace)
        #expect(throws: PointingHeadFitError.noPointingHead) { try fit.run(policy: unpointed) { _ in } }
        var onReach = fit
        onReach.task = .reach
        onReach.scenes = 3
        onReach.heldOutScenes = 0
        #expect(throws: PointingHeadFitError.noLabelledScene(head: .place, task: .reach)) { try onReach.run(policy: policy) { _ in } }
    }

    /// A small untrained model with a pointing head on 64-px cameras (4 × 4 scene patches to
    /// choose from; 32 px leaves 4), a pick/place scene, and a 24-scene fit of `head`.
    func smallFit(_ head: PointingHeadFit.Head) throws -> (VLAConfig, VLAPolicy, RobotEnvironment, PolicyObservation, PointingHeadFit) {
        var c = smallConfig()
        c.pointingWeight = 1
        c.imageSize = 64
        let (policy, scene, observation) = try untrainedPolicyAndScene(c, task: .pickPlace)
        var fit = PointingHeadFit(head: head, embodiment: .arm7)
        fit.scenes = 24
        fit.heldOutScenes = 6
        fit.steps = 600
        return (c, policy, scene, observation, fit)
    }
}
