import Foundation

/// All-reduce cost per step on a `DistributedGroup`: for each size, every rank sums a float32
/// vector filled with (rank + 1); the result must be size·(size + 1)/2 everywhere (checked on
/// every element), and the best of `repeats` timed all-reduces is reported with the bus
/// bandwidth it implies (ring all-reduce moves 2·(p − 1)/p of the data per rank). The
/// reference, measured in the same run, is a local add of the same vector to itself: what the
/// step would cost if the sum needed no network.
public enum AllReduceBenchmark {
    public struct Row: Sendable, Codable {
        public var elements: Int
        public var milliseconds: Double
        public var gigabytesPerSecond: Double
        /// Best local `x + x` of the same vector (ms) and all-reduce / local.
        public var localAddMilliseconds: Double
        public var ratioToLocalAdd: Double
        public var correct: Bool
    }

    public static func run(group: DistributedGroup, sizes: [Int], repeats: Int = 5) throws -> [Row] {
        let expected = Float(group.size * (group.size + 1) / 2)
        return try sizes.map { n in
            let x = try Tensor.full([n], value: Double(group.rank + 1), dtype: .float32)
            try eval([x])
            var best = Double.infinity
            var correct = true
            for _ in 0..<max(1, repeats) {
                let start = DispatchTime.now()
                let y = try group.allSum(x)
                try eval([y])
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
                let values = try y.toArray(Float.self)
                correct = correct && values.allSatisfy { $0 == expected }
            }
            var local = Double.infinity
            for _ in 0..<max(1, repeats) {
                let start = DispatchTime.now()
                try eval([try x + x])
                local = min(local, Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
            }
            let p = Double(group.size), bytes = Double(n * 4) * 2 * (p - 1) / max(p, 1)
            return Row(elements: n, milliseconds: best, gigabytesPerSecond: bytes / (best / 1000) / 1e9,
                       localAddMilliseconds: local, ratioToLocalAdd: best / local, correct: correct)
        }
    }
}
