import CHDF5
import Foundation

/// Failures writing HDF5 files.
public enum HDF5Error: Error, CustomStringConvertible, Equatable {
    /// The HDF5 library refused `operation`; `message` is its innermost error.
    case library(operation: String, message: String)
    case noEpisodes

    public var description: String {
        switch self {
        case let .library(op, m): "HDF5 \(op) failed: \(m)"
        case .noEpisodes: "no episodes match the query"
        }
    }
}

/// An HDF5 file open for writing (through `CHDF5`, Debian's libhdf5); closed on `close()` or deinit.
final class HDF5Writer {
    private(set) var file: Int64
    private var groups: [Int64] = []

    init(creating url: URL) throws {
        file = chdf5_file_create(url.path)
        if file < 0 { throw Self.error("create \(url.path)") }
    }

    deinit { try? close() }

    static func error(_ operation: String) -> HDF5Error {
        .library(operation: operation, message: String(cString: chdf5_last_error()))
    }

    func group(_ name: String, in parent: Int64) throws -> Int64 {
        let id = chdf5_group_create(parent, name)
        if id < 0 { throw Self.error("group \(name)") }
        groups.append(id)
        return id
    }

    func dataset<T>(_ name: String, in parent: Int64, type: chdf5_type, shape: [Int], values: [T], gzip: Int = 0) throws {
        precondition(values.count == shape.reduce(1, *), "\(name): \(values.count) values for shape \(shape)")
        let dims = shape.map(UInt64.init)
        let status = values.withUnsafeBytes { bytes in
            chdf5_dataset_write(parent, name, type, Int32(dims.count), dims, bytes.baseAddress, Int32(gzip))
        }
        if status < 0 { throw Self.error("dataset \(name)") }
    }

    func attribute<T>(_ name: String, of object: Int64, type: chdf5_type, _ value: T) throws {
        let status = withUnsafeBytes(of: value) { chdf5_attribute_write(object, name, type, 0, $0.baseAddress) }
        if status < 0 { throw Self.error("attribute \(name)") }
    }

    func attribute<T>(_ name: String, of object: Int64, type: chdf5_type, array values: [T]) throws {
        let status = values.withUnsafeBytes { chdf5_attribute_write(object, name, type, UInt64(values.count), $0.baseAddress) }
        if status < 0 { throw Self.error("attribute \(name)") }
    }

    func attribute(_ name: String, of object: Int64, string: String) throws {
        if chdf5_attribute_write_string(object, name, string) < 0 { throw Self.error("attribute \(name)") }
    }

    /// Closes a group early (a file of many demos would otherwise hold every handle open).
    func closeGroup(_ id: Int64) throws {
        guard let i = groups.firstIndex(of: id) else { return }
        groups.remove(at: i)
        if chdf5_group_close(id) < 0 { throw Self.error("close group") }
    }

    func close() throws {
        for g in groups.reversed() { _ = chdf5_group_close(g) }
        groups = []
        guard file >= 0 else { return }
        let status = chdf5_file_close(file)
        file = -1
        if status < 0 { throw Self.error("close") }
    }
}

/// Episodes → a robomimic / LIBERO-style HDF5 file, written from Swift through libhdf5.
///
/// ```
/// data                  attrs total (steps), env_args (JSON), format
///   demo_<i>            attrs num_samples, id, embodiment, task, instruction, success,
///                       policy_version, created_at, seed (if any)
///     actions           [T, A] float32  native actions
///     rewards, dones    [T] float32, [T] uint8
///     obs/state         [T, S] float32  native proprioceptive state
///     obs/<camera>_image [T, H, W, 3] uint8 (gzip)
///     unified_actions   [T, 64] float32, action_mask [64] float32
///     sources           [T] uint8 (0 policy, 1 operator, 2 demo), timestamps_us [T] int64
/// ```
/// Everything is stored exactly (frames included).
public enum RobomimicHDF5 {
    public static let format = "swiftvla-robomimic-v1"

    public struct Summary: Sendable, Equatable {
        public var episodes: Int
        public var steps: Int
    }

    /// Writes the store's matching episodes (checksum-verified, one in memory at a time).
    @discardableResult
    public static func export(from store: EpisodeStore, query: EpisodeQuery = EpisodeQuery(), to url: URL, gzipLevel: Int = 4) throws -> Summary {
        let records = try store.records(matching: query)
        guard !records.isEmpty else { throw HDF5Error.noEpisodes }
        var index = 0
        return try write(to: url, gzipLevel: gzipLevel) {
            guard index < records.count else { return nil }
            defer { index += 1 }
            return try store.load(records[index].uuid)
        }
    }

    /// Writes `episodes` in order as demo_0, demo_1, …
    @discardableResult
    public static func write(_ episodes: [Episode], to url: URL, gzipLevel: Int = 4) throws -> Summary {
        guard !episodes.isEmpty else { throw HDF5Error.noEpisodes }
        var index = 0
        return try write(to: url, gzipLevel: gzipLevel) {
            guard index < episodes.count else { return nil }
            defer { index += 1 }
            return episodes[index]
        }
    }

    static func write(to url: URL, gzipLevel: Int, next: () throws -> Episode?) throws -> Summary {
        // Written under a temporary name and renamed: a failed export leaves no half file.
        let partial = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        defer { try? FileManager.default.removeItem(at: partial) }
        let writer = try HDF5Writer(creating: partial)
        let data = try writer.group("data", in: writer.file)
        var count = 0, steps = 0
        var embodiments = Set<String>()
        while let episode = try next() {
            try episode.validate()
            try writeDemo(episode, name: "demo_\(count)", in: data, writer: writer, gzip: gzipLevel)
            count += 1
            steps += episode.stepCount
            embodiments.insert(episode.embodiment)
        }
        try writer.attribute("total", of: data, type: CHDF5_I64, Int64(steps))
        // robomimic reads env_args as JSON; these episodes come from no robomimic environment.
        let envArgs: [String: Any] = ["env_name": "swiftvla", "type": 0,
                                      "env_kwargs": ["embodiments": embodiments.sorted()]]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: envArgs, options: [.sortedKeys]), as: UTF8.self)
        try writer.attribute("env_args", of: data, string: json)
        try writer.attribute("format", of: data, string: format)
        try writer.close()
        if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
        try FileManager.default.moveItem(at: partial, to: url)
        return Summary(episodes: count, steps: steps)
    }

    static func writeDemo(_ e: Episode, name: String, in data: Int64, writer: HDF5Writer, gzip: Int) throws {
        let t = e.stepCount
        let demo = try writer.group(name, in: data)
        try writer.attribute("num_samples", of: demo, type: CHDF5_I64, Int64(t))
        try writer.attribute("id", of: demo, string: e.id.uuidString)
        try writer.attribute("embodiment", of: demo, string: e.embodiment)
        try writer.attribute("task", of: demo, string: e.task)
        try writer.attribute("instruction", of: demo, string: e.instruction)
        try writer.attribute("success", of: demo, type: CHDF5_U8, UInt8(e.success ? 1 : 0))
        try writer.attribute("policy_version", of: demo, type: CHDF5_I64, Int64(e.policyVersion))
        try writer.attribute("created_at", of: demo, type: CHDF5_F64, e.createdAt.timeIntervalSinceReferenceDate)
        if let seed = e.seed { try writer.attribute("seed", of: demo, type: CHDF5_U64, seed) }
        try writer.dataset("actions", in: demo, type: CHDF5_F32, shape: [t, e.nativeActions.columns], values: e.nativeActions.values)
        try writer.dataset("rewards", in: demo, type: CHDF5_F32, shape: [t], values: e.rewards)
        try writer.dataset("dones", in: demo, type: CHDF5_U8, shape: [t], values: e.dones.map { UInt8($0 ? 1 : 0) })
        try writer.dataset("unified_actions", in: demo, type: CHDF5_F32, shape: [t, UnifiedActionSpace.dimension], values: e.unifiedActions.values)
        try writer.dataset("action_mask", in: demo, type: CHDF5_F32, shape: [UnifiedActionSpace.dimension], values: e.actionMask)
        try writer.dataset("sources", in: demo, type: CHDF5_U8, shape: [t], values: e.sources.map(\.rawValue))
        try writer.dataset("timestamps_us", in: demo, type: CHDF5_I64, shape: [t], values: e.timestamps.map { Int64(($0 * 1e6).rounded()) })
        let obs = try writer.group("obs", in: demo)
        try writer.dataset("state", in: obs, type: CHDF5_F32, shape: [t, e.states.columns], values: e.states.values)
        for (camera, frames) in e.cameras.sorted(by: { $0.key < $1.key }) {
            try writer.dataset("\(camera)_image", in: obs, type: CHDF5_U8, shape: [t, frames.height, frames.width, 3],
                               values: frames.pixels, gzip: gzip)
        }
        try writer.closeGroup(obs)
        try writer.closeGroup(demo)
    }
}
