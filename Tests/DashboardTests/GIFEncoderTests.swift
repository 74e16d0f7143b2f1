import Foundation
import Testing
import TestSupport
@testable import RobotData

/// GIFs decoded by Pillow (an independent decoder, installed by `scripts/bootstrap`).
@Suite struct GIFEncoderTests {
    /// Deterministic pseudo-random RGB bytes (SplitMix-style), so LZW sees few repeats and
    /// the code table fills and is cleared several times.
    static func noise(_ count: Int, seed: UInt64) -> [UInt8] {
        var z = seed
        return (0..<count).map { _ in
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return UInt8(truncatingIfNeeded: x ^ (x >> 31))
        }
    }

    @Test func paletteQuantizesToTheNearestLevelPerChannel() {
        // Closed form: levels 6/7/6 are k·255/(n−1); the nearest is at most half a step away.
        for (r, g, b) in [(0, 0, 0), (255, 255, 255), (25, 200, 128), (51, 42, 204), (128, 127, 129)] as [(UInt8, UInt8, UInt8)] {
            let c = GIFEncoder.paletteColor(Int(GIFEncoder.paletteIndex(red: r, green: g, blue: b)))
            #expect(abs(Int(c.red) - Int(r)) <= 26 && abs(Int(c.green) - Int(g)) <= 22 && abs(Int(c.blue) - Int(b)) <= 26)
        }
        #expect(GIFEncoder.paletteColor(Int(GIFEncoder.paletteIndex(red: 255, green: 255, blue: 255))) == (255, 255, 255))
        #expect(GIFEncoder.paletteIndex(red: 0, green: 0, blue: 0) == 0)
        #expect(GIFEncoder.paletteIndex(red: 255, green: 255, blue: 255) == 251)
    }

    @Test func badFramesAreRefused() {
        #expect(throws: GIFEncoder.Error.badFrame(index: 1, expected: 12, got: 11)) {
            try GIFEncoder.encode(frames: [[UInt8](repeating: 0, count: 12), [UInt8](repeating: 0, count: 11)], width: 2, height: 2, delay: 10)
        }
        #expect(throws: GIFEncoder.Error.noFrames) { try GIFEncoder.encode(frames: [], width: 2, height: 2, delay: 10) }
    }

    @Test func pillowDecodesEveryFrameToTheQuantizedPixels() async throws {
        // 80×61 noise (4880 pixels → > 4096 codes: the table fills and is cleared), a flat
        // frame (long runs: codes grow to 12 bits), and a 1×1 frame size edge case below.
        let (w, h) = (80, 61)
        let frames = [Self.noise(w * h * 3, seed: 1), [UInt8](repeating: 200, count: w * h * 3), Self.noise(w * h * 3, seed: 7)]
        let gif = try GIFEncoder.encode(frames: frames, width: w, height: h, delay: 7)
        let tiny = try GIFEncoder.encode(frames: [[10, 250, 130]], width: 1, height: 1, delay: 100)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gif-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try gif.write(to: dir.appendingPathComponent("a.gif"))
        try tiny.write(to: dir.appendingPathComponent("b.gif"))
        let script = """
        import json, sys
        from PIL import Image
        out = {}
        for name in ("a", "b"):
            im = Image.open(sys.argv[1] + "/" + name + ".gif")
            frames = []
            for i in range(im.n_frames):
                im.seek(i)
                frames.append([c for px in im.convert("RGB").getdata() for c in px])
            out[name] = {"size": list(im.size), "frames": frames, "duration": im.info.get("duration"), "loop": im.info.get("loop")}
        print(json.dumps(out))
        """
        let result = try await ChildProcess.run(ChildProcess.python, ["-c", script, dir.path], timeout: 60)
        try #require(result.status == 0, "Pillow could not decode (run scripts/bootstrap): \(result.stderr)")
        struct Decoded: Decodable { var size: [Int]; var frames: [[Int]]; var duration: Int?; var loop: Int? }
        let decoded = try JSONDecoder().decode([String: Decoded].self, from: Data(result.stdout.utf8))
        let a = try #require(decoded["a"]), b = try #require(decoded["b"])
        #expect(a.size == [w, h] && a.frames.count == 3)
        #expect(a.duration == 70 && a.loop == 0)
        for (frame, pixels) in zip(frames, a.frames) {
            let expected = stride(from: 0, to: frame.count, by: 3).flatMap { p -> [Int] in
                let c = GIFEncoder.paletteColor(Int(GIFEncoder.paletteIndex(red: frame[p], green: frame[p + 1], blue: frame[p + 2])))
                return [Int(c.red), Int(c.green), Int(c.blue)]
            }
            #expect(pixels == expected)
        }
        let c = GIFEncoder.paletteColor(Int(GIFEncoder.paletteIndex(red: 10, green: 250, blue: 130)))
        #expect(b.size == [1, 1] && b.frames == [[Int(c.red), Int(c.green), Int(c.blue)]] && b.duration == 1000)
    }
}
