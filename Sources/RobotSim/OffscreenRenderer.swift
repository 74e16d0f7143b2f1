import CMuJoCo

/// Off-screen RGB renderer for one model, backed by its own OSMesa context (llvmpipe).
///
/// Threading rule: OSMesa makes a GL context current *per thread*. Every `render` call makes
/// this renderer's context current on the calling thread first, so a renderer can be created
/// on one thread and used on another, but it must never be used from two threads at once
/// (it is deliberately not `Sendable`). Give each worker thread its own environment/renderer.
public final class OffscreenRenderer {
    private let handle: OpaquePointer
    public let model: MuJoCoModel
    /// Shadows, reflections and skybox off (default): ~30x faster on software GL.
    public var fastFlags: Bool { didSet { cmj_renderer_set_fast(handle, fastFlags ? 1 : 0) } }

    public init(model: MuJoCoModel, maxWidth: Int = 800, maxHeight: Int = 800, fastFlags: Bool = true) throws {
        var error = [CChar](repeating: 0, count: 512)
        guard let h = cmj_renderer_create(model.raw, Int32(maxWidth), Int32(maxHeight), &error, Int32(error.count)) else {
            throw MuJoCoError.renderer(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        handle = h
        self.model = model
        self.fastFlags = fastFlags
        cmj_renderer_set_fast(h, fastFlags ? 1 : 0)
    }

    deinit { cmj_renderer_destroy(handle) }

    /// Render fixed camera `camera` (-1: free camera) as [height, width, 3] uint8, rows top-down.
    public func render(_ simulation: MuJoCoSimulation, camera: Int, width: Int, height: Int) throws -> [UInt8] {
        precondition(simulation.model === model, "renderer was made for another model")
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let rc = cmj_renderer_render(handle, model.raw, simulation.raw, Int32(camera), Int32(width), Int32(height), &pixels)
        guard rc == 0 else { throw MuJoCoError.renderer("render failed (code \(rc)) for \(width)x\(height)") }
        return pixels
    }

    /// Metric depth of fixed camera `camera`: metres along its optical axis, [height · width],
    /// rows top-down (the same pixels `render` gives).
    public func renderDepth(_ simulation: MuJoCoSimulation, camera: Int, width: Int, height: Int) throws -> [Float] {
        precondition(simulation.model === model, "renderer was made for another model")
        var depth = [Float](repeating: 0, count: width * height)
        let rc = cmj_renderer_render_rgbd(handle, model.raw, simulation.raw, Int32(camera), Int32(width), Int32(height), nil, &depth)
        guard rc == 0 else { throw MuJoCoError.renderer("depth render failed (code \(rc)) for \(width)x\(height)") }
        return depth
    }

    /// GL renderer string, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)".
    public var glRenderer: String { String(cString: cmj_renderer_gl_info(handle)) }
}
