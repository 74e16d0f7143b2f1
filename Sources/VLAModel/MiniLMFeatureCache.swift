import Foundation
import TensorKit

/// The frozen MiniLM's per-token features of prompts, as host arrays, one entry per distinct
/// prompt (a dataset has few). Each prompt runs through the encoder alone and unpadded, so its
/// features never depend on what else is in a batch; rows past its tokens are zero.
public final class MiniLMFeatureCache: @unchecked Sendable {
    public struct Features: Sendable {
        /// `[L]` WordPiece ids (`[CLS] … [SEP]`, `[PAD]` after) and their real-token mask.
        public let ids: [Int32]
        public let mask: [Bool]
        /// `[L, featureWidth]` last-layer hidden states, zero on padding.
        public let hiddenStates: [Float]
    }

    public let directory: URL
    public let maxLength: Int
    public let tokenizer: WordPieceTokenizer
    public let encoder: MiniLMTextEncoder
    private let lock = NSLock()
    private var cache: [String: Features] = [:]

    public init(directory: URL, maxLength: Int) throws {
        self.directory = directory
        self.maxLength = maxLength
        tokenizer = try WordPieceTokenizer(tokenizerFile: directory.appendingPathComponent("tokenizer.json"), maxLength: maxLength)
        encoder = try MiniLMTextEncoder(directory: directory)
        guard encoder.hiddenSize == MiniLMTextEncoder.featureWidth else {
            throw TextEncoderError.damagedFile("\(directory.path): hidden size \(encoder.hiddenSize), the VLA reads \(MiniLMTextEncoder.featureWidth)")
        }
    }

    nonisolated(unsafe) private static var shared: [String: MiniLMFeatureCache] = [:]
    private static let sharedLock = NSLock()

    /// One cache per (model directory, length) in the process, so every policy and loader
    /// shares one copy of the weights. `directory` nil: `MiniLMTextEncoder.defaultDirectory()`.
    public static func shared(directory: URL? = nil, maxLength: Int) throws -> MiniLMFeatureCache {
        let dir = try (directory ?? MiniLMTextEncoder.defaultDirectory()).standardizedFileURL
        let key = "\(dir.path)#\(maxLength)"
        sharedLock.lock(); defer { sharedLock.unlock() }
        if let cache = shared[key] { return cache }
        let cache = try MiniLMFeatureCache(directory: dir, maxLength: maxLength)
        shared[key] = cache
        return cache
    }

    /// The features of `text` (computed on first use: MLX runs on the calling thread then).
    public func features(_ text: String) throws -> Features {
        lock.lock(); defer { lock.unlock() }
        if let hit = cache[text] { return hit }
        let (ids, mask) = tokenizer.encode(text)
        let real = mask.filter { $0 }.count
        let h = try encoder.hiddenStates(ids: Tensor(Array(ids.prefix(real)), shape: [1, real]),
                                         mask: Tensor([Bool](repeating: true, count: real), shape: [1, real]))
        var hidden: [Float] = try h.toArray()
        hidden += [Float](repeating: 0, count: (maxLength - real) * encoder.hiddenSize)
        let features = Features(ids: ids, mask: mask, hiddenStates: hidden)
        cache[text] = features
        return features
    }

    /// Computes the features of `texts` now (e.g. before a loader's prefetch thread asks).
    public func prepare(_ texts: some Sequence<String>) throws {
        for text in Set(texts) { _ = try features(text) }
    }

    /// Prompts with features computed so far.
    public var count: Int { lock.lock(); defer { lock.unlock() }; return cache.count }
}
