import Foundation
import Testing
@testable import RobotSim
import RobotData

@Suite struct EpisodeFormatTests {
    @Test func checksumsMatchPublishedValues() {
        // CRC-32("IEND") = 0xAE426082, the trailer of every PNG.
        #expect(CRC32.checksum(Array("IEND".utf8)) == 0xAE42_6082)
        // CRC-32("123456789") = 0xCBF43926 (the standard check value).
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test func pngLayoutIsValid() throws {
        let w = 3, h = 2
        let rgb = (0..<(w * h * 3)).map { UInt8($0 * 10) }
        let png = try PNGEncoder.encode(rgb: rgb, width: w, height: h)
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(Array(png[12..<16]) == Array("IHDR".utf8))
        #expect(Array(png[16..<24]) == [0, 0, 0, 3, 0, 0, 0, 2])
        #expect(Array(png.suffix(8)) == Array("IEND".utf8) + [0xAE, 0x42, 0x60, 0x82])
        // Stored deflate block holds the filtered rows verbatim: row 1 = filter byte 0 + pixels.
        let idat = png.firstRange(of: Array("IDAT".utf8))!.upperBound
        #expect(Array(png[(idat + 2 + 5)..<(idat + 2 + 5 + 10)]) == [0] + Array(rgb[0..<9]))
    }

    @Test func episodeFilesAreWrittenInTheRobotDataFormat() throws {
        let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: 2)
        let rec = EpisodeRecorder(environment: env)
        let r = try SimRunner.runExpert(env, recorder: rec)
        #expect(r.success)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("robotsim-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try rec.write(to: dir)
        let episode = try rec.episode()
        let back = try EpisodeCodec.read(dir.appendingPathComponent("episode.safetensors"))
        #expect(back.id == episode.id)
        #expect(back.stepCount == r.steps)
        #expect(back.nativeActions == episode.nativeActions)
        #expect(back.states == episode.states)
        #expect(back.cameras["scene"]?.count == r.steps)
        #expect(back.cameras["a_wrist"]?.pixels == episode.cameras["a_wrist"]?.pixels)
        #expect(back.success && back.seed == 2 && back.instruction == env.instruction)
        // Row t of the unified actions is Φ_e(native action t); the mask covers slots 0–6 and 13.
        #expect(Array(back.unifiedActions.row(3)) == (try env.nativeToUnified(Array(episode.nativeActions.row(3)))))
        #expect(back.actionMask.enumerated().filter { $0.element == 1 }.map(\.offset) == [0, 1, 2, 3, 4, 5, 6, 13])
        // Step 0's state is the reset observation.
        #expect(Array(back.states.row(0)) == rec.states[0])
        for cam in env.cameraNames {
            let png = try Data(contentsOf: dir.appendingPathComponent("\(cam).png"))
            #expect(png.count > 8 * 96 * 96 * 3)
        }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("episode.json"))) as! [String: Any]
        #expect(json["steps"] as? Int == r.steps)
    }
}
