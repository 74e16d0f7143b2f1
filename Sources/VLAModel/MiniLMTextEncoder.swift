import Foundation
import TensorKit

/// The pretrained sentence encoder all-MiniLM-L6-v2 (a BERT: word + position + token-type
/// embeddings, post-LayerNorm encoder layers with exact GELU), read from HuggingFace's
/// `model.safetensors` + `config.json`. Frozen and kept outside every `Module` tree, so its
/// 90 MB never reach a checkpoint or a fleet weight update.
public final class MiniLMTextEncoder: @unchecked Sendable {
    public let hiddenSize: Int, layerCount: Int, heads: Int, maxPositions: Int
    public let layerNormEps: Float
    let wordEmbeddings: Tensor, positionEmbeddings: Tensor, tokenTypeEmbeddings: Tensor
    let embeddingNorm: (weight: Tensor, bias: Tensor)
    let layers: [Layer]

    struct Dense { let weight: Tensor, bias: Tensor }
    struct Layer {
        let query: Dense, key: Dense, value: Dense, attentionOutput: Dense
        let attentionNorm: (weight: Tensor, bias: Tensor)
        let intermediate: Dense, output: Dense
        let outputNorm: (weight: Tensor, bias: Tensor)
    }

    /// The hidden size of all-MiniLM-L6-v2, the width of the features the VLA reads.
    public static let featureWidth = 384
    /// `SWIFTVLA_MINILM_DIR` overrides where the model directory is looked for.
    public static let directoryVariable = "SWIFTVLA_MINILM_DIR"
    /// Where `scripts/bootstrap` extracts the model, relative to the package root.
    public static let relativeDirectory = ".venv/swiftvla/models/all-MiniLM-L6-v2"

    /// The model directory: `$SWIFTVLA_MINILM_DIR`, else `.venv/swiftvla/models/all-MiniLM-L6-v2`
    /// in the first directory that has it among `$SWIFTVLA_ROOT`, the current directory, the
    /// executable's directory and their parents.
    public static func defaultDirectory() throws -> URL {
        let env = ProcessInfo.processInfo.environment
        if let dir = env[directoryVariable], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        var starts = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                      URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        if let root = env["SWIFTVLA_ROOT"] { starts.insert(URL(fileURLWithPath: root), at: 0) }
        for start in starts {
            var dir = start.standardizedFileURL
            while true {
                let candidate = dir.appendingPathComponent(relativeDirectory)
                if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("model.safetensors").path) { return candidate }
                let parent = dir.deletingLastPathComponent().standardizedFileURL
                if parent.path == dir.path { break }
                dir = parent
            }
        }
        throw TextEncoderError.missingFile("no \(relativeDirectory) above \(starts.map(\.path).joined(separator: ", ")) "
                                           + "(run scripts/bootstrap, or set \(directoryVariable))")
    }

    public init(directory: URL) throws {
        let configURL = directory.appendingPathComponent("config.json")
        let weightsURL = directory.appendingPathComponent("model.safetensors")
        for url in [configURL, weightsURL] where !FileManager.default.fileExists(atPath: url.path) {
            throw TextEncoderError.missingFile(url.path)
        }
        let config: BertConfig
        do { config = try JSONDecoder().decode(BertConfig.self, from: Data(contentsOf: configURL)) } catch {
            throw TextEncoderError.damagedFile("\(configURL.path): \(error)")
        }
        guard config.hidden_act == "gelu", config.hidden_size % config.num_attention_heads == 0 else {
            throw TextEncoderError.damagedFile("\(configURL.path): expected exact GELU and heads dividing the width")
        }
        hiddenSize = config.hidden_size; layerCount = config.num_hidden_layers; heads = config.num_attention_heads
        maxPositions = config.max_position_embeddings; layerNormEps = Float(config.layer_norm_eps)
        let tensors: [String: Tensor]
        do { tensors = try TensorFile.load(weightsURL).tensors } catch {
            throw TextEncoderError.damagedFile("\(weightsURL.path): \(error)")
        }
        let d = hiddenSize, ff = config.intermediate_size
        func weight(_ name: String, _ shape: [Int]) throws -> Tensor {
            guard let t = tensors[name] else { throw TextEncoderError.damagedFile("\(weightsURL.path): no tensor \(name)") }
            guard t.shape == shape, t.dtype == .float32 else {
                throw TextEncoderError.damagedFile("\(weightsURL.path): \(name) is \(t.dtype) \(t.shape), expected float32 \(shape)")
            }
            return t
        }
        func dense(_ name: String, _ inputs: Int, _ outputs: Int) throws -> Dense {
            Dense(weight: try weight("\(name).weight", [outputs, inputs]), bias: try weight("\(name).bias", [outputs]))
        }
        func norm(_ name: String) throws -> (weight: Tensor, bias: Tensor) {
            (try weight("\(name).weight", [d]), try weight("\(name).bias", [d]))
        }
        wordEmbeddings = try weight("embeddings.word_embeddings.weight", [config.vocab_size, d])
        positionEmbeddings = try weight("embeddings.position_embeddings.weight", [maxPositions, d])
        tokenTypeEmbeddings = try weight("embeddings.token_type_embeddings.weight", [config.type_vocab_size, d])
        embeddingNorm = try norm("embeddings.LayerNorm")
        layers = try (0..<layerCount).map { i in
            let p = "encoder.layer.\(i)"
            return Layer(query: try dense("\(p).attention.self.query", d, d), key: try dense("\(p).attention.self.key", d, d),
                         value: try dense("\(p).attention.self.value", d, d),
                         attentionOutput: try dense("\(p).attention.output.dense", d, d),
                         attentionNorm: try norm("\(p).attention.output.LayerNorm"),
                         intermediate: try dense("\(p).intermediate.dense", d, ff), output: try dense("\(p).output.dense", ff, d),
                         outputNorm: try norm("\(p).output.LayerNorm"))
        }
    }

    /// Per-token hidden states of the last layer: ids `[B, L]` int32, mask `[B, L]` bool
    /// (false: padding, never attended to) → `[B, L, hidden]`. Padded rows are computed but
    /// meaningless.
    public func hiddenStates(ids: Tensor, mask: Tensor) throws -> Tensor {
        guard ids.ndim == 2, mask.shape == ids.shape else {
            throw TensorError.shapeMismatch("MiniLM takes ids [B, L] and a mask of the same shape, got \(ids.shape) and \(mask.shape)")
        }
        let b = ids.dim(0), l = ids.dim(1), d = hiddenSize, headWidth = hiddenSize / heads
        guard l <= maxPositions else { throw TensorError.shapeMismatch("MiniLM reads at most \(maxPositions) tokens, got \(l)") }
        let positions = try Tensor.arange(0, Double(l), dtype: .int32)
        // Single sentences: every token has type 0.
        var h = try wordEmbeddings.take(ids.astype(.int32), axis: 0) + positionEmbeddings.take(positions, axis: 0).reshaped([1, l, d])
            + tokenTypeEmbeddings.slice(axis: 0, 0..<1).reshaped([1, 1, d])
        h = try layerNorm(h, weight: embeddingNorm.weight, bias: embeddingNorm.bias, eps: layerNormEps)
        let keyMask = try mask.astype(.bool).reshaped([b, 1, 1, l])
        let split = { (x: Tensor) throws -> Tensor in try x.reshaped([b, l, self.heads, headWidth]).transposed([0, 2, 1, 3]) }
        for layer in layers {
            let attended = try scaledDotProductAttention(
                queries: split(Self.apply(layer.query, h)), keys: split(Self.apply(layer.key, h)),
                values: split(Self.apply(layer.value, h)), scale: 1 / Float(headWidth).squareRoot(), mask: .tensor(keyMask))
            let merged = try attended.transposed([0, 2, 1, 3]).reshaped([b, l, d])
            h = try layerNorm(Self.apply(layer.attentionOutput, merged) + h,
                              weight: layer.attentionNorm.weight, bias: layer.attentionNorm.bias, eps: layerNormEps)
            let inner = try Self.apply(layer.intermediate, h).gelu()
            h = try layerNorm(Self.apply(layer.output, inner) + h, weight: layer.outputNorm.weight, bias: layer.outputNorm.bias, eps: layerNormEps)
        }
        return h
    }

    /// sentence-transformers' embedding: the mean of the hidden states over real tokens,
    /// scaled to unit L2 norm. `[B, L, hidden]`, mask `[B, L]` → `[B, hidden]`.
    public static func sentenceEmbedding(hiddenStates h: Tensor, mask: Tensor) throws -> Tensor {
        let weights = try mask.astype(.float32).reshaped([h.dim(0), h.dim(1), 1])
        let mean = try (h * weights).sum(axis: 1) / weights.sum(axis: 1).maximum(1e-9)
        return try mean / mean.square().sum(axis: 1, keepDims: true).sqrt().maximum(1e-12)
    }

    static func apply(_ dense: Dense, _ x: Tensor) throws -> Tensor { try dense.bias.addmm(x, dense.weight.T) }

    /// The parts of HuggingFace's `config.json` the encoder needs.
    struct BertConfig: Decodable {
        var hidden_size: Int
        var num_hidden_layers: Int
        var num_attention_heads: Int
        var intermediate_size: Int
        var max_position_embeddings: Int
        var vocab_size: Int
        var type_vocab_size: Int
        var layer_norm_eps: Double
        var hidden_act: String
    }
}
