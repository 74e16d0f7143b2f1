import Foundation
import Testing
import RobotData
import TensorKit
@testable import VLAModel

@Suite("Speed conditioning and the progress head")
struct SpeedAndProgressTests {
    func speedConfig() -> VLAConfig {
        var c = tinyConfig()
        c.speedConditioning = true
        return c
    }

    func withLogSpeed(_ inputs: PolicyInputs, _ logSpeeds: [Float]) throws -> PolicyInputs {
        var inputs = inputs
        inputs.logSpeed = try Tensor(logSpeeds, shape: [logSpeeds.count])
        return inputs
    }

    @Test func featuresAreTheLogSpeedAndItsSinusoids() throws {
        let speeds: [Double] = [0.5, 1, 2, 20]
        let features: [Float] = try SpeedModulation.features(Tensor(speeds.map { Float(Foundation.log($0)) }, shape: [4])).toArray()
        for (row, v) in speeds.enumerated() {
            let u = min(max(Foundation.log(v), -2), 2)   // 20× is clipped to e²
            let expected = [u] + (1...4).map { Foundation.sin(Double($0) * .pi / 2 * u) } + (1...4).map { Foundation.cos(Double($0) * .pi / 2 * u) }
            for (j, e) in expected.enumerated() { #expect(abs(Double(features[row * 9 + j]) - e) < 1e-5, "v \(v) feature \(j)") }
        }
    }

    @Test func freshModulationLeavesTheExpertExactlyAsWithout() throws {
        let plain = try FlowMatchingVLA(config: tinyConfig(), key: RandomKey(seed: 3))
        let conditioned = try FlowMatchingVLA(config: speedConfig(), key: RandomKey(seed: 3))
        // Same key: every parameter the plain model has is drawn identically.
        let p = plain.parameters(), q = conditioned.parameters()
        for (name, value) in p { #expect(try value.toArray() as [Float] == q[name]!.toArray() as [Float], "\(name)") }
        #expect(Set(q.keys).subtracting(p.keys).allSatisfy { $0.hasPrefix("speedModulation.") })
        let inputs = try tinyBatch(tinyConfig()).inputs
        let reference: [Float] = try plain.sampleActions(inputs, key: RandomKey(seed: 4)).toArray()
        for logSpeed: Float in [-0.7, 0, 0.7] {
            let sampled: [Float] = try conditioned.sampleActions(withLogSpeed(inputs, [logSpeed, logSpeed]), key: RandomKey(seed: 4)).toArray()
            #expect(zip(reference, sampled).allSatisfy { abs($0 - $1) < 1e-6 }, "log v = \(logSpeed)")
        }
    }

    @Test func finalNormShiftMovesTheVelocityByTheHeadTimesTheShift() throws {
        // With every modulation 0 except the last norm's shift β (the output layer's bias),
        // the velocity head sees RMSNorm(h) + β, so v changes by exactly W_head·β.
        let c = speedConfig(), d = c.dims
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 5))
        let plain = try FlowMatchingVLA(config: tinyConfig(), key: RandomKey(seed: 5))
        let modulation = model.speedModulation!
        let norms = modulation.norms
        #expect(norms == ActionExpertBlock.modulatedNorms * c.expertLayers + 1)
        let beta = (0..<d).map { Float(($0 * 7) % 11) / 11 - 0.5 }
        var bias = [Float](repeating: 0, count: 2 * norms * d)
        for j in 0..<d { bias[((norms - 1) * 2 + 1) * d + j] = beta[j] }
        modulation.output.bias = try Tensor(bias, shape: [2 * norms * d])

        let batch = try tinyBatch(c), b = batch.inputs.batchSize, h = c.horizon
        let (prefix, mask) = try model.encodePrefix(batch.inputs)
        let x = try RandomKey(seed: 6).normal([b, h, 64]), t = try Tensor([0.3, 0.8] as [Float], shape: [2])
        let v: [Float] = try model.velocity(noisyActions: x, time: t, state: batch.inputs.state, stateMask: batch.inputs.stateMask,
                                            memory: model.prefixMemory(prefix), prefixMask: mask).toArray()
        let v0: [Float] = try plain.velocity(noisyActions: x, time: t, state: batch.inputs.state, stateMask: batch.inputs.stateMask,
                                             memory: plain.prefixMemory(prefix), prefixMask: mask).toArray()
        let w: [Float] = try plain.velocityHead.weight.toArray()   // [64, d]
        let shift = (0..<64).map { i in (0..<d).reduce(Float(0)) { $0 + w[i * d + $1] * beta[$1] } }
        for row in 0..<(b * h) { for i in 0..<64 { #expect(abs(v[row * 64 + i] - v0[row * 64 + i] - shift[i]) < 1e-4) } }
    }

    @Test func trainedWithSpeedLabelsTheChunkScalesWithTheKnob() throws {
        // The same observation demonstrated at 0.5× and 2×: chunk step k moves v·0.25·(k + 1)
        // on 8 slots. Trained with its speed label, the model's chunk at v = 2 must be ~4× the
        // one at v = 0.5 (the labels are the only thing telling the rows apart).
        let c = speedConfig()
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 11))
        let base = try tinyBatch(c)
        let one = try withLogSpeed(base.inputs, [0, 0])
        let twin = try PolicyInputs(
            images: concatenated([one.images.slice(axis: 0, 0..<1), one.images.slice(axis: 0, 0..<1)], axis: 0),
            cameraMask: concatenated([one.cameraMask.slice(axis: 0, 0..<1), one.cameraMask.slice(axis: 0, 0..<1)], axis: 0),
            tokens: concatenated([one.tokens.slice(axis: 0, 0..<1), one.tokens.slice(axis: 0, 0..<1)], axis: 0),
            tokenMask: concatenated([one.tokenMask.slice(axis: 0, 0..<1), one.tokenMask.slice(axis: 0, 0..<1)], axis: 0),
            state: concatenated([one.state.slice(axis: 0, 0..<1), one.state.slice(axis: 0, 0..<1)], axis: 0),
            stateMask: concatenated([one.stateMask.slice(axis: 0, 0..<1), one.stateMask.slice(axis: 0, 0..<1)], axis: 0),
            logSpeed: Tensor([Float(Foundation.log(0.5)), Float(Foundation.log(2.0))], shape: [2]))
        let h = c.horizon
        var actions = [Float](repeating: 0, count: 2 * h * 64), mask = actions
        for (row, v) in [Float(0.5), 2].enumerated() { for k in 0..<h { for j in 0..<8 {
            actions[(row * h + k) * 64 + j] = v * 0.25 * Float(k + 1)
            mask[(row * h + k) * 64 + j] = 1
        } } }
        let batch = PolicyBatch(inputs: twin, actions: try Tensor(actions, shape: [2, h, 64]), actionMask: try Tensor(mask, shape: [2, h, 64]))
        let optimizer = AdamW(learningRate: 3e-3, weightDecay: 0)
        for step in 0..<250 {
            let grads = try valueAndGrad(model: model) { m in try m.loss(batch, key: RandomKey(seed: UInt64(100 + step))) }(model).grads
            try optimizer.step(model: model, gradients: grads)
        }
        func meanMagnitude(_ v: Float) throws -> Float {
            let inputs = try withLogSpeed(twin, [Foundation.log(v), Foundation.log(v)])
            let chunk: [Float] = try model.sampleActions(inputs, key: RandomKey(seed: 7)).toArray()
            var sum: Float = 0
            for row in 0..<2 { for k in 0..<h { for j in 0..<8 { sum += abs(chunk[(row * h + k) * 64 + j]) } } }
            return sum / Float(2 * h * 8)
        }
        let slow = try meanMagnitude(0.5), fast = try meanMagnitude(2)
        // Targets: mean |a| = v·0.25·2.5 → 0.3125 at 0.5×, 1.25 at 2×.
        #expect(abs(slow - 0.3125) < 0.12 && abs(fast - 1.25) < 0.3, "slow \(slow), fast \(fast)")
        #expect(fast / slow > 2.5)
    }

    @Test func progressLossIsTheMaskedMeanSquaredErrorOfTheHead() throws {
        var c = tinyConfig()
        c.progressWeight = 1
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 12))
        var batch = try tinyBatch(c)
        let encoded = try model.encodePrefix(batch.inputs)
        let predicted: [Float] = try model.predictProgress(encoded: encoded, state: batch.inputs.state, stateMask: batch.inputs.stateMask).toArray()
        #expect(predicted.allSatisfy { $0 > 0 && $0 < 1 })
        // Row 0 labelled 0.75, row 1 unlabelled: the loss is row 0's squared error alone.
        let targets = try Tensor([0.75, 0.1] as [Float], shape: [2]), mask = try Tensor([1, 0] as [Float], shape: [2])
        let loss: Float = try model.progressLoss(encoded: encoded, inputs: batch.inputs, targets: targets, mask: mask).item()
        #expect(abs(loss - (predicted[0] - 0.75) * (predicted[0] - 0.75)) < 1e-6)
        // In the training loss, progress adds weight × that term to the flow loss (same key, same draws).
        let flowOnly: Float = try model.loss(batch, key: RandomKey(seed: 13)).item()
        batch.progress = targets
        batch.progressMask = mask
        let withProgress: Float = try model.loss(batch, key: RandomKey(seed: 13)).item()
        #expect(abs(withProgress - flowOnly - loss) < 1e-5)
        // The unlabelled row's target never reaches the gradient.
        let grads = { (t: Tensor) throws -> [Float] in
            var b = batch
            b.progress = t
            return try valueAndGrad(model: model) { m in try m.loss(b, key: RandomKey(seed: 13)) }(model).grads["progressHead.down.weight"]!.toArray()
        }
        #expect(try grads(targets) == grads(Tensor([0.75, 0.9] as [Float], shape: [2])))
    }
}
