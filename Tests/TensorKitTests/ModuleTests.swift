import Foundation
import Testing
@testable import TensorKit

@Suite("Modules")
struct ModuleTests {
    @Test func parameterKeysAndCounts() throws {
        let block = try TransformerBlock(dims: 8, heads: 2, key: RandomKey(seed: 0))
        let keys = Set(block.parameters().keys)
        #expect(keys.contains("attention.query.weight"))
        #expect(keys.contains("mlp.up.bias"))
        #expect(keys.contains("attentionNorm.weight"))
        // 4 attention projections (8·8 + 8) + MLP (8·32 + 32 + 32·8 + 8) + 2 LayerNorms (8 + 8).
        #expect(block.parameterCount == 4 * 72 + (288 + 264) + 2 * 16)
        let tree = ParameterTree.unflatten(block.parameters())
        #expect(Set(tree.flattened().keys) == keys)
    }

    @Test func arraysOfModulesAreIndexed() throws {
        final class Stack: Module, @unchecked Sendable {
            let layers: [Linear]
            init(count: Int) throws {
                layers = try (0..<count).map { try Linear(2, 2, key: RandomKey(seed: UInt64($0))) }
                super.init()
            }
        }
        let keys = Set(try Stack(count: 3).parameters().keys)
        #expect(keys == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight", "layers.2.bias"])
    }

    @Test func freezingRemovesParametersFromGradients() throws {
        let mlp = try MLP(dims: 3, hidden: 4, key: RandomKey(seed: 2))
        mlp.freeze(["up"])
        #expect(Set(mlp.trainableParameters().keys) == ["down.weight", "down.bias"])
        let x = try Tensor.ones([2, 3])
        let (_, grads) = try valueAndGrad(model: mlp) { m in try m(x).sum() }(mlp)
        #expect(Set(grads.keys) == ["down.weight", "down.bias"])
        // d/d(bias) of Σ over 2 rows is 2 for every output.
        #expect(try grads["down.bias"]!.toArray() == [2, 2, 2] as [Float])
        mlp.unfreeze()
        #expect(mlp.trainableParameters().count == 4)
    }

    @Test func updateChecksKeysAndShapes() throws {
        let linear = try Linear(3, 2, key: RandomKey(seed: 0))
        #expect(throws: TensorError.self) { try linear.update(parameters: ["weight": Tensor.zeros([3, 3])]) }
        #expect(throws: TensorError.self) { try linear.update(parameters: ["nope": Tensor.zeros([2])]) }
        try linear.update(parameters: ["bias": Tensor([5, 6] as [Float])])
        #expect(try linear.bias!.toArray() == [5, 6] as [Float])
        #expect(throws: TensorError.self) { try linear(Tensor.zeros([4, 5])) }
    }

    @Test func dropoutIsIdentityInEvalAndRescalesInTraining() throws {
        let dropout = Dropout(0.5)
        let x = try Tensor.ones([1000])
        let y: [Float] = try dropout(x, key: RandomKey(seed: 9)).toArray()
        // Kept entries are scaled to 2, dropped ones are 0; about half survive.
        #expect(y.allSatisfy { $0 == 0 || $0 == 2 })
        let kept = y.filter { $0 == 2 }.count
        #expect(kept > 400 && kept < 600)
        dropout.train(false)
        #expect(try dropout(x, key: RandomKey(seed: 9)).toArray() == [Float](repeating: 1, count: 1000))
    }
}
