import Foundation
import Testing
@testable import TensorKit

@Suite("Random")
struct RandomTests {
    @Test func sameKeySameNumbersAndSplitsDiffer() throws {
        let a: [Float] = try RandomKey(seed: 42).normal([8]).toArray()
        let b: [Float] = try RandomKey(seed: 42).normal([8]).toArray()
        #expect(a == b)
        let (k1, k2) = try RandomKey(seed: 42).split()
        #expect(try k1.normal([8]).toArray(Float.self) != k2.normal([8]).toArray(Float.self))
    }

    @Test func momentsMatchClosedForms() throws {
        let n = 200_000
        // Normal(2, 3²): mean 2, std 3; standard error of the mean 3/√n ≈ 0.0067.
        let z = try RandomKey(seed: 1).normal([n], mean: 2, std: 3)
        #expect(Swift.abs(try z.mean().item() - 2) < 0.03)
        #expect(Swift.abs(try z.variance().item().squareRoot() - 3) < 0.03)
        // Uniform[−1, 3): mean 1, variance 16/12.
        let u = try RandomKey(seed: 2).uniform([n], low: -1, high: 3)
        #expect(Swift.abs(try u.mean().item() - 1) < 0.02)
        #expect(Swift.abs(try u.variance().item() - 16.0 / 12.0) < 0.02)
        // Beta(α, β): mean α/(α+β), variance αβ/((α+β)²(α+β+1)).
        for (alpha, beta) in [(1.5, 1.0), (2.0, 5.0), (0.5, 0.5)] {
            let x = try RandomKey(seed: 3).beta([n], alpha: alpha, beta: beta)
            let mean = alpha / (alpha + beta)
            let variance = alpha * beta / ((alpha + beta) * (alpha + beta) * (alpha + beta + 1))
            #expect(Swift.abs(Double(try x.mean().item()) - mean) < 0.005, "Beta(\(alpha), \(beta)) mean")
            #expect(Swift.abs(Double(try x.variance().item()) - variance) < 0.003, "Beta(\(alpha), \(beta)) variance")
            #expect(try x.min().item() >= 0 && x.max().item() <= 1)
        }
        // Gamma(α): mean α, variance α.
        let g = try RandomKey(seed: 4).gamma([n], alpha: 3)
        #expect(Swift.abs(try g.mean().item() - 3) < 0.03)
        #expect(Swift.abs(try g.variance().item() - 3) < 0.06)
        // Bernoulli(0.3) frequency.
        let bits = try RandomKey(seed: 5).bernoulli(0.3, shape: [n]).astype(.float32)
        #expect(Swift.abs(try bits.mean().item() - 0.3) < 0.005)
        // Categorical over logits log([0.2, 0.8]): frequency of class 1 is 0.8.
        let logits = try Tensor([Float(Foundation.log(0.2)), Float(Foundation.log(0.8))]).broadcast(to: [n, 2])
        let draws = try RandomKey(seed: 6).categorical(logits: logits).astype(.float32)
        #expect(Swift.abs(try draws.mean().item() - 0.8) < 0.005)
    }
}
