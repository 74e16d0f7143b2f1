/// Value and gradient of a loss over a module's trainable parameters.
///
/// The returned function swaps MLX's traced copies into the module's parameter slots while
/// `loss` runs and restores the real tensors afterwards, so models are written as plain
/// forward code. Gradients come back keyed like `trainableParameters()`.
public func valueAndGrad<M: Module>(
    model: M, _ loss: @escaping (M) throws -> Tensor
) -> (M) throws -> (loss: Tensor, grads: [String: Tensor]) {
    let withAux = valueAndGrad(model: model) { m in [try loss(m)] }
    return { m in
        let (values, grads) = try withAux(m)
        return (values[0], grads)
    }
}

/// As `valueAndGrad(model:_:)`, with auxiliary outputs: the first output is the
/// differentiated scalar, the rest (metrics, predictions) are returned alongside.
public func valueAndGrad<M: Module>(
    model: M, _ outputs: @escaping (M) throws -> [Tensor]
) -> (M) throws -> (values: [Tensor], grads: [String: Tensor]) {
    return { m in
        let slots = m.parameterSlots().filter { !$0.isFrozen }
        let originals = slots.map(\.value)
        let vg = valueAndGrad({ traced in
            for (slot, t) in zip(slots, traced) { slot.write(t) }
            defer { for (slot, t) in zip(slots, originals) { slot.write(t) } }
            return try outputs(m)
        }, argnums: Array(0..<slots.count))
        let (values, grads) = try vg(originals)
        return (values, Dictionary(uniqueKeysWithValues: zip(slots.map(\.key), grads)))
    }
}
