/// Scales all gradients together so their global L2 norm is at most `maxNorm`.
/// Returns the clipped gradients and the norm before clipping (a lazy scalar).
public func clipGradNorm(_ gradients: [String: Tensor], maxNorm: Double) throws -> (gradients: [String: Tensor], norm: Tensor) {
    // Summed in key order: dictionary order varies between instances and processes, and a
    // different summation order changes the norm in the last bit (runs must repeat exactly).
    let squares = try gradients.keys.sorted().map { try gradients[$0]!.astype(.float32).square().sum() }
    guard !squares.isEmpty else { return (gradients, Tensor(0)) }
    let norm = try stacked(squares).sum().sqrt()
    // min(1, maxNorm / (norm + ε)): a no-op below the threshold.
    let scale = try (Tensor(scalar: maxNorm, dtype: .float32) / (norm + 1e-6)).minimum(1)
    var clipped: [String: Tensor] = [:]
    for (k, g) in gradients { clipped[k] = try g * scale.astype(g.dtype) }
    return (clipped, norm)
}
