import Foundation

/// What a checkpoint directory holds besides tensors: enough to rebuild and resume.
public struct CheckpointManifest: Codable, Sendable, Equatable {
    public var format = "swiftvla-checkpoint-v1"
    /// Model family / config name, free-form (e.g. "tiny-transformer").
    public var model: String
    public var step: Int
    /// Optimizer updates applied (restores bias correction in AdamW).
    public var optimizerStep: Int
    /// Parameter keys with shapes and dtypes, so a loader can check before reading tensors.
    public var parameters: [String: [Int]]
    public var dtypes: [String: String]
    /// Anything else the caller wants to keep (config, seed, normalization stats file names…).
    public var extra: [String: String]
    public var created: Date

    public init(model: String, step: Int, optimizerStep: Int, parameters: [String: [Int]],
                dtypes: [String: String], extra: [String: String] = [:], created: Date = Date()) {
        self.model = model; self.step = step; self.optimizerStep = optimizerStep
        self.parameters = parameters; self.dtypes = dtypes; self.extra = extra; self.created = created
    }
}

/// A checkpoint directory: `model.safetensors` (parameters), `optimizer.safetensors`
/// (optimizer state) and `manifest.json`.
public enum Checkpoint {
    public static func save(model: Module, optimizer: Optimizer?, name: String, step: Int,
                            extra: [String: String] = [:], to directory: URL) throws {
        let params = model.parameters()
        try TensorFile.save(params, metadata: ["format": "swiftvla", "model": name], to: directory.appendingPathComponent("model.safetensors"))
        if let optimizer {
            try TensorFile.save(optimizer.state, to: directory.appendingPathComponent("optimizer.safetensors"))
        }
        let manifest = CheckpointManifest(
            model: name, step: step, optimizerStep: optimizer?.stepCount ?? 0,
            parameters: params.mapValues(\.shape), dtypes: params.mapValues { $0.dtype.description }, extra: extra)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(manifest)
        let url = directory.appendingPathComponent("manifest.json")
        let temp = directory.appendingPathComponent(".manifest.json.tmp")
        try data.write(to: temp)
        try TensorFile.durablyReplace(temp, with: url)
    }

    /// Loads parameters into `model` (shapes checked) and optimizer state; returns the manifest.
    @discardableResult
    public static func load(into model: Module, optimizer: Optimizer?, from directory: URL) throws -> CheckpointManifest {
        let manifestData: Data
        do { manifestData = try Data(contentsOf: directory.appendingPathComponent("manifest.json")) }
        catch { throw TensorError.io("no manifest in \(directory.path): \(error)") }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let manifest = try decoder.decode(CheckpointManifest.self, from: manifestData)
        let (params, _) = try TensorFile.load(directory.appendingPathComponent("model.safetensors"))
        try model.update(parameters: params)
        if let optimizer {
            let (state, _) = try TensorFile.load(directory.appendingPathComponent("optimizer.safetensors"))
            try optimizer.loadState(state, stepCount: manifest.optimizerStep)
        }
        return manifest
    }
}
