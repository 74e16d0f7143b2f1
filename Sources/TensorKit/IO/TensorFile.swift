import CMLX
import Foundation

/// Reads and writes safetensors files: named tensors plus string metadata.
///
/// Writes go to a temporary file in the same directory, are flushed to disk and renamed
/// into place, so a crash never leaves a half-written file under the final name.
public enum TensorFile {
    public static func save(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
        let names = tensors.keys.sorted()
        let arrays = names.map { Optional(tensors[$0]!.raw) }
        let metaKeys = metadata.keys.sorted()
        let metaValues = metaKeys.map { metadata[$0]! }
        let directory = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // MLX appends ".safetensors" to names without it, so the temp name keeps the extension.
        let temp = directory.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp.safetensors")
        let code = withCStrings(names) { namePtrs in
            withCStrings(metaKeys) { keyPtrs in
                withCStrings(metaValues) { valuePtrs in
                    cmlx_save_safetensors(temp.path, namePtrs, arrays, Int32(arrays.count), keyPtrs, valuePtrs, Int32(metaKeys.count))
                }
            }
        }
        withExtendedLifetime(tensors) {}
        if code != 0 {
            try? FileManager.default.removeItem(at: temp)
            throw TensorError.io("saving \(url.path): \(String(cString: cmlx_last_error()))")
        }
        try durablyReplace(temp, with: url)
    }

    /// Tensors (lazy: read on first use) and metadata from a safetensors file.
    public static func load(_ url: URL) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TensorError.io("no such file: \(url.path)")
        }
        guard let file = cmlx_load_safetensors(url.path) else {
            throw TensorError.io("loading \(url.path): \(String(cString: cmlx_last_error()))")
        }
        defer { cmlx_tensor_file_free(file) }
        var tensors: [String: Tensor] = [:]
        for i in 0..<cmlx_tensor_file_count(file) {
            let name = String(cString: cmlx_tensor_file_name(file, i))
            tensors[name] = Tensor(owning: cmlx_tensor_file_array(file, i))
        }
        var metadata: [String: String] = [:]
        for i in 0..<cmlx_tensor_file_meta_count(file) {
            metadata[String(cString: cmlx_tensor_file_meta_key(file, i))] = String(cString: cmlx_tensor_file_meta_value(file, i))
        }
        // Read the data now so a truncated file fails here, not at some later use.
        try eval(Array(tensors.values))
        return (tensors, metadata)
    }

    /// fsync the new file, rename it over the target, fsync the directory.
    static func durablyReplace(_ temp: URL, with url: URL) throws {
        let fd = open(temp.path, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        guard rename(temp.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temp)
            throw TensorError.io("renaming into \(url.path): \(reason)")
        }
        let dirFD = open(url.deletingLastPathComponent().path, O_RDONLY)
        if dirFD >= 0 { fsync(dirFD); close(dirFD) }
    }
}

/// Calls `body` with a C array of C strings that stay valid for the call.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let duplicated = strings.map { UnsafePointer(strdup($0)) }
    defer { for p in duplicated { free(UnsafeMutablePointer(mutating: p)) } }
    return duplicated.withUnsafeBufferPointer { body($0.baseAddress ?? UnsafePointer(bitPattern: 1)!) }
}
