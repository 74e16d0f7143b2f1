import Foundation
import Testing
@testable import RobotSim

@Suite struct EpisodeFormatTests {
    @Test func checksumsMatchPublishedValues() {
        // Adler-32("Wikipedia") = 0x11E60398 (RFC 1950 example used on Wikipedia).
        #expect(PNGEncoder.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
        // CRC-32("IEND") = 0xAE426082, the trailer of every PNG.
        #expect(PNGEncoder.crc32(Array("IEND".utf8)) == 0xAE42_6082)
        // CRC-32("123456789") = 0xCBF43926 (the standard check value).
        #expect(PNGEncoder.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test func pngLayoutIsValid() {
        let w = 3, h = 2
        let rgb = (0..<(w * h * 3)).map { UInt8($0 * 10) }
        let png = PNGEncoder.encode(rgb: rgb, width: w, height: h)
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(Array(png[12..<16]) == Array("IHDR".utf8))
        #expect(Array(png[16..<24]) == [0, 0, 0, 3, 0, 0, 0, 2])
        #expect(Array(png.suffix(8)) == Array("IEND".utf8) + [0xAE, 0x42, 0x60, 0x82])
        // Stored deflate block holds the filtered rows verbatim: row 1 = filter byte 0 + pixels.
        let idat = png.firstRange(of: Array("IDAT".utf8))!.upperBound
        #expect(Array(png[(idat + 2 + 5)..<(idat + 2 + 5 + 10)]) == [0] + Array(rgb[0..<9]))
    }

    @Test func episodeFilesAreWrittenAndParse() throws {
        let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: 2)
        let rec = EpisodeRecorder(environment: env)
        let r = try SimRunner.runExpert(env, recorder: rec)
        #expect(r.success)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("robotsim-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try rec.write(to: dir)
        let data = try Data(contentsOf: dir.appendingPathComponent("episode.safetensors"))
        let n = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try JSONSerialization.jsonObject(with: data[8..<(8 + n)]) as! [String: Any]
        let T = r.steps
        let action = header["action"] as! [String: Any]
        #expect(action["shape"] as! [Int] == [T, 8])
        #expect((header["images.scene"] as! [String: Any])["shape"] as! [Int] == [T + 1, 96, 96, 3])
        #expect((header["unified_action"] as! [String: Any])["shape"] as! [Int] == [T, 64])
        let meta = header["__metadata__"] as! [String: String]
        #expect(meta["instruction"] == env.instruction)
        #expect(meta["success"] == "true")
        // The last data offset equals the payload size.
        let ends = header.values.compactMap { ($0 as? [String: Any])?["data_offsets"] as? [Int] }.map { $0[1] }
        #expect(ends.max()! == data.count - 8 - n)
        // First action read back from the file equals the recorded one.
        let off = (action["data_offsets"] as! [Int])[0] + 8 + n
        let first = (0..<8).map { i in data[(off + 4 * i)..<(off + 4 * i + 4)].withUnsafeBytes { Float(bitPattern: $0.loadUnaligned(as: UInt32.self)) } }
        #expect(first == rec.actions[0])
        for cam in env.cameraNames { #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("\(cam).png").path)) }
    }
}
