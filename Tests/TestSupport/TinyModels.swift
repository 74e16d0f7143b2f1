import Foundation
import RobotData
import RobotSim
import TensorKit
import Training
import VLAModel

/// A VLA small enough for a test: 16-pixel cameras, one layer each, 4-step chunks.
public func tinyVLAConfig() -> VLAConfig {
    var model = VLAConfig()
    model.imageSize = 16
    model.dims = 32
    model.heads = 2
    model.backboneLayers = 1
    model.expertLayers = 1
    model.horizon = 4
    model.executeSteps = 2
    model.noiseDraws = 1
    return model
}

/// A tiny untrained arm7 policy (normalized on one scripted reach demo) and an observation
/// from that demo: what the policy-server tests serve.
public func tinyPolicyFixture() throws -> (VLAPolicy, PolicyObservation) {
    let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010], imageSize: 16)
    let policy = VLAPolicy(model: try FlowMatchingVLA(config: tinyVLAConfig(), key: RandomKey(seed: 1)),
                           stats: NormalizationStats(episodes: demos))
    return (policy, demos[0].policyObservation(at: 3, spec: EmbodimentKind.arm7.spec))
}

/// Writes `observation` as the JSON file `clients/python/tests/predict_against_server.py` reads.
public func writeObservationFile(_ observation: PolicyObservation, imageSize: Int, seed: Int, to file: URL) throws {
    let json: [String: Any] = [
        "embodiment": observation.embodiment.name, "instruction": observation.instruction, "image_size": imageSize, "seed": seed,
        "state": observation.nativeState.map(Double.init), "cameras": observation.cameras.mapValues { $0.map(Int.init) },
    ]
    try JSONSerialization.data(withJSONObject: json).write(to: file)
}
