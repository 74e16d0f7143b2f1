import Foundation
import Testing
import TensorKit
import TestSupport
@testable import VLAModel

/// all-MiniLM-L6-v2 as `scripts/bootstrap` extracts it (or `$SWIFTVLA_MINILM_DIR`).
enum MiniLMFixture {
    static let directory = try? MiniLMTextEncoder.defaultDirectory()
    static var available: Bool { directory != nil }
    static let skipReason: Comment = "all-MiniLM-L6-v2 not found (run scripts/bootstrap, or set SWIFTVLA_MINILM_DIR)"

    /// Robot instructions, punctuation, accents, words outside the vocabulary, numbers, CJK,
    /// an emoji ([UNK]), a word too long for WordPiece ([UNK]) and control characters.
    static let texts = [
        "pick up the red block",
        "grasp the red cube",
        "open the drawer",
        "Num hands: 1. Control mode: joint position. Put the blue block in the bowl!",
        "Café résumé naïve — Ångström",
        "stack 3 blocks, then push the 2nd one 15cm left",
        "xylophonequux zzyzx wibblewobble",
        "  tabs\tand\nnewlines\u{0007}   ",
        "机器人抓取 the cup 🤖",
        "(a)[b]{c} $5 + 3 = 8; e-mail@example.com ~ ^_^ " + String(repeating: "a", count: 120),
    ]

    /// `scripts/minilm_reference.py`'s answer for `texts`: HuggingFace `tokenizers` ids (whole and
    /// truncated to `maxLength`) and, for the texts at `forward`, the float64 NumPy forward pass.
    struct Reference: Decodable {
        var ids: [[Int32]]
        var truncated: [[Int32]]
        var hidden: [[[Double]]]
        var embedding: [[Double]]
    }

    static func reference(maxLength: Int, forward: [Int]) async throws -> Reference {
        let request: [String: Any] = ["model_dir": directory!.path, "texts": texts, "max_length": maxLength, "forward": forward]
        let requestFile = FileManager.default.temporaryDirectory.appendingPathComponent("minilm-request-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: request).write(to: requestFile)
        defer { try? FileManager.default.removeItem(at: requestFile) }
        let result = try await ChildProcess.run(
            URL(fileURLWithPath: "/bin/sh"),
            ["-c", "exec \"$0\" scripts/minilm_reference.py < \"$1\"", ChildProcess.python.path, requestFile.path], timeout: 120)
        guard result.status == 0 else { throw TextEncoderError.damagedFile("minilm_reference.py failed: \(result.stderr)") }
        return try JSONDecoder().decode(Reference.self, from: Data(result.stdout.utf8))
    }
}

@Suite("MiniLM text encoder")
struct MiniLMTextEncoderTests {
    @Test(.enabled(if: MiniLMFixture.available, MiniLMFixture.skipReason))
    func wordPieceIdsEqualHuggingFaceTokenizers() async throws {
        let maxLength = 8
        let reference = try await MiniLMFixture.reference(maxLength: maxLength, forward: [])
        let tokenizer = try WordPieceTokenizer(tokenizerFile: MiniLMFixture.directory!.appendingPathComponent("tokenizer.json"),
                                               maxLength: 64)
        let short = try WordPieceTokenizer(tokenizerFile: MiniLMFixture.directory!.appendingPathComponent("tokenizer.json"),
                                           maxLength: maxLength)
        for (i, text) in MiniLMFixture.texts.enumerated() {
            #expect([tokenizer.clsID] + tokenizer.pieces(text) + [tokenizer.sepID] == reference.ids[i], "\(text)")
            // Truncation keeps [CLS] and [SEP]; padding follows with [PAD] and a false mask.
            let (ids, mask) = short.encode(text)
            let real = reference.truncated[i].count
            #expect(Array(ids.prefix(real)) == reference.truncated[i], "\(text)")
            #expect(ids.count == maxLength && ids.dropFirst(real).allSatisfy { $0 == short.padID })
            #expect(mask == (0..<maxLength).map { $0 < real })
        }
        // The emoji and the 120-letter word are single [UNK]s.
        #expect(reference.ids[8].contains(tokenizer.unknownID) && reference.ids[9].contains(tokenizer.unknownID))
    }

    @Test(.enabled(if: MiniLMFixture.available, MiniLMFixture.skipReason))
    func hiddenStatesAndSentenceEmbeddingsEqualTheNumPyReference() async throws {
        let forward = [0, 1, 3, 4]
        let reference = try await MiniLMFixture.reference(maxLength: 64, forward: forward)
        let cache = try MiniLMFeatureCache.shared(directory: MiniLMFixture.directory, maxLength: 32)
        let width = MiniLMTextEncoder.featureWidth
        // One padded batch with an attention mask: real positions must not see the padding.
        let encoded = forward.map { cache.tokenizer.encode(MiniLMFixture.texts[$0]) }
        let ids = try Tensor(encoded.flatMap(\.ids), shape: [forward.count, 32])
        let mask = try Tensor(encoded.flatMap(\.mask), shape: [forward.count, 32])
        let hidden = try cache.encoder.hiddenStates(ids: ids, mask: mask)
        let batched: [Float] = try hidden.toArray()
        let embeddings: [Float] = try MiniLMTextEncoder.sentenceEmbedding(hiddenStates: hidden, mask: mask).toArray()
        var worstHidden = 0.0, worstEmbedding = 0.0
        for (row, i) in forward.enumerated() {
            let expected = reference.hidden[row]
            #expect(encoded[row].mask.filter { $0 }.count == expected.count)
            // The cache runs each prompt alone and zero-fills the padding.
            let cached = try cache.features(MiniLMFixture.texts[i]).hiddenStates
            for (t, vector) in expected.enumerated() {
                for (j, value) in vector.enumerated() {
                    worstHidden = max(worstHidden, abs(Double(batched[(row * 32 + t) * width + j]) - value),
                                      abs(Double(cached[t * width + j]) - value))
                }
            }
            #expect(cached[(expected.count * width)...].allSatisfy { $0 == 0 })
            for (j, value) in reference.embedding[row].enumerated() {
                worstEmbedding = max(worstEmbedding, abs(Double(embeddings[row * width + j]) - value))
            }
        }
        #expect(worstHidden < 1e-4, "largest hidden-state difference \(worstHidden)")
        #expect(worstEmbedding < 1e-5, "largest embedding difference \(worstEmbedding)")
    }

    @Test(.enabled(if: MiniLMFixture.available, MiniLMFixture.skipReason))
    func similarInstructionsAreCloserThanDifferentOnes() throws {
        let cache = try MiniLMFeatureCache.shared(directory: MiniLMFixture.directory, maxLength: 32)
        func embedding(_ text: String) throws -> [Float] {
            let f = try cache.features(text)
            let h = try Tensor(f.hiddenStates, shape: [1, 32, MiniLMTextEncoder.featureWidth])
            return try MiniLMTextEncoder.sentenceEmbedding(hiddenStates: h, mask: Tensor(f.mask, shape: [1, 32])).toArray()
        }
        func cosine(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map(*).reduce(0, +) }   // unit vectors
        let pick = try embedding("pick up the red block")
        let grasp = try cosine(pick, embedding("grasp the red cube")), drawer = try cosine(pick, embedding("open the drawer"))
        #expect(abs(zip(pick, pick).map(*).reduce(0, +) - 1) < 1e-5)
        #expect(grasp > drawer + 0.1, "cos(pick, grasp) = \(grasp), cos(pick, drawer) = \(drawer)")
    }

    @Test(.enabled(if: MiniLMFixture.available, MiniLMFixture.skipReason))
    func missingAndDamagedFilesGiveTypedErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minilm-damaged-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let tokenizerFile = dir.appendingPathComponent("tokenizer.json")
        #expect(throws: TextEncoderError.missingFile(tokenizerFile.path)) { try WordPieceTokenizer(tokenizerFile: tokenizerFile, maxLength: 16) }
        // A tokenizer.json cut in half is not JSON any more.
        let whole = try Data(contentsOf: MiniLMFixture.directory!.appendingPathComponent("tokenizer.json"))
        try whole.prefix(whole.count / 2).write(to: tokenizerFile)
        let cut = #expect(throws: TextEncoderError.self) { try WordPieceTokenizer(tokenizerFile: tokenizerFile, maxLength: 16) }
        #expect(cut.map { if case .damagedFile = $0 { true } else { false } } == true)
        // Weights missing a layer's tensor (and the right config) name the missing tensor.
        try FileManager.default.copyItem(at: MiniLMFixture.directory!.appendingPathComponent("config.json"),
                                         to: dir.appendingPathComponent("config.json"))
        #expect(throws: TextEncoderError.missingFile(dir.appendingPathComponent("model.safetensors").path)) {
            try MiniLMTextEncoder(directory: dir)
        }
        var tensors = try TensorFile.load(MiniLMFixture.directory!.appendingPathComponent("model.safetensors")).tensors
        tensors.removeValue(forKey: "encoder.layer.5.output.dense.weight")
        try TensorFile.save(tensors, to: dir.appendingPathComponent("model.safetensors"))
        let missing = #expect(throws: TextEncoderError.self) { try MiniLMTextEncoder(directory: dir) }
        #expect(missing.map { if case .damagedFile(let m) = $0 { m.contains("encoder.layer.5.output.dense.weight") } else { false } } == true)
    }

    @Test func configsWithoutTheKeyKeepByteTokensAndByteModelsKeepTheirParameters() throws {
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(tinyConfig())) as! [String: Any]
        #expect(json["textEncoder"] as? String == "bytes")
        json.removeValue(forKey: "textEncoder")
        let old = try JSONDecoder().decode(VLAConfig.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(old.textEncoder == .bytes && old == tinyConfig())
        var c = tinyConfig()
        c.textEncoder = .miniLM
        let decoded = try JSONDecoder().decode(VLAConfig.self, from: JSONEncoder().encode(c))
        #expect(decoded.textEncoder == .miniLM)
        // Bytes: the token embedding as before; MiniLM: only a projection (MiniLM stays outside).
        let bytes = try FlowMatchingVLA(config: tinyConfig(), key: RandomKey(seed: 1)).parameters()
        let miniLM = try FlowMatchingVLA(config: c, key: RandomKey(seed: 1)).parameters()
        #expect(bytes["tokenEmbedding.weight"]?.shape == [ByteTokenizer.vocabularySize, c.dims] && bytes["textProjection.weight"] == nil)
        #expect(miniLM["textProjection.weight"]?.shape == [c.dims, MiniLMTextEncoder.featureWidth] && miniLM["tokenEmbedding.weight"] == nil)
        #expect(Set(bytes.keys).subtracting(["tokenEmbedding.weight"]) == Set(miniLM.keys).subtracting(["textProjection.weight", "textProjection.bias"]))
        // Every other parameter is drawn from the same key either way.
        for key in bytes.keys where key != "tokenEmbedding.weight" {
            #expect(try bytes[key]!.toArray(Float.self) == miniLM[key]!.toArray(Float.self), "\(key)")
        }
    }

    @Test func miniLMModelReadsTheFeaturesThroughItsProjection() throws {
        // Prefix text tokens = features · Wᵀ + b + position, computed here by hand.
        var c = tinyConfig()
        c.textEncoder = .miniLM
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 2))
        let base = try tinyBatch(c).inputs
        let b = base.batchSize, l = c.maxTextLength, w = MiniLMTextEncoder.featureWidth
        var inputs = base
        #expect(throws: TensorError.self) { try model.textTokens(inputs) }
        let features = try RandomKey(seed: 3).normal([b, l, w])
        inputs.textFeatures = features
        let got: [Float] = try model.textTokens(inputs).toArray()
        let weight: [Float] = try model.textProjection!.weight.toArray(), bias: [Float] = try model.textProjection!.bias!.toArray()
        let x: [Float] = try features.toArray()
        var worst: Float = 0
        for row in 0..<(b * l) {
            for o in 0..<c.dims {
                var sum = bias[o]
                for k in 0..<w { sum += x[row * w + k] * weight[o * w + k] }
                worst = max(worst, abs(got[row * c.dims + o] - sum))
            }
        }
        #expect(worst < 1e-4)
        inputs.textFeatures = try RandomKey(seed: 3).normal([b, l, w + 1])
        #expect(throws: TensorError.self) { try model.encodePrefix(inputs) }
    }
}
