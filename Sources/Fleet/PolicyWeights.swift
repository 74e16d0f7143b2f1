import Foundation
import TensorKit

/// One published policy version: the trainable parameters actors load.
public struct PolicyWeights: Sendable {
    public var version: Int
    public var trainStep: Int
    public var model: String
    public var tensors: [String: Tensor]

    public init(version: Int, trainStep: Int, model: String, tensors: [String: Tensor]) {
        self.version = version
        self.trainStep = trainStep
        self.model = model
        self.tensors = tensors
    }

    /// The safetensors file of these tensors (TensorKit's writer, so Python reads it too).
    public func safetensorsBytes() throws -> Data {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-weights-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try TensorLock.run {
            try TensorFile.save(tensors, metadata: ["model": model, "version": "\(version)", "train_step": "\(trainStep)"], to: url)
        }
        return try Data(contentsOf: url)
    }

    /// Tensors from a safetensors file's bytes.
    public static func tensors(fromSafetensors bytes: Data) throws -> [String: Tensor] {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-weights-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try bytes.write(to: url)
        return try TensorLock.run { try TensorFile.load(url).tensors }
    }
}
