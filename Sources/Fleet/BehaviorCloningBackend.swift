import Foundation
import RobotData
import TensorKit
import Training

/// HG-DAgger's simplest learner: behaviour cloning (MSE) of a `LinearPolicy` on the steps an
/// operator or a demonstration chose, from offline demos plus every online episode. Policy
/// steps are not imitated (they are what the operator corrected).
public actor BehaviorCloningBackend: LearnerBackend {
    public nonisolated let modelName = LinearPolicy.modelName
    public nonisolated let embodiment: String
    public let model: LinearPolicy
    private let optimizer: AdamW
    private let batchSize: Int
    private var replay: Replay
    private var random: SplitMix64
    public private(set) var stepsTrained = 0

    public init(embodiment: EmbodimentSpec, seed: UInt64, learningRate: Float = 1e-2, batchSize: Int = 64,
                capacity: Int = 50_000, offline: [Episode] = []) throws {
        self.embodiment = embodiment.name
        model = try LinearPolicy(embodiment: embodiment, seed: seed)
        optimizer = AdamW(learningRate: learningRate, weightDecay: 0)
        self.batchSize = batchSize
        random = SplitMix64(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
        var replay = Replay(embodiment: embodiment.name, capacity: capacity)
        for episode in offline { replay.add(episode) }
        self.replay = replay
    }

    /// Number of imitation rows held.
    public var sampleCount: Int { replay.states.count }
    /// Episodes of another embodiment (not imitated).
    public var ignoredEpisodes: Int { replay.ignored }

    public func ingest(_ episode: Episode) async throws { replay.add(episode) }

    /// (state, native action) rows of operator and demo steps, a ring of `capacity` rows.
    private struct Replay {
        let embodiment: String
        let capacity: Int
        var states: [[Float]] = []
        var actions: [[Float]] = []
        var nextSlot = 0
        var ignored = 0

        mutating func add(_ episode: Episode) {
            guard episode.embodiment == embodiment else { ignored += 1; return }
            for t in 0..<episode.stepCount where episode.sources[t] != .policy {
                let s = Array(episode.states.row(t)), a = Array(episode.nativeActions.row(t))
                if states.count < capacity {
                    states.append(s); actions.append(a)
                } else {
                    states[nextSlot] = s; actions[nextSlot] = a
                    nextSlot = (nextSlot + 1) % capacity
                }
            }
        }
    }

    /// One AdamW step on a random minibatch; nil until there is at least one row.
    public func trainStep() async throws -> Float? {
        let (states, actions) = (replay.states, replay.actions)
        guard !states.isEmpty else { return nil }
        let n = min(batchSize, states.count)
        var xs: [Float] = [], ys: [Float] = []
        xs.reserveCapacity(n * model.stateDimension)
        ys.reserveCapacity(n * model.actionDimension)
        for _ in 0..<n {
            let i = Int(random.next() % UInt64(states.count))
            xs += states[i]
            ys += actions[i]
        }
        let model = self.model, optimizer = self.optimizer
        let (sd, ad) = (model.stateDimension, model.actionDimension)
        let loss: Float = try TensorLock.run {
            let x = try Tensor(xs, shape: [n, sd]), y = try Tensor(ys, shape: [n, ad])
            let step = valueAndGrad(model: model) { m in try mseLoss(m(x), y) }
            let (loss, grads) = try step(model)
            try optimizer.step(model: model, gradients: grads, alsoEvaluate: [loss])
            return try loss.item()
        }
        stepsTrained += 1
        return loss
    }

    public func exportTrainableWeights() async throws -> [String: Tensor] {
        model.trainableParameters()
    }

    public func saveCheckpoint(to directory: URL) async throws {
        let (model, optimizer, steps) = (self.model, self.optimizer, stepsTrained)
        try TensorLock.run {
            try Checkpoint.save(model: model, optimizer: optimizer, name: LinearPolicy.modelName, step: steps, to: directory)
        }
        try JSONEncoder().encode(SamplerCheckpoint(generator: random.state, stepsTrained: stepsTrained))
            .write(to: directory.appendingPathComponent("sampler.json"), options: .atomic)
    }

    public func restoreCheckpoint(from directory: URL) async throws {
        let sampler = try JSONDecoder().decode(SamplerCheckpoint.self, from: Data(contentsOf: directory.appendingPathComponent("sampler.json")))
        let (model, optimizer) = (self.model, self.optimizer)
        try TensorLock.run {
            _ = try Checkpoint.load(into: model, optimizer: optimizer, from: directory)
        }
        random = SplitMix64(seed: sampler.generator)
        stepsTrained = sampler.stepsTrained
    }
}
