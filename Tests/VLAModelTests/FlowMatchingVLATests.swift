import Foundation
import Testing
import RobotData
import TensorKit
@testable import VLAModel

/// A tiny configuration so tests run in seconds.
func tinyConfig() -> VLAConfig {
    var c = VLAConfig()
    c.imageSize = 16
    c.maxTextLength = 24
    c.dims = 32
    c.heads = 2
    c.backboneLayers = 1
    c.expertLayers = 1
    c.horizon = 4
    c.noiseDraws = 2
    return c
}

/// A deterministic batch: 2 observations, one camera slot missing in the second.
func tinyBatch(_ c: VLAConfig, actionFill: Float = 0.5, padFill: Float = 0) throws -> PolicyBatch {
    let b = 2, s = c.imageSize, slots = c.cameraSlots, h = c.horizon
    let images = try Tensor((0..<(b * slots * s * s * 3)).map { Float(($0 * 37) % 255) / 255 }, shape: [b, slots, s, s, 3])
    let cameraMask = try Tensor([true, true, false, true, false, false], shape: [b, slots])
    let tokenizer = ByteTokenizer(maxLength: c.maxTextLength)
    let (t1, m1) = tokenizer.encode("Num hands: 1. reach the red cube")
    let (t2, m2) = tokenizer.encode("push")
    var state = [Float](repeating: 0, count: b * 64), stateMask = state
    for i in 0..<8 { state[i] = Float(i) * 0.1; stateMask[i] = 1; state[64 + i] = -0.2; stateMask[64 + i] = 1 }
    // Actions: slots 0..7 valid; chunk step 3 of the second sample is padding.
    var actions = [Float](repeating: padFill, count: b * h * 64), mask = [Float](repeating: 0, count: b * h * 64)
    for i in 0..<b { for k in 0..<h { for j in 0..<8 where !(i == 1 && k == 3) {
        actions[(i * h + k) * 64 + j] = actionFill * Float(j - k)
        mask[(i * h + k) * 64 + j] = 1
    } } }
    let inputs = try PolicyInputs(images: images, cameraMask: cameraMask, tokens: try Tensor(t1 + t2, shape: [b, c.maxTextLength]),
                              tokenMask: try Tensor(m1 + m2, shape: [b, c.maxTextLength]),
                              state: try Tensor(state, shape: [b, 64]), stateMask: try Tensor(stateMask, shape: [b, 64]))
    return PolicyBatch(inputs: inputs, actions: try Tensor(actions, shape: [b, h, 64]), actionMask: try Tensor(mask, shape: [b, h, 64]))
}

@Suite("Flow-matching VLA")
struct FlowMatchingVLATests {
    @Test func tokenizerIsByteLevelWithBOSAndPadding() {
        let (tokens, mask) = ByteTokenizer(maxLength: 6).encode("hé")
        // "é" is two UTF-8 bytes (0xC3 0xA9).
        #expect(tokens == [256, 104, 0xC3, 0xA9, 257, 257])
        #expect(mask == [true, true, true, true, false, false])
        #expect(ByteTokenizer(maxLength: 3).encode("abcdef").tokens == [256, 97, 98])
    }

    @Test func paddingValuesChangeNeitherLossNorGradient() throws {
        // Masked MSE: values in masked-out slots and padded chunk steps must not matter.
        let c = tinyConfig()
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 1))
        let clean = try tinyBatch(c, padFill: 0), noisy = try tinyBatch(c, padFill: 123.0)
        let key = RandomKey(seed: 5)
        let f = { (b: PolicyBatch) in valueAndGrad(model: model) { m in try m.loss(b, key: key) } }
        let (l1, g1) = try f(clean)(model), (l2, g2) = try f(noisy)(model)
        #expect(try l1.item() == l2.item())
        for (k, g) in g1 { #expect(try g.toArray(Float.self) == g2[k]!.toArray(Float.self), "gradient of \(k)") }
        // …while changing a valid action does change the loss.
        let other = try tinyBatch(c, actionFill: 0.9)
        #expect(try f(other)(model).loss.item() != l1.item())
    }

    @Test func eulerSamplerIntegratesAConstantVelocityExactly() throws {
        // With the velocity head's weight zeroed and its bias = c, v ≡ c, so 10 Euler steps of
        // dt = 0.1 from t = 1 to 0 give x₀ = ε − c·Σdt = ε − c, with ε the key's normal draw.
        let c = tinyConfig()
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 2))
        let bias = try Tensor((0..<64).map { Float($0) * 0.01 - 0.3 })
        try model.update(parameters: ["velocityHead.weight": Tensor.zeros([64, c.dims]), "velocityHead.bias": bias])
        let batch = try tinyBatch(c)
        let key = RandomKey(seed: 11)
        let sampled: [Float] = try model.sampleActions(batch.inputs, key: key).toArray()
        let noise: [Float] = try key.normal([2, c.horizon, 64]).toArray()
        let biasValues: [Float] = try bias.toArray()
        let expected = noise.enumerated().map { $0.element - biasValues[$0.offset % 64] }
        for (a, e) in zip(sampled, expected) { #expect(Swift.abs(a - e) < 1e-5) }
    }

    @Test func guidancePullsMaskedEntriesTowardTheTargetInClosedForm() throws {
        // v ≡ c (zeroed head weight, bias c). Guided step: x ← x − dt·c + s·dt·m ⊙ (y − (x − t·c)).
        // With s·dt = 1 a guided entry becomes y + (t − dt)·c, so after the last step (t = dt)
        // it is exactly y; unguided entries still end at ε − c. With c = 0 and s = 3 a guided
        // entry is y + (ε − y)·(1 − 0.3)¹⁰.
        let c = tinyConfig()
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 2))
        let batch = try tinyBatch(c)
        let key = RandomKey(seed: 11)
        let noise: [Float] = try key.normal([2, c.horizon, 64]).toArray()
        let n = noise.count
        let y = (0..<n).map { Float($0 % 7) * 0.25 - 0.5 }
        let m = (0..<n).map { Float(($0 % 64) < 7 ? 1 : 0) }
        for (biasScale, strength) in [(Float(0.01), 10.0), (0, 3.0)] {
            let bias = (0..<64).map { Float($0) * biasScale - 30 * biasScale }
            try model.update(parameters: ["velocityHead.weight": Tensor.zeros([64, c.dims]), "velocityHead.bias": Tensor(bias)])
            let guidance = FlowGuidance(target: try Tensor(y, shape: [2, c.horizon, 64]), weights: try Tensor(m, shape: [2, c.horizon, 64]),
                                        strength: strength)
            let sampled: [Float] = try model.sampleActions(batch.inputs, key: key, guidance: guidance).toArray()
            let decay = Float(pow(1 - strength * 0.1, 10))
            for i in 0..<n {
                let expected = m[i] == 0 ? noise[i] - bias[i % 64] : y[i] + (noise[i] - y[i]) * decay
                #expect(Swift.abs(sampled[i] - expected) < 1e-4, "entry \(i), strength \(strength)")
            }
        }
    }

    @Test func lossFallsWhenOverfittingOneBatch() throws {
        let c = tinyConfig()
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 3))
        let batch = try tinyBatch(c)
        let optimizer = AdamW(learningRate: 2e-3, weightDecay: 0)
        var losses: [Float] = []
        for step in 0..<60 {
            // Fixed key: the same (t, ε) draws each step, so the target is learnable exactly.
            let (loss, grads) = try valueAndGrad(model: model) { m in try m.loss(batch, key: RandomKey(seed: 9)) }(model)
            try optimizer.step(model: model, gradients: grads, alsoEvaluate: [loss])
            if step == 0 || step == 59 { losses.append(try loss.item()) }
        }
        #expect(losses[1] < 0.25 * losses[0], "loss \(losses[0]) → \(losses[1])")
    }

    @Test func missingCamerasAndBadShapesAreHandled() throws {
        let c = tinyConfig()
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 4))
        var batch = try tinyBatch(c)
        // Pixels of a masked camera slot do not change the prefix of the valid tokens' outputs.
        let before: [Float] = try model.sampleActions(batch.inputs, key: RandomKey(seed: 1)).toArray()
        var pixels: [Float] = try batch.inputs.images.toArray()
        let frame = c.imageSize * c.imageSize * 3
        for i in (5 * frame)..<(6 * frame) { pixels[i] = 0.77 }  // sample 1, slot 2 (masked)
        batch.inputs.images = try Tensor(pixels, shape: batch.inputs.images.shape)
        let after: [Float] = try model.sampleActions(batch.inputs, key: RandomKey(seed: 1)).toArray()
        for (a, b) in zip(before, after) { #expect(Swift.abs(a - b) < 1e-5) }
        batch.inputs.images = try Tensor.zeros([2, 3, 8, 8, 3])
        #expect(throws: TensorError.self) { try model.loss(batch, key: RandomKey(seed: 0)) }
    }
}

@Suite("Vision keypoints")
struct VisionKeypointTests {
    @Test func spatialSoftmaxReturnsTheExpectedPixelCentre() throws {
        let encoder = try VisionEncoder(dims: 8, keypoints: 2, key: RandomKey(seed: 0))
        // 4×4 grid, two channels. Channel 0: logit 20 at (row 1, col 2) → softmax is one-hot
        // to within e⁻²⁰; pixel centres are (2i + 1)/4 − 1, so (x, y) = (0.25, −0.25).
        // Channel 1: all equal → the grid's mean (0, 0).
        var logits = [Float](repeating: 0, count: 4 * 4 * 2)
        logits[(1 * 4 + 2) * 2 + 0] = 20
        let xy = try encoder.spatialSoftmax(Tensor(logits, shape: [1, 4, 4, 2])).toArray(Float.self)
        let expected: [Float] = [0.25, 0, -0.25, 0]     // x0, x1, y0, y1
        for (a, e) in zip(xy, expected) { #expect(Swift.abs(a - e) < 1e-6) }
    }

    @Test func keypointTokenIsAddedPerCameraAndOldConfigsDecodeWithoutIt() throws {
        var c = tinyConfig()
        c.keypoints = 4
        #expect(c.tokensPerCamera == 1 + 1)     // 16 px → one patch, plus the keypoint token
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 1))
        let (prefix, _) = try model.encodePrefix(tinyBatch(c).inputs)
        #expect(prefix.dim(1) == c.cameraSlots * 2 + c.maxTextLength)
        // A config written before keypoints existed describes weights without them.
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(c)) as! [String: Any]
        json.removeValue(forKey: "keypoints")
        let old = try JSONDecoder().decode(VLAConfig.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(old.keypoints == 0 && old.dims == c.dims && old.horizon == c.horizon)
    }
}

@Suite("Pointing head (L1 co-training)")
struct PointingHeadTests {
    private func pointingConfig() -> VLAConfig {
        var c = tinyConfig()
        c.imageSize = 32            // 2×2 scene patches
        c.pointingWeight = 1
        return c
    }

    @Test func pointIsTheChosenPatchCentrePlusItsBoundedOffset() throws {
        let c = pointingConfig()
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 0))
        let head = try #require(model.pointingHead)
        // logit = 20·f0, x offset = tanh(f1)/g, y offset = tanh(f2)/g.
        var w = [Float](repeating: 0, count: 3 * c.dims)
        w[0] = 20; w[c.dims + 1] = 1; w[2 * c.dims + 2] = 1
        try head.update(parameters: ["weight": Tensor(w, shape: [3, c.dims]), "bias": Tensor.zeros([3])])
        // Patch 3 (row 1, col 1; centre (0.5, 0.5)) has f0 = 1, f1 = atanh(0.5); the rest 0.
        var prefix = [Float](repeating: 0, count: 6 * c.dims)
        prefix[3 * c.dims] = 1
        prefix[3 * c.dims + 1] = Float(atanh(0.5))
        let p = try model.pointTarget(prefix: Tensor(prefix, shape: [1, 6, c.dims])).toArray(Float.self)
        // Softmax weight of patch 3: e²⁰/(e²⁰ + 3) ≈ 1 − 1.2e−8; x = 0.5 + 0.5/2 = 0.75, y = 0.5.
        #expect(Swift.abs(p[0] - 0.75) < 1e-5 && Swift.abs(p[1] - 0.5) < 1e-5, "\(p)")
    }

    @Test func pointingLossReachesTheVisionEncoderAndIgnoresUnlabelledRows() throws {
        let c = pointingConfig()
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 1))
        var batch = try tinyBatch(c)
        batch.targetPoints = try Tensor([0.2, -0.3, 0.9, 0.9] as [Float], shape: [2, 2])
        batch.targetPointMask = try Tensor([1, 0] as [Float], shape: [2])
        let key = RandomKey(seed: 3)
        let (loss, grads) = try valueAndGrad(model: model) { m in try m.loss(batch, key: key) }(model)
        #expect(try grads["vision.stem.weight"]!.abs().sum().item() > 0)
        #expect(try grads["pointingHead.weight"]!.abs().sum().item() > 0)
        // The unlabelled row's target does not matter.
        batch.targetPoints = try Tensor([0.2, -0.3, -5, 7] as [Float], shape: [2, 2])
        #expect(try model.loss(batch, key: key).item() == loss.item())
        // The labelled row's does, by exactly the pointing term.
        let (prefix, _) = try model.encodePrefix(batch.inputs)
        let p = try model.pointTarget(prefix: prefix).toArray(Float.self)
        let expectedPointing = (p[0] - 0.2) * (p[0] - 0.2) + (p[1] + 0.3) * (p[1] + 0.3)
        batch.targetPoints = nil
        let flow = try model.loss(batch, key: key).item()
        #expect(Swift.abs(try loss.item() - flow - expectedPointing) < 1e-5)
    }
}
