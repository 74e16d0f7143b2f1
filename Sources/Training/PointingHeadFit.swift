import Foundation
import RobotData
import RobotSim
import TensorKit
import VLAModel

/// A pointing head fitted alone on a frozen checkpoint, for JPM's predicted points. Scenes at
/// reset (one render each, as L1 pointing) are labelled in the scene camera with the task's
/// target object (`object`: refits the checkpoint's own pointing head, starting from its
/// weights) or with the pick/place mat's centre (`place`: the carry's target, a new head). The
/// backbone runs once per scene and only the head trains, so every other weight of the
/// checkpoint stays bit-exact and the policy's actions are unchanged.
public struct PointingHeadFit: Sendable {
    public enum Head: String, Codable, Sendable, CaseIterable {
        /// The task's target object (what JPM's approach points at: `FlowMatchingVLA.pointingHead`).
        case object
        /// Where a pick/place object goes: the mat (`FlowMatchingVLA.placePointingHead`).
        case place
        /// The head's parameter key in the model.
        var parameterKey: String { self == .object ? "pointingHead" : "placePointingHead" }
    }
    public var head: Head
    /// Scenes of this task (the place head needs pick/place: its mat).
    public var task: TaskKind = .pickPlace
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

    public init(head: Head, embodiment: EmbodimentKind) {
        self.head = head
        self.embodiment = embodiment
    }

    /// Mean distance (normalized image units, [−1, 1] across) from the labels.
    public struct Report: Codable, Sendable, Equatable {
        public var head: Head
        public var task: TaskKind
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
        var label: SIMD2<Float>
    }

    /// A scene at reset and its label's image point (nil if off camera or the task has none).
    func render(_ seed: UInt64, imageSize: Int) throws -> Scene? {
        let env = try RobotEnvironment(embodiment: embodiment, task: task, seed: seed,
                                       config: EnvironmentConfig(imageWidth: imageSize, imageHeight: imageSize))
        let o = env.reset()
        let point: SIMD2<Double>?
        switch head {
        case .object: point = env.targetImagePoint
        case .place: point = env.zoneImagePoint
        }
        guard let p = point else { return nil }
        return Scene(observation: PolicyEvaluator.policyObservation(o, env: env), label: SIMD2(Float(p.x), Float(p.y)))
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
            sum + Double(hypot(points[2 * item.0] - item.1.label.x, points[2 * item.0 + 1] - item.1.label.y))
        } / Double(max(scenes.count, 1))
    }

    /// The policy with the fitted head (a copy: `original` is unchanged).
    public func run(policy original: VLAPolicy, log: (String) -> Void) throws -> (policy: VLAPolicy, report: Report) {
        guard original.model.pointingHead != nil else { throw PointingHeadFitError.noPointingHead }
        // A copy either way: `withPlacePointingHead` is the policy itself when it has a place head.
        let policy = try (head == .place ? original.withPlacePointingHead(seed: seed &+ 31) : original).copy()
        let model = policy.model
        guard let initial = head == .place ? model.placePointingHead : model.pointingHead else {
            throw PointingHeadFitError.noPointingHead
        }
        // Trained in a head of its own: the model's head may be frozen (a checkpoint's grounding is).
        let fitted = try Linear(model.config.dims, 3, key: RandomKey(seed: seed))
        try fitted.update(parameters: initial.parameters())
        var train: [Scene] = [], heldOut: [Scene] = []
        for i in 0..<(scenes + heldOutScenes) {
            guard let s = try render(firstSeed + UInt64(i), imageSize: model.config.imageSize) else { continue }
            if i < scenes { train.append(s) } else { heldOut.append(s) }
            if (i + 1) % 500 == 0 { log("\(head.rawValue)-pointing scenes: \(i + 1)/\(scenes + heldOutScenes) rendered") }
        }
        guard !train.isEmpty else { throw PointingHeadFitError.noLabelledScene(head: head, task: task) }
        let g = model.config.imageSize / 16, d = model.config.dims, width = g * g * d
        let trainTokens = try Self.sceneTokens(policy, train), heldOutTokens = try Self.sceneTokens(policy, heldOut)
        func points(_ tokens: [Float], _ count: Int) throws -> [Float] {
            guard count > 0 else { return [] }
            var out: [Float] = []
            for start in stride(from: 0, to: count, by: 256) {
                let n = min(256, count - start)
                let x = try Tensor(Array(tokens[(start * width)..<((start + n) * width)]), shape: [n, g * g, d])
                out += try model.point(with: fitted, prefix: x).toArray(Float.self)
            }
            return out
        }
        let mean = train.reduce(SIMD2<Float>(0, 0)) { $0 + $1.label } / Float(train.count)
        let ofMean = Self.meanError(Array(repeating: [mean.x, mean.y], count: heldOut.count).flatMap { $0 }, heldOut)
        let before = Self.meanError(try points(heldOutTokens, heldOut.count), heldOut)
        log(String(format: "\(head.rawValue) pointing: %d scenes, %d steps; held-out error before %.3f (the labels' mean: %.3f)",
                   train.count, steps, before, ofMean))

        let optimizer = AdamW(learningRate: learningRate, weightDecay: 0)
        let batch = StepInput<(x: Tensor, y: Tensor)>()
        let lossAndGrad = valueAndGrad(model: fitted) { h in
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
                y += [train[i].label.x, train[i].label.y]
            }
            batch.value = (try Tensor(x, shape: [picks.count, g * g, d]), try Tensor(y, shape: [picks.count, 2]))
            let (values, grads) = try lossAndGrad(fitted)
            try optimizer.step(model: fitted, gradients: grads, alsoEvaluate: values)
            recent.append(try values[0].item())
            if (step + 1) % 200 == 0 || step + 1 == steps {
                log(String(format: "\(head.rawValue) pointing step %d/%d  loss %.4f", step + 1, steps, recent.reduce(0, +) / Float(recent.count)))
                recent.removeAll()
            }
        }
        batch.value = nil
        let after = Self.meanError(try points(heldOutTokens, heldOut.count), heldOut)
        let trainAfter = Self.meanError(try points(trainTokens, train.count), train)
        log(String(format: "\(head.rawValue) pointing: held-out error after %.3f (before %.3f, the labels' mean %.3f); training scenes %.3f",
                   after, before, ofMean, trainAfter))
        try model.update(parameters: Dictionary(uniqueKeysWithValues: fitted.parameters().map { ("\(head.parameterKey).\($0.key)", $0.value) }))
        return (policy, Report(head: head, task: task, scenes: train.count, heldOutScenes: heldOut.count, steps: steps, heldOutErrorOfMean: ofMean,
                               heldOutErrorBefore: before, heldOutErrorAfter: after, trainErrorAfter: trainAfter))
    }
}

public enum PointingHeadFitError: Error, Equatable, CustomStringConvertible {
    /// The checkpoint was trained without a pointing loss: no head, and no grounded tokens to fit one on.
    case noPointingHead
    /// No training scene has the head's label in the scene camera (e.g. a place head on a task without a mat).
    case noLabelledScene(head: PointingHeadFit.Head, task: TaskKind)

    public var description: String {
        switch self {
        case .noPointingHead:
            return "fitting a pointing head needs a checkpoint trained with a pointing loss (--pointing-weight > 0)"
        case .noLabelledScene(let head, let task):
            return "no \(task.rawValue) scene has its \(head == .place ? "place (a pick/place mat)" : "target object") in the scene camera"
        }
    }
}
