import Foundation
import Testing
import TestSupport
@testable import Training

@Suite("TensorBoard event files")
struct TensorBoardWriterTests {
    @Test func crc32cMatchesTheCastagnoliCheckValue() {
        // The standard check value of CRC-32C over the ASCII digits 1…9 (RFC 3720, iSCSI).
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        // 32 zero bytes: RFC 3720's test vector B.4.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }

    @Test func tensorBoardReadsTheCurvesAndReencodesTheSameBytes() async throws {
        let python = ChildProcess.python
        guard FileManager.default.isExecutableFile(atPath: python.path) else {
            Issue.record("no .venv/bin/python: run scripts/bootstrap")
            return
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tb-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let start = Date(timeIntervalSince1970: 1_790_000_000.25)
        let writer = try TensorBoardWriter(directory: directory, wallTime: start)
        let points: [(Int, Float, Float)] = [(1, 0.5, 3e-4), (2, 0.25, 2.5e-4), (300, -1.75, 1e-6)]
        for (i, (step, loss, lr)) in points.enumerated() {
            try writer.add(scalars: [("train/loss", loss), ("train/learning_rate", lr)], step: step,
                           wallTime: start.addingTimeInterval(Double(i + 1)))
        }
        try writer.add("eval/success arm7/reach", 0.4, step: 300, wallTime: start.addingTimeInterval(9))
        // A second writer in the same second (a resumed run) gets its own file.
        let second = try TensorBoardWriter(directory: directory, wallTime: start)
        #expect(second.url != writer.url && second.url.lastPathComponent.contains("tfevents"))

        let result = try await ChildProcess.run(python, [ChildProcess.packageRoot.appendingPathComponent("scripts/read_tensorboard.py").path,
                                                   writer.url.path], timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect(json["file_version"] as? String == "brain.Event:2")
        #expect(json["records"] as? Int == 5)
        #expect(json["bytes_equal"] as? Bool == true)
        let scalars = json["scalars"] as! [String: [[Double]]]
        // Values are float32 on the wire: compare as Float (JSON prints them as doubles).
        #expect(scalars["train/loss"]!.map(\.[0]) == points.map { Double($0.0) })
        #expect(scalars["train/loss"]!.map { Float($0[1]) } == points.map(\.1))
        #expect(scalars["train/learning_rate"]!.map { Float($0[1]) } == points.map(\.2))
        #expect(scalars["train/loss"]!.map { $0[2] } == [1, 2, 3].map { start.timeIntervalSince1970 + $0 })
        #expect(scalars["eval/success arm7/reach"]!.map { [$0[0], Double(Float($0[1]))] } == [[300, Double(Float(0.4))]])
    }
}
