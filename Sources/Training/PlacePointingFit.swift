import Foundation
import RobotData
import RobotSim
import TensorKit
import VLAModel

/// JPM's carry target from the policy instead of the simulator: a place-pointing head fitted
/// on a frozen checkpoint that already points at the object. Pick/place scenes at reset (one
/// render each, as L1 pointing) are labelled with the mat's centre in the scene camera; the
/// backbone runs once per scene and only the new head trains, so every other weight of the
/// checkpoint stays bit-exact and its behaviour is unchanged.
public struct PlacePointingFit: Sendable {
    public var embodiment: EmbodimentKind
    public var scenes = 2000
    /// Scenes after the training ones, only measured.
    public var heldOutScenes = 200
    public var steps = 4000
    public var batchSize = 64
    public var learningRate: Float = 1e-3
    /// Scene seeds start here (the L1 pointing range: demos use ≥ 10 000, evaluation 0 ..< 10 000).
    public var firstSeed: UInt64 = 100_000
    public var seed: UInt64 = 0

    public init(embodiment: EmbodimentKind) { self.embodiment = embodiment }

    /// Mean distance (normalized image units, [−1, 1] across) from the labels.
    public struct Report: Codable, Sendable, Equatable {
        public var scenes: Int
        public var heldOutScenes: Int
        public var steps: Int
        /// Predicting the training labels' mean for every scene: what a head that ignores the image scores.
        public var heldOutErrorOfMean: Double
        public var heldOutErrorBefore: Double
        public var heldOutErrorAfter: Double
        public var trainErrorAfter: Double
    }

    struct Scene {
        var observation: PolicyObservation
        var place: SIMD2<Float>
    }

    /// A pick/place scene at reset and the mat centre's image point (nil if off camera).
    func render(_ seed: UInt64, imageSize: Int) throws -> Scene? {
        let env = try RobotEnvironment(embodiment: embodiment, task: .pickPlace, seed: seed,
                                       config: EnvironmentConfig(imageWidth: imageSize, imageHeight: imageSize))
        let o = env.reset()
        guard let zone = env.goal.zone, let p = env.imagePoint(zone.center, camera: "scene") else { return nil }
        return Scene(observation: PolicyEvaluator.policyObservation(o, env: env), place: SIMD2(Float(p.x), Float(p.y)))
    }

    /// The backbone's scene-camera tokens per scene, `[N, P, D]` flattened (what the head reads).
    static func sceneTokens(_ policy: VLAPolicy, _ scenes: [Scene]) throws -> [Float] {
        let g = policy.model.config.imageSize / 16
        var rows: [Float] = []
        for start in stride(from: 0, to: scenes.count, by: 50) {
            let part = scenes[start..<min(start + 50, scenes.count)].map(\.observation)
            let (prefix, _) = try policy.model.encodePrefix(policy.inputs(part))
            rows += try prefix.slice(axis: 1, 0..<(g * g)).toArray(Float.self)
        }
        return rows
    }

    static func meanError(_ points: [Float], _ scenes: [Scene]) -> Double {
        zip(scenes.indices, scenes).reduce(0.0) { sum, item in
            sum + Double(hypot(points[2 * item.0] - item.1.place.x, points[2 * item.0 + 1] - item.1.place.y))
        } / Double(max(scenes.count, 1))
    }

    /// The policy with a fitted place head (the checkpoint's own head is refitted if it has one).
    public func run(policy original: VLAPolicy, log: (String) -> Void) throws -> (policy: VLAPolicy, report: Report) {
        let policy = try original.withPlacePointingHead(seed: seed &+ 31)
        let model = policy.model
        guard let head = model.placePointingHead else { throw TensorError.unknownParameter("placePointingHead") }
        var train: [Scene] = [], heldOut: [Scene] = []
        for i in 0..<(scenes + heldOutScenes) {
            guard let s = try render(firstSeed + UInt64(i), imageSize: model.config.imageSize) else { continue }
            if i < scenes { train.append(s) } else { heldOut.append(s) }
            if (i + 1) % 500 == 0 { log("place-pointing scenes: \(i + 1)/\(scenes + heldOutScenes) rendered") }
        }
        guard !train.isEmpty else { throw TensorError.shapeMismatch("no pick_place scene has its mat in the scene camera") }
        let g = model.config.imageSize / 16, d = model.config.dims, width = g * g * d
        let trainTokens = try Self.sceneTokens(policy, train), heldOutTokens = try Self.sceneTokens(policy, heldOut)
        func points(_ tokens: [Float], _ count: Int) throws -> [Float] {
            guard count > 0 else { return [] }
            var out: [Float] = []
            for start in stride(from: 0, to: count, by: 256) {
                let n = min(256, count - start)
                let x = try Tensor(Array(tokens[(start * width)..<((start + n) * width)]), shape: [n, g * g, d])
                out += try model.point(with: head, prefix: x).toArray(Float.self)
            }
            return out
        }
        let mean = train.reduce(SIMD2<Float>(0, 0)) { $0 + $1.place } / Float(train.count)
        let ofMean = Self.meanError(Array(repeating: [mean.x, mean.y], count: heldOut.count).flatMap { $0 }, heldOut)
        let before = Self.meanError(try points(heldOutTokens, heldOut.count), heldOut)
        log(String(format: "place pointing: %d scenes, %d steps; held-out error before %.3f (the labels' mean: %.3f)",
                   train.count, steps, before, ofMean))

        let optimizer = AdamW(learningRate: learningRate, weightDecay: 0)
        let batch = StepInput<(x: Tensor, y: Tensor)>()
        let lossAndGrad = valueAndGrad(model: head) { h in
            let (x, y) = batch.value!
            return [try (model.point(with: h, prefix: x) - y).square().sum(axis: 1).mean()]
        }
        var generator = SplitMix64(seed: seed &+ 37)
        var recent: [Float] = []
        for step in 0..<steps {
            let picks = (0..<batchSize).map { _ in Int(generator.next() % UInt64(train.count)) }
            var x = [Float](), y = [Float]()
            x.reserveCapacity(picks.count * width)
            for i in picks {
                x += trainTokens[(i * width)..<((i + 1) * width)]
                y += [train[i].place.x, train[i].place.y]
            }
            batch.value = (try Tensor(x, shape: [picks.count, g * g, d]), try Tensor(y, shape: [picks.count, 2]))
            let (values, grads) = try lossAndGrad(head)
            try optimizer.step(model: head, gradients: grads, alsoEvaluate: values)
            recent.append(try values[0].item())
            if (step + 1) % 200 == 0 || step + 1 == steps {
                log(String(format: "place pointing step %d/%d  loss %.4f", step + 1, steps, recent.reduce(0, +) / Float(recent.count)))
                recent.removeAll()
            }
        }
        batch.value = nil
        let after = Self.meanError(try points(heldOutTokens, heldOut.count), heldOut)
        let trainAfter = Self.meanError(try points(trainTokens, train.count), train)
        log(String(format: "place pointing: held-out error after %.3f (before %.3f, the labels' mean %.3f); training scenes %.3f",
                   after, before, ofMean, trainAfter))
        return (policy, Report(scenes: train.count, heldOutScenes: heldOut.count, steps: steps, heldOutErrorOfMean: ofMean,
                               heldOutErrorBefore: before, heldOutErrorAfter: after, trainErrorAfter: trainAfter))
    }
}
